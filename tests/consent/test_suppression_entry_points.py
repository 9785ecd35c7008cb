"""An erased person's phone is refused on every way a customer comes in — the admin's add
form, a file import, the partner API's upsert and event batch, an SDK's collection batch,
and a merge of customers the identities would join — and nothing of theirs is stored."""
import base64
import datetime
import json
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from profiles.models import CollectLog, Event, Identity, Profile, ProfileMerge, Suppression
from profiles.services.merge import identities_resolve
from profiles.services.sources import source_create
from profiles.services.suppression import identifier_digest
from tests.cdp.test_api_fixtures import *  # noqa: F401,F403
from tests.factories import IdentityFactory, ProfileFactory
from tests.profiles.test_admin import profile_form
from tests.profiles.test_importing import errors_of, run, write

pytestmark = pytest.mark.django_db
ERASED_PHONE = "+8613912345678"
AS_TYPED = "139 1234 5678"  # the same number as people type it


@pytest.fixture(autouse=True)
def erased():
    Suppression.objects.create(digest=identifier_digest("phone", ERASED_PHONE), kind="phone")


@pytest.fixture
def two_customers():
    """Known under a CRM id and an e-mail: identities naming both would merge them."""
    a, b = ProfileFactory(), ProfileFactory()
    IdentityFactory(profile=a, kind_id="crm_id", value="CRM-A")
    IdentityFactory(profile=b, kind_id="email", value="b@example.com")
    return a, b


BOTH = [{"kind": "crm_id", "value": "CRM-A"}, {"kind": "email", "value": "b@example.com"}]


def erased_phone_identity():
    return {"kind": "phone", "value": AS_TYPED}


# --- one way in each: returns the code (or field) it refused with ------------------------------

def via_admin_add_form(ctx) -> str:
    response = ctx.admin_client.post(reverse("admin:profiles_profile_add"),
                                     profile_form(name="欧阳娜娜", phone=AS_TYPED))
    assert response.status_code == 200  # the form again, with its error
    errors = response.context["adminform"].form.errors.as_data()
    return errors["phone"][0].code


def via_file_import(ctx) -> str:
    job = run(write(ctx.tmp_path, f"手机,姓名\n{AS_TYPED},欧阳娜娜\n"))
    assert (job.created, job.failed) == (0, 1)
    [(_row, column, code)] = errors_of(job)
    assert column == "手机"
    return code


def via_api_upsert(ctx) -> str:
    response = ctx.api.post(reverse("api-profiles"), {"identities": [erased_phone_identity()], "name": "欧阳娜娜"},
                            format="json")
    assert response.status_code in (400, 422), response.content
    return response.json()["code"]


def _event(**fields) -> dict:
    return {"external_id": str(uuid.uuid4()), "name": "order", "occurred_at": "2026-11-27T20:15:00+08:00", **fields}


def via_api_event_batch(ctx) -> str:
    body = ctx.api.post(reverse("api-events-batch"), {"events": [_event(identities=[erased_phone_identity()])]},
                        format="json").json()
    [result] = body["results"]
    assert result["status"] == "rejected" and body["profiles_created"] == 0
    return result["error"]["code"]


def via_sdk_collect_batch(ctx) -> str:
    _source, key = source_create(name="官网商城", code="shop-web")
    at = (timezone.now() - datetime.timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    batch = {"batch": [
        {"type": "identify", "userId": "U-NANA", "messageId": str(uuid.uuid4()), "timestamp": at,
         "traits": {"name": "欧阳娜娜", "phone": AS_TYPED}},
        {"type": "track", "event": "Product Viewed", "userId": "U-NANA", "messageId": str(uuid.uuid4()),
         "timestamp": at, "context": {"traits": {"phone": AS_TYPED}}, "properties": {"phone": AS_TYPED}},
    ]}
    response = ctx.client.post("/collect/v1/batch", data=json.dumps(batch), content_type="application/json",
                               HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode())
    assert response.status_code == 200, response.content  # the SDKs' protocol: accepted for processing
    identify = CollectLog.objects.get(type="identify")
    assert identify.outcome == "rejected"
    return identify.reason.split(":")[0]


def via_api_upsert_that_would_merge(ctx) -> str:
    response = ctx.api.post(reverse("api-profiles"), {"identities": [*BOTH, erased_phone_identity()]}, format="json")
    assert response.status_code in (400, 422), response.content
    return response.json()["code"]


def via_event_batch_that_would_merge(ctx) -> str:
    body = ctx.api.post(reverse("api-events-batch"), {"events": [_event(identities=[*BOTH, erased_phone_identity()])]},
                        format="json").json()
    [result] = body["results"]
    assert result["status"] == "rejected"
    return result["error"]["code"]


def via_identities_resolve_merging(ctx) -> str:
    with pytest.raises(ValidationError) as error:
        identities_resolve([("crm_id", "CRM-A"), ("email", "b@example.com"), ("phone", AS_TYPED)],
                           actor=Actor.system("test"), merge=True)
    return error.value.error_list[0].code


@dataclass
class Context:
    admin_client: object
    api: object
    client: object
    tmp_path: object


@pytest.mark.parametrize("way_in", [
    via_admin_add_form, via_file_import, via_api_upsert, via_api_event_batch, via_sdk_collect_batch,
    via_api_upsert_that_would_merge, via_event_batch_that_would_merge, via_identities_resolve_merging,
], ids=lambda way_in: way_in.__name__.removeprefix("via_"))
def test_every_way_in_refuses_an_erased_persons_phone(way_in: Callable, two_customers, admin_client, api, client,
                                                        tmp_path):
    before = set(Profile.objects.values_list("pk", "status", "name"))
    identities_before = Identity.objects.count()

    assert way_in(Context(admin_client, api, client, tmp_path)) == "suppressed"

    assert not Identity.objects.filter(kind_id="phone", value=ERASED_PHONE).exists()
    assert Identity.objects.count() == identities_before
    assert set(Profile.objects.values_list("pk", "status", "name")) == before  # nobody new, nobody merged
    assert not Profile.objects.filter(phone=ERASED_PHONE).exists()
    assert not ProfileMerge.objects.exists() and not Event.objects.exists()
