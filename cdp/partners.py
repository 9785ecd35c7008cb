"""Partners: making one with a unique code.

A partner's code is the source of everything it sends (events are stored with it), so two
partners must never share one. From a Chinese name the code is its pinyin, syllables joined
with hyphens (微信商城 → wei-xin-shang-cheng; pypinyin); a name with nothing to spell gets
`partner-<random>`; a code another partner holds gets a numeric suffix (-2, -3 …). It never
falls back to a code that different partners share."""
import secrets

from django.db import transaction
from django.utils.text import slugify
from pypinyin import lazy_pinyin

from .models import Partner

CODE_MAX = Partner._meta.get_field("code").max_length


def partner_code_from_name(name: str) -> str:
    """The ASCII slug of `name`, Chinese characters spelled in pinyin ("" if nothing is left)."""
    parts = [slugify(part) for part in lazy_pinyin(name)]
    return "-".join(part for part in parts if part)[:CODE_MAX].strip("-")


def partner_code_free(name: str) -> str:
    """A code no partner has yet, derived from `name`."""
    base = partner_code_from_name(name) or f"partner-{secrets.token_hex(4)}"
    taken = set(Partner.objects.filter(code__startswith=base).values_list("code", flat=True))
    code, number = base, 1
    while code in taken:
        number += 1
        suffix = f"-{number}"
        code = base[:CODE_MAX - len(suffix)].rstrip("-") + suffix
    return code


@transaction.atomic
def partner_get_or_create(*, name: str, code: str | None = None, **defaults) -> tuple[Partner, bool]:
    """With `code`: the partner holding it, or a new one with it. Without: the partner of
    exactly this name whose code was derived from it, or a new one with a free code."""
    if code:
        partner = Partner.objects.filter(code=code).first()
        if partner is not None:
            return partner, False
    else:
        derived = partner_code_from_name(name)
        partner = Partner.objects.filter(name=name, code=derived).first() if derived else None
        if partner is not None:
            return partner, False
        code = partner_code_free(name)
    partner = Partner(name=name, code=code, **defaults)
    partner.full_clean()
    partner.save(force_insert=True)
    return partner, True
