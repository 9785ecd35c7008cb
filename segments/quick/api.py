"""GET /api/v1/segments/parse/?q=…: the quick audience parser for partners (segments:read).
A partner's line may name only the segments shared with it."""
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from cdp.api.errors import ApiError
from cdp.api.schema import error_responses
from cdp.api.views import PartnerGenericView
from cdp.models import Scope

from .parse import quick_parse


class _SpanSerializer(serializers.Serializer):
    start = serializers.IntegerField(help_text=gettext_lazy("First character (0-based) in the line."))
    end = serializers.IntegerField(help_text=gettext_lazy("One past the last character."))
    text = serializers.CharField()


class _UnderstoodSerializer(_SpanSerializer):
    label = serializers.CharField(help_text=gettext_lazy("What the piece was read as, e.g. “城市：上海”."))


class _UnknownSerializer(_SpanSerializer):
    suggestions = serializers.ListField(child=serializers.CharField(),
                                        help_text=gettext_lazy("Phrases it may have meant (did you mean)."))


class _ChoiceSerializer(serializers.Serializer):
    key = serializers.CharField(help_text=gettext_lazy("Pass it as ?choose= to take this meaning."))
    label = serializers.CharField()


class _AmbiguitySerializer(_SpanSerializer):
    chosen = serializers.CharField(help_text=gettext_lazy("The key of the meaning the definition uses."))
    choices = _ChoiceSerializer(many=True)


class _SuggestionSerializer(_SpanSerializer):
    replacement = serializers.CharField()


class _ErrorSerializer(serializers.Serializer):
    path = serializers.CharField()
    message = serializers.CharField()


class ParseSerializer(serializers.Serializer):
    query = serializers.CharField(help_text=gettext_lazy("The line as read (at most 300 characters)."))
    definition = serializers.JSONField(allow_null=True, help_text=gettext_lazy(
        "The segment definition in the condition language; null when nothing was understood."))
    understood = _UnderstoodSerializer(many=True)
    unknown = _UnknownSerializer(many=True, help_text=gettext_lazy("Pieces not understood, never dropped silently."))
    ambiguities = _AmbiguitySerializer(many=True)
    suggestions = _SuggestionSerializer(many=True)
    errors = _ErrorSerializer(many=True, help_text=gettext_lazy("Problems of the definition, by node path."))


EXAMPLE = {
    "query": "上海+女性+喜欢运动鞋+高购买频率",
    "definition": {"all": [{"field": "city", "op": "eq", "value": "上海"},
                           {"field": "gender", "op": "eq", "value": "female"},
                           {"tag": "sneaker-lover", "op": "has"}, {"tag": "frequent-buyer", "op": "has"}]},
    "understood": [{"start": 0, "end": 2, "text": "上海", "label": "城市：上海"}],
    "unknown": [], "ambiguities": [], "suggestions": [], "errors": [],
}


class SegmentParseView(PartnerGenericView):
    required_scopes = {"GET": Scope.SEGMENTS_READ}

    @extend_schema(
        operation_id="segments_parse", summary=_("Read an audience written in one line"),
        description=_("Turns a line such as 上海+女性+喜欢运动鞋+高购买频率 or “women in Shanghai who like sneakers, "
                      "high spend” into a segment definition, with the pieces not understood, ambiguous words and "
                      "“did you mean” suggestions. Needs segments:read."),
        parameters=[
            OpenApiParameter("q", {"type": "string", "minLength": 1, "maxLength": 1000, "pattern": r"\S"},
                             required=True,
                             description=_("The line (the first 300 characters are read).")),
            OpenApiParameter("choose", {"type": "array", "items": {"type": "string", "maxLength": 200}},
                             required=False, explode=True,
                             description=_("Keys of the meanings to take for ambiguous words (from “ambiguities”).")),
        ],
        responses={200: ParseSerializer, **error_responses(400, 401, 403, 429)},
        examples=[OpenApiExample("a line", response_only=True, value=EXAMPLE)],
    )
    def get(self, request):
        line = request.query_params.get("q", "")
        if not line.strip():
            raise ApiError("q_required", _("Give the audience as ?q=, e.g. ?q=上海+女性."),
                           fields={"q": [_("This parameter is required.")]})
        if len(line) > 1000 or "\x00" in line:
            raise ApiError("invalid", _("The line is too long or holds a NUL character; send at most %(n)s "
                                        "characters.") % {"n": 1000}, fields={"q": [_("Too long.")]})
        choose = request.query_params.getlist("choose")
        if any(len(key) > 200 for key in choose):
            raise ApiError("invalid", _("A meaning's key is at most 200 characters, as “ambiguities” gives it."),
                           fields={"choose": [_("Too long.")]})
        result = quick_parse(line, choose=choose[:20],
                             partner=request.user.partner)
        return Response(ParseSerializer(result.as_dict()).data)
