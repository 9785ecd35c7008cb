"""manage.py segment_save NAME --definition FILE [--static] [--slug SLUG] [--lang CODE]

Creates or updates the segment NAME (found by slug, else by name) from a JSON definition
file (UTF-8), through the same services as the admin, and calculates its members at once.
A bad definition prints every problem with the path of its node and exits with status 1:
nothing is saved. --static keeps the members found now as a static list (a static segment
is not recalculated); updating a static segment needs --static too. Messages are in the
site's language (简体中文) unless --lang or the LANGUAGE environment variable names another.
"""
import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_unicode_slug
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from segments.models import Segment
from segments.services import segment_recompute, segment_save
from segments.slugs import segment_slug_suggest

from ._common import (
    add_language_argument,
    command_language,
    segment_describe,
    segment_find,
)


class Command(BaseCommand):
    help = "Create or update a segment from a JSON definition file and calculate its members."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the segment's name (an existing segment is found by its slug or name)")
        parser.add_argument("--definition", metavar="FILE", required=True, help="the definition, JSON in UTF-8")
        parser.add_argument("--static", action="store_true", help="keep the members found now as a static list")
        parser.add_argument("--slug", help="the segment's slug (default: an existing segment's, else the name in "
                                           "pinyin)")
        add_language_argument(parser)

    def handle(self, *args, name, definition, static, slug, lang, **options):
        with translation.override(command_language(lang)):
            self._save(name.strip(), definition, static, slug)

    def _save(self, name: str, path: str, static: bool, slug: str | None) -> None:
        if not name:
            raise CommandError(_("Give the segment a name."))
        if len(name) > Segment._meta.get_field("name").max_length:
            raise CommandError(_("The name is longer than %(n)s characters.") % {
                "n": Segment._meta.get_field("name").max_length})
        definition = _read_definition(path)
        if slug is not None:
            try:
                validate_unicode_slug(slug)
            except ValidationError as error:
                raise CommandError(" ".join(error.messages)) from error
            if len(slug) > Segment._meta.get_field("slug").max_length:
                raise CommandError(_("The slug is longer than %(n)s characters.") % {
                    "n": Segment._meta.get_field("slug").max_length})
            segment = Segment.objects.filter(slug=slug).first()
        else:
            segment = segment_find(name)
        created = segment is None
        if created:
            segment = Segment(name=name, slug=slug or segment_slug_suggest(name))
        elif segment.kind == Segment.Kind.STATIC and not static:
            raise CommandError(_("“%(segment)s” is a static list: add --static to replace its members with those "
                                 "of this definition.") % {"segment": segment_describe(segment)})
        segment.name = name
        # calculated as a dynamic segment, then (--static) kept as it is
        segment.kind = Segment.Kind.DYNAMIC
        try:
            with transaction.atomic():
                segment = segment_save(segment=segment, definition=definition)
                snapshot = segment_recompute(segment_id=segment.pk)
                if static:
                    Segment.objects.filter(pk=segment.pk).update(kind=Segment.Kind.STATIC)
        except ValidationError as error:
            for message in error.messages:
                self.stderr.write(message)
            raise CommandError(_("The definition has %(n)s problem(s); nothing was saved.") % {
                "n": len(error.messages)}) from error
        message = _("Created “%(segment)s”, version %(version)s.") if created else _(
            "Saved “%(segment)s”, version %(version)s.")
        self.stdout.write(message % {"segment": segment_describe(segment), "version": segment.version})
        self.stdout.write(_("Members %(members)s, entered %(entered)s, exited %(exited)s.") % {
            "members": snapshot.member_count, "entered": snapshot.entered, "exited": snapshot.exited})
        if static:
            self.stdout.write(_("Kept as a static list: it is not recalculated."))


def _read_definition(path: str):
    try:
        with open(path, encoding="utf-8-sig") as file:
            text = file.read()
    except FileNotFoundError as error:
        raise CommandError(_("No file at %(path)s.") % {"path": path}) from error
    except UnicodeDecodeError as error:
        raise CommandError(_("%(path)s is not UTF-8 text.") % {"path": path}) from error
    except OSError as error:
        raise CommandError(_("%(path)s cannot be read: %(error)s") % {
            "path": path, "error": error.strerror or error}) from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(_("%(path)s is not valid JSON (line %(line)s, column %(column)s: %(error)s).") % {
            "path": path, "line": error.lineno, "column": error.colno, "error": error.msg}) from error
