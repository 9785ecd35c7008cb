import ipaddress

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from consent.models import Channel, ConsentStatus
from profiles.api.serializers import StrictDateTimeField, StrictSerializer

INT_MAX = 2**31 - 1  # an integer column's range on PostgreSQL


class EvidenceSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, help_text=_("Where it was given"))
    ip = serializers.CharField(required=False, allow_blank=True, max_length=45,
                               help_text=_("The person's IPv4 or IPv6 address"))
    user_agent = serializers.CharField(required=False, allow_blank=True, max_length=300)
    reference = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                      help_text=_("Your form, page or document reference"))
    text = serializers.CharField(required=False, allow_blank=True, max_length=2000,
                                 help_text=_("What the person saw or said"))

    def validate_ip(self, value):
        if value:
            try:
                return str(ipaddress.ip_address(value))
            except ValueError:
                raise serializers.ValidationError(_("Enter a valid IPv4 or IPv6 address."), code="invalid_ip") from None
        return value


class ConsentRecordInSerializer(StrictSerializer):
    purpose = serializers.SlugField(max_length=50, help_text=_("A purpose code, see GET /purposes/"))
    status = serializers.ChoiceField(choices=ConsentStatus.choices)
    captured_at = StrictDateTimeField(required=False, help_text=_("When the person gave or withdrew it; "
                                                                        "now if omitted"))
    notice_version = serializers.IntegerField(required=False, min_value=1, max_value=INT_MAX,
                                              help_text=_("The notice version shown; the latest if omitted"))
    evidence = EvidenceSerializer(required=False)
    expires_at = StrictDateTimeField(required=False, allow_null=True)
    guardian_consent = serializers.BooleanField(required=False, default=False,
                                                help_text=_("Given by a guardian (customers under 14)"))


class ConsentRecordSerializer(serializers.Serializer):
    purpose = serializers.CharField(source="purpose.code")
    status = serializers.CharField()
    notice_version = serializers.IntegerField(allow_null=True)
    captured_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    source = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    guardian_consent = serializers.BooleanField()
    recorded_by = serializers.CharField(source="actor_label")


class ConsentStateSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    name = serializers.CharField()
    channel = serializers.CharField()
    status = serializers.CharField(allow_null=True, help_text=_("granted / denied / withdrawn; null: nothing on record"))
    allowed = serializers.BooleanField(help_text=_("Whether processing for this purpose is allowed right now"))
    reason = serializers.CharField()
    captured_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    notice_version = serializers.IntegerField(allow_null=True)
    do_not_contact = serializers.BooleanField()


class PurposeSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    channel = serializers.CharField()
    lawful_basis = serializers.CharField()
    latest_notice_version = serializers.IntegerField(allow_null=True)
