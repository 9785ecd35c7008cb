"""A destination's connection test, recorded on it (last_test_at / last_test_result)."""
import logging

from django.utils import timezone
from django.utils.translation import gettext as _

from ..destinations import DestinationError, adapter_for
from ..models import Destination

log = logging.getLogger(__name__)


def destination_test(*, destination: Destination) -> tuple[bool, str]:
    """Ask the destination whether it answers; (ok, a translated sentence saying what happened)."""
    try:
        text, ok = adapter_for(destination).test_connection(), True
    except DestinationError as error:
        text, ok = str(error), False
    except Exception as error:  # noqa: BLE001 — a test reports whatever stopped it, never a server error
        log.warning("connection test of destination %s failed: %s", destination.pk, type(error).__name__)
        text, ok = _("The test failed: %(error)s") % {"error": type(error).__name__}, False
    result = (_("OK: %(text)s") if ok else _("Failed: %(text)s")) % {"text": text}
    destination.last_test_at, destination.last_test_result = timezone.now(), result[:300]
    destination.save(update_fields=["last_test_at", "last_test_result"])
    return ok, result
