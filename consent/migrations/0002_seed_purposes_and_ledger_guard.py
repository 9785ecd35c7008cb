"""Default purposes with a first notice each, and, on PostgreSQL, a trigger that refuses
to change or delete ledger rows (erasure alone may pseudonymise, inside a transaction
that sets cdp.erasure)."""
from django.db import migrations

PURPOSES = [
    # code, Chinese name, English name, channel, lawful basis, PIPL category, recipient, country, notice (zh, en)
    ("email_marketing", "邮件营销", "Email marketing", "email", "consent", "marketing", "", "",
     "我们会通过电子邮件向您发送新品、活动和优惠信息。您可以随时退订。",
     "We will email you about new products, events and offers. You can unsubscribe at any time."),
    ("sms_marketing", "短信营销", "SMS marketing", "sms", "consent", "marketing", "", "",
     "我们会通过短信向您发送活动和优惠信息。回复 TD 即可退订。",
     "We will text you about events and offers. Reply STOP to unsubscribe."),
    ("wechat_marketing", "微信营销", "WeChat marketing", "wechat", "consent", "marketing", "", "",
     "我们会通过微信公众号和服务通知向您推送活动信息。",
     "We will send you event news through our WeChat official account and service notices."),
    ("phone_marketing", "电话营销", "Phone marketing", "phone", "consent", "marketing", "", "",
     "我们的客服可能致电向您介绍会员权益和活动。",
     "Our service team may call you about membership benefits and events."),
    ("app_push", "App 推送", "App push notifications", "app_push", "consent", "marketing", "", "",
     "我们会通过 App 推送通知向您发送订单和活动提醒。",
     "We will send you order and event reminders as app push notifications."),
    ("personalisation", "个性化推荐", "Personalised recommendations", "none", "consent", "personalisation", "", "",
     "我们会根据您的浏览和购买记录为您推荐商品。您可以随时关闭个性化推荐。",
     "We recommend products based on what you browse and buy. You can switch this off at any time."),
    ("analytics", "行为分析", "Behaviour analytics", "none", "legitimate_interest", "analytics", "", "",
     "我们会对汇总的使用数据进行分析以改进服务。",
     "We analyse aggregated usage data to improve our service."),
    ("precise_location", "精确位置信息", "Precise location", "none", "consent", "sensitive", "", "",
     "我们会使用您的精确位置为您推荐附近门店。位置信息属于敏感个人信息。",
     "We use your precise location to suggest nearby stores. Location is sensitive personal information."),
    ("partner_sharing", "与合作品牌共享", "Sharing with partner brands", "none", "consent", "third_party",
     "星河联名品牌（示例）", "",
     "经您同意，我们会将您的姓名和手机号提供给合作品牌星河，用于联名活动。",
     "With your consent we share your name and mobile number with our partner brand Xinghe for joint campaigns."),
    ("cross_border_eu", "跨境传输（欧盟总部）", "Cross-border transfer (EU headquarters)", "none", "consent",
     "cross_border", "CDP Europe GmbH", "DE",
     "经您同意，您的会员资料会传输至位于德国的欧洲总部用于全球会员服务。",
     "With your consent your membership data is transferred to our European headquarters in Germany."),
]

GUARD = """
CREATE OR REPLACE FUNCTION consent_ledger_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('cdp.erasure', true) = 'on' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the consent ledger is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER consent_ledger_append_only BEFORE UPDATE OR DELETE ON consent_consentrecord
    FOR EACH ROW EXECUTE FUNCTION consent_ledger_guard();
"""
UNGUARD = "DROP TRIGGER IF EXISTS consent_ledger_append_only ON consent_consentrecord;"


def seed(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    Notice = apps.get_model("consent", "Notice")
    for code, zh, en, channel, basis, category, recipient, country, text_zh, text_en in PURPOSES:
        purpose, created = Purpose.objects.get_or_create(code=code, defaults={
            "name_zh": zh, "name_en": en, "channel": channel, "lawful_basis": basis, "pipl_category": category,
            "recipient": recipient, "recipient_country": country,
        })
        if created:
            Notice.objects.create(purpose=purpose, version=1, text_zh=text_zh, text_en=text_en)


def guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD, params=None)  # no placeholders: keep RAISE's % as is


def unguard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNGUARD)


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]
    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop),
        migrations.RunPython(guard, unguard),
    ]
