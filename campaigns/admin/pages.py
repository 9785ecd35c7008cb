"""The campaign page's parts beyond its form (wired into CampaignAdmin.get_urls): the
eligibility funnel with the customers each step removed, the live preview, the test send,
launch (with its confirmation) / approve / pause / resume / cancel, progress, dead
letters and the result's headline (the result pages are in result_pages)."""
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from cdp.actors import Actor
from cdp.queueing import task_queue_after_commit
from consent.models import Channel, Purpose
from profiles.masking import can_see_personal_data, mask_email, mask_phone

from ..content import SMS_OPT_OUT, SMS_PART, SMS_SINGLE
from ..eligibility import STEPS, FunnelRow, funnel, removed_at
from ..models import Campaign, CampaignResult
from ..previews import sample_tokens, variant_render
from ..selectors import campaign_progress, campaign_results, dead_letters
from ..services import lifecycle
from ..services.proofs import campaign_test_send, proof_address_clean
from ..services.sending import dead_letters_resend
from ..tasks import campaign_run
from .forms import TrialSendForm
from .result_display import comparison_rows

LAUNCH = "campaigns.launch_campaign"
APPROVE = "campaigns.approve_campaign"
RESULTS = "campaigns.view_campaign_results"
CUSTOMERS_PAGE = 50
SESSION_ADDRESS = "campaigns_test_address_{channel}"
LIVE = (Campaign.Status.SCHEDULED, Campaign.Status.SENDING, Campaign.Status.PAUSED)


def _campaign(model_admin, request, campaign_id) -> Campaign:
    campaign = get_object_or_404(Campaign.objects.select_related("purpose", "destination", "segment"), pk=campaign_id)
    if not model_admin.has_view_permission(request, campaign):
        raise PermissionDenied
    return campaign


def _back(campaign: Campaign) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))


def editor_context(campaign: Campaign | None) -> dict:
    """What the form's script needs: the preview URL and the SMS lengths."""
    return {"editor": {"preview_url": reverse("admin:campaigns_campaign_preview"),
                       "campaign": campaign.pk if campaign else None, "sms_single": SMS_SINGLE,
                       "sms_part": SMS_PART, "opt_out": SMS_OPT_OUT}}


def funnel_rows(campaign: Campaign, counts) -> list[dict]:
    """The funnel as the page shows it: each step with what it kept and removed."""
    rows = [{"code": "", "label": gettext("In the audience"), "count": counts.in_audience, "removed": None}]
    rows += [{"code": row.code, "label": row.label, "count": row.count, "removed": row.removed} for row in counts.steps]
    rows.append({"code": "holdout", "label": gettext("Holdout (kept back, not sent)"),
                 "count": counts.holdout, "removed": counts.holdout})
    rows.append({"code": "", "label": gettext("To send"), "count": counts.to_send, "removed": None, "total": True})
    return rows


class StoredFunnel:
    """A run's funnel as it was decided (CampaignRun.funnel), read like eligibility.Funnel."""

    def __init__(self, data: dict):
        self.in_audience, self.holdout, self.to_send = (data.get(k, 0) for k in ("in_audience", "holdout", "to_send"))
        previous, self.steps = self.in_audience, []
        for step in STEPS:
            count = data.get(step.code, previous)
            self.steps.append(FunnelRow(step.code, str(step.label), count, previous - count))
            previous = count


def campaign_page_context(model_admin, request, campaign: Campaign) -> dict:
    user = request.user
    channel = campaign.purpose.channel
    context = {**editor_context(campaign), "campaign": campaign, "channel": channel,
               "can_launch": user.has_perm(LAUNCH), "can_approve": user.has_perm(APPROVE),
               "can_results": user.has_perm(RESULTS), "can_edit": model_admin.has_change_permission(request, campaign),
               "can_see_customers": user.has_perm("profiles.view_profile"), "live": campaign.status in LIVE}
    if campaign.is_editable and campaign.audience_kind == Campaign.AudienceKind.SEGMENT and campaign.segment_id:
        context["funnel"] = funnel_rows(campaign, funnel(campaign))
        context["funnel_is_now"] = True
    else:
        run = campaign.runs.order_by("-started_at").first()
        if run is not None and run.funnel:
            context["funnel"] = funnel_rows(campaign, StoredFunnel(run.funnel))
            context["funnel_run"] = run
    if campaign.is_editable and (user.has_perm("campaigns.change_campaign") or user.has_perm(LAUNCH)):
        context["previews"] = _previews(campaign, user)
        context["test_send_form"] = _test_send_form(request, campaign)
    if campaign.status != Campaign.Status.DRAFT:
        context["progress"] = campaign_progress(campaign)
        if context["can_results"]:
            context["results"] = campaign_results(campaign)
            stored = CampaignResult.objects.filter(campaign=campaign).first()
            if stored is not None and stored.data.get("goal"):
                context["measured"] = comparison_rows(gettext("all variants"), stored.data["treated"],
                                                       stored.data["overall"])
            dead_count, dead = dead_letters(campaign)
            # masked for everyone, as on the members page: the customer's page has the audited reveal
            context["dead_count"], context["dead"] = dead_count, [
                {"delivery": d, "customer": d.customer, "address": _mask_address(d.channel, d.address)} for d in dead]
    return context


def _mask_address(channel: str, address: str) -> str:
    if channel in (Channel.SMS, Channel.PHONE):
        return mask_phone(address)
    if channel == Channel.EMAIL:
        return mask_email(address)
    return address


def _previews(campaign: Campaign, user) -> list[dict]:
    """Each variant for the same sample customer (read once)."""
    tokens, customer = sample_tokens(campaign, link_url="-", user=user)
    rendered = []
    for variant in campaign.variants.all():
        values = {**tokens, "link": tokens["link"] if variant.link_url else ""}
        rendered.append({"variant": variant, "preview": variant_render(
            channel=campaign.purpose.channel, subject=variant.subject, body=variant.body,
            sign_name=variant.sms_sign_name, tokens=values, customer=customer)})
    return rendered


def _test_send_form(request, campaign: Campaign, data=None) -> TrialSendForm:
    channel = campaign.purpose.channel
    email = (request.user.email or "") if channel == Channel.EMAIL else None
    initial = {} if email is not None else {"address": request.session.get(SESSION_ADDRESS.format(channel=channel), "")}
    return TrialSendForm(data, campaign=campaign, channel_label=campaign.purpose.get_channel_display(), email=email,
                         initial=initial)


# -- the live preview -------------------------------------------------------------------

def preview_view(model_admin, request):
    """POST {campaign?, purpose?, subject, body, sms_sign_name, link_url}: the message for the
    sample customer, and for SMS its length and parts. Used as the variant is typed."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not (model_admin.has_add_permission(request) or request.user.has_perm("campaigns.change_campaign")):
        raise PermissionDenied
    data = request.POST
    campaign = None
    if data.get("campaign", "").isdigit():
        campaign = Campaign.objects.select_related("purpose").filter(pk=int(data["campaign"])).first()
    channel = campaign.purpose.channel if campaign else ""
    purpose = Purpose.objects.filter(pk=int(data["purpose"])).first() if data.get("purpose", "").isdigit() else None
    if purpose is not None:
        channel = purpose.channel
        if campaign is None and data.get("segment", "").isdigit():  # a new campaign: its chosen audience
            campaign = Campaign(purpose=purpose, segment_id=int(data["segment"]))
    tokens, customer = sample_tokens(campaign, link_url=data.get("link_url", ""), user=request.user)
    preview = variant_render(channel=channel, subject=data.get("subject", "")[:200], body=data.get("body", "")[:5000],
                             sign_name=data.get("sms_sign_name", "")[:40], tokens=tokens, customer=customer)
    answer = {"subject": preview.subject, "text": preview.text, "customer": preview.customer,
              "error": preview.error, "error_field": preview.error_field, "sms": channel == Channel.SMS}
    if channel == Channel.SMS and not preview.error:
        answer["counter"] = ngettext(
            "%(length)s characters, %(parts)s SMS (70 per message; 67 per part when longer)",
            "%(length)s characters, %(parts)s SMS (70 per message; 67 per part when longer)",
            preview.parts) % {"length": preview.length, "parts": preview.parts}
        answer.update(length=preview.length, parts=preview.parts)
    return JsonResponse(answer)


# -- the customers behind a funnel step -------------------------------------------------

def funnel_customers_view(model_admin, request, campaign_id, code):
    """The customers a step of the funnel removed, masked (keyset pages of 50)."""
    campaign = _campaign(model_admin, request, campaign_id)
    if not request.user.has_perm("profiles.view_profile"):
        raise PermissionDenied
    labels = {step.code: str(step.label) for step in STEPS}
    labels["holdout"] = gettext("Holdout (kept back, not sent)")
    if code not in labels or campaign.audience_kind != Campaign.AudienceKind.SEGMENT or not campaign.segment_id:
        raise Http404
    customers = removed_at(campaign, code).order_by("-pk")
    before = request.GET.get("before", "")
    if before.isdigit():
        customers = customers.filter(pk__lt=int(before))
    page = list(customers.only("pk", "uuid", "name", "phone", "email", "city")[:CUSTOMERS_PAGE + 1])
    rows = [{"profile": p, "phone": mask_phone(p.phone), "email": mask_email(p.email) if p.email else ""}
            for p in page[:CUSTOMERS_PAGE]]
    context = {**model_admin.admin_site.each_context(request), "opts": Campaign._meta, "campaign": campaign,
               "rows": rows, "step": labels[code],
               "next_before": page[CUSTOMERS_PAGE - 1].pk if len(page) > CUSTOMERS_PAGE else None,
               "can_reveal": can_see_personal_data(request.user),
               "title": gettext("Removed at “%(step)s”: %(campaign)s") % {"step": labels[code],
                                                                       "campaign": campaign.name}}
    return TemplateResponse(request, "admin/campaigns/campaign/funnel_customers.html", context)


# -- test send ----------------------------------------------------------------------------

def test_send_view(model_admin, request, campaign_id):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    campaign = _campaign(model_admin, request, campaign_id)
    if not (request.user.has_perm("campaigns.change_campaign") or request.user.has_perm(LAUNCH)):
        raise PermissionDenied
    form = _test_send_form(request, campaign, request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(m for errors in form.errors.values() for m in errors))
        return _back(campaign)
    channel = campaign.purpose.channel
    address = form.cleaned_data["address"] if channel != Channel.EMAIL else request.user.email
    if channel == Channel.EMAIL and not address:
        messages.error(request, gettext("Your account has no e-mail address; add one to your account first."))
        return _back(campaign)
    try:
        address = proof_address_clean(channel, address)
        text = campaign_test_send(campaign=campaign, variant=form.cleaned_data["variant"], address=address,
                                  user=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if channel != Channel.EMAIL:
            request.session[SESSION_ADDRESS.format(channel=channel)] = address
        messages.success(request, text)
    return _back(campaign)


# -- the campaign's life ----------------------------------------------------------------------

def _control(model_admin, request, campaign_id, action, done, permission=LAUNCH):
    """POST only: call the lifecycle service, say what happened, go back to the campaign."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    campaign = _campaign(model_admin, request, campaign_id)
    if not request.user.has_perm(permission):
        raise PermissionDenied
    try:
        campaign = action(campaign=campaign, user=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, " ".join(error.messages) if isinstance(error, ValidationError) else str(error))
    else:
        messages.success(request, done(campaign))
        _queue_if_due(campaign, request)
    return _back(campaign)


def _queue_if_due(campaign: Campaign, request) -> None:
    """A campaign that is to go now is decided by the worker at once, not at the next tick."""
    if campaign.status == Campaign.Status.SCHEDULED and campaign.schedule == Campaign.Schedule.NOW:
        task_queue_after_commit(task=campaign_run, args=(campaign.pk,), request=request)


def launch_view(model_admin, request, campaign_id):
    """GET: the confirmation, with how many messages will go; POST: launch."""
    campaign = _campaign(model_admin, request, campaign_id)
    if not request.user.has_perm(LAUNCH):
        raise PermissionDenied
    if request.method == "POST":
        return _control(model_admin, request, campaign_id, lifecycle.campaign_launch, _launched)
    problems = lifecycle.campaign_check(campaign) if campaign.status == Campaign.Status.DRAFT else [
        gettext("Only a draft can be launched; this campaign is “%(status)s”.") % {
            "status": campaign.get_status_display()}]
    size = lifecycle.launch_size(campaign) if not problems else 0
    context = {**model_admin.admin_site.each_context(request), "opts": Campaign._meta, "campaign": campaign,
               "problems": problems, "size": size,
               "needs_approval": not problems and lifecycle.needs_approval(campaign, request.user, size),
               "threshold": settings.CAMPAIGN_APPROVAL_THRESHOLD,
               "cost": size * campaign.destination.cost_per_message,
               "title": gettext("Launch “%(name)s”?") % {"name": campaign.name}}
    return TemplateResponse(request, "admin/campaigns/campaign/launch.html", context)


def _launched(campaign: Campaign) -> str:
    if campaign.status == Campaign.Status.AWAITING_APPROVAL:
        return gettext("The campaign is larger than %(threshold)s messages and waits for an administrator's "
                       "approval.") % {"threshold": f"{settings.CAMPAIGN_APPROVAL_THRESHOLD:,}"}
    if campaign.is_trigger:
        return gettext("Launched: the campaign now watches for its trigger.")
    if campaign.schedule == Campaign.Schedule.NOW:
        return gettext("Launched: sending starts within seconds.")
    return gettext("Launched: it will be sent at %(when)s.") % {
        "when": timezone.localtime(campaign.next_run_at).strftime("%Y-%m-%d %H:%M") if campaign.next_run_at else "—"}


def approve_view(model_admin, request, campaign_id):
    return _control(model_admin, request, campaign_id, lifecycle.campaign_approve,
                    lambda c: gettext("Approved. ") + _launched(c), permission=APPROVE)


def pause_view(model_admin, request, campaign_id):
    return _control(model_admin, request, campaign_id, lifecycle.campaign_pause,
                    lambda c: gettext("Paused: nothing more is sent until you resume."))


def resume_view(model_admin, request, campaign_id):
    return _control(model_admin, request, campaign_id, lifecycle.campaign_resume,
                    lambda c: gettext("Resumed: sending goes on."))


def cancel_view(model_admin, request, campaign_id):
    return _control(model_admin, request, campaign_id, lifecycle.campaign_cancel,
                    lambda c: gettext("Cancelled: nothing more is sent; queued messages were stopped."))


def resend_view(model_admin, request, campaign_id):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    campaign = _campaign(model_admin, request, campaign_id)
    if not request.user.has_perm(LAUNCH):
        raise PermissionDenied
    count = dead_letters_resend(campaign=campaign, actor=Actor.staff(request.user))
    messages.success(request, ngettext("%(count)s dead letter is queued again.",
                                       "%(count)s dead letters are queued again.", count) % {"count": count})
    return _back(campaign)


def progress_view(model_admin, request, campaign_id):
    """Counts by status (and results, for those who may read them), polled by the page."""
    campaign = _campaign(model_admin, request, campaign_id)
    progress = campaign_progress(campaign)
    answer = {"status": campaign.status, "status_label": campaign.get_status_display(),
              "counts": progress.counts, "done": progress.done, "to_send": progress.to_send,
              "percent": progress.percent, "live": campaign.status in LIVE}
    if request.user.has_perm(RESULTS):
        total = campaign_results(campaign).total
        answer["results"] = {name: getattr(total, name) for name in (
            "recipients", "delivered", "failed", "opened", "clicked", "unsubscribed", "holdout")}
    return JsonResponse(answer)



# -- the result page ------------------------------------------------------------------------
