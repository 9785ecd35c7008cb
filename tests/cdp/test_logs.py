"""Phones and emails typed into searches and lookups stay out of the access logs."""
import datetime
import logging

import pytest

PHONE_SEARCH = "/admin/profiles/profile/?q=138+0013+8000&status__exact=active"
EMAIL_LOOKUP = "/api/v1/profiles/lookup/?email=wang.fang%40example.com"


class Remember(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def django_server_log():
    """What runserver's access log (the django.server logger) writes, as formatted."""
    handler = Remember()
    logger = logging.getLogger("django.server")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


@pytest.mark.parametrize("url", [
    PHONE_SEARCH, EMAIL_LOOKUP, "/api/v1/profiles/lookup/?phone=%2B8613800138000",
    "/admin/segments/segment/3/why/?profile=0086-138-0013-8000",
    "/admin/profiles/profile/1/change/?_changelist_filters=q%3D13800138000%26o%3D1",
])
def test_the_development_server_log_keeps_phones_and_emails_out(django_server_log, url):
    # when runserver logs a request whose address carries a phone or an email
    logging.getLogger("django.server").info('"%s" %s %s', f"GET {url} HTTP/1.1", "200", "5120")
    # then the line has the request without them
    line = django_server_log[-1]
    assert "[redacted]" in line and url.split("?")[0] in line
    for secret in ("13800138000", "138+0013+8000", "138-0013", "wang.fang", "13800138000"):
        assert secret not in line


def test_other_parameters_stay_readable(django_server_log):
    logging.getLogger("django.server").info('"%s" %s %s', f"GET {PHONE_SEARCH}&p=2&o=-3&before=12345678 HTTP/1.1",
                                            "200", "1")
    assert "status__exact=active&p=2&o=-3&before=12345678" in django_server_log[-1]


def test_gunicorns_access_log_keeps_them_out_of_the_request_line_and_the_referer(capsys):
    # given gunicorn's own access logger with its default format (as `gunicorn cdp.wsgi` runs it)
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    config = Config()
    config.set("accesslog", "-")
    gunicorn_log = Logger(config)

    class Response:
        status, sent, headers = "200 OK", 1024, [("Content-Type", "text/html")]

    class Request:
        headers = [("REFERER", f"https://cdp.example.com{EMAIL_LOOKUP}")]

    environ = {"REQUEST_METHOD": "GET", "RAW_URI": PHONE_SEARCH, "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": PHONE_SEARCH.split("?")[0], "QUERY_STRING": PHONE_SEARCH.split("?")[1],
               "REMOTE_ADDR": "10.0.0.7", "HTTP_REFERER": f"https://cdp.example.com{EMAIL_LOOKUP}",
               "HTTP_USER_AGENT": "Mozilla/5.0"}
    # when it logs a search by phone that came from an email lookup
    gunicorn_log.access(Response(), Request(), environ, datetime.timedelta(milliseconds=12))
    line = capsys.readouterr().out
    # then neither is in the line, which is otherwise gunicorn's usual one
    assert "GET /admin/profiles/profile/?q=[redacted]&status__exact=active HTTP/1.1" in line
    assert "lookup/?email=[redacted]" in line and "10.0.0.7" in line and "Mozilla/5.0" in line
    assert "13800138000" not in line and "138+0013+8000" not in line and "wang.fang" not in line
