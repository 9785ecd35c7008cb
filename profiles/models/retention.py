"""How long events of each name are kept, and what the expired ones leave behind."""
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .profiles import Profile

# The metrics read the last 60 days of events as they are (the lifecycle stage compares
# the last 30 days with the 30 before); older events only count through their rollups.
MIN_KEEP_DAYS = 60


class EventRetention(models.Model):
    """Events of this name older than `keep_days` are deleted (PIPL: kept only as long as the
    purpose needs). Names without a policy are kept."""

    event_name = models.SlugField(_("event name"), max_length=64, unique=True)
    keep_days = models.PositiveIntegerField(
        _("keep for (days)"), validators=[MinValueValidator(MIN_KEEP_DAYS)],
        help_text=_("At least 60 days: the lifecycle stage reads the last 60 days of events."),
    )
    purpose = models.TextField(_("why this long"), blank=True,
                               help_text=_("The purpose that needs the events this long, for the record."))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    last_applied_at = models.DateTimeField(_("last applied"), null=True, blank=True, editable=False)
    last_deleted = models.PositiveBigIntegerField(_("events deleted last time"), default=0, editable=False)

    class Meta:
        verbose_name = _("event retention policy")
        verbose_name_plural = _("event retention policies")
        ordering = ["event_name"]

    def __str__(self):
        return f"{self.event_name}: {self.keep_days}"


class EventRollup(models.Model):
    """What a customer's deleted events of one name add up to, so that the metrics computed
    from events (orders, total spent, first and last seen) stay what they were."""

    profile = models.ForeignKey(Profile, verbose_name=_("customer"), on_delete=models.CASCADE,
                                related_name="event_rollups", db_constraint=False, db_index=False)
    name = models.CharField(_("event"), max_length=64)
    events = models.PositiveBigIntegerField(_("events"))
    amount_total = models.DecimalField(_("amount"), max_digits=16, decimal_places=2, default=0)
    first_at = models.DateTimeField(_("first"))
    last_at = models.DateTimeField(_("last"))

    class Meta:
        verbose_name = _("rollup of expired events")
        verbose_name_plural = _("rollups of expired events")
        constraints = [models.UniqueConstraint(fields=["profile", "name"], name="event_rollup_profile_name")]
