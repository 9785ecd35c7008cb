"""What the API checks input against — identity kinds (and whether each is strong enough
to merge on) and event names — read at most every 30 s per process: every write call
needs them, and staff change them rarely (a change is seen half a minute later)."""
import time

from profiles.models import EventDefinition, IdentityKind

REGISTRY_CACHE_SECONDS = 30

_cache: tuple[float, dict[str, bool], set[str]] = (0.0, {}, set())


def _registries() -> tuple[dict[str, bool], set[str]]:
    global _cache
    read_at, kinds, names = _cache
    if time.monotonic() - read_at > REGISTRY_CACHE_SECONDS:
        kinds = dict(IdentityKind.objects.values_list("code", "merge_on"))
        names = set(EventDefinition.objects.values_list("name", flat=True))
        _cache = (time.monotonic(), kinds, names)
    return kinds, names


def identity_kinds() -> dict[str, bool]:
    """Identity kind code → strong enough to merge on."""
    return _registries()[0]


def strong_identity_kinds() -> set[str]:
    return {code for code, merge_on in identity_kinds().items() if merge_on}


def event_names() -> set[str]:
    return _registries()[1]


def registry_forget() -> None:
    """Read both again at the next call (this process registered a name or kind itself)."""
    global _cache
    _cache = (0.0, {}, set())
