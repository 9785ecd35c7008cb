"""Money and counts as people read them: ¥24,934.00 and 12,717, in every language.

Django's Simplified Chinese locale groups nothing (THOUSAND_SEPARATOR is ""), so
`intcomma` printed ¥24934.00 there; these helpers always group by thousands with a
comma, which is how Chinese shops and banks print amounts too."""
from decimal import Decimal, InvalidOperation

from django.utils.html import format_html


def grouped(value, decimal_places: int = 0) -> str:
    """12717 → "12,717"; None or a non-number → ""."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return ""
    if not number.is_finite():
        return ""
    return f"{number:,.{decimal_places}f}"


def money(value, currency: str = "¥") -> str:
    """24934 → "¥24,934.00"; None → "—"."""
    text = grouped(value, 2)
    if not text:
        return "—"
    if text.startswith("-"):
        return f"-{currency}{text[1:]}"
    return f"{currency}{text}"


def money_cell(value):
    """A money value for an admin column: right-aligned digits that line up."""
    return format_html('<span class="money">{}</span>', money(value))
