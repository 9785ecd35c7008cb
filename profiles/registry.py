"""What the API checks input against — identity kinds (and whether each is strong enough
to merge on) and event names — and what pages label things with — the event definitions'
labels, the tag taxonomy's categories — read at most every 30 s per process: every write
call and every profile page needs them, and staff change them rarely (a change is seen
half a minute later; at once in the process that made it, which calls registry_forget)."""
import time

from profiles.models import EventDefinition, IdentityKind, TagCategory

REGISTRY_CACHE_SECONDS = 30

_cache: tuple[float, dict[str, bool], list[tuple], set[str]] = (0.0, {}, [], set())
_categories: tuple[float, dict[int, TagCategory]] = (0.0, {})
_labels = None  # EventLabels built from _cache's definitions


def _registries() -> tuple[dict[str, bool], list[tuple], set[str]]:
    global _cache, _labels
    read_at, kinds, definitions, names = _cache
    if time.monotonic() - read_at > REGISTRY_CACHE_SECONDS:
        kinds = dict(IdentityKind.objects.values_list("code", "merge_on"))
        definitions = list(EventDefinition.objects.values_list("name", "label", "properties"))
        names = {name for name, _label, _properties in definitions}
        _cache, _labels = (time.monotonic(), kinds, definitions, names), None
    return kinds, definitions, names


def identity_kinds() -> dict[str, bool]:
    """Identity kind code → strong enough to merge on."""
    return _registries()[0]


def strong_identity_kinds() -> set[str]:
    return {code for code, merge_on in identity_kinds().items() if merge_on}


def event_names() -> set[str]:
    return _registries()[2]


def event_labels_cached():
    """profiles.event_labels.EventLabels of every definition, built once per read."""
    global _labels
    from profiles.event_labels import EventLabels  # event_labels reads definitions itself too

    definitions = _registries()[1]
    if _labels is None:
        _labels = EventLabels(definitions)
    return _labels


def tag_categories(*, refresh: bool = False) -> dict[int, TagCategory]:
    """Every category of the tag taxonomy by id (shared: do not change them); `refresh`
    reads them now (a tag names a category newer than the cached ones)."""
    global _categories
    read_at, categories = _categories
    if refresh or time.monotonic() - read_at > REGISTRY_CACHE_SECONDS:
        categories = {category.pk: category for category in TagCategory.objects.all()}
        _categories = (time.monotonic(), categories)
    return categories


def registry_forget() -> None:
    """Read everything again at the next call (this process registered a name or kind itself)."""
    global _cache, _categories, _labels
    _cache, _categories, _labels = (0.0, {}, [], set()), (0.0, {}), None
