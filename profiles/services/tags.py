"""Tagging customers and managing the taxonomy. Set-based: a selection of a million
customers is one INSERT … SELECT, never a loop."""
import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import (
    CharField,
    DateTimeField,
    Exists,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    QuerySet,
)
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.actors import Actor
from cdp.sql import constant, insert_from_select

from .. import activity
from ..models import Profile, ProfileStatus, ProfileTag, Tag, TagKind, TagSource
from ..selectors import tag_usages
from .profiles import profile_require_active


def tag_assign(
    *,
    tag: Tag,
    profiles: QuerySet[Profile],
    source: str,
    actor: Actor,
    reason: str = "",
    weight: float | None = None,
    expires_at: datetime.datetime | None = None,
) -> int:
    """Give `tag` to every active profile in `profiles` that lacks it; returns how many.
    A rule tag is only given by its rule (source "rule")."""
    if weight is not None and not 0 <= weight <= 1:
        raise ValidationError(_("A tag weight must be between 0 and 1."), code="invalid_weight")
    with transaction.atomic():
        tag = _locked(tag)
        _refuse_by_hand_on_rule_tag(tag, source)
        if not tag.is_active:
            raise ValidationError(
                _("The tag “%(tag)s” is retired and cannot be assigned.") % {"tag": tag.name}, code="tag_retired"
            )
        targets = _active(profiles).filter(~Exists(ProfileTag.objects.filter(tag=tag, profile_id=OuterRef("pk"))))
        # Timeline rows first: once the tags exist the same selection is empty.
        activity.tag_added(profiles=targets, tag=tag, source=source, reason=reason, actor=actor)
        rows = targets.order_by().annotate(
            t_profile=F("pk"),
            t_tag=constant(tag.pk, IntegerField()),
            t_source=constant(source, CharField()),
            t_user=constant(actor.user.pk if actor.user else None, IntegerField()),
            t_label=constant(actor.label[:150], CharField()),
            t_at=constant(timezone.now(), DateTimeField()),
            t_expires=constant(expires_at, DateTimeField()),
            t_weight=constant(weight, FloatField()),
            t_reason=constant(reason[:255], CharField()),
        ).values("t_profile", "t_tag", "t_source", "t_user", "t_label", "t_at", "t_expires", "t_weight", "t_reason")
        added = insert_from_select(ProfileTag, {
            "profile_id": "t_profile", "tag_id": "t_tag", "source": "t_source", "assigned_by_id": "t_user",
            "assigned_by_label": "t_label", "assigned_at": "t_at", "expires_at": "t_expires",
            "weight": "t_weight", "reason": "t_reason",
        }, rows)
        tag_count_refresh(tag)
    return added


def profile_tag_add(*, profile: Profile, tag: Tag, source: str, actor: Actor, reason: str = "",
                    expires_at: datetime.datetime | None = None) -> int:
    """Give one customer a tag (the profile page, the edit form). Unlike a bulk
    selection, which skips erased and merged customers and says how many, one such
    customer is refused: staff asked for exactly this write."""
    profile_require_active(profile)
    return tag_assign(tag=tag, profiles=Profile.objects.filter(pk=profile.pk), source=source, actor=actor,
                      reason=reason, expires_at=expires_at)


def profile_tag_remove(*, profile: Profile, tag: Tag, source: str, actor: Actor, reason: str = "") -> int:
    """Take a tag off one customer; refused, like profile_tag_add, on an erased or merged one."""
    profile_require_active(profile)
    return tag_remove(tag=tag, profiles=Profile.objects.filter(pk=profile.pk), source=source, actor=actor,
                      reason=reason)


def tag_remove(*, tag: Tag, profiles: QuerySet[Profile], source: str, actor: Actor, reason: str = "") -> int:
    """Take `tag` off every profile in `profiles` that has it; returns how many.
    A rule tag is only taken off by its rule (source "rule")."""
    with transaction.atomic():
        tag = _locked(tag)
        _refuse_by_hand_on_rule_tag(tag, source)
        return _remove(tag, profiles, source, actor, reason)


def _remove(tag: Tag, profiles: QuerySet[Profile], source: str, actor: Actor, reason: str) -> int:
    """tag_remove's work; the caller holds the lock on `tag` inside a transaction."""
    holders = profiles.filter(Exists(ProfileTag.objects.filter(tag=tag, profile_id=OuterRef("pk"))))
    activity.tag_removed(profiles=holders, tag=tag, source=source, reason=reason, actor=actor)
    removed, _by_model = ProfileTag.objects.filter(tag=tag, profile__in=profiles.order_by().values("pk")).delete()
    tag_count_refresh(tag)
    return removed


def tag_merge(*, source: Tag, target: Tag, actor: Actor) -> int:
    """Fold `source` into `target`: its customers get `target` (once), `source` retires and
    points at `target`. Every moved customer's timeline says so. Returns customers moved."""
    if source.pk == target.pk:
        raise ValidationError(_("A tag cannot be merged into itself."), code="merge_same_tag")
    with transaction.atomic():
        source, target = _locked(source), _locked(target)
        if TagKind.RULE in (source.kind, target.kind):
            raise ValidationError(
                _("Rule tags cannot be merged: their rules decide who has them. Change or retire the rule instead."),
                code="rule_tag_merge",
            )
        if not target.is_active:
            raise ValidationError(
                _("The tag “%(tag)s” is retired; merge into an active tag.") % {"tag": target.name}, code="tag_retired"
            )
        reason = _("merged from “%(source)s” into “%(target)s”") % {"source": source.name, "target": target.name}
        holders = Profile.objects.filter(Exists(ProfileTag.objects.filter(tag=source, profile_id=OuterRef("pk"))))
        newcomers = holders.filter(~Exists(ProfileTag.objects.filter(tag=target, profile_id=OuterRef("pk"))))
        activity.tag_removed(profiles=holders, tag=source, source=TagSource.MANUAL, reason=reason, actor=actor)
        activity.tag_added(profiles=newcomers, tag=target, source=TagSource.MANUAL, reason=reason, actor=actor)
        # Customers who had both keep their target row; the others' rows move over, keeping
        # who assigned them and when.
        moved = ProfileTag.objects.filter(tag=source, profile__in=newcomers.values("pk")).update(tag=target)
        ProfileTag.objects.filter(tag=source).delete()
        source.is_active = False
        source.merged_into = target
        source.save(update_fields=["is_active", "merged_into"])
        tag_count_refresh(source)
        tag_count_refresh(target)
    return moved


def tag_retire(*, tag: Tag) -> Tag:
    """Retired tags keep their customers and history but cannot be assigned any more."""
    Tag.objects.filter(pk=tag.pk).update(is_active=False)
    tag.is_active = False
    return tag


def tag_delete(*, tag: Tag) -> None:
    """Delete a tag nobody refers to; refused with the list of places that use it."""
    usages = tag_usages(tag)
    if usages:
        raise ValidationError(
            _("“%(tag)s” is still used by: %(usages)s. Change those first, or retire the tag instead.")
            % {"tag": tag.name, "usages": "; ".join(str(u) for u in usages)},
            code="tag_in_use",
        )
    tag.delete()


def tags_expire(*, now: datetime.datetime | None = None, actor: Actor | None = None) -> int:
    """Remove assignments whose expiry has passed (scheduled)."""
    now = now or timezone.now()
    actor = actor or Actor.system("tag expiry")
    removed = 0
    for tag in Tag.objects.filter(profile_tags__expires_at__lte=now).distinct():
        expired = Profile.objects.filter(
            Exists(ProfileTag.objects.filter(tag=tag, profile_id=OuterRef("pk"), expires_at__lte=now))
        )
        # Expiry is not a removal by hand: it also applies to a rule tag's older manual rows.
        with transaction.atomic():
            removed += _remove(_locked(tag), expired, TagSource.MANUAL, actor, _("expired"))
    return removed


def tag_count_refresh(tag: Tag) -> None:
    Tag.objects.filter(pk=tag.pk).update(profile_count=ProfileTag.objects.filter(tag=tag).count())


def _refuse_by_hand_on_rule_tag(tag: Tag, source: str) -> None:
    if tag.kind == TagKind.RULE and source != TagSource.RULE:
        raise ValidationError(
            _("“%(tag)s” is a rule tag: its rule adds and removes it. Change the rule instead.") % {"tag": tag.name},
            code="rule_tag_by_hand",
        )


def _locked(tag: Tag) -> Tag:
    """The tag row, locked: assignments of one tag run one at a time."""
    return Tag.objects.select_for_update().get(pk=tag.pk)


def _active(profiles: QuerySet[Profile]) -> QuerySet[Profile]:
    return profiles.filter(status=ProfileStatus.ACTIVE)
