"""The four roots of the taxonomy. Names are English source strings shown through gettext
(基础标签, 行为标签, 兴趣标签, 价值标签 in zh_Hans)."""
from django.db import migrations
from django.utils.translation import gettext_noop

ROOTS = [
    ("basic", gettext_noop("Basic tags"), gettext_noop("Who the customer is: gender, age band, region, occupation.")),
    ("behavioural", gettext_noop("Behavioural tags"), gettext_noop("What the customer did: browsed, bought, shared.")),
    ("interest", gettext_noop("Interest tags"), gettext_noop("What the customer likes, e.g. sneakers or culture trips.")),
    ("value", gettext_noop("Value tags"), gettext_noop("What the customer is worth: high value, at risk of churn.")),
]


def seed(apps, schema_editor):
    TagCategory = apps.get_model("profiles", "TagCategory")
    for code, name, description in ROOTS:
        TagCategory.objects.update_or_create(code=code, defaults={"name": name, "description": description})


class Migration(migrations.Migration):
    dependencies = [("profiles", "0003_tag_taxonomy")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
