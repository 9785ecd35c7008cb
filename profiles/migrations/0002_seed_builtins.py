"""Built-in identity kinds and the standard e-commerce events.

Labels are English source strings shown through gettext (zh_Hans in the catalogue).
"""
from django.db import migrations
from django.utils.translation import gettext_noop

IDENTITY_KINDS = [
    ("phone", gettext_noop("Mobile phone"), gettext_noop("E.164, e.g. +8613800138000.")),
    ("email", gettext_noop("Email"), gettext_noop("Lower-cased.")),
    ("crm_id", gettext_noop("CRM id"), gettext_noop("The id in the CRM that exported the customer.")),
    ("wechat_openid", gettext_noop("WeChat OpenID"), gettext_noop("Per official account or mini program; case-sensitive.")),
    ("wechat_unionid", gettext_noop("WeChat UnionID"), gettext_noop("The same across one company's WeChat apps.")),
    ("device_id", gettext_noop("Device id"), gettext_noop("App or browser device id; may be shared by several people.")),
]

S, N = "string", "number"
EVENTS = [
    ("page_view", gettext_noop("Page view"), False, [("page", S, gettext_noop("Page"))]),
    ("product_view", gettext_noop("Product view"), False,
     [("category", S, gettext_noop("Category")), ("product_id", S, gettext_noop("Product")), ("price", N, gettext_noop("Price"))]),
    ("add_to_cart", gettext_noop("Add to cart"), False,
     [("category", S, gettext_noop("Category")), ("product_id", S, gettext_noop("Product")), ("quantity", N, gettext_noop("Quantity"))]),
    ("order", gettext_noop("Order"), True,
     [("category", S, gettext_noop("Category")), ("order_id", S, gettext_noop("Order number")), ("channel", S, gettext_noop("Channel"))]),
    ("payment", gettext_noop("Payment"), True, [("method", S, gettext_noop("Payment method")), ("order_id", S, gettext_noop("Order number"))]),
    ("share", gettext_noop("Share"), False, [("channel", S, gettext_noop("Channel")), ("category", S, gettext_noop("Category"))]),
    ("campaign_open", gettext_noop("Campaign opened"), False, [("campaign", S, gettext_noop("Campaign"))]),
    ("campaign_click", gettext_noop("Campaign clicked"), False, [("campaign", S, gettext_noop("Campaign"))]),
    ("support_chat", gettext_noop("Support chat"), False, [("topic", S, gettext_noop("Topic"))]),
    ("account_open_start", gettext_noop("Account opening started"), False, [("channel", S, gettext_noop("Channel"))]),
    ("account_open_submit", gettext_noop("Account opening submitted"), False, [("channel", S, gettext_noop("Channel"))]),
    ("account_open_complete", gettext_noop("Account opening completed"), False, [("channel", S, gettext_noop("Channel"))]),
]


def seed(apps, schema_editor):
    IdentityKind = apps.get_model("profiles", "IdentityKind")
    EventDefinition = apps.get_model("profiles", "EventDefinition")
    for code, name, description in IDENTITY_KINDS:
        IdentityKind.objects.update_or_create(
            code=code, defaults={"name": name, "description": description, "is_builtin": True}
        )
    for name, label, has_amount, properties in EVENTS:
        EventDefinition.objects.update_or_create(
            name=name,
            defaults={
                "label": label,
                "has_amount": has_amount,
                "is_builtin": True,
                "properties": [{"name": p, "type": t, "label": lbl} for p, t, lbl in properties],
            },
        )


class Migration(migrations.Migration):
    dependencies = [("profiles", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
