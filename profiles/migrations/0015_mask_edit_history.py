"""History recorded before it masked phones and emails: mask them now (the timeline
shows the history to staff who may only see them masked). Edits kept the old and new
values; merges named a customer without a name by their phone or email."""
import re

from django.db import migrations


def mask_edit_history(apps, schema_editor):
    from profiles.masking import mask_email, mask_phone

    masks = {"phone": mask_phone, "email": mask_email}

    def shown_name(name: str) -> str:
        if re.fullmatch(r"\+\d{6,15}", name):
            return mask_phone(name)
        return mask_email(name) if "@" in name else name

    ProfileActivity = apps.get_model("profiles", "ProfileActivity")
    rows = ProfileActivity.objects.filter(type__in=["edited", "merged", "unmerged"]).only("type", "params")
    changed = []
    for activity in rows.iterator(chunk_size=2000):
        params = dict(activity.params)
        if activity.type == "edited":
            params["changes"] = {field: [masks[field](value) if value and field in masks else value for value in values]
                                 for field, values in (params.get("changes") or {}).items()}
        else:
            params.update({key: shown_name(params[key]) for key in ("merged_name", "survivor_name") if key in params})
        if params != activity.params:
            activity.params = params
            changed.append(activity)
    ProfileActivity.objects.bulk_update(changed, ["params"], batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [("profiles", "0014_wechat_id_kind")]
    operations = [migrations.RunPython(mask_edit_history, migrations.RunPython.noop)]
