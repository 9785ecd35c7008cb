from django.core.exceptions import ValidationError


def action_form_value(request, form_class, field_name: str):
    """The cleaned value of an extra field of an admin ActionForm (e.g. the tag chosen
    next to "add tag"), or None. The admin validates the action itself; only this field
    is checked here, since the form's action choices are filled in per request."""
    try:
        return form_class.base_fields[field_name].clean(request.POST.get(field_name))
    except ValidationError:
        return None
