from decimal import Decimal

import pytest

from cdp.money import grouped, money


@pytest.mark.parametrize(("value", "shown"), [
    (24934, "¥24,934.00"), (Decimal("1234567.5"), "¥1,234,567.50"), ("0", "¥0.00"), (-1234.5, "-¥1,234.50"),
    (None, "—"), ("abc", "—"),
])
def test_money_is_grouped_by_thousands_with_two_decimals(value, shown):
    assert money(value) == shown


def test_counts_are_grouped_by_thousands():
    assert (grouped(12717), grouped(1_000_000), grouped(47), grouped(None)) == ("12,717", "1,000,000", "47", "")
