"""Reads for pages and the API."""
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import Count, Exists, FilteredRelation, OuterRef, Q, QuerySet
from django.db.models.functions import Right
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy as _

from .models import (
    EventDefinition,
    Identity,
    IdentityKind,
    InterestMapping,
    Profile,
    ProfileStatus,
    ProfileTag,
    Tag,
    TagCategory,
    TagKind,
)
from . import geo
from .registry import tag_categories
from .normalisers import (
    NormalisationError,
    identity_keys,
    normalise_email,
    normalise_phone,
)


def event_labels() -> dict[str, str]:
    """Event name → its label in the active language (built-in labels are English
    source strings marked for translation), in the order of the names."""
    return {name: gettext(label) for name, label in EventDefinition.objects.values_list("name", "label")}


def identity_owner(*, kind: str, value: str) -> Profile | None:
    identity = Identity.objects.filter(kind_id=kind, value=value).select_related("profile").first()
    return identity.profile if identity else None


def profile_search(queryset: QuerySet[Profile], term: str) -> QuerySet[Profile]:
    """Customers matching `term`. An exact key wins: a phone typed in any format, an
    email, a public id or any identity value (CRM id, WeChat ids …), all indexed
    lookups. Only when no key matches does it fall back to a partial name match."""
    term = " ".join(term.split())
    if not term:
        return queryset
    kinds = list(IdentityKind.objects.values_list("code", flat=True))
    values = {term} | {value for _kind, value in identity_keys(kinds, term)}
    # Fetched first: an IN (subquery) inside an OR would make PostgreSQL scan every profile.
    owners = list(Identity.objects.filter(kind_id__in=kinds, value__in=values).values_list("profile_id", flat=True)[:100])
    exact = Q(pk__in=owners)
    for field_name, normalise in (("phone", normalise_phone), ("email", normalise_email)):
        try:
            exact |= Q(**{field_name: normalise(term)})
        except NormalisationError:
            pass
    try:
        exact |= Q(uuid=uuid.UUID(term))
    except ValueError:
        pass
    by_key = queryset.filter(exact)
    if by_key.exists():
        return by_key
    if place := _place_q(term):
        return queryset.filter(place)
    return queryset.filter(name__icontains=term)


def _place_q(term: str) -> Q | None:
    """A known city or province however it is written (上海, 上海市, Shanghai, 广东省,
    Guangdong) as a condition on the normalised, indexed columns; None for anything else."""
    city, province = geo.canonical_city(term), geo.canonical_province(term)
    condition = None
    if city in _KNOWN_CITIES:
        condition = Q(city=city)
    if province in _KNOWN_PROVINCES:
        condition = Q(province=province) if condition is None else condition | Q(province=province)
    return condition


_KNOWN_CITIES = frozenset(c.name for c in geo.CITIES)
_KNOWN_PROVINCES = frozenset(p.name for p in geo.PROVINCES)


@dataclass(frozen=True)
class TagUsage:
    """A place that refers to a tag and would break if the tag were deleted."""

    kind: str
    name: str
    url: str = ""

    def __str__(self):
        return f"{self.kind} “{self.name}”"


# Apps above profiles (segments, rule tags) register a finder here from AppConfig.ready(),
# so that "where used" knows about them without profiles importing them.
TAG_USAGE_FINDERS: list[Callable[[Tag], Iterable[TagUsage]]] = []


def tag_usages(tag: Tag) -> list[TagUsage]:
    usages = [
        TagUsage(str(_("Interest mapping")), str(mapping), reverse("admin:profiles_interestmapping_change", args=[mapping.pk]))
        for mapping in InterestMapping.objects.filter(tag=tag).select_related("tag")
    ]
    for finder in TAG_USAGE_FINDERS:
        usages.extend(finder(tag))
    return usages


def tag_category_with_descendants(category_id: int) -> set[int]:
    """The category and every category below it, one query per level."""
    found, frontier = {category_id}, {category_id}
    while frontier:
        frontier = set(TagCategory.objects.filter(parent__in=frontier).values_list("pk", flat=True)) - found
        found |= frontier
    return found


def tag_tree() -> list[dict]:
    """The taxonomy as nested dicts (category, depth, tags) for the tree page, in two queries."""
    categories = list(TagCategory.objects.all())
    tags_by_category: dict[int, list[Tag]] = {}
    for tag in Tag.objects.order_by("-is_active", "name"):
        tags_by_category.setdefault(tag.category_id, []).append(tag)
    children: dict[int | None, list[TagCategory]] = {}
    for category in categories:
        children.setdefault(category.parent_id, []).append(category)

    def walk(parent_id, depth):
        for category in sorted(children.get(parent_id, []), key=lambda c: (c.code is None, c.pk if c.code else 0, c.name)):
            tags = tags_by_category.get(category.pk, [])
            yield {"category": category, "depth": depth, "tags": tags, "tag_count": len(tags)}
            yield from walk(category.pk, depth + 1)

    return list(walk(None, 0))


@dataclass(frozen=True)
class ProfileSection:
    """A card on the profile page contributed by an app above profiles (segments the
    customer belongs to, consent per purpose): a template and its context."""

    template: str
    context: dict


# Apps above profiles register callables (profile, request) → ProfileSection | None here
# from AppConfig.ready(), so the profile page shows them without importing those apps.
PROFILE_SECTIONS: list[Callable] = []


def profile_sections(profile: Profile, request) -> list[ProfileSection]:
    return [section for provider in PROFILE_SECTIONS if (section := provider(profile, request)) is not None]


@dataclass
class TagGroup:
    root: TagCategory
    profile_tags: list


def profile_tags_and_assignable(profile: Profile) -> tuple[list[ProfileTag], list[Tag]]:
    """The customer's tags (each with its `tag` loaded) and the tags staff may give by hand
    (assignable_tags, the customer's own included), both by name, in one query."""
    rows = (Tag.objects.annotate(own=FilteredRelation("profile_tags", condition=Q(profile_tags__profile=profile)))
            .filter(Q(own__isnull=False) | (Q(is_active=True) & ~Q(kind=TagKind.RULE)))
            .select_related("own").order_by("name", "pk"))
    own, assignable = [], []
    for tag in rows:
        profile_tag = getattr(tag, "own", None)
        if profile_tag is not None:
            profile_tag.tag = tag
            own.append(profile_tag)
        if tag.is_active and tag.kind != TagKind.RULE:
            assignable.append(tag)
    return own, assignable


def profile_tag_groups(profile: Profile, *, profile_tags: list[ProfileTag] | None = None) -> list[TagGroup]:
    """The customer's tags grouped under the taxonomy's roots: one query, none when the
    page passes the customer's tags (by name, their `tag` loaded); the taxonomy's
    categories come from the registry."""
    categories = tag_categories()

    def root_of(category_id):
        category = categories[category_id]
        while category.parent_id is not None and category.parent_id in categories:
            category = categories[category.parent_id]
        return category

    if profile_tags is None:
        profile_tags = list(ProfileTag.objects.filter(profile=profile).select_related("tag").order_by("tag__name"))
    if any(profile_tag.tag.category_id not in categories for profile_tag in profile_tags):
        categories = tag_categories(refresh=True)
    groups: dict[int, TagGroup] = {}
    for profile_tag in profile_tags:
        root = root_of(profile_tag.tag.category_id)
        groups.setdefault(root.pk, TagGroup(root, [])).profile_tags.append(profile_tag)
    return sorted(groups.values(), key=lambda g: (g.root.code is None, g.root.pk))


def profile_interest_axes(profile: Profile, *, profile_tags: list[ProfileTag] | None = None,
                          tags: list[Tag] | None = None) -> list[tuple[str, float]]:
    """The radar's axes: every active interest tag of the taxonomy (in taxonomy order),
    each with the customer's weight on it, 0 where they show no such interest. Two queries,
    none when the page passes the customer's tags (their `tag` loaded) and the active tags
    it read already (ordered by name)."""
    if profile_tags is None:
        weights = dict(
            ProfileTag.objects.filter(profile=profile, tag__kind=TagKind.INTEREST).values_list("tag_id", "weight")
        )
    else:
        weights = {pt.tag_id: pt.weight for pt in profile_tags if pt.tag.kind == TagKind.INTEREST}
    if tags is None:
        tags = Tag.objects.filter(kind=TagKind.INTEREST, is_active=True).order_by("category_id", "name").only(
            "pk", "name")
    else:  # by name as the database sorts them, then (a stable sort) by category
        tags = sorted((t for t in tags if t.kind == TagKind.INTEREST and t.is_active), key=lambda t: t.category_id)
    return [(tag.name, weights.get(tag.pk) or 0) for tag in tags]


@dataclass
class DuplicateGroup:
    reason: str
    profiles: list[Profile]


def duplicate_candidates(limit: int = 50) -> list[DuplicateGroup]:
    """Active customers who are probably one person: the same phone or email on their
    profiles, or the same name and city with phones ending in the same four digits (or
    both without a phone)."""
    active = Profile.objects.filter(status=ProfileStatus.ACTIVE)
    groups: list[tuple[str, QuerySet]] = []
    for field_name, label in (("phone", _("same phone")), ("email", _("same email"))):
        values = (
            active.exclude(**{field_name: ""}).order_by().values(field_name)
            .annotate(n=Count("id")).filter(n__gt=1).values_list(field_name, flat=True)[:limit]
        )
        groups += [(str(label), active.filter(**{field_name: value})) for value in values]
    similar = (
        active.exclude(name="").order_by().annotate(phone_end=Right("phone", 4))
        .values("name", "city", "phone_end").annotate(n=Count("id")).filter(n__gt=1)[:limit]
    )
    for row in similar:
        groups.append((
            str(_("same name and city, phone ending %(end)s") % {"end": row["phone_end"] or "—"}),
            active.annotate(phone_end=Right("phone", 4)).filter(
                name=row["name"], city=row["city"], phone_end=row["phone_end"]
            ),
        ))
    return [DuplicateGroup(reason, list(queryset.order_by("created_at", "pk")[:10])) for reason, queryset in groups[:limit]]


@dataclass(frozen=True)
class TagSelectionCounts:
    """What a bulk tag action on a selection will touch, counted exactly."""

    selected: int  # customers in the selection
    inactive: int  # erased or merged among them: never tagged
    holding: int  # active ones that already have the tag
    holding_any: int  # all that have the tag (what removing takes off)

    @property
    def to_add(self) -> int:
        return self.selected - self.inactive - self.holding

    @property
    def without_tag(self) -> int:
        return self.selected - self.holding_any


def tag_selection_counts(tag: Tag, profiles: QuerySet[Profile]) -> TagSelectionCounts:
    """Exact counts for a bulk tag action, in one query (each index-backed: the
    selection's own filters, and the (profile, tag) key of ProfileTag). The list caps its
    count at CDP_ADMIN_COUNT_CAP; a bulk action states the real number first."""
    has_tag = Exists(ProfileTag.objects.filter(tag=tag, profile_id=OuterRef("pk")))
    counts = profiles.order_by().aggregate(
        selected=Count("pk"),
        inactive=Count("pk", filter=~Q(status=ProfileStatus.ACTIVE)),
        holding=Count("pk", filter=Q(has_tag, status=ProfileStatus.ACTIVE)),
        holding_any=Count("pk", filter=Q(has_tag)),
    )
    return TagSelectionCounts(**counts)


def assignable_tags():
    """Tags staff may give by hand: active ones that no rule maintains."""
    return Tag.objects.filter(is_active=True).exclude(kind=TagKind.RULE)
