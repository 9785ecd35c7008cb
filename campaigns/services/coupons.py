"""Coupon codes of a pool: uploaded as a file (one per line or a `code` column, UTF-8 or
GB18030, duplicates in the file or already in the pool refused and counted), or generated
here — the pool's prefix and random characters drawn with `secrets` from an alphabet
without the look-alikes 0/O/1/I/L, unique in the pool (its key), written in chunks.

A pool's codes are only ever added to; both writers lock the pool's row, so two top-ups
of one pool (or an upload and a top-up) count what they added correctly."""
import csv
import io
import math
import re
import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext as _

from ..models import Coupon, CouponPool

MAX_BYTES = 20 * 1024 * 1024
CODE_LENGTH = Coupon._meta.get_field("code").max_length
CHUNK = 5000
PG_CHUNK = 50_000  # codes per statement where the database takes them in one (PostgreSQL, SQLite)

# Generated codes: no 0/O, 1/I/L, which customers mistype when they read a code aloud or
# copy it from a picture. 31 characters; 248 = 8 × 31 byte values map onto them evenly.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_EVEN = 256 - 256 % len(ALPHABET)
_TO_ALPHABET = bytes(ord(ALPHABET[b % len(ALPHABET)]) if b < _EVEN else 0 for b in range(256))
_UNEVEN = bytes(range(_EVEN, 256))
PREFIX_RE = re.compile(r"[A-Z0-9_-]*")
MIN_LENGTH = 6
MAX_GENERATE = 1_000_000  # codes in one request (about 30 s on PostgreSQL); top up for more
SPACE_FACTOR = 100  # the random part must allow 100 × the pool's codes: few collisions to redo
ROUNDS = 20  # redraws of collided codes before giving up (each redraws only the collided ones)


@dataclass(frozen=True)
class UploadOutcome:
    added: int
    duplicates: int
    invalid: int

    @property
    def refused(self) -> int:
        return self.duplicates + self.invalid


def _text(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):  # strict UTF-8 first: GB18030 decodes almost anything
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationError(_("The file is neither UTF-8 nor GB18030 text."), code="encoding")


def codes_read(raw: bytes) -> list[str]:
    """The codes of a file, in order, stripped (empty lines dropped): the `code` column of a
    CSV with a header naming it (code / 券码 / 优惠码), else each whole line."""
    if len(raw) > MAX_BYTES:
        raise ValidationError(_("The file is larger than 20 MB; split it."), code="too_large")
    lines = _text(raw).splitlines()
    first = next((line for line in lines if line.strip()), "")
    header = [cell.strip().lower() for cell in next(csv.reader([first]))] if first else []
    column = next((i for i, name in enumerate(header) if name in ("code", "券码", "优惠码", "coupon")), None)
    if column is not None:
        rows = csv.reader(io.StringIO("\n".join(lines[lines.index(first) + 1:])))
        return [row[column].strip() for row in rows if len(row) > column and row[column].strip()]
    return [line.strip() for line in lines if line.strip()]


@transaction.atomic
def coupons_upload(*, pool: CouponPool, raw: bytes) -> UploadOutcome:
    """Add the file's codes to the pool. Codes longer than the column or containing spaces
    are invalid; codes repeated in the file or already in the pool are duplicates."""
    codes = codes_read(raw)
    if not codes:
        raise ValidationError(_("The file holds no codes."), code="empty")
    valid, invalid = [], 0
    for code in codes:
        if len(code) > CODE_LENGTH or any(c.isspace() for c in code):
            invalid += 1
        else:
            valid.append(code)
    unique = list(dict.fromkeys(valid))
    CouponPool.objects.select_for_update().filter(pk=pool.pk).first()  # one writer per pool at a time
    before = Coupon.objects.filter(pool=pool).count()
    _insert(pool, unique)
    added = Coupon.objects.filter(pool=pool).count() - before
    return UploadOutcome(added=added, duplicates=len(valid) - added, invalid=invalid)


def generate_check(*, prefix: str, length: int | None, existing: int, count: int) -> None:
    """Raise a ValidationError (with its field) when codes of this shape cannot be made:
    a prefix of other characters, a random part too short or too long, or too few
    possible codes for the pool's size."""
    errors = {}
    if not PREFIX_RE.fullmatch(prefix):
        errors["prefix"] = _("A prefix holds only letters A–Z, digits, “-” and “_”.")
    if not isinstance(count, int) or count < 1 or count > MAX_GENERATE:
        errors["count"] = _("Generate between 1 and %(max)s codes at a time.") % {"max": f"{MAX_GENERATE:,}"}
    if length is None or length < MIN_LENGTH or len(prefix) + length > CODE_LENGTH:
        errors["code_length"] = _("Between %(min)s and %(max)s random characters (the prefix included, a code "
                                  "holds at most %(limit)s).") % {"min": MIN_LENGTH, "max": CODE_LENGTH - len(prefix),
                                                                  "limit": CODE_LENGTH}
    elif not errors.get("count") and len(ALPHABET) ** length < SPACE_FACTOR * (existing + count):
        needed = math.ceil(math.log(SPACE_FACTOR * (existing + count), len(ALPHABET)))
        errors["code_length" if existing == 0 else "count"] = _(
            "%(length)s random characters make too few different codes for %(total)s codes in the pool: use at "
            "least %(needed)s.") % {"length": length, "total": f"{existing + count:,}", "needed": needed}
    if errors:
        raise ValidationError(errors)


def random_codes(n: int, *, length: int, prefix: str = "") -> list[str]:
    """`n` codes: the prefix and `length` characters of ALPHABET, each drawn uniformly
    from the operating system's CSPRNG (random bytes ≥ 248 are dropped, the rest taken
    modulo 31). May repeat; the caller de-duplicates."""
    need = n * length
    drawn = bytearray()
    while len(drawn) < need:
        missing = need - len(drawn)
        drawn += secrets.token_bytes(missing + missing // 16 + 16).translate(_TO_ALPHABET, _UNEVEN)
    text = drawn[:need].decode("ascii")
    return [prefix + text[start:start + length] for start in range(0, need, length)]


def _insert(pool: CouponPool, codes) -> None:
    """INSERT the codes not in the pool yet, in chunks; on PostgreSQL each chunk is one
    array parameter unnested by the server (no per-row parameters to bind), on SQLite one
    prepared INSERT OR IGNORE run over the chunk."""
    codes = list(codes)
    table = connection.ops.quote_name(Coupon._meta.db_table)
    if connection.vendor in ("postgresql", "sqlite"):
        with connection.cursor() as cursor:
            for start in range(0, len(codes), PG_CHUNK):
                chunk = codes[start:start + PG_CHUNK]
                if connection.vendor == "postgresql":
                    cursor.execute(f"INSERT INTO {table} (pool_id, code) SELECT %s, unnest(%s::text[]) "
                                   f"ON CONFLICT (pool_id, code) DO NOTHING", [pool.pk, chunk])
                else:
                    cursor.executemany(f"INSERT OR IGNORE INTO {table} (pool_id, code) VALUES (%s, %s)",
                                       [(pool.pk, code) for code in chunk])
        return
    for start in range(0, len(codes), CHUNK):
        Coupon.objects.bulk_create([Coupon(pool=pool, code=code) for code in codes[start:start + CHUNK]],
                                   ignore_conflicts=True)


@transaction.atomic
def coupons_generate(*, pool: CouponPool, count: int) -> int:
    """Add `count` new codes to a generated pool (its first codes, or a top-up), in
    chunks of INSERT … ON CONFLICT DO NOTHING on the pool's (pool, code) key; codes that
    collide with one already there are drawn again. Returns how many were added."""
    pool = CouponPool.objects.select_for_update().get(pk=pool.pk)
    if pool.source != CouponPool.Source.GENERATE:
        raise ValidationError(_("The codes of this pool are uploaded, not generated."), code="not_generated")
    existing = Coupon.objects.filter(pool=pool).count()
    generate_check(prefix=pool.prefix, length=pool.code_length, existing=existing, count=count)
    target, have = existing + count, existing
    for _round in range(ROUNDS):
        _insert(pool, set(random_codes(target - have, length=pool.code_length, prefix=pool.prefix)))
        have = Coupon.objects.filter(pool=pool).count()
        if have >= target:
            return have - existing
    raise ValidationError(_("Could not find enough new codes; use more random characters."), code="no_space")
