"""The current state, as consenting_profiles sees it, always equals an independent
reading of the ledger: the latest entry by capture time counts when it is a grant, not
expired, given under a notice not superseded by one requiring re-consent, and (for a
minor) given by a guardian."""
import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from django.utils import timezone

from cdp.actors import Actor
from consent.models import ConsentRecord, ConsentState, Notice, Purpose
from consent.selectors import consent_state_drift, consenting_profiles
from consent.services import consent_record, notice_publish
from profiles.models import Profile
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
STATE_DRIFT_ON_PURPOSE = True  # each example empties the states first; it checks its own customer instead
ANCHOR = timezone.now().replace(microsecond=0) - datetime.timedelta(days=400)
SYSTEM = Actor.system("property")

step = st.one_of(
    st.tuples(st.just("record"), st.sampled_from(["granted", "denied", "withdrawn"]),
              st.integers(0, 300),  # capture day after the anchor (out of order on purpose)
              st.one_of(st.none(), st.integers(1, 200)),  # expires that many days after capture
              st.booleans()),  # guardian
    st.tuples(st.just("notice"), st.booleans()),  # publish a notice, requiring re-consent or not
)


def expected(entries, reconsent_from, minor, now):
    if not entries:
        return False
    status, captured, expires, notice, guardian = max(entries, key=lambda e: (e[1], e[5]))[:5]
    return (status == "granted" and (expires is None or expires > now) and (notice or 0) >= reconsent_from
            and (guardian or not minor))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, max_size=12), minor=st.booleans(), check_day=st.integers(0, 500))
def test_state_matches_an_independent_reading_of_the_ledger(steps, minor, check_day):
    ConsentState.objects.all().delete()
    Notice.objects.filter(version__gt=1).delete()
    Purpose.objects.update(reconsent_from_version=0)
    today = timezone.localdate()
    birth = today.replace(year=today.year - (10 if minor else 30))
    profile = ProfileFactory(birth_date=birth)
    purpose = Purpose.objects.get(code="email_marketing")
    entries, version, reconsent_from = [], 1, 0
    for index, item in enumerate(steps):
        if item[0] == "notice":
            version += 1
            notice_publish(purpose=purpose, text_zh=f"v{version}", requires_reconsent=item[1], actor=SYSTEM)
            reconsent_from = version if item[1] else reconsent_from
            continue
        _, status, day, expires_days, guardian = item
        captured = ANCHOR + datetime.timedelta(days=day)
        expires = captured + datetime.timedelta(days=expires_days) if expires_days else None
        if status == "granted" and minor and not guardian:
            continue  # refused by the service (tested elsewhere)
        consent_record(profile=profile, purpose_code="email_marketing", status=status, source="import", actor=SYSTEM,
                       captured_at=captured, expires_at=expires, guardian_consent=guardian)
        entries.append((status, captured, expires, version, guardian, index))
    now = ANCHOR + datetime.timedelta(days=check_day)
    allowed = consenting_profiles(Profile.objects.filter(pk=profile.pk), "email_marketing", now=now).exists()
    assert allowed == expected(entries, reconsent_from, minor, now)
    assert ConsentRecord.objects.filter(profile=profile).count() == len(entries)
    assert [d for d in consent_state_drift() if d.profile_id == profile.pk] == []  # the state is the ledger's
