"""Generated coupon pools: codes drawn with `secrets` from an alphabet without look-alikes,
unique in the pool, written in chunks, topped up later; the admin's upload-or-generate
choice and top-up page; free / assigned / redeemed counts; redemption of a generated
code from an order event that the partner API receives."""
import datetime
import re

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation

from campaigns.models import Campaign, Coupon, CouponPool, Delivery
from campaigns.results import result_refresh
from campaigns.services import coupons as coupon_service
from campaigns.services.coupons import ALPHABET, coupons_generate, generate_check, random_codes
from campaigns.services.runs import run_decide
from campaigns.services.sending import destination_drain
from cdp.api.keys import api_key_create
from cdp.models import Partner, Scope
from cdp.roles import ROLES
from profiles.models import Identity
from rest_framework.test import APIClient

from .conftest import campaign_for, consenting, segment_of

pytestmark = pytest.mark.django_db
MARKETER, ANALYST, PRIVACY, ADMIN = ROLES


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    settings.CAMPAIGN_QUIET_HOURS = {}


@pytest.fixture(autouse=True)
def _site_language(settings):
    """Each test in the site's language (an API request of an earlier test activates its own
    for the rest of the thread)."""
    with translation.override(settings.LANGUAGE_CODE):
        yield


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def generated_pool(count=0, *, prefix="SPRING-", length=8, name="满100减20") -> CouponPool:
    pool = CouponPool.objects.create(name=name, source=CouponPool.Source.GENERATE, prefix=prefix, code_length=length)
    if count:
        assert coupons_generate(pool=pool, count=count) == count
    return pool


def codes_of(pool) -> list[str]:
    return list(Coupon.objects.filter(pool=pool).values_list("code", flat=True))


def text(response) -> str:
    return response.content.decode()


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# -- the codes ------------------------------------------------------------------------------

def test_the_alphabet_has_no_look_alikes():
    assert set(ALPHABET).isdisjoint("0O1IL") and len(set(ALPHABET)) == len(ALPHABET) == 31


def test_random_codes_use_every_character_of_the_alphabet_and_nothing_else():
    codes = random_codes(20_000, length=10, prefix="VIP-")
    assert len(codes) == 20_000 and all(re.fullmatch(rf"VIP-[{ALPHABET}]{{10}}", code) for code in codes)
    # every character is drawn (200,000 draws: ~6,450 each when uniform); none is favoured
    counts = {c: 0 for c in ALPHABET}
    for code in codes:
        for c in code[4:]:
            counts[c] += 1
    assert min(counts.values()) > 5_500 and max(counts.values()) < 7_500


def test_a_generated_pool_gets_exactly_the_codes_asked_for_each_once_and_a_top_up_keeps_their_shape():
    # given a generated pool of 2,000 codes
    pool = generated_pool(2_000)
    first = codes_of(pool)
    assert len(first) == len(set(first)) == 2_000
    assert all(re.fullmatch(rf"SPRING-[{ALPHABET}]{{8}}", code) for code in first)
    # when it is topped up with 500 more
    assert coupons_generate(pool=pool, count=500) == 500
    # then the old codes are kept, and 500 new ones of the same shape added, none repeated
    after = codes_of(pool)
    assert len(after) == len(set(after)) == 2_500 and set(first) < set(after)
    assert all(code.startswith("SPRING-") and len(code) == 15 for code in after)


def test_codes_drawn_twice_are_drawn_again_until_the_count_is_reached(monkeypatch):
    """The operating system's random source is replaced (outside our code) by one that
    repeats itself at first: the collisions, in the batch and with the pool, are redrawn."""
    import secrets

    original = secrets.token_bytes
    pool = generated_pool(10, length=6)
    existing = Coupon.objects.filter(pool=pool).values_list("code", flat=True)[0]
    repeat = bytes(ALPHABET.index(c) for c in existing.removeprefix("SPRING-"))
    calls = []

    def stuck_then_random(n):
        calls.append(n)
        return repeat * (n // 6 + 1) if len(calls) <= 2 else original(n)

    monkeypatch.setattr(coupon_service.secrets, "token_bytes", stuck_then_random)
    assert coupons_generate(pool=pool, count=20) == 20
    assert len(set(codes_of(pool))) == 30 and len(calls) >= 3


def test_a_source_that_never_gives_new_codes_fails_clearly_and_adds_nothing(monkeypatch):
    pool = generated_pool(5)
    monkeypatch.setattr(coupon_service.secrets, "token_bytes", lambda n: bytes(n))
    with pytest.raises(ValidationError) as error:
        coupons_generate(pool=pool, count=10)
    assert error.value.code == "no_space"
    assert Coupon.objects.filter(pool=pool).count() == 5


@pytest.mark.parametrize("prefix, length, existing, count, field", [
    ("春季", 8, 0, 10, "prefix"),
    ("spring", 8, 0, 10, "prefix"),  # the form upper-cases it; the service takes what is stored
    ("A", 5, 0, 10, "code_length"),
    ("A" * 20, 45, 0, 10, "code_length"),  # 65 characters: longer than a code may be
    ("A", 8, 0, 0, "count"),
    ("A", 8, 0, 1_000_001, "count"),
    ("A", 6, 9_000_000, 1, "count"),  # 31⁶ ≈ 887 million: too few for 100 × 9 million
    ("A", 6, 0, None, "count"),
])
def test_impossible_shapes_are_refused_with_the_field_to_change(prefix, length, existing, count, field):
    with pytest.raises(ValidationError) as error:
        generate_check(prefix=prefix, length=length, existing=existing, count=count)
    assert field in error.value.message_dict


def test_an_uploaded_pool_is_not_generated_into():
    pool = CouponPool.objects.create(name="商城券")
    with pytest.raises(ValidationError) as error:
        coupons_generate(pool=pool, count=10)
    assert error.value.code == "not_generated"


# -- the admin ------------------------------------------------------------------------------

def add(admin_client, **fields):
    return admin_client.post(reverse("admin:campaigns_couponpool_add"), {
        "name": "双十一券", "source": "generate", "prefix": "", "code_length": "8", "count": "100", "_save": "1",
        **fields})


def test_staff_choose_to_generate_a_pool_and_land_on_its_page_with_its_codes(admin_client):
    form = text(admin_client.get(reverse("admin:campaigns_couponpool_add")))
    assert 'type="radio" name="source" value="upload"' in form and 'value="generate"' in form
    # when staff generate 300 codes with a lower-case prefix
    response = add(admin_client, prefix=" d11-", count="300", code_length="10")
    # then the pool holds 300 codes D11- + 10 characters and its page says so
    pool = CouponPool.objects.get()
    assert (pool.source, pool.prefix, pool.code_length) == ("generate", "D11-", 10)
    assert response.status_code == 302 and response.url == reverse("admin:campaigns_couponpool_change",
                                                                   args=[pool.pk])
    assert all(re.fullmatch(rf"D11-[{ALPHABET}]{{10}}", code) for code in codes_of(pool))
    assert len(set(codes_of(pool))) == 300
    page = admin_client.get(response.url)
    assert "已生成 300 个券码。" in page_messages(page)
    assert "可用 300 个，已发放 0 个（已核销 0 个）" in text(page) and 'id="generate-codes"' in text(page)
    assert 'id="upload-codes"' not in text(page)


def test_choosing_upload_goes_on_to_the_upload_page_and_generates_nothing(admin_client):
    response = add(admin_client, source="upload", prefix="X-", count="100")
    pool = CouponPool.objects.get()
    assert response.url == reverse("admin:campaigns_couponpool_upload", args=[pool.pk])
    assert (pool.prefix, pool.code_length, Coupon.objects.count()) == ("", None, 0)
    assert 'id="upload-codes"' in text(admin_client.get(reverse("admin:campaigns_couponpool_change",
                                                                args=[pool.pk])))


@pytest.mark.parametrize("fields, message", [
    ({"count": "0"}, "确保该值大于或等于1"),
    ({"count": "两百"}, "输入整数"),
    ({"count": ""}, "请填写要生成的券码数量"),
    ({"count": "1000001"}, "1000000"),
    ({"prefix": "春季"}, "前缀只能包含"),
    ({"code_length": "4"}, "随机字符数须在 6 到"),
    ({"code_length": ""}, "请填写券码的随机字符数"),
])
def test_bad_input_on_the_add_form_is_a_translated_error_and_creates_nothing(admin_client, fields, message):
    response = add(admin_client, **fields)
    assert response.status_code == 200 and message in text(response), text(response)[:0]
    assert not CouponPool.objects.exists()


def test_staff_top_up_a_generated_pool(admin_client):
    pool = generated_pool(50)
    url = reverse("admin:campaigns_couponpool_generate", args=[pool.pk])
    page = admin_client.get(url)
    assert page.status_code == 200 and "SPRING-" in text(page) and "可用 50 个" in text(page)
    # bad input: a translated error, nothing added
    for bad in ("0", "x", "2000000"):
        assert admin_client.post(url, {"count": bad}).status_code == 200
    assert Coupon.objects.filter(pool=pool).count() == 50
    # when 25 more are asked for
    response = admin_client.post(url, {"count": "25"})
    assert response.status_code == 302
    assert Coupon.objects.filter(pool=pool).count() == 75 and len(set(codes_of(pool))) == 75
    assert "已生成 25 个券码。" in page_messages(admin_client.get(response.url))


def test_a_pool_is_uploaded_to_or_generated_into_never_the_other(admin_client):
    uploaded, generated = CouponPool.objects.create(name="商城券"), generated_pool(5)
    response = admin_client.post(reverse("admin:campaigns_couponpool_generate", args=[uploaded.pk]), {"count": "5"})
    assert response.status_code == 302 and not Coupon.objects.filter(pool=uploaded).exists()
    assert "该券码池的券码是上传的，不能生成。" in page_messages(admin_client.get(response.url))
    response = admin_client.get(reverse("admin:campaigns_couponpool_upload", args=[generated.pk]))
    assert response.status_code == 302
    assert "该券码池的券码由系统生成，不能上传。" in page_messages(admin_client.get(response.url))


@pytest.mark.parametrize("role", list(ROLES))
def test_only_those_who_may_add_pools_generate_codes(client, django_user_model, role):
    pool = generated_pool(1)
    user = django_user_model.objects.create_user(username="staff", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    response = client.post(reverse("admin:campaigns_couponpool_generate", args=[pool.pk]), {"count": "5"})
    allowed = user.has_perm("campaigns.add_couponpool")
    assert response.status_code == (302 if allowed else 403)
    assert Coupon.objects.filter(pool=pool).count() == (6 if allowed else 1)
    assert allowed == (role in (MARKETER, ADMIN))


def test_the_pools_show_free_assigned_and_redeemed_codes_in_bounded_queries(
        admin_client, webhook, django_assert_max_num_queries):
    # given a generated pool whose codes went to three customers, one of whom redeemed it
    pool = generated_pool(10)
    for n in range(5):
        generated_pool(3, name=f"池{n}", prefix=f"P{n}-")
    people = consenting(n=3)
    campaign = campaign_for(segment_of(people), webhook, body="{{ coupon }}")
    campaign.variants.update(coupon_pool=pool)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    run_decide(campaign=Campaign.objects.get(pk=campaign.pk))
    Coupon.objects.filter(pool=pool, delivery__isnull=False).order_by("pk").filter(
        pk=Coupon.objects.filter(pool=pool, delivery__isnull=False).order_by("pk").values("pk")[:1]
    ).update(redeemed_at=timezone.now())
    # then the list and the page count them
    with django_assert_max_num_queries(12):
        listing = admin_client.get(reverse("admin:campaigns_couponpool_changelist"))
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*满100减20(?:(?!</tr>).)*</tr>", text(listing), re.S).group(0)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells[:4] == ["系统生成的券码", "7", "3", "1"], cells
    with django_assert_max_num_queries(12):
        page = admin_client.get(reverse("admin:campaigns_couponpool_change", args=[pool.pk]))
    assert "可用 7 个，已发放 3 个（已核销 1 个）" in text(page)


# -- handed out and redeemed ------------------------------------------------------------------

def test_a_generated_code_is_sent_once_per_customer_and_redeemed_by_an_order_the_api_receives(webhook, receiver):
    # given a campaign handing out codes of a generated pool to three customers
    pool = generated_pool(5)
    people = consenting(n=3)
    for n, person in enumerate(people):
        Identity.objects.create(profile=person, kind_id="crm_id", value=f"CRM-{n}")
    campaign = campaign_for(segment_of(people), webhook, body="您的券码 {{ coupon }}")
    campaign.variants.update(coupon_pool=pool)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    run_decide(campaign=Campaign.objects.get(pk=campaign.pk))
    assert destination_drain(destination_id=webhook.pk, budget_seconds=10).sent == 3
    # then each customer received their own code of the pool, in the message
    sent = {m["customer"]: re.search(r"您的券码 (\S+)", m["text"]).group(1) for m in receiver.messages}
    assert len(sent) == 3 and len(set(sent.values())) == 3 and set(sent.values()) <= set(codes_of(pool))
    for person in people:
        assert Coupon.objects.get(delivery__profile_id=person.pk).code == sent[str(person.uuid)]
    # when the shop reports an order of the first customer carrying their code, and the
    # second customer's order carries the first customer's code
    partner = Partner.objects.create(name="商城", code="shop")
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key_create(partner=partner, name='t', scopes=Scope.values)[1]}")
    now = timezone.now().replace(microsecond=0)
    first_code = sent[str(people[0].uuid)]
    answer = api.post("/api/v1/events/batch/", {"events": [
        {"external_id": f"o{n}", "name": "order", "occurred_at": (now + datetime.timedelta(minutes=1)).isoformat(),
         "amount": "199.00", "properties": {"coupon": first_code},
         "identities": [{"kind": "crm_id", "value": f"CRM-{n}"}]} for n in (0, 1)]}, format="json")
    assert answer.status_code == 200, answer.content
    result = result_refresh(campaign_id=campaign.pk, now=now + datetime.timedelta(hours=1))
    # then only the first customer's code is redeemed
    assert result.data["coupons"] == {"issued": 3, "redeemed": 1}
    assert list(Coupon.objects.filter(redeemed_at__isnull=False).values_list("code", flat=True)) == [first_code]
    assert Delivery.objects.filter(campaign=campaign, coupon__isnull=True).count() == 0


# -- one code per customer per campaign -------------------------------------------------------

def _sent_codes(receiver) -> dict[str, str]:
    return {m["customer"]: re.search(r"您的券码 (\S+)", m["text"]).group(1) for m in receiver.messages}


def test_a_recurring_campaign_gives_a_customer_the_same_code_on_every_run(webhook, receiver):
    # given a daily campaign handing out codes of a pool of exactly two codes to two customers
    pool = generated_pool(2)
    people = consenting(n=2)
    segment = segment_of(people)
    campaign = campaign_for(segment, webhook, body="您的券码 {{ coupon }}", schedule=Campaign.Schedule.DAILY)
    campaign.variants.update(coupon_pool=pool)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    free = Coupon.objects.filter(pool=pool, delivery__isnull=True)
    run_decide(campaign=Campaign.objects.get(pk=campaign.pk))
    assert destination_drain(destination_id=webhook.pk, budget_seconds=10).sent == 2
    first = _sent_codes(receiver)
    assert len(set(first.values())) == 2 and free.count() == 0
    # when it runs again (the pool is empty now)
    receiver.requests.clear()
    second_run = run_decide(campaign=Campaign.objects.get(pk=campaign.pk))
    assert destination_drain(destination_id=webhook.pk, budget_seconds=10).sent == 2
    # then each customer receives the code they were given the first time, and no code is used up
    assert _sent_codes(receiver) == first
    assert free.count() == 0 and Coupon.objects.filter(pool=pool, delivery__isnull=False).count() == 2
    assert Delivery.objects.filter(run=second_run).count() == 2
    # and a customer joining later gets a new code, once a code is there for them
    newcomer = consenting(n=1)[0]
    segment.memberships.create(profile=newcomer)
    with pytest.raises(ValidationError, match="生成更多券码"):
        run_decide(campaign=Campaign.objects.get(pk=campaign.pk))
    coupons_generate(pool=pool, count=3)
    receiver.requests.clear()
    run_decide(campaign=Campaign.objects.get(pk=campaign.pk))
    destination_drain(destination_id=webhook.pk, budget_seconds=10)
    third = _sent_codes(receiver)
    assert {k: v for k, v in third.items() if k != str(newcomer.uuid)} == first
    assert third[str(newcomer.uuid)] not in first.values() and free.count() == 2
    # and the result counts each customer's code once
    result = result_refresh(campaign_id=campaign.pk, now=timezone.now() + datetime.timedelta(hours=1))
    assert result.data["coupons"] == {"issued": 3, "redeemed": 0}


@pytest.mark.parametrize("source, advice", [(CouponPool.Source.GENERATE, "请生成更多券码"),
                                            (CouponPool.Source.UPLOAD, "请上传更多券码")])
def test_a_pool_that_runs_out_says_what_to_do_for_its_kind(webhook, receiver, source, advice):
    if source == CouponPool.Source.GENERATE:
        pool = generated_pool(1)
    else:
        pool = CouponPool.objects.create(name="上传的券", source=CouponPool.Source.UPLOAD)
        coupon_service.coupons_upload(pool=pool, raw=b"ONLY-ONE\n")
    campaign = campaign_for(segment_of(consenting(n=2)), webhook, body="您的券码 {{ coupon }}")
    campaign.variants.update(coupon_pool=pool)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    with pytest.raises(ValidationError) as refused:
        run_decide(campaign=Campaign.objects.get(pk=campaign.pk))
    assert refused.value.messages == [f"券码池“{pool.name}”只剩 1 个券码；版本 A 需要 2 个。{advice}。"]
    assert not Delivery.objects.filter(campaign=campaign).exists()
    assert Coupon.objects.filter(pool=pool, delivery__isnull=True).count() == 1


def test_a_code_whose_message_never_went_out_goes_with_the_next_one_and_is_redeemed_from_it(webhook, receiver):
    # given a daily campaign whose first message to a customer died before it was sent
    pool = generated_pool(3)
    person = consenting(n=1)[0]
    Identity.objects.create(profile=person, kind_id="crm_id", value="CRM-9")
    campaign = campaign_for(segment_of([person]), webhook, body="您的券码 {{ coupon }}",
                            schedule=Campaign.Schedule.DAILY)
    campaign.variants.update(coupon_pool=pool)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    first_run = run_decide(campaign=Campaign.objects.get(pk=campaign.pk))
    code = Coupon.objects.get(delivery__run=first_run).code
    Delivery.objects.filter(run=first_run).update(status=Delivery.Status.DEAD)
    # when the next run sends the customer their message
    second_run = run_decide(campaign=Campaign.objects.get(pk=campaign.pk))
    assert destination_drain(destination_id=webhook.pk, budget_seconds=10).sent == 1
    # then it carries the same code, which now belongs to the message that went out
    assert _sent_codes(receiver) == {str(person.uuid): code}
    assert Coupon.objects.get(code=code).delivery.run_id == second_run.pk
    assert Coupon.objects.filter(pool=pool, delivery__isnull=True).count() == 2
    # and an order carrying it redeems it
    partner = Partner.objects.create(name="商城", code="shop")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key_create(partner=partner, name='t', scopes=Scope.values)[1]}")
    now = timezone.now().replace(microsecond=0)
    answer = api.post("/api/v1/events/batch/", {"events": [
        {"external_id": "o9", "name": "order", "occurred_at": (now + datetime.timedelta(minutes=1)).isoformat(),
         "amount": "99.00", "properties": {"coupon": code}, "identities": [{"kind": "crm_id", "value": "CRM-9"}]}]},
        format="json")
    assert answer.status_code == 200, answer.content
    result = result_refresh(campaign_id=campaign.pk, now=now + datetime.timedelta(hours=1))
    assert result.data["coupons"] == {"issued": 1, "redeemed": 1}
