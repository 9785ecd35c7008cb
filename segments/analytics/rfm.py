"""RFM: the 5×5 grid of recency score by frequency score (the scores profiles.metrics
stores), with customers and money per cell, and the usual named groups over it."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils.translation import gettext_lazy as _

from profiles.models import Profile, ProfileStatus

from .common import for_segment, segment_named

# (code, label, cells as (R scores, F scores)); every cell belongs to exactly one group.
GROUPS = (
    ("champions", _("Champions"), ((5,), (4, 5))),
    ("loyal", _("Loyal customers"), ((3, 4), (4, 5))),
    ("potential_loyalists", _("Potential loyalists"), ((4, 5), (2, 3))),
    ("new_customers", _("New customers"), ((5,), (1,))),
    ("promising", _("Promising"), ((4,), (1,))),
    ("need_attention", _("Need attention"), ((3,), (3,))),
    ("about_to_sleep", _("About to sleep"), ((3,), (1, 2))),
    ("at_risk", _("At risk"), ((1, 2), (3, 4))),
    ("cant_lose", _("Can't lose them"), ((1, 2), (5,))),
    ("hibernating", _("Hibernating"), ((1, 2), (1, 2))),
)


def group_of(recency: int, frequency: int) -> str:
    for code, _label, (rs, fs) in GROUPS:
        if recency in rs and frequency in fs:
            return code
    raise ValueError((recency, frequency))


def group_cells(code: str) -> list[tuple[int, int]]:
    for group_code, _label, (rs, fs) in GROUPS:
        if group_code == code:
            return [(r, f) for r in rs for f in fs]
    raise KeyError(code)


@dataclass(frozen=True)
class RfmQuery:
    segment: object = None


@dataclass
class RfmCell:
    recency: int
    frequency: int
    customers: int
    money: Decimal
    group: str


@dataclass
class RfmResult:
    query: RfmQuery
    cells: list[RfmCell]  # all 25, R 5…1 then F 1…5
    groups: list[tuple[str, str, int, Decimal]]  # code, label, customers, money
    without_orders: int


def rfm_query(parameters: dict) -> RfmQuery:
    return RfmQuery(segment=segment_named(parameters.get("segment")))


def rfm(query: RfmQuery) -> RfmResult:
    profiles = for_segment(Profile.objects.filter(status=ProfileStatus.ACTIVE), query.segment, "pk")
    rows = (profiles.filter(rfm_recency__isnull=False, rfm_frequency__isnull=False).order_by()
            .values("rfm_recency", "rfm_frequency").annotate(n=Count("pk"), money=Sum("total_spent")))
    found = {(row["rfm_recency"], row["rfm_frequency"]): row for row in rows}
    cells = []
    for recency in range(5, 0, -1):
        for frequency in range(1, 6):
            row = found.get((recency, frequency), {"n": 0, "money": Decimal("0")})
            cells.append(RfmCell(recency, frequency, row["n"], row["money"] or Decimal("0"), group_of(recency, frequency)))
    groups = []
    for code, label, _rf in GROUPS:
        members = [cell for cell in cells if cell.group == code]
        groups.append((code, str(label), sum(c.customers for c in members), sum((c.money for c in members), Decimal("0"))))
    without = profiles.filter(rfm_recency__isnull=True).count()
    return RfmResult(query=query, cells=cells, groups=groups, without_orders=without)


def rfm_definition(cells: list[tuple[int, int]]) -> dict:
    """The segment definition (condition language) of customers in these cells."""
    terms = [{"all": [{"field": "rfm_recency", "op": "eq", "value": r}, {"field": "rfm_frequency", "op": "eq", "value": f}]}
             for r, f in cells]
    return terms[0] if len(terms) == 1 else {"any": terms}
