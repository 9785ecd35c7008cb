"""Erased people's identifiers stay out on every path: the profile and identity services
(and through them the admin's forms and the partner API) and the import."""
import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from cdp.actors import Actor
from profiles.models import Identity, Profile, Suppression
from profiles.services.suppression import _hmac, identifier_digest, suppressed_among
from profiles.services.profiles import identity_add, profile_create, profile_update, profile_upsert
from tests.cdp.test_api_fixtures import *  # noqa: F401,F403
from tests.factories import IdentityFactory, ProfileFactory
from tests.profiles.test_admin import profile_form
from tests.profiles.test_importing import errors_of, run, write

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
ERASED_PHONE, ERASED_EMAIL, ERASED_CRM = "+8613912345678", "nana@example.com", "CRM-NANA-7"


@pytest.fixture(autouse=True)
def erased():
    """Someone was erased: their phone, email and CRM id are suppressed."""
    Suppression.objects.bulk_create([Suppression(digest=identifier_digest(kind, value), kind=kind) for kind, value in
                                     (("phone", ERASED_PHONE), ("email", ERASED_EMAIL), ("crm_id", ERASED_CRM))])


def codes(error: ValidationError) -> dict[str, list[str]]:
    return {field: [e.code for e in errors] for field, errors in error.error_dict.items()}


# --- the services ------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, expected", [
    ({"phone": "139 1234 5678"}, {"phone": ["suppressed"]}),
    ({"email": " NANA@Example.com"}, {"email": ["suppressed"]}),
    ({"identities": [("crm_id", "CRM-NANA-7")]}, {"identities": ["suppressed"]}),
])
def test_creating_a_customer_with_an_erased_identifier_is_refused(fields, expected):
    with pytest.raises(ValidationError) as error:
        profile_create(actor=SYSTEM, source="admin", name="欧阳娜娜", **fields)
    assert codes(error.value) == expected
    assert "已应本人要求删除数据" in error.value.messages[0]  # in the admin's language
    assert not Profile.objects.exists() and not Identity.objects.exists()


def test_changing_a_customer_to_an_erased_phone_or_email_is_refused():
    profile = profile_create(actor=SYSTEM, source="admin", name="王芳", phone="13800138000")
    with pytest.raises(ValidationError) as error:
        profile_update(profile=profile, actor=SYSTEM, phone="13912345678", email="nana@example.com")
    assert codes(error.value) == {"phone": ["suppressed"], "email": ["suppressed"]}
    profile.refresh_from_db()
    assert (profile.phone, profile.email) == ("+8613800138000", "")
    assert set(Identity.objects.values_list("value", flat=True)) == {"+8613800138000"}


def test_adding_an_erased_identity_is_refused():
    profile = ProfileFactory()
    with pytest.raises(ValidationError) as error:
        identity_add(profile=profile, kind="phone", value="0086 139-1234-5678", source="admin")
    assert error.value.code == "suppressed"
    assert not Identity.objects.exists()


def test_an_upsert_with_an_erased_identity_is_refused():
    known = ProfileFactory()
    IdentityFactory(profile=known, kind_id="crm_id", value="CRM-1")
    with pytest.raises(ValidationError) as error, transaction.atomic():  # it joins the caller's transaction
        profile_upsert(identities=[("crm_id", "CRM-1"), ("phone", ERASED_PHONE)], strong_kinds={"crm_id"},
                       actor=SYSTEM, source="api")
    assert codes(error.value) == {"identities": ["suppressed"]}
    assert list(Identity.objects.values_list("value", flat=True)) == ["CRM-1"]


def test_crm_ids_are_suppressed_whatever_their_case():
    assert suppressed_among([("crm_id", "crm-nana-7"), ("crm_id", " CRM-NANA-7 ")]) == {
        ("crm_id", "crm-nana-7"), ("crm_id", " CRM-NANA-7 ")}
    with pytest.raises(ValidationError):
        profile_create(actor=SYSTEM, source="api", identities=[("crm_id", "Crm-Nana-7")])


def test_crm_ids_suppressed_before_case_folding_still_match():
    """Erasures recorded the exact value's hash before: it cannot be re-hashed, so it is
    looked up as well."""
    Suppression.objects.create(digest=_hmac("crm_id:Old-Crm-1"), kind="crm_id")
    assert suppressed_among([("crm_id", "Old-Crm-1")]) == {("crm_id", "Old-Crm-1")}


def test_other_identifiers_are_stored_as_before():
    profile = profile_create(actor=SYSTEM, source="admin", name="王芳", phone="13800138000",
                             identities=[("crm_id", "CRM-NANA-8")])
    assert set(profile.identities.values_list("value", flat=True)) == {"+8613800138000", "CRM-NANA-8"}


# --- the faces: admin forms, partner API, import ----------------------------------------------

def test_the_admin_add_form_refuses_an_erased_phone_and_email(admin_client):
    response = admin_client.post(reverse("admin:profiles_profile_add"),
                                 profile_form(name="欧阳娜娜", phone="139 1234 5678", email="Nana@Example.com"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) >= {"phone", "email"}
    assert not Profile.objects.exists()


def test_the_admin_change_form_refuses_an_erased_phone(admin_client):
    profile = profile_create(actor=SYSTEM, source="admin", name="王芳", city="北京")
    response = admin_client.post(reverse("admin:profiles_profile_change", args=[profile.pk]),
                                 profile_form(name="王芳", city="北京", phone="13912345678"))
    assert response.status_code == 200
    assert "phone" in response.context["adminform"].form.errors
    assert Profile.objects.get(pk=profile.pk).phone == ""


def test_an_api_patch_with_an_erased_phone_is_refused(api):
    profile = profile_create(actor=SYSTEM, source="admin", name="王芳")
    response = api.patch(reverse("api-profile", args=[profile.uuid]), {"phone": "13912345678"}, format="json")
    assert response.status_code in (400, 422) and response.json()["code"] == "suppressed", response.content
    assert Profile.objects.get(pk=profile.pk).phone == ""
    assert not Identity.objects.exists()


def test_an_api_upsert_with_an_erased_email_field_is_refused(api):
    response = api.post(reverse("api-profiles"), {"identities": [{"kind": "crm_id", "value": "CRM-X"}],
                                                  "email": "nana@example.com"}, format="json")
    assert response.status_code in (400, 422) and response.json()["code"] == "suppressed", response.content
    assert not Profile.objects.exists()


def test_an_import_row_with_an_erased_crm_id_in_another_case_is_refused(tmp_path):
    job = run(write(tmp_path, "CRM编号,姓名\ncrm-nana-7,欧阳娜娜\nCRM-OTHER,李娜\n"))
    assert (job.created, job.failed) == (1, 1)
    assert errors_of(job) == [(2, "CRM编号", "suppressed")]


def test_privacy_officers_and_only_they_see_the_suppressed_identifiers_page(client, django_user_model):
    """The hashes live in profiles; the page stays among the privacy pages, behind the
    permission the privacy officer role has always had (consent.view_suppression)."""
    from tests.profiles.test_importing_permissions import staff_in

    url = reverse("admin:consent_suppression_changelist")
    client.force_login(staff_in(django_user_model, "li", "隐私专员 privacy officer"))
    response = client.get(url)
    assert response.status_code == 200 and identifier_digest("phone", ERASED_PHONE) in response.content.decode()
    client.force_login(staff_in(django_user_model, "mei", "营销 marketer"))
    assert client.get(url).status_code == 403
