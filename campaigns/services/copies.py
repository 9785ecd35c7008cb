"""A campaign copied as a new draft: its settings and variants, not its runs, deliveries,
approval or life (a marketer's usual start for next week's send)."""
from django.db import transaction
from django.utils.translation import gettext as _

from ..models import Campaign, Variant

NOT_COPIED = {"id", "owner", "status", "next_run_at", "approval_requested_by", "approved_by", "approved_at",
              "launched_by", "launched_at", "finished_at", "trigger_evaluated_until", "last_error", "created_at",
              "updated_at"}


@transaction.atomic
def campaign_copy(*, campaign: Campaign, user) -> Campaign:
    fields = {f.attname: getattr(campaign, f.attname) for f in Campaign._meta.concrete_fields
              if f.name not in NOT_COPIED}
    fields["name"] = (_("%(name)s (copy)") % {"name": campaign.name})[:150]
    copy = Campaign.objects.create(**fields, owner=user)
    Variant.objects.bulk_create([Variant(**{f.attname: getattr(v, f.attname) for f in Variant._meta.concrete_fields
                                            if f.name not in ("id", "campaign")}, campaign=copy)
                                 for v in campaign.variants.all()])
    return copy
