"""Shared by the segment commands: the language they speak and how they find a segment."""
import os

from django.conf import settings
from django.core.management.base import CommandError
from django.utils.translation import get_supported_language_variant, to_language
from django.utils.translation import gettext as _

from segments.models import Segment


def add_language_argument(parser) -> None:
    parser.add_argument("--lang", metavar="CODE",
                        help="language of the messages: zh-hans or en (default: the LANGUAGE environment variable "
                             "when it names one of them, else the site's language)")


def command_language(option: str | None) -> str:
    """--lang, else the first of LANGUAGE's entries (en_US:en) the site speaks, else LANGUAGE_CODE."""
    if option:
        found = _supported(option)
        if found is None:
            raise CommandError(_("Unknown language “%(code)s”; use one of: %(codes)s.") % {
                "code": option, "codes": ", ".join(code for code, _name in settings.LANGUAGES)})
        return found
    for entry in os.environ.get("LANGUAGE", "").split(":"):
        found = _supported(entry.split(".")[0]) if entry and entry not in ("C", "POSIX") else None
        if found:
            return found
    return settings.LANGUAGE_CODE


def _supported(code: str) -> str | None:
    try:
        return get_supported_language_variant(to_language(code.strip()))
    except LookupError:
        return None


def segment_find(name: str) -> Segment | None:
    """The segment whose slug is `name`, else the one called `name`; several of that name is an error."""
    by_slug = Segment.objects.filter(slug=name).first()
    if by_slug is not None:
        return by_slug
    named = list(Segment.objects.filter(name=name).order_by("pk"))
    if len(named) > 1:
        raise CommandError(_("Several segments are called “%(name)s” (%(slugs)s): name one by its slug.") % {
            "name": name, "slugs": ", ".join(segment.slug for segment in named)})
    return named[0] if named else None


def segment_describe(segment: Segment) -> str:
    return f"{segment.name} ({segment.slug})"

