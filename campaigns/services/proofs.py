"""A test send: one variant, rendered for the campaign's sample customer (with the staff
member's own name), to the staff member's own address through the campaign's real
destination. No delivery row is written (results stay the customers'); the send is audited."""
import uuid

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from cdp.actors import Actor
from cdp.audit import audit_record
from consent.models import Channel
from profiles.masking import mask_contact
from profiles.normalisers import NormalisationError, normalise_phone

from ..content import ContentError
from ..destinations import SENT, DestinationError, OutgoingMessage, adapter_for
from ..models import Campaign, Variant
from ..previews import sample_tokens, variant_render


def proof_address_clean(channel: str, address: str) -> str:
    """The staff member's own address for the channel, normalised; ValidationError if unusable."""
    address = (address or "").strip()
    if not address:
        raise ValidationError(_("Enter your own address for this channel."), code="address_missing")
    if channel in (Channel.SMS, Channel.PHONE):
        try:
            return normalise_phone(address)
        except NormalisationError:
            raise ValidationError(_("“%(value)s” is not a phone number.") % {"value": address},
                                  code="address_invalid") from None
    if channel == Channel.EMAIL:
        validate_email(address)
        return address.lower()
    return address[:255]


def campaign_test_send(*, campaign: Campaign, variant: Variant, address: str, user, request=None) -> str:
    """Send `variant` to `address` now; returns the destination's answer (translated).
    Raises ValidationError when it cannot be rendered or the destination refused it."""
    if not (user.has_perm("campaigns.change_campaign") or user.has_perm("campaigns.launch_campaign")):
        raise PermissionDenied(_("You may not test-send campaigns."))
    if variant.campaign_id != campaign.pk:
        raise ValidationError(_("This variant belongs to another campaign."), code="variant_mismatch")
    channel = campaign.purpose.channel
    address = proof_address_clean(channel, address)
    tokens, _customer = sample_tokens(campaign, link_url=variant.link_url, user=user)
    tokens["name"] = user.get_full_name() or user.get_username()
    tokens["link"] = variant.link_url  # no delivery to count the click for
    tokens["unsubscribe"] = ""
    preview = variant_render(channel=channel, subject=variant.subject, body=variant.body,
                             sign_name=variant.sms_sign_name, tokens=tokens)
    if preview.error:
        raise ValidationError(preview.error, code="template")
    message = OutgoingMessage(
        delivery_id=0, key=f"test-{uuid.uuid4().hex}", address=address, customer="test",
        campaign=f"[{_('TEST')}] {campaign.name}", variant=variant.label, subject=preview.subject,
        text=preview.text, tokens=tokens, sms_template_code=variant.sms_template_code,
        sms_sign_name=variant.sms_sign_name, wechat_template_id=variant.wechat_template_id, link=variant.link_url)
    try:
        results = adapter_for(campaign.destination).send_batch([message])
    except (DestinationError, ContentError) as error:
        outcome, detail = "failed", str(error)
    else:
        result = results[0] if results else None
        outcome = "sent" if result is not None and result.outcome == SENT else "failed"
        detail = (result.error if result is not None else "") or ""
    audit_record(actor=Actor.staff(user), action="campaign_test_sent", target=f"campaign:{campaign.pk}",
                 request=request, details={"campaign": campaign.name, "variant": variant.label, "channel": channel,
                                           "address": mask_contact(address), "outcome": outcome})
    if outcome != "sent":
        raise ValidationError(_("The destination did not take the test message: %(error)s")
                              % {"error": detail or _("no reason given")}, code="test_send_failed")
    return _("Test message sent to %(address)s through “%(destination)s”.") % {
        "address": mask_contact(address) if channel in (Channel.SMS, Channel.EMAIL) else address,
        "destination": campaign.destination.name}
