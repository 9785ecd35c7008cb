"""What partners send and get back. Input serializers list exactly the writable fields:
anything else in a request (status, metrics, ids …) is refused, never silently ignored."""
import re

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from profiles.models import Profile
from profiles.normalisers import NormalisationError, normalise_identity


def _json_type(field) -> tuple[tuple[type, ...], str] | None:
    """The JSON type a field's schema documents, as Python types, and the message when a
    value is not of it. DRF itself is lenient (a CharField takes 5, an IntegerField "5", a
    BooleanField "yes"): the API takes what its schema says, no more."""
    if isinstance(field, serializers.BooleanField):
        return (bool,), _("Must be true or false.")
    if isinstance(field, serializers.IntegerField):
        return (int,), _("Must be a whole number.")
    if isinstance(field, serializers.FloatField):
        return (int, float), _("Must be a number.")
    if isinstance(field, (serializers.CharField, serializers.ChoiceField, serializers.UUIDField,
                          serializers.DateTimeField, serializers.DateField)):
        return (str,), _("Must be a string.")
    if isinstance(field, serializers.DictField):
        return (dict,), _("Must be a JSON object.")
    return None


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


class StrictDateTimeField(serializers.DateTimeField):
    """A date-time as the schema's format says (RFC 3339, with its offset); DRF would also
    take a date alone, a space for the T, or no offset at all (then guessing the zone)."""

    def to_internal_value(self, value):
        if isinstance(value, str) and not RFC3339.match(value):
            raise serializers.ValidationError(
                _("Use ISO 8601 with an offset, e.g. 2026-11-28T10:00:00+08:00."), code="invalid")
        return super().to_internal_value(value)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare (no mass assignment, and typos show), and values
    of another JSON type than the schema documents."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: [_("This field cannot be set.")] for name in unknown},
                                                  code="unknown_field")
            wrong = {}
            for name, value in data.items():
                expected = _json_type(self.fields[name])
                if value is None or expected is None:
                    continue
                types, message = expected
                if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                    wrong[name] = [serializers.ErrorDetail(str(message), code="invalid")]
                    continue
                limit = getattr(self.fields[name], "max_length", None)
                if isinstance(value, str) and limit is not None and len(value) > limit:
                    # As sent: DRF would count after trimming spaces, the schema's maxLength counts them.
                    wrong[name] = [serializers.ErrorDetail(
                        str(_("Ensure this field has no more than %(n)s characters.") % {"n": limit}),
                        code="max_length")]
            if wrong:
                raise serializers.ValidationError(wrong)
        return super().to_internal_value(data)


class IdentitySerializer(serializers.Serializer):
    # Not trimmed here: a value of spaces only is well-formed (minLength 1) and normalises to
    # nothing, which the normaliser refuses as a value (422), not as a blank field (400).
    kind = serializers.CharField(max_length=40, trim_whitespace=False, help_text=_(
        "phone, email, crm_id, wechat_openid, wechat_unionid, wechat_id, device_id or a partner-defined kind"))
    value = serializers.CharField(max_length=255, trim_whitespace=False)


class IdentityInSerializer(StrictSerializer, IdentitySerializer):
    """An identity, normalised like imports (a phone in any format, an email in any case)."""

    def validate_kind(self, kind):
        if kind not in self.context["identity_kinds"]:
            raise serializers.ValidationError(_("Unknown identity kind “%(kind)s”.") % {"kind": kind},
                                              code="unknown_identity_kind")
        return kind

    def validate(self, attrs):
        attrs = super().validate(attrs)
        try:
            attrs["value"] = normalise_identity(attrs["kind"], attrs["value"])
        except NormalisationError as error:
            raise serializers.ValidationError({"value": [str(error)]}, code=error.code) from error
        if not attrs["value"]:
            raise serializers.ValidationError({"value": [_("Nothing is left of this value once normalised.")]},
                                              code="empty_identity")
        return attrs


def _text(max_length: int, **kwargs):
    return serializers.CharField(required=False, allow_blank=True, max_length=max_length, trim_whitespace=True, **kwargs)


class ProfileFieldsSerializer(StrictSerializer):
    """The declared, writable profile fields (profiles.services.EDITABLE_FIELDS). Values
    are normalised like imports: 男/女, 1995年3月2日, 138 0013 8000, 上海市 …; blank clears."""

    name = _text(200)
    gender = _text(16, help_text=_("male / female / unknown (男 / 女 / 未知 also accepted)"))
    birth_date = _text(40, allow_null=True, help_text=_("1995-03-02 (also 1995/3/2, 19950302, 1995年3月2日)"))
    phone = _text(40, help_text=_("Any format; stored as E.164 (+8613800138000)"))
    email = _text(254)
    country = _text(2, help_text=_("ISO 3166-1 alpha-2, e.g. CN"))
    province = _text(50)
    city = _text(50)
    occupation = _text(100)
    traits = serializers.DictField(required=False, help_text=_("Custom traits registered by staff (attribute definitions)"))


def _identities_in(**kwargs) -> serializers.ListField:
    # A ListField, not many=True: the schema then says maxItems (drf-spectacular drops a
    # nested list's max_length), so generated clients and schemathesis know the limit.
    return serializers.ListField(child=IdentityInSerializer(), required=False, max_length=20, **kwargs)


class ProfileUpsertSerializer(ProfileFieldsSerializer):
    identities = _identities_in()

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if not attrs.get("identities") and not attrs.get("phone") and not attrs.get("email"):
            raise serializers.ValidationError(
                {"identities": [_("Give at least one identity (or a phone or an email) to find or create the customer.")]},
                code="no_identity")
        return attrs


class ProfileUpdateSerializer(ProfileFieldsSerializer):
    identities = _identities_in(help_text=_("Identities to add to this customer"))


class ProfileSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True, help_text=_("The customer's public id"))
    merged_into = serializers.SerializerMethodField(help_text=_("Public id of the survivor when status is merged"))
    phone = serializers.CharField(read_only=True, help_text=_(
        "E.164; blank when contact data is withheld (see contact_withheld)"))
    email = serializers.CharField(read_only=True, help_text=_("Blank when contact data is withheld"))
    identities = serializers.SerializerMethodField(help_text=_(
        "All the customer's identities; only those you sent yourself when contact data is withheld"))
    contact_withheld = serializers.SerializerMethodField(help_text=_(
        "True when the customer's consent for none of the purposes you are registered for counts (or they are "
        "on the do-not-contact list of its channel): phone and email are blank and identities are only yours"))
    tags = serializers.SerializerMethodField(help_text=_("Slugs of the customer's tags"))
    rfm = serializers.SerializerMethodField()

    class Meta:
        model = Profile
        fields = [
            "id", "status", "merged_into", "name", "gender", "birth_date", "phone", "email", "country", "province",
            "city", "occupation", "traits", "identities", "contact_withheld", "tags", "lifecycle_stage",
            "first_seen_at", "last_seen_at", "order_count", "total_spent", "last_order_at", "rfm", "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_merged_into(self, profile):
        return str(profile.merged_into.uuid) if profile.merged_into_id else None

    @extend_schema_field(IdentitySerializer(many=True))
    def get_identities(self, profile):
        return identities_output(profile.identities.all())

    @extend_schema_field(serializers.BooleanField())
    def get_contact_withheld(self, profile):
        return False

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, profile):
        return sorted(pt.tag.slug for pt in profile.profile_tags.all())

    @extend_schema_field({"type": "object", "properties": {
        "recency": {"type": "integer", "nullable": True}, "frequency": {"type": "integer", "nullable": True},
        "monetary": {"type": "integer", "nullable": True}}})
    def get_rfm(self, profile):
        return {"recency": profile.rfm_recency, "frequency": profile.rfm_frequency, "monetary": profile.rfm_monetary}


def identities_output(identities) -> list[dict]:
    return [{"kind": i.kind_id, "value": i.value} for i in identities]


class ProfileOwnFieldsSerializer(ProfileSerializer):
    """ProfileSerializer without what it reads from other tables."""

    identities = None
    contact_withheld = None
    tags = None

    class Meta(ProfileSerializer.Meta):
        fields = [name for name in ProfileSerializer.Meta.fields if name not in ("identities", "contact_withheld", "tags")]
        read_only_fields = fields


_own_fields_output: ProfileOwnFieldsSerializer | None = None


def profile_output(profile: Profile, *, identities=None, tags=None, withheld_from: str | None = None,
                   sent: frozenset = frozenset()) -> dict:
    """ProfileSerializer(profile).data, from one serializer built once per process (a
    model serializer builds its fields anew for every instance, which cost more than the
    rest of a simple call; sharing is safe, representing changes no state). A caller
    that has the profile's identities (rows) or tag slugs already passes them; otherwise
    they are read through the profile (prefetched by profiles_for_output).

    `withheld_from`: the code of a partner that may not receive this customer's contact
    data (profiles.api.access): phone and email are blanked and only the identities that
    partner sent itself (stored with its code as source, or `sent` in this very call: (kind,
    value) pairs) are kept."""
    global _own_fields_output
    if _own_fields_output is None:
        _own_fields_output = ProfileOwnFieldsSerializer()
    data = _own_fields_output.to_representation(profile)
    identities = profile.identities.all() if identities is None else identities
    if withheld_from is not None:
        identities = [i for i in identities if i.source == withheld_from or (i.kind_id, i.value) in sent]
        data["phone"] = data["email"] = ""
    data["identities"] = identities_output(identities)
    data["contact_withheld"] = withheld_from is not None
    data["tags"] = sorted(pt.tag.slug for pt in profile.profile_tags.all()) if tags is None else sorted(tags)
    return {name: data[name] for name in ProfileSerializer.Meta.fields}


def profiles_for_output(queryset):
    """The queryset with what ProfileSerializer reads, in a fixed number of queries."""
    return queryset.select_related("merged_into").prefetch_related("identities", "profile_tags__tag")


class UpsertResultSerializer(serializers.Serializer):
    created = serializers.BooleanField(help_text=_("True when a new customer was created"))
    merged = serializers.ListField(child=serializers.UUIDField(), help_text=_("Customers merged into this one"))
    profile = ProfileSerializer()


class TagAssignSerializer(StrictSerializer):
    tag = serializers.SlugField(max_length=100, allow_unicode=True, help_text=_("The tag's slug (see GET /tags/)"))
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255)
    weight = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    expires_at = StrictDateTimeField(required=False, allow_null=True)


class TagAssignResultSerializer(serializers.Serializer):
    tag = serializers.CharField()
    added = serializers.BooleanField(help_text=_("False when the customer already had the tag"))


class ProfileTagSerializer(serializers.Serializer):
    tag = serializers.CharField(source="tag.slug")
    name = serializers.CharField(source="tag.name")
    source = serializers.CharField()
    weight = serializers.FloatField(allow_null=True)
    reason = serializers.CharField()
    assigned_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class TagSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField(help_text=_("manual tags can be assigned over the API; rule and interest tags are computed"))
    description = serializers.CharField()
    is_active = serializers.BooleanField()


class TagCategorySerializer(serializers.Serializer):
    name = serializers.CharField()
    code = serializers.CharField(allow_null=True, help_text=_("basic / behavioural / interest / value on the four roots"))
    tags = TagSerializer(many=True)
    children = serializers.ListField(child=serializers.DictField(), help_text=_("Sub-categories, same shape"))


@extend_schema_field({"oneOf": [
    {"type": "string", "pattern": r"^-?[0-9]{1,12}(\.[0-9]{1,2})?$"},
    {"type": "integer", "minimum": -(10**12 - 1), "maximum": 10**12 - 1},
], "nullable": True, "description": _("A decimal string like \"199.00\" (never a float, which is not exact) or a whole number")})
class AmountField(serializers.Field):
    """Documentation only: profiles.services.ingest reads the amount."""


class EventInSerializer(serializers.Serializer):
    """The shape of one event (documentation: the batch route reads the events itself).
    An event not of this shape refuses the whole batch with a 400; an event of this shape
    that the platform cannot take (unknown name, identity kind, invalid phone …) is
    rejected alone in the per-event results."""

    external_id = serializers.CharField(max_length=128, help_text=_("Your id for the event: sending it again is a no-op"))
    source = serializers.CharField(required=False, allow_null=True, max_length=40,
                                   help_text=_("Optional sub-source, e.g. pos or app"))
    name = serializers.CharField(max_length=64, help_text=_("A registered event name: order, page_view, add_to_cart …"))
    occurred_at = serializers.DateTimeField(help_text=_("ISO 8601 with an offset"))
    profile = serializers.UUIDField(required=False, allow_null=True, help_text=_("The customer's public id, if you know it"))
    identities = IdentitySerializer(many=True, required=False, allow_null=True,
                                    help_text=_("Who did it, if no public id is given"))
    properties = serializers.DictField(required=False, allow_null=True)
    amount = AmountField(required=False, allow_null=True)


class EventBatchInSerializer(serializers.Serializer):
    events = EventInSerializer(many=True, max_length=1000)


class EventErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text=_("Position in the request"))
    external_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    profile = serializers.UUIDField(required=False, help_text=_("The customer it was recorded for"))
    error = EventErrorSerializer(required=False)


class EventBatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    profiles_created = serializers.IntegerField()
    results = EventResultSerializer(many=True)


class RecommendationSerializer(serializers.Serializer):
    rank = serializers.IntegerField(help_text="1 = the best")
    product_id = serializers.CharField(help_text="The product, as in the events' product_id property; empty when "
                                                 "the customer's events name no product and a category is "
                                                 "recommended instead.", allow_blank=True)
    category = serializers.CharField(help_text="The category code, as in the events' category property: the "
                                               "product's category (empty if unknown), or the recommended category.",
                                     allow_blank=True)
    label = serializers.CharField(help_text="The product's name (its id where none is known) or the category's "
                                            "label, in the request's language.")
    category_label = serializers.CharField(help_text="The category's label in the request's language.",
                                           allow_blank=True)
    score = serializers.FloatField()
    reason_code = serializers.ChoiceField(choices=["viewed", "carted", "bought", "interest", "popular"],
                                          help_text="popular: a list shorter than 10 filled up with popular "
                                                    "products (or categories) the customer did not buy recently.")
    reason_product = serializers.CharField(help_text="The product the customer viewed, carted or bought that led "
                                                     "to this one; empty for categories and popular.",
                                           allow_blank=True)
    reason_category = serializers.CharField(help_text="The category of that product, or the category the customer "
                                                      "viewed, carted, bought or is interested in that led to this "
                                                      "one; empty for popular.",
                                            allow_blank=True)
    reason = serializers.CharField(help_text="The reason in the request's language, e.g. 因为您浏览了口红.")
    computed_at = serializers.DateTimeField()
