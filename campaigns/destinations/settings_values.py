"""Reading numbers from a destination's config: a wrong value is the destination's
fault, said in a translated DestinationError (not a 500 on the test button)."""
from django.utils.translation import gettext as _

from . import DestinationError


def config_number(config: dict, name: str, default: float) -> float:
    value = config.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1
    if number <= 0:
        raise DestinationError(_("The setting “%(name)s” must be a positive number.") % {"name": name},
                               retryable=False)
    return number
