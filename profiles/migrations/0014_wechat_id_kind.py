"""A built-in identity kind for the WeChat ID (微信号), which Chinese CRM and SCRM exports
carry beside (or instead of) the OpenID and UnionID."""
from django.db import migrations
from django.utils.translation import gettext_noop

WECHAT_ID = (
    "wechat_id", gettext_noop("WeChat ID"),
    gettext_noop("The account name people add each other by (微信号); its owner may change it, so a UnionID is "
                 "the steadier key when you have one."),
)


def seed(apps, schema_editor):
    code, name, description = WECHAT_ID
    apps.get_model("profiles", "IdentityKind").objects.update_or_create(
        code=code, defaults={"name": name, "description": description, "is_builtin": True}
    )


class Migration(migrations.Migration):
    dependencies = [("profiles", "0013_bulk_rows_without_constraints")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
