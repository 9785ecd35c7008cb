import os

from celery import Celery

from .broker_filesystem import register as register_filesystem_broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
register_filesystem_broker()  # filesystem:// with messages written atomically

app = Celery("cdp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Request ids into the tasks a request queues, the worker's logs in our format, metrics.
from .observability import connect_signals  # noqa: E402

connect_signals()
