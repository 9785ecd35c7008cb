"""How result figures read on the pages: percentages, money, a group's comparison row."""
from django.utils.translation import gettext


def pct(value, digits=2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def money(value) -> str:
    return "—" if value is None else f"¥{value:,.2f}"


def comparison_rows(label: str, counts: dict, comparison: dict) -> dict:
    """One line of the comparison table, as the page and the CSV show it."""
    has_control = comparison.get("has_control")
    significant = comparison.get("significant")
    if not has_control:
        verdict = gettext("no control group")
    elif significant:
        verdict = gettext("significant")
    else:
        verdict = gettext("difference not significant")
    return {
        "label": label, "n": counts["n"], "converted": counts["converted"],
        "rate": pct(comparison.get("treated_rate")), "control_rate": pct(comparison.get("control_rate")),
        "lift": pct(comparison.get("lift")) if has_control else "—",
        "lift_interval": (f"{pct(comparison.get('lift_low'))} ~ {pct(comparison.get('lift_high'))}"
                          if comparison.get("lift_low") is not None else "—"),
        "relative_lift": pct(comparison.get("relative_lift"), 1),
        "relative_interval": (f"{pct(comparison.get('relative_lift_low'), 1)} ~ "
                              f"{pct(comparison.get('relative_lift_high'), 1)}"
                              if comparison.get("relative_lift_low") is not None else "—"),
        "p_value": "—" if comparison.get("p_value") is None else f"{comparison['p_value']:.4f}",
        "verdict": verdict, "significant": bool(significant), "has_control": bool(has_control),
        "needed": (gettext("about %(more)s more customers would be needed to tell at 80%% power")
                   % {"more": comparison["customers_more"]}
                   if has_control and not significant and comparison.get("customers_more") else ""),
        "revenue_per_treated": money(comparison.get("revenue_per_treated")),
        "revenue_per_control": money(comparison.get("revenue_per_control")),
        "incremental_revenue": money(comparison.get("incremental_revenue")),
        "incremental_interval": (f"{money(comparison.get('incremental_revenue_low'))} ~ "
                                 f"{money(comparison.get('incremental_revenue_high'))}"
                                 if comparison.get("incremental_revenue_low") is not None else "—"),
        "cost": money(comparison.get("cost")),
        "roi": pct(comparison.get("roi"), 1),
    }
