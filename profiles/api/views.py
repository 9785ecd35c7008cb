"""Partner routes for customers, their tags, the tag taxonomy and behaviour events."""
from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q, Value, prefetch_related_objects
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from cdp.api.errors import VALIDATION_MESSAGE, ApiError
from cdp.api.schema import error_responses
from cdp.api.views import PartnerAPIView, PartnerGenericView
from cdp.models import Scope
from profiles.models import IdentityKind, Profile, ProfileStatus, ProfileTag, Tag, TagKind, TagSource
from profiles.normalisers import NormalisationError, normalise_identity
from profiles.selectors import tag_tree
from profiles.services import identity_add, profile_update, profile_upsert
from profiles.recommendations import profile_recommendations
from profiles.services.recommendations import recommendations_refresh_one
from profiles.services.tags import tag_assign, tag_remove
from profiles.services.suppression import suppressed_among

from . import examples
from .access import contactable, contactable_ids, contactable_when_new, customers_sent_rows, reachable
from .filters import ProfileFilter
from profiles.services.ingest import MalformedBatch, events_ingest
from profiles.registry import identity_kinds, strong_identity_kinds
from .serializers import (
    EventBatchInSerializer,
    EventBatchResultSerializer,
    ProfileSerializer,
    ProfileTagSerializer,
    ProfileUpdateSerializer,
    ProfileUpsertSerializer,
    RecommendationSerializer,
    TagAssignResultSerializer,
    TagAssignSerializer,
    TagCategorySerializer,
    UpsertResultSerializer,
    profile_output,
    profiles_for_output,
)


UNPROCESSABLE = status.HTTP_422_UNPROCESSABLE_ENTITY


def refuse_suppressed(keys: list[tuple[str, str]]) -> None:
    """Identities of an erased person must not bring them back."""
    suppressed = suppressed_among(keys)
    if suppressed:
        raise ApiError("suppressed", _("This person asked to be erased: %(kinds)s cannot be stored again.")
                       % {"kinds": ", ".join(sorted(kind for kind, _value in suppressed))},
                       status.HTTP_422_UNPROCESSABLE_ENTITY)


def partner_profile(client, profile_id, *, active: bool = False) -> Profile:
    """The customer with this public id within the partner's reach (profiles.api.access);
    erased customers and customers outside the reach do not exist for partners, and with
    `active` a merged one answers 409 with its survivor's id."""
    customers = reachable(client, Profile.objects.exclude(status=ProfileStatus.ERASED))
    profile = get_object_or_404(profiles_for_output(customers), uuid=profile_id)
    if active and profile.status == ProfileStatus.MERGED:
        raise ApiError("profile_merged", _("This customer was merged into %(survivor)s; use that id.")
                       % {"survivor": profile.merged_into.uuid}, status.HTTP_409_CONFLICT)
    return profile


def outputs_for(client, profiles: list[Profile]) -> list[dict]:
    """profile_output of each, with contact data only where the partner may have it."""
    allowed = contactable_ids(client.partner, [profile.pk for profile in profiles])
    return [profile_output(profile, withheld_from=None if profile.pk in allowed else client.partner.code)
            for profile in profiles]


def answer_facts(profile: Profile, allowed: Q | None):
    """One row per tag of the customer (one row without a tag when it has none): (may the
    partner have its contact data, tag slug)."""
    may_contact = (ExpressionWrapper(allowed, output_field=BooleanField()) if allowed is not None
                   else Value(False, output_field=BooleanField()))
    return Profile.objects.filter(pk=profile.pk).annotate(may_contact=may_contact).values_list(
        "may_contact", "profile_tags__tag__slug")


def output_for(client, profile: Profile, **known) -> dict:
    allowed = contactable_ids(client.partner, [profile.pk])
    return profile_output(profile, withheld_from=None if profile.pk in allowed else client.partner.code, **known)


REACH = _("Only your customers exist for you — those you created or updated (upsert) or sent events for, and the "
          "members of segments shared with you — unless the key has profiles:read_all; others answer 404. Phone, "
          "email and identities are returned only for customers whose consent for a purpose you are registered for "
          "counts; otherwise contact_withheld is true.")


class ProfileCollectionView(PartnerGenericView):
    required_scopes = {"GET": Scope.PROFILES_READ, "POST": Scope.PROFILES_WRITE}
    serializer_class = ProfileSerializer
    filterset_class = ProfileFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no partner
            return Profile.objects.none()
        return reachable(self.client, profiles_for_output(Profile.objects.filter(status=ProfileStatus.ACTIVE)))

    @extend_schema(
        operation_id="profiles_list", summary=_("List customers"),
        description=_("Active customers, newest first, with cursor pagination (follow `next`). "
                      "Needs profiles:read.") + " " + REACH,
        responses={200: ProfileSerializer(many=True), **error_responses(400, 401, 403, 422, 429)},
        examples=[examples.PROFILE_PAGE],
    )
    def get(self, request):
        # Django-filter skips blank values; the schema says these are a date-time and a stage.
        blank = [name for name in ("updated_since", "lifecycle_stage") if request.query_params.get(name, None) == ""]
        if blank:
            raise ApiError("blank", VALIDATION_MESSAGE, fields={name: [_("This field may not be blank.")] for name in blank})
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(outputs_for(self.client, page))

    @extend_schema(
        operation_id="profiles_upsert", summary=_("Create or update a customer by identities"),
        description=_(
            "Finds the customer by the identities given (phones, emails, CRM id, WeChat ids, your own kinds), "
            "normalised like imports, and updates the fields sent; creates the customer when nobody matches. "
            "When the identities belong to several customers they are merged (the oldest survives). Only the "
            "fields listed are writable; any other field is refused. Needs profiles:write."),
        request=ProfileUpsertSerializer,
        responses={200: UpsertResultSerializer, 201: UpsertResultSerializer,
                   **error_responses(400, 401, 403, 409, 413, 415, 422, 429)},
        examples=[examples.UPSERT_REQUEST, examples.UPSERT_RESPONSE, examples.UPSERT_UPDATED],
    )
    def post(self, request):
        serializer = ProfileUpsertSerializer(data=request.data, context={"identity_kinds": identity_kinds()})
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        identities = [(i["kind"], i["value"]) for i in fields.pop("identities", [])]
        keys = list(identities)
        for kind in (IdentityKind.PHONE, IdentityKind.EMAIL):
            try:
                value = normalise_identity(kind, fields.get(kind))
            except NormalisationError as error:
                raise ApiError(error.code, error, fields={kind: [str(error)]}, status_code=UNPROCESSABLE) from error
            if value and (kind, value) not in keys:
                keys.append((kind, value))
        refuse_suppressed(keys)
        partner = self.client.partner
        allowed = contactable(partner)
        for attempt in (1, 2):  # a concurrent call may create the same new identity first
            try:
                with self.audited_transaction() as closing:
                    # The customer's writes go into the transaction's last statement too, except a
                    # new birth date: the answer's read (consent of minors) must see that one.
                    upserted = profile_upsert(identities=identities, strong_kinds=strong_identity_kinds(),
                                              actor=self.actor, source=partner.code,
                                              into=None if "birth_date" in fields else closing, **fields)
                    profile = upserted.profile
                    self.audit_target = profile.uuid
                    self.audit_status = status.HTTP_201_CREATED if upserted.created else status.HTTP_200_OK
                    # With the audit row, in the transaction's last statement: the partner's link to the
                    # customer, and what the answer needs of a known one (may it see the contact data;
                    # the tags). A new customer has neither tags nor consent states yet.
                    closing.insert(customers_sent_rows(partner, [profile.uuid]), ignore_conflicts=True)
                    if upserted.identities is not None and not upserted.created:
                        closing.read(answer_facts(profile, allowed))
                break
            except IntegrityError:
                if attempt == 2:
                    raise ApiError("conflict", _("Another request changed this customer at the same time; retry."),
                                   status.HTTP_409_CONFLICT) from None
        if upserted.identities is None:  # merged: read what the merge brought together
            prefetch_related_objects([profile], "identities", "profile_tags__tag")
            output = output_for(self.client, profile, sent=frozenset(keys))
        else:
            may_contact = (contactable_when_new(partner) if upserted.created
                           else any(may for may, _tag in closing.rows))
            output = profile_output(profile, identities=upserted.identities,
                                    tags=[tag for _may, tag in closing.rows if tag is not None],
                                    withheld_from=None if may_contact else partner.code, sent=frozenset(keys))
        body = {
            "created": upserted.created,
            "merged": [str(merge.merged.uuid) for merge in upserted.merges],
            "profile": output,
        }
        return Response(body, status=self.audit_status)


class ProfileLookupView(PartnerAPIView):
    required_scopes = {"GET": Scope.PROFILES_READ}

    @extend_schema(
        operation_id="profiles_lookup", summary=_("Find a customer by one identity"),
        description=_("Give exactly one identity as a query parameter named after its kind — ?phone=, ?email=, "
                      "?crm_id=, ?wechat_openid=, ?wechat_unionid=, ?wechat_id=, ?device_id= or your own kind — or use "
                      "?kind=&value=. Values are normalised like imports (138 0013 8000 finds +8613800138000). "
                      "Needs profiles:read.") + " " + REACH,
        parameters=[
            OpenApiParameter("phone", str, description=_("A phone number in any format")),
            OpenApiParameter("email", str),
            OpenApiParameter("crm_id", str),
            OpenApiParameter("wechat_openid", str),
            OpenApiParameter("wechat_unionid", str),
            OpenApiParameter("wechat_id", str),
            OpenApiParameter("kind", str, description=_("Any identity kind, with value")),
            OpenApiParameter("value", str),
        ],
        responses={200: ProfileSerializer, **error_responses(400, 401, 403, 404, 422, 429)},
        examples=[examples.PROFILE_RESPONSE],
    )
    def get(self, request):
        kinds = identity_kinds()
        given = [(kind, request.query_params[kind]) for kind in sorted(kinds) if kind in request.query_params]
        if "kind" in request.query_params or "value" in request.query_params:
            given.append((request.query_params.get("kind", ""), request.query_params.get("value", "")))
        if len(given) != 1:
            raise ApiError("one_identity_required", _("Give exactly one identity, e.g. ?phone=13800138000."),
                           status_code=UNPROCESSABLE)
        kind, raw = given[0]
        if kind not in kinds:
            raise ApiError("unknown_identity_kind", _("Unknown identity kind “%(kind)s”.") % {"kind": kind},
                           fields={"kind": [_("Unknown identity kind “%(kind)s”.") % {"kind": kind}]},
                           status_code=UNPROCESSABLE)
        try:
            value = normalise_identity(kind, raw)
        except NormalisationError as error:
            raise ApiError(error.code, error, fields={kind: [str(error)]}, status_code=UNPROCESSABLE) from error
        # A customer outside your reach answers exactly like nobody: no way to learn who is a customer.
        customers = reachable(self.client, Profile.objects.exclude(status=ProfileStatus.ERASED))
        profile = profiles_for_output(customers).filter(
            identities__kind_id=kind, identities__value=value).first() if value else None
        if profile is None:
            raise ApiError("not_found", _("No customer has this identity."), status.HTTP_404_NOT_FOUND)
        self.audit_target = profile.uuid
        return Response(output_for(self.client, profile))


class ProfileDetailView(PartnerAPIView):
    required_scopes = {"GET": Scope.PROFILES_READ, "PATCH": Scope.PROFILES_WRITE}

    @extend_schema(
        operation_id="profiles_retrieve", summary=_("Get a customer by public id"),
        description=_("A merged customer answers with status merged and merged_into, the survivor's id. "
                      "Needs profiles:read.") + " " + REACH,
        responses={200: ProfileSerializer, **error_responses(401, 403, 404, 429)},
        examples=[examples.PROFILE_RESPONSE],
    )
    def get(self, request, profile_id):
        profile = partner_profile(self.client, profile_id)
        self.audit_target = profile.uuid
        return Response(output_for(self.client, profile))

    @extend_schema(
        operation_id="profiles_update", summary=_("Update a customer"),
        description=_("Changes the fields sent (blank clears) and adds the identities sent. Only the fields "
                      "listed are writable. Needs profiles:write."),
        request=ProfileUpdateSerializer,
        responses={200: ProfileSerializer, **error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)},
        examples=[examples.PATCH_REQUEST, examples.PROFILE_RESPONSE],
    )
    def patch(self, request, profile_id):
        profile = partner_profile(self.client, profile_id, active=True)
        self.audit_target = profile.uuid
        serializer = ProfileUpdateSerializer(data=request.data, context={"identity_kinds": identity_kinds()})
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        identities = [(i["kind"], i["value"]) for i in fields.pop("identities", [])]
        refuse_suppressed(identities)
        source = self.client.partner.code
        with transaction.atomic():
            profile_update(profile=profile, actor=self.actor, source=source, **fields)
            for kind, value in identities:
                identity_add(profile=profile, kind=kind, value=value, source=source)
        return Response(output_for(self.client, partner_profile(self.client, profile.uuid)))


class ProfileTagsView(PartnerAPIView):
    required_scopes = {"GET": (Scope.PROFILES_READ, Scope.TAGS_WRITE), "POST": Scope.TAGS_WRITE}

    @extend_schema(
        operation_id="profile_tags_list", summary=_("A customer's tags"),
        description=_("Needs profiles:read or tags:write."),
        responses={200: ProfileTagSerializer(many=True), **error_responses(401, 403, 404, 429)},
        examples=[examples.PROFILE_TAGS],
    )
    def get(self, request, profile_id):
        profile = partner_profile(self.client, profile_id)
        self.audit_target = profile.uuid
        tags = ProfileTag.objects.filter(profile=profile).select_related("tag").order_by("tag__slug")
        return Response(ProfileTagSerializer(tags, many=True).data)

    @extend_schema(
        operation_id="profile_tags_assign", summary=_("Give a customer a tag"),
        description=_("Manual tags only (rule and interest tags are computed). Giving a tag the customer already "
                      "has changes nothing (added: false). Needs tags:write."),
        request=TagAssignSerializer,
        responses={200: TagAssignResultSerializer, **error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)},
        examples=[examples.TAG_ASSIGN_REQUEST, examples.TAG_ASSIGN_RESPONSE],
    )
    def post(self, request, profile_id):
        profile = partner_profile(self.client, profile_id, active=True)
        self.audit_target = profile.uuid
        serializer = TagAssignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        tag = _assignable_tag(data["tag"])
        added = tag_assign(tag=tag, profiles=Profile.objects.filter(pk=profile.pk), source=TagSource.API,
                           actor=self.actor, reason=data.get("reason", ""), weight=data.get("weight"),
                           expires_at=data.get("expires_at"))
        return Response({"tag": tag.slug, "added": bool(added)})


class ProfileRecommendationsView(PartnerAPIView):
    required_scopes = {"GET": Scope.PROFILES_READ}

    @extend_schema(
        operation_id="profile_recommendations", summary=_("A customer's recommended products"),
        description=_("The customer's next-best products (at most 10, best first), learnt from what customers "
                      "view, put in their cart and buy together, weighted by recency, leaving out products they "
                      "bought recently; each with its reason. Where the customer's events name no product "
                      "(no product_id property), product categories instead, weighted by their interests too. "
                      "Computed nightly, and on demand for a customer who has none yet; a shorter list is filled "
                      "up with popular products or categories (reason popular). Needs profiles:read; a merged "
                      "customer answers 409 with its survivor."),
        responses={200: RecommendationSerializer(many=True), **error_responses(401, 403, 404, 409, 429)},
        examples=[examples.RECOMMENDATIONS],
    )
    def get(self, request, profile_id):
        profile = partner_profile(self.client, profile_id, active=True)
        self.audit_target = profile.uuid
        if not profile.recommendations.exists():  # none yet: computed now, stored for the next request
            recommendations_refresh_one(profile=profile)
        recommendations = profile_recommendations(profile)
        return Response(RecommendationSerializer(recommendations, many=True).data)


class ProfileTagDetailView(PartnerAPIView):
    required_scopes = {"DELETE": Scope.TAGS_WRITE}

    @extend_schema(
        operation_id="profile_tags_remove", summary=_("Take a tag off a customer"),
        description=_("Idempotent: removing a tag the customer does not have answers 204 too. Needs tags:write."),
        responses={204: OpenApiResponse(description=_("Removed (or was not there)")),
                   **error_responses(401, 403, 404, 409, 429)},
    )
    def delete(self, request, profile_id, tag_slug):
        profile = partner_profile(self.client, profile_id, active=True)
        self.audit_target = profile.uuid
        tag = _assignable_tag(tag_slug, in_path=True)
        tag_remove(tag=tag, profiles=Profile.objects.filter(pk=profile.pk), source=TagSource.API, actor=self.actor,
                   reason=_("removed over the API"))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _is_race(error: Exception) -> bool:
    """A unique violation or a deadlock between concurrent requests (PostgreSQL codes)."""
    return isinstance(error, IntegrityError) or getattr(error.__cause__, "sqlstate", None) in ("40P01", "40001")


def _assignable_tag(slug: str, *, in_path: bool = False) -> Tag:
    """The manual tag with this slug: unknown is a 422 when the body names it, a 404 when
    the URL does; a computed tag is a 409."""
    tag = Tag.objects.filter(slug=slug).first()
    if tag is None:
        message = _("No tag has the slug “%(slug)s”.") % {"slug": slug}
        if in_path:
            raise ApiError("unknown_tag", message, status.HTTP_404_NOT_FOUND)
        raise ApiError("unknown_tag", message, fields={"tag": [message]}, status_code=UNPROCESSABLE)
    if tag.kind != TagKind.MANUAL:
        raise ApiError("tag_not_manual", _("“%(tag)s” is computed by the platform and cannot be set over the API.")
                       % {"tag": tag.name}, status.HTTP_409_CONFLICT)
    return tag


class TagTaxonomyView(PartnerAPIView):
    required_scopes = {"GET": (Scope.PROFILES_READ, Scope.TAGS_WRITE)}

    @extend_schema(
        operation_id="tags_taxonomy", summary=_("The tag taxonomy"),
        description=_("The category tree (roots: basic, behavioural, interest, value) with its tags. "
                      "Needs profiles:read or tags:write."),
        responses={200: TagCategorySerializer(many=True), **error_responses(401, 403, 429)},
        examples=[examples.TAXONOMY],
    )
    def get(self, request):
        roots, stack = [], []
        for node in tag_tree():
            category = node["category"]
            entry = {
                "name": category.name, "code": category.code, "children": [],
                "tags": [{"slug": t.slug, "name": t.name, "kind": t.kind, "description": t.description,
                          "is_active": t.is_active} for t in node["tags"]],
            }
            del stack[node["depth"]:]
            (stack[-1]["children"] if stack else roots).append(entry)
            stack.append(entry)
        return Response(roots)


class EventBatchView(PartnerAPIView):
    required_scopes = {"POST": Scope.EVENTS_WRITE}

    @extend_schema(
        operation_id="events_batch", summary=_("Send a batch of events"),
        description=_(
            "Up to 1,000 events per request. Each event is identified by your external_id (per source): sending "
            "it again is reported as a duplicate and stored once, so retries are safe. Each event names its "
            "customer by public id (profile) or identities; unknown people are created. Every event gets its "
            "own result — accepted, duplicate, or rejected with an error — so one bad event does not sink the "
            "batch. Needs events:write."),
        request=EventBatchInSerializer,
        responses={200: EventBatchResultSerializer, **error_responses(400, 401, 403, 413, 415, 429)},
        examples=[examples.EVENTS_REQUEST, examples.EVENTS_RESPONSE],
    )
    def post(self, request):
        body = request.data
        events = body.get("events") if isinstance(body, dict) else None
        if isinstance(body, dict) and set(body) - {"events"}:
            raise ApiError("unknown_field", VALIDATION_MESSAGE,
                           fields={name: [_("This field cannot be set.")] for name in sorted(set(body) - {"events"})})
        if not isinstance(events, list):
            raise ApiError("invalid", _("Send {\"events\": [...]}."), fields={"events": [_("A list of events is required.")]})
        limit = settings.CDP_API_MAX_BATCH_EVENTS
        if len(events) > limit:
            raise ApiError("too_many_events", _("At most %(limit)s events per request.") % {"limit": limit},
                           fields={"events": [_("At most %(limit)s events per request.") % {"limit": limit}]})
        for attempt in (1, 2):  # ingest is idempotent: a batch that lost a race is simply sent again
            try:
                with self.audited_transaction() as closing:
                    result = events_ingest(events, partner_code=self.client.partner.code, actor=self.actor)
                    self.audit_count = result.accepted
                    closing.insert(customers_sent_rows(self.client.partner, {
                        row["profile"] for row in result.results if "profile" in row}), ignore_conflicts=True)
                break
            except MalformedBatch as malformed:
                raise ApiError(malformed.code, VALIDATION_MESSAGE, fields=malformed.fields) from None
            except (IntegrityError, OperationalError) as error:
                if attempt == 2 or not _is_race(error):
                    raise
        return Response({
            "accepted": result.accepted, "duplicates": result.duplicates, "rejected": result.rejected,
            "profiles_created": result.profiles_created, "results": result.results,
        })
