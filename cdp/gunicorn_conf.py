"""gunicorn's settings for the web app: `gunicorn -c python:cdp.gunicorn_conf cdp.wsgi`.

Access log lines carry the request id (the X-Request-ID the app answered with); the
phones, e-mails and keys in their addresses are redacted by cdp.logs. gunicorn's own lines
(access and errors) use the app's format: JSON lines when CDP_LOG_FORMAT is json or the
production settings are used, so that the log shipper reads one format. With PROMETHEUS_MULTIPROC_DIR set, a worker that exits has its
metric files marked dead so that its gauges stop counting (counters keep their totals).
Everything here can still be overridden on the command line or with GUNICORN_CMD_ARGS.
"""
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
accesslog = "-"
errorlog = "-"
access_log_format = ('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms '
                     'request_id=%({x-request-id}o)s')



def _log_format() -> str:
    production = os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith(".production")
    return os.environ.get("CDP_LOG_FORMAT", "json" if production else "text")


def _logging() -> dict:
    from cdp.logs import FORMATTERS

    handler = {"class": "logging.StreamHandler", "formatter": _log_format(), "filters": ["context", "redact"],
               "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "cdp.observability.LogContextFilter"},
                    "redact": {"()": "cdp.logs.RedactPersonalData"}},
        "formatters": FORMATTERS,
        "handlers": {"gunicorn": handler},
        "root": {"handlers": ["gunicorn"], "level": "INFO"},  # until Django configures its own
        "loggers": {"gunicorn.error": {"handlers": ["gunicorn"], "level": "INFO", "propagate": False},
                    "gunicorn.access": {"handlers": ["gunicorn"], "level": "INFO", "propagate": False}},
    }


logconfig_dict = _logging()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
