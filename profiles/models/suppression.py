"""Keyed hashes of erased people's identifiers (profiles.services.suppression keeps them
out of every write)."""
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Suppression(models.Model):
    """A keyed hash of an erased person's normalised identifier, so that a later import,
    API call, form or merge naming it is refused instead of bringing the person back."""

    digest = models.CharField(_("digest"), max_length=64, unique=True)
    kind = models.CharField(_("identifier kind"), max_length=40)
    # The erasure request (consent.DataSubjectRequest) behind the row, by id: consent sits
    # above profiles, so no foreign key; the request's record outlives it either way.
    request_id = models.BigIntegerField(_("request"), null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(_("since"), default=timezone.now)

    class Meta:
        # The table it was created under in consent: the move to profiles copied nothing.
        db_table = "consent_suppression"
        verbose_name = _("suppressed identifier")
        verbose_name_plural = _("suppressed identifiers")
