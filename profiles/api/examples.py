"""Examples shown in /api/docs/ for the profile, tag and event routes."""
from drf_spectacular.utils import OpenApiExample

CUSTOMER_ID = "6f1c2a7e-3b1d-4c55-9d0e-2f8a4b6c9e01"
PROFILE = {
    "id": CUSTOMER_ID, "status": "active", "merged_into": None, "name": "张伟", "gender": "male",
    "birth_date": "1990-05-17", "phone": "+8613800138000", "email": "zhang.wei@example.com", "country": "CN",
    "province": "上海", "city": "上海", "occupation": "工程师", "traits": {},
    "identities": [{"kind": "phone", "value": "+8613800138000"}, {"kind": "crm_id", "value": "CRM-000123"}],
    "tags": ["sneaker-lover"], "lifecycle_stage": "active", "first_seen_at": "2026-01-03T02:11:00Z",
    "last_seen_at": "2026-11-27T12:40:00Z", "order_count": 6, "total_spent": "3280.00",
    "last_order_at": "2026-11-20T09:15:00Z", "rfm": {"recency": 5, "frequency": 4, "monetary": 4},
    "created_at": "2026-01-03T02:11:00Z", "updated_at": "2026-11-27T12:40:00Z",
}

PROFILE_RESPONSE = OpenApiExample("customer", value=PROFILE, response_only=True)
PROFILE_PAGE = OpenApiExample(
    "a page", response_only=True,
    value={"next": "https://cdp.example.com/api/v1/profiles/?cursor=cD0yMDI2LTExLTI3", "previous": None,
           "results": [PROFILE]},
)
UPSERT_REQUEST = OpenApiExample("find or create by phone and CRM id", request_only=True, value={
    "identities": [{"kind": "phone", "value": "138 0013 8000"}, {"kind": "crm_id", "value": "CRM-000123"}],
    "name": "张伟", "gender": "男", "city": "上海市", "email": "Zhang.Wei@Example.com",
})
UPSERT_RESPONSE = OpenApiExample("created", response_only=True, status_codes=["201"],
                                 value={"created": True, "merged": [], "profile": PROFILE})
UPSERT_UPDATED = OpenApiExample("found and updated", response_only=True, status_codes=["200"],
                                value={"created": False, "merged": [], "profile": PROFILE})
PATCH_REQUEST = OpenApiExample("change the city, add a WeChat id", request_only=True, value={
    "city": "杭州", "identities": [{"kind": "wechat_unionid", "value": "o6_bmasdasdsad6_2sgVt7hMZOPfL"}],
})
PROFILE_TAGS = OpenApiExample("tags", response_only=True, value=[{
    "tag": "sneaker-lover", "name": "喜欢运动鞋", "source": "api", "weight": None, "reason": "loyalty quiz",
    "assigned_at": "2026-11-27T12:40:00Z", "expires_at": None,
}])
TAG_ASSIGN_REQUEST = OpenApiExample("give a tag", request_only=True,
                                    value={"tag": "vip-event-2026", "reason": "attended the launch"})
TAG_ASSIGN_RESPONSE = OpenApiExample("given", response_only=True, value={"tag": "vip-event-2026", "added": True})
TAXONOMY = OpenApiExample("taxonomy", response_only=True, value=[{
    "name": "兴趣标签", "code": "interest", "children": [],
    "tags": [{"slug": "sneaker-lover", "name": "喜欢运动鞋", "kind": "interest", "description": "", "is_active": True}],
}])
EVENTS_REQUEST = OpenApiExample("an order and a page view", request_only=True, value={"events": [
    {"external_id": "order-20261127-0001", "source": "shop", "name": "order",
     "occurred_at": "2026-11-27T20:15:00+08:00", "identities": [{"kind": "phone", "value": "13800138000"}],
     "amount": "299.00", "properties": {"category": "sneakers", "order_no": "SO20261127001"}},
    {"external_id": "pv-88123", "name": "page_view", "occurred_at": "2026-11-27T20:10:00+08:00",
     "profile": CUSTOMER_ID, "properties": {"category": "sneakers"}},
]})
EVENTS_RESPONSE = OpenApiExample("per-event results", response_only=True, value={
    "accepted": 1, "duplicates": 1, "rejected": 1, "profiles_created": 0, "results": [
        {"index": 0, "external_id": "order-20261127-0001", "status": "accepted", "profile": CUSTOMER_ID},
        {"index": 1, "external_id": "pv-88123", "status": "duplicate", "profile": CUSTOMER_ID},
        {"index": 2, "external_id": "x-1", "status": "rejected", "error": {
            "code": "unknown_event", "message": "“pageview” is not a registered event name.",
            "fields": {"name": ["“pageview” is not a registered event name."]}}},
    ]})
RECOMMENDATIONS = OpenApiExample("next-best products", response_only=True, value=[{
    "rank": 1, "product_id": "SKN00002", "category": "skincare", "label": "玻尿酸补水·面霜", "category_label": "护肤",
    "score": 1.73, "reason_code": "viewed", "reason_product": "LIP00002", "reason_category": "lipstick",
    "reason": "因为您浏览了丝绒哑光唇膏·豆沙色", "computed_at": "2026-12-05T02:00:00Z",
}])
