"""Object-level access: a partner sees only the segments shared with it."""
from django.db.models import QuerySet

from segments.models import Segment


def segments_shared_with(partner) -> QuerySet[Segment]:
    return Segment.objects.filter(shared_with=partner)
