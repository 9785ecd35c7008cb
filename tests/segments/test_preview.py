import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction

from cdp.sql import is_timeout, statement_timeout
from profiles.models import ProfileStatus
from segments.selectors import segment_preview
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
SHANGHAI = {"field": "city", "op": "eq", "value": "上海"}


def test_preview_counts_active_matches_and_samples_them():
    shanghai = [ProfileFactory(city="上海") for _ in range(3)]
    ProfileFactory(city="上海", status=ProfileStatus.MERGED, merged_into=shanghai[0])
    ProfileFactory(city="北京")
    preview = segment_preview(SHANGHAI, sample_size=2)
    assert preview.count == 3 and not preview.timed_out
    assert len(preview.sample) == 2 and {p.pk for p in preview.sample} <= {p.pk for p in shanghai}


def test_preview_of_a_bad_definition_is_a_validation_error():
    with pytest.raises(ValidationError):
        segment_preview({"field": "salary", "op": "eq", "value": 1})


SLOW_SQL = {
    "postgresql": "SELECT pg_sleep(2)",
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000000) SELECT count(*) FROM n",
}


def test_statement_timeout_aborts_a_slow_statement_recognisably():
    with pytest.raises(OperationalError) as caught:
        with transaction.atomic(), statement_timeout(50), connection.cursor() as cursor:
            cursor.execute(SLOW_SQL[connection.vendor])
    assert is_timeout(caught.value)
    with connection.cursor() as cursor:  # the connection is usable afterwards
        cursor.execute("SELECT 1")


def test_a_preview_that_times_out_says_so(monkeypatch):
    ProfileFactory(city="上海")
    import segments.selectors as selectors

    def slow(timeout_ms):
        raise OperationalError("interrupted")
    monkeypatch.setattr(selectors, "statement_timeout", slow)
    preview = segment_preview(SHANGHAI)
    assert preview.timed_out and preview.count is None
