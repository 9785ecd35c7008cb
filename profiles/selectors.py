"""Reads for pages and the API."""
import uuid

from django.db.models import Q, QuerySet

from .models import Identity, IdentityKind, Profile
from .normalisers import NormalisationError, normalise_email, normalise_identity, normalise_phone


def identity_owner(*, kind: str, value: str) -> Profile | None:
    identity = Identity.objects.filter(kind_id=kind, value=value).select_related("profile").first()
    return identity.profile if identity else None


def profile_search(queryset: QuerySet[Profile], term: str) -> QuerySet[Profile]:
    """Customers whose phone (typed in any format), email, name (partial), public id or
    any identity value (CRM id, WeChat ids …) matches `term`."""
    term = " ".join(term.split())
    if not term:
        return queryset
    kinds = list(IdentityKind.objects.values_list("code", flat=True))
    values = {term}
    for kind in kinds:
        try:
            values.add(normalise_identity(kind, term))
        except NormalisationError:
            pass
    condition = Q(name__icontains=term) | Q(
        pk__in=Identity.objects.filter(kind_id__in=kinds, value__in=values - {""}).values("profile_id")
    )
    try:
        condition |= Q(phone=normalise_phone(term))
    except NormalisationError:
        pass
    if "@" in term:
        try:
            condition |= Q(email=normalise_email(term))
        except NormalisationError:
            pass
    try:
        condition |= Q(uuid=uuid.UUID(term))
    except ValueError:
        pass
    return queryset.filter(condition)
