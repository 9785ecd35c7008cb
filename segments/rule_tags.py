"""Rule tags: a tag whose customers are exactly those its condition (in the segments'
condition language) matches, refreshed set-based on a schedule and after each save.

A rule may name other tags, rule tags included, but never come back to itself (through
a tag it names, or a category holding it). Refreshes run dependencies first, so a rule
built on another rule tag sees that tag's fresh customers.

The reason stored on each customer's tag names the rule version ("rule v3 matched on
2026-11-28", kept in English and shown translated, see profiles.activity.rule_reason).
"""
import datetime
import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.actors import Actor
from profiles.activity import rule_reason
from profiles.models import Profile, ProfileStatus, ProfileTag, Tag, TagCategory, TagKind, TagSource
from profiles.selectors import TagUsage, tag_category_with_descendants
from profiles.services.tags import tag_assign, tag_remove

from .conditions import compile_condition, parse
from .selectors import tag_slugs_in

logger = logging.getLogger(__name__)

ACTOR = Actor.system("rule tags")


# --- saving -------------------------------------------------------------------------------

def rule_tag_check(*, tag: Tag, definition, user=None) -> None:
    """ValidationError when `definition` cannot be `tag`'s rule: an invalid condition
    (each problem named by its node's path) or a rule that depends on its own tag.
    `user`: the staff member writing it (see parse on phones and emails)."""
    parse(definition, user=user)
    cycle = _cycle_through(tag, definition)
    if cycle:
        raise ValidationError(
            _("A rule tag cannot depend on itself: %(path)s.") % {"path": " → ".join(cycle)}, code="rule_cycle"
        )


def rule_tag_save(*, tag: Tag, definition) -> Tag:
    """Check and store a rule tag (with the tag's other fields as set on `tag`); a changed
    condition bumps the rule version, which the next refresh writes into every reason."""
    if tag.kind != TagKind.RULE:
        raise ValidationError(_("Only tags of kind “Rule” have a rule."), code="not_a_rule_tag")
    rule_tag_check(tag=tag, definition=definition)
    with transaction.atomic():
        if tag.pk is None:
            tag.rule_definition, tag.rule_version = definition, 1
            tag.save()
            return tag
        stored = Tag.objects.select_for_update().get(pk=tag.pk)
        changed = stored.rule_definition != definition or stored.rule_version == 0
        tag.rule_definition = definition
        tag.rule_version = stored.rule_version + (1 if changed else 0)
        # What the refresh maintains is kept as stored, not as `tag` last read it.
        tag.profile_count, tag.rule_refreshed_at, tag.rule_error = (
            stored.profile_count, stored.rule_refreshed_at, stored.rule_error,
        )
        tag.save()
    return tag


# --- refreshing ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RuleRefresh:
    """What one refresh of one rule tag did, or the error that stopped it."""

    tag_id: int
    added: int = 0
    removed: int = 0
    renewed: int = 0  # customers kept whose reason named an older rule version
    error: str = ""


def rule_tags_refresh(*, tag_ids: list[int] | None = None, now: datetime.datetime | None = None) -> list[RuleRefresh]:
    """Refresh every active rule tag, or those in `tag_ids` and the rule tags that depend
    on them, dependencies first. Each tag is refreshed in its own transaction; a failure
    is written to the tag's `rule_error` and the others carry on."""
    now = now or timezone.now()
    rule_tags = {tag.pk: tag for tag in Tag.objects.filter(kind=TagKind.RULE, is_active=True)}
    graph = {pk: _dependencies(tag.rule_definition, list(rule_tags.values())) for pk, tag in rule_tags.items()}
    wanted = set(rule_tags) if tag_ids is None else _with_dependents(set(tag_ids) & set(rule_tags), graph)
    ordered, cyclic = _dependencies_first(wanted, graph)
    results = []
    for pk in sorted(cyclic):
        message = _("This rule depends on a rule tag that depends on itself; change one of those rules.")
        Tag.objects.filter(pk=pk).update(rule_error=message)
        results.append(RuleRefresh(pk, error=message))
    for pk in ordered:
        try:
            results.append(_refresh(pk, now))
        except Exception as error:  # recorded on the tag and logged; the other tags go on
            logger.exception("rule tag %s failed to refresh", pk)
            message = _describe(error)
            Tag.objects.filter(pk=pk).update(rule_error=message)
            results.append(RuleRefresh(pk, error=message))
    return results


def _refresh(tag_id: int, now: datetime.datetime) -> RuleRefresh:
    """Newly matching active customers get the tag, rule-given tags of customers who no
    longer match are taken off, kept ones whose reason names an older version get the
    current one: a fixed number of statements whatever the number of customers."""
    with transaction.atomic():
        tag = Tag.objects.select_for_update().get(pk=tag_id)
        if tag.kind != TagKind.RULE or not tag.is_active:  # changed since the refresh was asked for
            return RuleRefresh(tag_id)
        matching = Profile.objects.filter(compile_condition(parse(tag.rule_definition), now),
                                          status=ProfileStatus.ACTIVE)
        day = timezone.localdate(now).isoformat()
        matched = rule_reason(version=tag.rule_version, date=day)
        given_by_rule = ProfileTag.objects.filter(tag=tag, source=TagSource.RULE)

        leavers = Profile.objects.filter(Exists(given_by_rule.filter(profile_id=OuterRef("pk")))).exclude(
            pk__in=matching.values("pk"))
        removed = tag_remove(tag=tag, profiles=leavers, source=TagSource.RULE, actor=ACTOR,
                             reason=rule_reason(version=tag.rule_version, date=day, matched=False))
        # What is left of the rule's rows all match now (the leavers are gone).
        current_prefix = matched.removesuffix(day)
        renewed = given_by_rule.exclude(reason__startswith=current_prefix).update(reason=matched)
        # Customers holding the tag from another source (before it became a rule tag) keep that row.
        added = tag_assign(tag=tag, profiles=matching, source=TagSource.RULE, actor=ACTOR, reason=matched)
        Tag.objects.filter(pk=tag.pk).update(rule_refreshed_at=now, rule_error="")
    return RuleRefresh(tag_id, added=added, removed=removed, renewed=renewed)


def _describe(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)[:2000]
    return f"{type(error).__name__}: {error}"[:2000]


# --- dependencies between rule tags -------------------------------------------------------

def _dependencies(definition, rule_tags: list[Tag]) -> set:
    """The keys (pk, or None for an unsaved tag) of the rule tags a definition depends on:
    named by slug, or in a category (or below one) that it names."""
    slugs = tag_slugs_in(definition)
    found = {tag.pk for tag in rule_tags if tag.slug in slugs}
    for reference in _categories_in(definition):
        category = TagCategory.objects.filter(code=reference).first() or (
            TagCategory.objects.filter(pk=int(reference)).first() if reference.isdigit() else None
        )
        if category is not None:
            below = tag_category_with_descendants(category.pk)
            found |= {tag.pk for tag in rule_tags if tag.category_id in below}
    return found


def _categories_in(definition) -> set[str]:
    found: set[str] = set()
    if isinstance(definition, dict):
        if "tag_category" in definition:
            found.add(str(definition["tag_category"]))
        for value in definition.values():
            found |= _categories_in(value)
    elif isinstance(definition, list):
        for item in definition:
            found |= _categories_in(item)
    return found


def _cycle_through(tag: Tag, definition) -> list[str]:
    """Names along a path from `tag` (with `definition` as its rule) back to itself, or []."""
    others = list(Tag.objects.filter(kind=TagKind.RULE).exclude(pk=tag.pk)) if tag.pk else list(
        Tag.objects.filter(kind=TagKind.RULE))
    candidates = [*others, tag]  # `tag` as it is about to be saved (its slug and category may be new)
    by_key = {candidate.pk: candidate for candidate in candidates}
    graph = {other.pk: _dependencies(other.rule_definition, candidates) for other in others}
    graph[tag.pk] = _dependencies(definition, candidates)

    def path_back(key, seen):
        for nxt in sorted(graph.get(key, ()), key=lambda k: (k is not None, k or 0)):
            if nxt == tag.pk:
                return [key, nxt]
            if nxt not in seen:
                seen.add(nxt)
                rest = path_back(nxt, seen)
                if rest:
                    return [key, *rest]
        return []

    return [by_key[key].name for key in path_back(tag.pk, {tag.pk})]


def _with_dependents(tag_ids: set[int], graph: dict[int, set[int]]) -> set[int]:
    """`tag_ids` and every rule tag that depends on one of them, directly or not."""
    found, frontier = set(tag_ids), set(tag_ids)
    while frontier:
        frontier = {pk for pk, needs in graph.items() if needs & frontier} - found
        found |= frontier
    return found


def _dependencies_first(wanted: set[int], graph: dict[int, set[int]]) -> tuple[list[int], set[int]]:
    """`wanted` ordered so that each tag comes after the wanted tags it depends on, and
    the ones that cannot be ordered because they depend on themselves."""
    waiting = {pk: graph[pk] & wanted for pk in wanted}
    ordered: list[int] = []
    while True:
        ready = sorted(pk for pk, needs in waiting.items() if not needs)
        if not ready:
            return ordered, set(waiting)
        ordered.extend(ready)
        for pk in ready:
            del waiting[pk]
        for needs in waiting.values():
            needs.difference_update(ready)


# --- reads for the tag pages ---------------------------------------------------------------

def rule_tags_using_tag(tag: Tag) -> list[TagUsage]:
    """For the tag's "where used" list (registered in profiles.selectors.TAG_USAGE_FINDERS):
    a tag named by a rule cannot be deleted."""
    return [
        TagUsage(_("Rule tag"), rule_tag.name, reverse("admin:profiles_tag_change", args=[rule_tag.pk]))
        for rule_tag in Tag.objects.filter(kind=TagKind.RULE).exclude(pk=tag.pk).only("pk", "name", "rule_definition")
        if tag.slug in tag_slugs_in(rule_tag.rule_definition)
    ]
