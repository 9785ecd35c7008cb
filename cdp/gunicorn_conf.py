"""gunicorn's settings for the web app: `gunicorn -c python:cdp.gunicorn_conf cdp.wsgi`.

Access log lines carry the request id (the X-Request-ID the app answered with); the
phones, e-mails and keys in their addresses are redacted by cdp.logs (attached when Django
starts in each worker). With PROMETHEUS_MULTIPROC_DIR set, a worker that exits has its
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


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
