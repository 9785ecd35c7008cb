from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from profiles.api.serializers import IdentitySerializer
from segments.models import Segment


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Segment
        fields = ["slug", "name", "description", "kind", "member_count", "last_calculated_at"]
        read_only_fields = fields


class MemberSerializer(serializers.Serializer):
    """What a partner needs to reach a member, and nothing more."""

    id = serializers.UUIDField(source="uuid", help_text=_("The customer's public id"))
    name = serializers.CharField()
    phone = serializers.CharField()
    email = serializers.CharField()
    identities = serializers.SerializerMethodField()

    @extend_schema_field(IdentitySerializer(many=True))
    def get_identities(self, profile):
        return [{"kind": i.kind_id, "value": i.value} for i in profile.identities.all()]


class MembershipSerializer(serializers.Serializer):
    member = serializers.BooleanField(help_text=_("In the segment and consenting to the purpose"))
    since = serializers.DateTimeField(allow_null=True, help_text=_("Member since (null when not a member)"))
