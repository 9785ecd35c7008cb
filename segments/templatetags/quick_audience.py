"""{% quick_audience_box "builder" %}: the quick audience box on a page (the segment
builder, the customer list, the campaign audience step), whatever view renders it."""
from django import template
from django.utils.translation import gettext as _

from segments.quick.admin import quick_audience_context

register = template.Library()


@register.inclusion_tag("admin/segments/quick_audience.html", takes_context=True)
def quick_audience_box(context, mode: str):
    request = context["request"]
    return quick_audience_context(request, mode) | {"texts": box_text(), "texts_id": f"quick-audience-texts-{mode}"}


def box_text() -> dict[str, str]:
    """The box's words for quick-audience.js ({n}, {s} filled in there)."""
    return {
        "understood": _("Understood:"), "not_understood": _("Not understood:"),
        "did_you_mean": _("Did you mean"), "which_one": _("“{s}” means several things; which one?"),
        "nothing": _("Nothing in this line was understood yet."), "failed": _("The line could not be read: {s}"),
        "counting": _("Counting…"), "count": _("{n} matching customers"),
        "show_customers": _("Show these customers"), "save_as_segment": _("Save as a segment…"),
        "create_segment": _("Create a segment from this line"), "created": _("Segment “{s}” created and chosen."),
        "invalid": _("This line gives a condition with problems: {s}"),
        "too_long": _("Only the first 300 characters are read."),
    }
