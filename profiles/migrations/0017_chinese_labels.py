"""Labels a Chinese marketer can read and search:

- the four tag-category roots are stored in Chinese, the language staff type their own
  categories in, so that searching 行为 finds 行为标签 (English readers still see the
  English names: TagCategory.display_name);
- the built-in events' properties label their known values ("alipay" → Alipay, 支付宝 in
  zh_Hans), English source strings translated under the "event value" context.
"""
from django.db import migrations


ROOTS = {  # code: (English name seeded by 0004, Chinese name, English description, Chinese description)
    "basic": ("Basic tags", "基础标签", "Who the customer is: gender, age band, region, occupation.",
              "客户是谁：性别、年龄段、地区、职业。"),
    "behavioural": ("Behavioural tags", "行为标签", "What the customer did: browsed, bought, shared.",
                    "客户做了什么：浏览、购买、分享。"),
    "interest": ("Interest tags", "兴趣标签", "What the customer likes, e.g. sneakers or culture trips.",
                 "客户喜欢什么，例如运动鞋或文化旅行。"),
    "value": ("Value tags", "价值标签", "What the customer is worth: high value, at risk of churn.",
              "客户的价值：高价值、流失风险。"),
}

CATEGORY_VALUES = {
    "lipstick": "Lipstick", "skincare": "Skincare", "sneakers": "Sneakers", "shoes": "Shoes",
    "digital": "Digital devices", "snacks": "Snacks", "books": "Books", "outdoor": "Outdoor gear",
    "japan_travel": "Japan travel",
}
CHANNEL_VALUES = {
    "app": "App", "mini_program": "Mini program", "web": "Website", "store": "Store",
    "wechat_friend": "WeChat friends", "wechat_moments": "WeChat Moments", "xiaohongshu": "Xiaohongshu",
    "weibo": "Weibo", "douyin": "Douyin", "qq": "QQ",
}
METHOD_VALUES = {"alipay": "Alipay", "wechat_pay": "WeChat Pay", "card": "Bank card", "unionpay": "UnionPay"}
PAGE_VALUES = {
    "home": "Home page", "search": "Search", "category": "Category page", "new_arrivals": "New arrivals",
    "live_stream": "Live stream", "member_center": "Member centre", "coupons": "Coupons", "orders": "My orders",
    "cart": "Shopping cart", "help": "Help centre", "product_list": "Product list",
}
VALUES = {"category": CATEGORY_VALUES, "channel": CHANNEL_VALUES, "method": METHOD_VALUES, "page": PAGE_VALUES}


def seed(apps, schema_editor):
    TagCategory = apps.get_model("profiles", "TagCategory")
    for code, (english, chinese, english_description, chinese_description) in ROOTS.items():
        TagCategory.objects.filter(code=code, name=english).update(name=chinese)
        TagCategory.objects.filter(code=code, description=english_description).update(description=chinese_description)
    EventDefinition = apps.get_model("profiles", "EventDefinition")
    for definition in EventDefinition.objects.filter(is_builtin=True):
        properties = [
            {**prop, "values": {**VALUES[prop.get("name")], **(prop.get("values") or {})}}
            if isinstance(prop, dict) and prop.get("name") in VALUES else prop
            for prop in definition.properties
        ]
        if properties != definition.properties:
            definition.properties = properties
            definition.save(update_fields=["properties"])


def backwards(apps, schema_editor):
    TagCategory = apps.get_model("profiles", "TagCategory")
    for code, (english, chinese, english_description, chinese_description) in ROOTS.items():
        TagCategory.objects.filter(code=code, name=chinese).update(name=english)
        TagCategory.objects.filter(code=code, description=chinese_description).update(description=english_description)


class Migration(migrations.Migration):
    dependencies = [("profiles", "0016_import_heartbeat_runner_expiry")]
    operations = [migrations.RunPython(seed, backwards)]
