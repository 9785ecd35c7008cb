"""Demo segments: the stories marketers ask for first, saved and calculated, so that the
demo's dashboard, segment pages, breakdowns and exports have members to show."""
from __future__ import annotations

from .models import Segment
from .services import segment_recompute, segment_save

SHANGHAI = {"field": "city", "op": "eq", "value": "上海"}
FEMALE = {"field": "gender", "op": "eq", "value": "female"}

# (slug, name, description, definition)
DEMO_SEGMENTS = (
    ("shanghai-sneaker-women", "上海女性运动鞋爱好者（高频）", "上海 + 女性 + 喜欢运动鞋 + 近 30 天下单至少 2 次。",
     {"all": [SHANGHAI, FEMALE, {"tag": "sneaker-lover", "op": "has"},
              {"event": "order", "count": {"op": "gte", "value": 2}, "within": {"days": 30}}]}),
    ("gen-z-lipstick-spenders", "95 后高消费口红关注者", "1995 年后出生的女性，累计消费 5,000 元以上，近 90 天看过口红。",
     {"all": [{"field": "birth_year", "op": "gte", "value": 1995}, FEMALE,
              {"field": "total_spent", "op": "gte", "value": 5000},
              {"event": "product_view", "within": {"days": 90},
               "where": [{"property": "category", "op": "eq", "value": "lipstick"}]}]}),
    ("high-value-at-risk", "高价值流失预警", "一年内下单至少 3 次、近 60 天没有下单、累计消费 3,000 元以上。",
     {"all": [{"event": "order", "count": {"op": "gte", "value": 3}, "within": {"days": 365}},
              {"not": {"event": "order", "within": {"days": 60}}},
              {"field": "total_spent", "op": "gte", "value": 3000}]}),
    ("japan-travel-intent", "日本旅行意向客户", "近 180 天看过至少 3 次日本旅行产品，且买过至少 2 次旅行产品。",
     {"all": [{"event": "product_view", "count": {"op": "gte", "value": 3}, "within": {"days": 180},
               "where": [{"property": "category", "op": "eq", "value": "japan_travel"}]},
              {"event": "order", "count": {"op": "gte", "value": 2},
               "where": [{"property": "category", "op": "eq", "value": "japan_travel"}]}]}),
    ("account-opening-drop-off", "开户未完成（7 天）", "近 30 天开始开户、7 天内没有完成的客户。",
     {"sequence": [{"event": "account_open_start", "within": {"days": 30}}, {"event": "account_open_complete"}],
      "within_days": 7, "op": "not_then"}),
    ("wechat-reachable-active", "可微信触达的活跃客户", "同意接收微信营销消息、生命周期为活跃或回流。",
     {"all": [{"consent": "wechat_marketing", "op": "granted"},
              {"field": "lifecycle_stage", "op": "in", "value": ["active", "returning"]}]}),
)


def demo_segments() -> list[Segment]:
    """Save the demo segments that are not there yet and calculate them."""
    made = []
    for slug, name, description, definition in DEMO_SEGMENTS:
        if Segment.objects.filter(slug=slug).exists():
            continue
        segment = segment_save(segment=Segment(slug=slug, name=name, description=description), definition=definition)
        segment_recompute(segment_id=segment.pk)
        made.append(segment)
    return made
