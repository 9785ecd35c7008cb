"""The app push token identity kind (the address for app push) and the events campaigns
write on each customer's timeline, so that segments can ask about them.

Labels are English source strings shown through gettext (zh_Hans in the catalogue).
"""
from django.db import migrations
from django.utils.translation import gettext_noop

S = "string"
PROPERTIES = [
    {"name": "campaign", "type": S, "label": gettext_noop("Campaign")},
    {"name": "variant", "type": S, "label": gettext_noop("Variant")},
    {"name": "channel", "type": S, "label": gettext_noop("Channel"),
     "values": {"sms": "SMS", "email": "Email", "wechat": "WeChat", "app_push": "App push", "phone": "Phone call"}},
]
EVENTS = [
    ("campaign_sent", gettext_noop("Campaign message sent")),
    ("campaign_delivered", gettext_noop("Campaign message delivered")),
    ("campaign_open", gettext_noop("Campaign opened")),
    ("campaign_click", gettext_noop("Campaign clicked")),
    ("campaign_unsubscribe", gettext_noop("Unsubscribed from a campaign")),
]


def seed(apps, schema_editor):
    IdentityKind = apps.get_model("profiles", "IdentityKind")
    EventDefinition = apps.get_model("profiles", "EventDefinition")
    IdentityKind.objects.update_or_create(code="push_token", defaults={
        "name": gettext_noop("App push token"), "is_builtin": True, "merge_on": False,
        "description": gettext_noop("The token the app's push service gave this device; the address for app push."),
    })
    for name, label in EVENTS:
        EventDefinition.objects.update_or_create(name=name, defaults={
            "label": label, "has_amount": False, "is_builtin": True, "properties": PROPERTIES})


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_campaigns"), ("profiles", "0017_chinese_labels")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
