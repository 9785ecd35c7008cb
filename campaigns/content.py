"""Message content: templates with a fixed set of tokens, checked on save and rendered
per customer in a restricted context.

Templates use Django's template language, but only plain `{{ token }}` variables (no
dots, so no attribute access), a few text filters and `{% if %}`; the context holds
strings only. Anything else is refused when the variant is saved, with its line.
"""
import math
from dataclasses import dataclass

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, Lexer, TextNode, TokenType, VariableNode
from django.template.defaulttags import IfNode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

TOKENS = {
    "name": gettext_lazy("the customer's name, or a polite form of address"),
    "city": gettext_lazy("city"),
    "tier": gettext_lazy("value group (RFM) or lifecycle stage"),
    "top_interest": gettext_lazy("the strongest interest tag"),
    "recommended": gettext_lazy("the customer's top recommended product (or category)"),
    "coupon": gettext_lazy("a coupon code from the variant's pool"),
    "link": gettext_lazy("the tracked link"),
    "unsubscribe": gettext_lazy("the unsubscribe link"),
}
FILTERS = {"default", "upper", "lower", "title", "truncatechars", "slice", "first"}
TAGS = {"if", "elif", "else", "endif"}
SMS_OPT_OUT = "拒收请回复R"
SMS_SINGLE, SMS_PART = 70, 67

_engine = Engine(debug=True, libraries={}, builtins=[], autoescape=False)


@dataclass(frozen=True)
class ContentError(Exception):
    line: int
    message: str

    def __str__(self):
        return _("Line %(line)s: %(message)s") % {"line": self.line, "message": self.message}


def _line(source: str, position: tuple[int, int] | None) -> int:
    return source.count("\n", 0, position[0]) + 1 if position else 1


def _check_filter_expression(expression: FilterExpression, source: str, position) -> None:
    variable = expression.var
    name = getattr(variable, "var", None)
    if getattr(variable, "literal", None) is None and isinstance(name, str):
        if "." in name or name not in TOKENS:
            raise ContentError(_line(source, position),
                               _("unknown token “%(token)s”; use one of: %(tokens)s")
                               % {"token": name, "tokens": ", ".join(TOKENS)})
    for function, _args in expression.filters:
        if function.__name__ not in FILTERS and getattr(function, "_filter_name", "") not in FILTERS:
            raise ContentError(_line(source, position), _("the filter “%(filter)s” is not allowed")
                               % {"filter": getattr(function, "_filter_name", function.__name__)})


def _check_nodes(nodelist, source: str) -> None:
    for node in nodelist:
        position = getattr(getattr(node, "token", None), "position", None)
        if isinstance(node, TextNode):
            continue
        if isinstance(node, VariableNode):
            _check_filter_expression(node.filter_expression, source, position)
        elif isinstance(node, IfNode):
            for condition, branch in node.conditions_nodelists:
                for variable in _condition_variables(condition):
                    _check_filter_expression(variable, source, position)
                _check_nodes(branch, source)
        else:
            raise ContentError(_line(source, position),
                               _("only {{ token }} and {%% if %%} are allowed here, not “%(tag)s”")
                               % {"tag": getattr(getattr(node, "token", None), "contents", type(node).__name__)})


def _condition_variables(condition):
    """The FilterExpressions an {% if %} condition reads."""
    if condition is None:
        return []
    found = []
    for attribute in ("first", "second"):
        child = getattr(condition, attribute, None)
        if child is not None:
            found.extend(_condition_variables(child))
    value = getattr(condition, "value", None)
    if isinstance(value, FilterExpression):
        found.append(value)
    return found


def template_compile(source: str):
    """The checked template; raises ContentError naming the line and the token."""
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK and token.split_contents()[0] not in TAGS:
            raise ContentError(token.lineno, _("only {{ token }} and {%% if %%} are allowed here, not “%(tag)s”")
                               % {"tag": token.split_contents()[0]})
    try:
        template = _engine.from_string(source)
    except TemplateSyntaxError as error:
        info = getattr(error, "template_debug", None) or {}
        raise ContentError(info.get("line", 1), str(error.args[0] if error.args else error)) from None
    _check_nodes(template.nodelist, source)
    return template


def template_render(template, tokens: dict[str, str]) -> str:
    return template.render(Context({name: str(tokens.get(name, "")) for name in TOKENS}, autoescape=False))


def sms_text(body: str, sign_name: str) -> str:
    """What the phone shows: 【signature】 text and the opt-out the law asks for."""
    text = body.rstrip()
    if SMS_OPT_OUT not in text:
        text = f"{text} {SMS_OPT_OUT}"
    return f"【{sign_name}】{text}" if sign_name else text


def sms_parts(text: str) -> int:
    """Billable SMS segments of a message in UCS-2: 70 characters fit one, longer
    messages are split into parts of 67."""
    return 1 if len(text) <= SMS_SINGLE else math.ceil(len(text) / SMS_PART)
