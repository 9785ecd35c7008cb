"""The campaigns admin: campaigns (营销活动) with their page, destinations (渠道与目的地)
and coupon pools."""
from . import campaigns, coupons, destinations  # noqa: F401
