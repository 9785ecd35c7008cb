"""Each seeded role against each privileged action: allowed ones answer, the others are
refused (403, or the admin's own refusal)."""
import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from cdp.roles import ROLES
from consent.models import DataSubjectRequest
from segments.models import Segment
from segments.services import segment_save
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
MARKETER, ANALYST, PRIVACY, ADMIN = ROLES

# action → (method, url name, arguments from the fixture objects, roles allowed)
ACTIONS = {
    "view customers": ("get", "admin:profiles_profile_changelist", lambda o: [], {MARKETER, ANALYST, PRIVACY, ADMIN}),
    "see personal data unmasked": ("post", "admin:profiles_profile_reveal", lambda o: [o["profile"].pk],
                                   {PRIVACY, ADMIN}),
    "build segments": ("get", "admin:segments_segment_add", lambda o: [], {MARKETER, ANALYST, ADMIN}),
    "export a segment": ("get", "admin:segments_segment_export", lambda o: [o["segment"].pk],
                         {MARKETER, PRIVACY, ADMIN}),
    "record consent": ("get", "admin:consent_consentrecord_record", lambda o: [o["profile"].uuid], {PRIVACY, ADMIN}),
    "set do not contact": ("get", "admin:consent_donotcontact_add_for", lambda o: [o["profile"].uuid],
                           {PRIVACY, ADMIN}),
    "publish a notice": ("get", "admin:consent_notice_add", lambda o: [], {PRIVACY, ADMIN}),
    "read the audit log": ("get", "admin:cdp_auditlog_changelist", lambda o: [], {PRIVACY, ADMIN}),
    "import customers": ("get", "admin:profiles_importjob_upload", lambda o: [], {MARKETER, PRIVACY, ADMIN}),
    "handle data subject requests": ("get", "admin:consent_datasubjectrequest_changelist", lambda o: [],
                                     {PRIVACY, ADMIN}),
    "erase a customer": ("get", "admin:consent_datasubjectrequest_erase", lambda o: [o["erasure"].pk],
                         {PRIVACY, ADMIN}),
    "manage partners": ("get", "admin:cdp_partner_add", lambda o: [], {ADMIN}),
    "analyse behaviour": ("get", "admin:segments_savedanalysis_funnel", lambda o: [], {MARKETER, ANALYST, ADMIN}),
}


@pytest.fixture
def objects():
    profile = ProfileFactory()
    return {
        "profile": profile,
        "erasure": DataSubjectRequest.objects.create(kind="erasure", profile=profile, requester="本人"),
        "segment": segment_save(segment=Segment(name="上海", slug="sh"),
                                definition={"field": "city", "op": "eq", "value": "上海"}),
    }


def test_roles_are_seeded_as_groups_with_permissions():
    for name in ROLES:
        assert Group.objects.get(name=name).permissions.exists()


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_role_can_do_exactly_its_actions(client, django_user_model, objects, role, action):
    method, name, arguments, allowed = ACTIONS[action]
    user = django_user_model.objects.create_user(username="staff", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    response = getattr(client, method)(reverse(name, args=arguments(objects)))
    if role in allowed:
        assert response.status_code == 200, (role, action, response.status_code)
    else:
        assert response.status_code in (302, 403), (role, action, response.status_code)
