"""The demo shop: a tiny customer website (a product list, product pages, a cart and a member
login) that loads the vendored tracking SDKs, Segment's analytics.js or the Sensors Data web
SDK (?sdk=segment / ?sdk=sensors), pointed at this server's collection endpoints with the
demo source's write key (profiles.collect.demo_source). A new user browses it and sees the
events arrive on a customer's timeline in the admin.

It stands for a customer's own website, so it needs no login; it is served only when the
demo shop is on (CDP_DEMO_SHOP, by default DEBUG): elsewhere every address here is a 404.
"""
from decimal import Decimal

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET

from ..models import CollectSource, Identity, ProfileStatus
from ..services.sources import source_forget
from .demo_source import (
    DEMO_SOURCE_CODE,
    DEMO_SOURCE_NAME,
    demo_shop_enabled,
    demo_source_ready,
    demo_write_key,
)

SDKS = ("segment", "sensors")

# A few products of the demo catalogue (profiles.demo: the same ids, names and categories as
# the generated customers' events, so the shop's events join their history).
PRODUCTS = (
    {"id": "LIP00001", "name": "丝绒哑光唇膏·正红", "category": "lipstick", "price": Decimal("229.00")},
    {"id": "SKN00001", "name": "玻尿酸补水·精华", "category": "skincare", "price": Decimal("468.00")},
    {"id": "SNK00001", "name": "经典复古跑鞋·白色", "category": "sneakers", "price": Decimal("899.00")},
    {"id": "SNC00001", "name": "每日坚果·原味", "category": "snacks", "price": Decimal("59.90")},
    {"id": "BK00001", "name": "科幻小说·第一册", "category": "books", "price": Decimal("45.00")},
    {"id": "JPT00001", "name": "东京·自由行5日", "category": "japan_travel", "price": Decimal("4999.00")},
)
PRODUCTS_BY_ID = {product["id"]: product for product in PRODUCTS}


def _category_labels() -> dict[str, str]:
    # The labels the event values of the demo data have (profiles/migrations/0017_chinese_labels.py).
    return {"lipstick": pgettext("event value", "Lipstick"), "skincare": pgettext("event value", "Skincare"),
            "sneakers": pgettext("event value", "Sneakers"), "snacks": pgettext("event value", "Snacks"),
            "books": pgettext("event value", "Books"), "japan_travel": pgettext("event value", "Japan travel")}


def _shop(request, template: str, page: str, **context):
    if not demo_shop_enabled():
        raise Http404(_("The demo shop is not switched on here."))
    # The shop sends from the address it is served at: `make run PORT=8080` or another host
    # name must be an allowed origin too (a demo-only page; a real source lists its origins).
    origin = f"{request.scheme}://{request.get_host()}"
    demo = CollectSource.objects.filter(code=DEMO_SOURCE_CODE).values("allowed_origins", "key_prefix").first()
    if demo is not None and origin not in demo["allowed_origins"]:
        CollectSource.objects.filter(code=DEMO_SOURCE_CODE).update(allowed_origins=[*demo["allowed_origins"], origin])
        source_forget(demo["key_prefix"])
    sdk = request.GET.get("sdk")
    sdk = sdk if sdk in SDKS else SDKS[0]
    labels = _category_labels()
    products = [{**product, "category_label": labels[product["category"]]} for product in PRODUCTS]
    collect_root = reverse("collect:demo_shop_home").removesuffix("demo-shop/")  # where the endpoints are
    return render(request, template, {
        "sdk": sdk,
        "sdks": [("segment", "Segment analytics.js"), ("sensors", _("Sensors Data web SDK"))],
        "products": products,
        "source_name": DEMO_SOURCE_NAME,
        "ready": demo_source_ready(),
        "staff": request.user.is_active and request.user.is_staff,
        "shop_config": {
            "sdk": sdk,
            "page": page,
            "writeKey": demo_write_key(),
            # The SDKs need absolute addresses; the page puts its own origin before these.
            "segmentPath": f"{collect_root}v1",  # analytics.js adds /t, /p, /i …
            "sensorsPath": f"{collect_root}sa",  # the web SDK turns it into sa.gif
            "productsUrl": reverse("collect:demo_shop_home"),
            "profileUrl": reverse("collect:demo_shop_profile"),
            "products": {p["id"]: {"name": p["name"], "category": p["category"], "price": str(p["price"])}
                         for p in PRODUCTS},
        },
        **context,
    })


@require_GET
def home(request):
    return _shop(request, "demo_shop/home.html", "home")


@require_GET
def product(request, product_id: str):
    item = PRODUCTS_BY_ID.get(product_id)
    if item is None:
        raise Http404(_("There is no such product in the demo shop."))
    return _shop(request, "demo_shop/product.html", "product",
                 product={**item, "category_label": _category_labels()[item["category"]]})


@require_GET
def cart(request):
    return _shop(request, "demo_shop/cart.html", "cart")


@require_GET
@staff_member_required
def profile(request):
    """For staff trying the demo: the admin page of the customer this browser is, found by the
    SDK's user id or anonymous id (whichever the core has seen)."""
    if not demo_shop_enabled():
        raise Http404(_("The demo shop is not switched on here."))
    source = CollectSource.objects.filter(code=DEMO_SOURCE_CODE).select_related("user_id_kind").first()
    wanted = []
    if source is not None and request.GET.get("user_id"):
        wanted.append((source.user_id_kind_id, request.GET["user_id"][:255]))
    if request.GET.get("anonymous_id"):
        wanted.append(("anonymous_id", request.GET["anonymous_id"][:255]))
    for kind, value in wanted:
        identity = Identity.objects.filter(kind_id=kind, value=value).select_related("profile").first()
        if identity is not None:
            customer = identity.profile
            while customer.status == ProfileStatus.MERGED and customer.merged_into_id:
                customer = customer.merged_into
            return redirect("admin:profiles_profile_change", customer.pk)
    return render(request, "demo_shop/not_yet.html", {"sdk": SDKS[0]}, status=404)


urlpatterns = [
    path("demo-shop/", home, name="demo_shop_home"),
    path("demo-shop/p/<str:product_id>/", product, name="demo_shop_product"),
    path("demo-shop/cart/", cart, name="demo_shop_cart"),
    path("demo-shop/me/", profile, name="demo_shop_profile"),
]
