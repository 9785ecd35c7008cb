"""Edits recorded before the history masked phones and emails: mask them now (the
timeline shows the history to staff who may only see them masked)."""
from django.db import migrations

EDITED = "edited"


def mask_edit_history(apps, schema_editor):
    from profiles.activity import edit_shown

    ProfileActivity = apps.get_model("profiles", "ProfileActivity")
    rows = ProfileActivity.objects.filter(type=EDITED).only("params").iterator(chunk_size=2000)
    for activity in rows:
        changes = activity.params.get("changes") or {}
        masked = {field: [edit_shown(field, value) for value in values] for field, values in changes.items()}
        if masked != changes:
            activity.params = {**activity.params, "changes": masked}
            activity.save(update_fields=["params"])


class Migration(migrations.Migration):
    dependencies = [("profiles", "0014_wechat_id_kind")]
    operations = [migrations.RunPython(mask_edit_history, migrations.RunPython.noop)]
