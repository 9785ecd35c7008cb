"""Personal data as staff without the "see personal data" permission see it."""
import phonenumbers

from .models import IdentityKind

PERMISSION = "profiles.view_personal_data"


def mask_phone(e164: str) -> str:
    """+8613800138000 → 138****8000; other countries keep their code: +44 79*****0958."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return _mask_middle(e164, keep_start=3, keep_end=4)
    national = str(number.national_number)
    masked = _mask_middle(national, keep_start=3, keep_end=4)
    return masked if number.country_code == 86 else f"+{number.country_code} {masked}"


def mask_email(email: str) -> str:
    """zhang.wei@example.com → z***@example.com."""
    if "@" not in email:
        return _mask_middle(email, keep_start=1, keep_end=0)
    local, domain = email.split("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_identity(kind: str, value: str) -> str:
    if kind == IdentityKind.PHONE:
        return mask_phone(value)
    if kind == IdentityKind.EMAIL:
        return mask_email(value)
    return value  # CRM and WeChat ids are pseudonymous keys staff need to match records


def mask_contact(text: str) -> str:
    """A contact staff typed (an email, a phone in any format, or words such as 邮寄):
    an email or phone in it masked, other words as they are."""
    from .normalisers import NormalisationError, normalise_phone

    text = (text or "").strip()
    if "@" in text:
        return mask_email(text)
    if sum(c.isdigit() for c in text) >= 7:
        try:
            return mask_phone(normalise_phone(text))
        except NormalisationError:
            return _mask_middle(text, keep_start=3, keep_end=4)
    return text


def can_see_personal_data(user) -> bool:
    return user.has_perm(PERMISSION)


def _mask_middle(text: str, *, keep_start: int, keep_end: int) -> str:
    if len(text) <= keep_start + keep_end:
        return "*" * len(text)
    return text[:keep_start] + "*" * (len(text) - keep_start - keep_end) + text[len(text) - keep_end:]
