"""The campaign's results in the admin: the result page (the comparison with the holdout,
charts, CSV, segments from a result) and the overview of every campaign's results."""
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from cdp.actors import Actor
from cdp.exports import csv_bytes
from consent.models import Channel, Purpose

from ..models import Campaign, CampaignResult
from ..results import REFRESH_EVERY, RESULT_SEGMENTS, global_control_result, result_refresh, segment_from_result
from .pages import RESULTS, _campaign
from .result_display import comparison_rows, money, pct


def result_context(campaign: Campaign, result) -> dict:
    data = result.data
    rows = [comparison_rows(gettext("all variants"), data["treated"], data["overall"])]
    rows += [comparison_rows(gettext("variant %(label)s") % {"label": v["label"]}, v["counts"], v["vs_holdout"])
             for v in data["variants"]] if len(data["variants"]) > 1 else []
    versus_first = [comparison_rows(gettext("variant %(label)s against %(first)s") % {
        "label": v["label"], "first": data["first_label"]}, v["counts"], v["vs_first"])
        for v in data["variants"] if "vs_first" in v]
    days = sorted({d["day"] for d in data["daily"]})
    cumulative = {True: [], False: []}
    for treated in (True, False):
        total = 0
        for day in days:
            total += sum(d["n"] for d in data["daily"] if d["day"] == day and d["treated"] == treated)
            cumulative[treated].append(total)
    treated = data["treated"]
    chart = {
        "days": days, "treated": cumulative[True], "holdout": cumulative[False],
        "labels": {"treated": gettext("treated"), "holdout": gettext("holdout"),
                   "cumulative": gettext("Cumulative conversions per day"), "funnel": gettext("Funnel")},
        "funnel": [{"name": gettext("sent"), "value": treated["n"]},
                   {"name": gettext("delivered"), "value": treated["delivered"]},
                   {"name": gettext("clicked"), "value": treated["clicked"]},
                   {"name": gettext("converted"), "value": treated["converted"]}],
    }
    coupons = data.get("coupons") or {}
    return {"result": result, "data": data, "rows": rows, "versus_first": versus_first, "chart": chart,
            "coupons": coupons,
            "coupon_rate": pct(coupons["redeemed"] / coupons["issued"]) if coupons.get("issued") else None}


def result_view(model_admin, request, campaign_id):

    campaign = _campaign(model_admin, request, campaign_id)
    if not request.user.has_perm(RESULTS):
        raise PermissionDenied
    if campaign.launched_at is None:
        raise Http404
    result = CampaignResult.objects.filter(campaign=campaign).first()
    if result is None or (not result.is_final and result.computed_at < timezone.now() - REFRESH_EVERY):
        result = result_refresh(campaign_id=campaign.pk)
    context = result_context(campaign, result)
    if request.GET.get("format") == "csv":
        return _result_csv(campaign, context)
    return TemplateResponse(request, "admin/campaigns/campaign/result.html", {
        **model_admin.admin_site.each_context(request), "opts": Campaign._meta, "campaign": campaign,
        "title": gettext("Result of %(name)s") % {"name": campaign.name}, **context})


def _result_csv(campaign: Campaign, context: dict):


    columns = [gettext("group"), gettext("customers"), gettext("conversions"), gettext("conversion rate"),
               gettext("holdout conversion rate"), gettext("lift"), gettext("95% interval"),
               gettext("relative lift"), gettext("95% interval of relative lift"), gettext("p-value"),
               gettext("verdict"), gettext("revenue per customer"), gettext("revenue per holdout customer"),
               gettext("incremental revenue"), gettext("95% interval of incremental revenue"), gettext("cost"),
               "ROI"]
    keys = ["label", "n", "converted", "rate", "control_rate", "lift", "lift_interval", "relative_lift",
            "relative_interval", "p_value", "verdict", "revenue_per_treated", "revenue_per_control",
            "incremental_revenue", "incremental_interval", "cost", "roi"]
    rows = [dict(zip(columns, (row[key] for key in keys))) for row in context["rows"] + context["versus_first"]]
    response = HttpResponse(csv_bytes(columns, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-result.csv"'
    return response


def result_segment_view(model_admin, request, campaign_id):

    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    campaign = _campaign(model_admin, request, campaign_id)
    if not (request.user.has_perm(RESULTS) and request.user.has_perm("segments.add_segment")):
        raise PermissionDenied
    kind = request.POST.get("group", "")
    if kind not in RESULT_SEGMENTS:
        messages.error(request, gettext("Unknown result group."))
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_result", args=[campaign.pk]))
    segment = segment_from_result(campaign=campaign, kind=kind, actor=Actor.staff(request.user))
    messages.success(request, ngettext("Segment “%(name)s” made with %(count)s customer.",
                                       "Segment “%(name)s” made with %(count)s customers.",
                                       segment.member_count) % {"name": segment.name, "count": segment.member_count})
    return HttpResponseRedirect(reverse("admin:segments_segment_change", args=[segment.pk]))


# -- the campaigns overview -----------------------------------------------------------------

def overview_view(model_admin, request):
    """Every launched campaign with its spend, recipients, lift and ROI (from the stored
    results), filterable by purpose, channel and launch period; CSV too."""
    import datetime as dt


    if not request.user.has_perm(RESULTS):
        raise PermissionDenied
    campaigns = (Campaign.objects.filter(launched_at__isnull=False).select_related("purpose", "destination")
                 .order_by("-launched_at"))
    purposes = Purpose.objects.order_by("code")
    chosen = {"purpose": request.GET.get("purpose", ""), "channel": request.GET.get("channel", ""),
              "since": request.GET.get("since", ""), "until": request.GET.get("until", "")}
    if chosen["purpose"]:
        campaigns = campaigns.filter(purpose__code=chosen["purpose"])
    if chosen["channel"]:
        campaigns = campaigns.filter(purpose__channel=chosen["channel"])
    problems = []
    for key, lookup in (("since", "launched_at__date__gte"), ("until", "launched_at__date__lte")):
        if chosen[key]:
            try:
                campaigns = campaigns.filter(**{lookup: dt.date.fromisoformat(chosen[key])})
            except ValueError:
                problems.append(gettext("“%(value)s” is not a date (YYYY-MM-DD).") % {"value": chosen[key]})
    results = {r.campaign_id: r for r in CampaignResult.objects.filter(campaign__in=campaigns)}
    rows, total_spend = [], 0.0
    for campaign in campaigns[:500]:
        result = results.get(campaign.pk)
        overall = result.data.get("overall", {}) if result else {}
        treated = result.data.get("treated", {}) if result else {}
        spend = overall.get("cost")
        total_spend += spend or 0
        rows.append({"campaign": campaign, "channel": campaign.purpose.get_channel_display(),
                     "recipients": treated.get("n", "—"), "holdout": (result.data.get("holdout", {}).get("n", "—")
                                                                      if result else "—"),
                     "spend": money(spend), "lift": pct(overall.get("lift")) if overall.get("has_control") else "—",
                     "verdict": (gettext("no control group") if result and not overall.get("has_control")
                                 else gettext("significant") if overall.get("significant")
                                 else gettext("difference not significant") if result else "—"),
                     "roi": pct(overall.get("roi"), 1), "final": bool(result and result.is_final)})
    if request.GET.get("format") == "csv":
        from django.http import HttpResponse

        from cdp.exports import csv_bytes

        columns = [gettext("campaign"), gettext("channel"), gettext("recipients"), gettext("holdout"),
                   gettext("spend"), gettext("lift"), gettext("verdict"), "ROI"]
        keys = ["name", "channel", "recipients", "holdout", "spend", "lift", "verdict", "roi"]
        data = [dict(zip(columns, ({**row, "name": row["campaign"].name}[key] for key in keys))) for row in rows]
        response = HttpResponse(csv_bytes(columns, data), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="campaigns-overview.csv"'
        return response
    return TemplateResponse(request, "admin/campaigns/campaign/overview.html", {
        **model_admin.admin_site.each_context(request), "opts": Campaign._meta, "title": gettext("Campaigns overview"),
        "rows": rows, "purposes": purposes, "channels": Channel.choices, "chosen": chosen, "problems": problems,
        "total_spend": money(total_spend), "global_control": _global_control(chosen, problems)})


def _global_control(chosen: dict, problems: list) -> dict | None:
    """The global control group's line for the chosen period (default: the last 30 days)."""
    import datetime as dt


    if problems:
        return None
    today = timezone.localdate()
    since = dt.date.fromisoformat(chosen["since"]) if chosen["since"] else today - dt.timedelta(days=30)
    until = dt.date.fromisoformat(chosen["until"]) if chosen["until"] else today
    zone = timezone.get_current_timezone()
    result = global_control_result(since=dt.datetime.combine(since, dt.time.min, zone),
                                   until=dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, zone))
    if result is None:
        return None
    line = comparison_rows(gettext("customers outside the global control group"), result["rest"],
                            result["comparison"])
    line.update(since=since, until=until, control_n=result["control"]["n"],
                control_converted=result["control"]["converted"])
    return line
