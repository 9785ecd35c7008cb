"""Property-based run of the whole partner API from its own OpenAPI schema (schemathesis):
whatever it generates — valid or not — never gets a server error, every response matches
the status codes, content type and body schema the documentation promises, requests the
schema allows are accepted (2xx, or 401/403/404/409/422/429 as documented) and requests
that break it are refused."""
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.checks import not_a_server_error

from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from cdp.models import Scope
from cdp.wsgi import application
from segments.models import Segment
from tests.factories import IdentityFactory, ProfileFactory, TagFactory

from .test_api_fixtures import *  # noqa: F401,F403
from .test_api_fixtures import key_for

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          positive_data_acceptance, negative_data_rejection]


schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
# Valid requests must be accepted and invalid ones refused: generate both. No NUL in text:
# the API refuses it everywhere (no database stores it), as its guide says.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], allow_x00=False,
                                with_security_parameters=False)  # the test sends a real key itself
# A request the schema allows may still name what does not exist here (an identity kind, a
# tag, a purpose, a cursor) or carry a phone that is not one: the API answers those 422
# (400 is only for requests that break the schema), so 422 counts as accepting valid data.
schema.config.checks.positive_data_acceptance.expected_statuses = [
    *schema.config.checks.positive_data_acceptance.expected_statuses, "422"]


@pytest.fixture
def keep_test_connection():
    """Called through WSGI, Django closes "old" connections after each request, which on
    PostgreSQL would close the test's own transaction; Django's test client avoids it the
    same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def full_key(db, partner, settings, keep_test_connection):
    settings.CDP_API_REQUESTS_PER_MINUTE = 1_000_000
    profile = ProfileFactory()
    IdentityFactory(profile=profile, kind_id="crm_id", value="C1")
    TagFactory(slug="vip")
    Segment.objects.create(name="mine", slug="mine", kind="static").shared_with.add(partner)
    return key_for(partner, Scope.values)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_the_api_keeps_the_promises_of_its_schema(case, full_key):
    case.call_and_validate(headers={"Authorization": f"Api-Key {full_key}"}, checks=CHECKS)
