"""Coupon codes uploaded as a file: one per line or a `code` column, UTF-8 or GB18030,
duplicates (in the file or already in the pool) refused and counted."""
import csv
import io
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from ..models import Coupon, CouponPool

MAX_BYTES = 20 * 1024 * 1024
CODE_LENGTH = Coupon._meta.get_field("code").max_length
CHUNK = 5000


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
    before = Coupon.objects.filter(pool=pool).count()
    for start in range(0, len(unique), CHUNK):
        Coupon.objects.bulk_create([Coupon(pool=pool, code=code) for code in unique[start:start + CHUNK]],
                                   ignore_conflicts=True)
    added = Coupon.objects.filter(pool=pool).count() - before
    return UploadOutcome(added=added, duplicates=len(valid) - added, invalid=invalid)
