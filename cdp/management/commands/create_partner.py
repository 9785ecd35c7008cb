"""python manage.py create_partner "Shop backend" --scopes profiles:read profiles:write events:write

Creates the partner (or reuses the one with that --code, or the one of exactly that name)
and a new API key, and prints the key once: only its hash is stored. Without --code the
code is derived from the name (Chinese in pinyin) and is always unique: a name never
lands its key on another partner (cdp.partners)."""
import datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from cdp.api.keys import api_key_create
from cdp.models import Scope
from cdp.partners import partner_get_or_create


class Command(BaseCommand):
    help = "Create a partner and an API key for it; the key is printed once."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--code", help="Unique short code (default: from the name, Chinese in pinyin)")
        parser.add_argument("--contact", default="")
        parser.add_argument("--scopes", nargs="+", required=True, metavar="SCOPE",
                            help=f"any of: {', '.join(Scope.values)} (or: all)")
        parser.add_argument("--key-name", default="default")
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument("--requests-per-minute", type=int, default=None)

    @transaction.atomic
    def handle(self, *args, name, code, contact, scopes, key_name, expires_in_days, requests_per_minute, **options):
        scopes = Scope.values if scopes == ["all"] else scopes
        try:
            partner, created = partner_get_or_create(name=name, code=code, contact=contact,
                                                     requests_per_minute=requests_per_minute)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        expires_at = timezone.now() + datetime.timedelta(days=expires_in_days) if expires_in_days else None
        try:
            api_key, key = api_key_create(partner=partner, name=key_name, scopes=scopes, expires_at=expires_at)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        verb = "Created" if created else "Reused"
        self.stderr.write(f"{verb} partner “{partner.name}” ({partner.code}); key {api_key.prefix}… with scopes "
                          f"{', '.join(api_key.scopes)}. The key is shown once:")
        self.stdout.write(key)
