"""No destination writes its secret to a log record (every logger at DEBUG, the vendors'
SDKs and HTTP clients included), to a message's error or to an exception's text: not when
sending, not when the vendor refuses the secret, not when it cannot be reached."""
import logging
import socket

import boto3
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from moto.server import ThreadedMotoServer

from campaigns.destinations import DestinationError, OutgoingMessage, adapter_for
from campaigns.models import Destination

from .conftest import Receiver
from .test_destination_aliyun_sms import KEY_ID, KEY_SECRET, Dysmsapi
from .test_destination_email import PASSWORD, Mailbox
from .test_destination_wechat import APP_SECRET, WechatApi

pytestmark = [pytest.mark.django_db,
              # aiosmtpd's own warnings about its test set-up (AUTH without TLS on 127.0.0.1)
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
              pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")]
WRONG = "wrong-secret-must-not-leak-either"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ADDRESSES = {"webhook": "+8613800138000", "email": "li@example.com", "aliyun_sms": "+8613800138000",
             "wechat": "o_follower", "audience_file": "+8613800138000"}


def message(n, kind):
    return OutgoingMessage(delivery_id=n, key=f"cdp-{n}", address=ADDRESSES[kind],
                           customer=f"c{n}", campaign="双十一", variant="A", subject="主题", text="您好",
                           tokens={"name": "李女士"}, sms_template_code="SMS_1", sms_sign_name="星河",
                           wechat_template_id="TPL_1", unsubscribe_url="https://cdp.example/u/x")


@pytest.fixture
def webhook_setup():
    receiver = Receiver()
    yield Destination(name="w", kind="webhook", secret="whsec-must-not-leak", config={"url": receiver.url}), \
        {"url": f"http://127.0.0.1:{free_port()}/hook"}
    receiver.close()


@pytest.fixture
def email_setup():
    controller = Controller(Mailbox(), hostname="127.0.0.1", port=free_port(), auth_require_tls=False,
                            authenticator=lambda *args: AuthResult(success=True))
    controller.start()
    yield Destination(name="e", kind="email", secret=PASSWORD, config={
        "host": "127.0.0.1", "port": controller.port, "username": "shop", "from_address": "a@shop.example",
        "timeout": 2}), {"port": free_port()}
    controller.stop()


@pytest.fixture
def sms_setup():
    server = Dysmsapi()
    yield Destination(name="s", kind="aliyun_sms", secret=KEY_SECRET, config={
        "access_key_id": KEY_ID, "endpoint": server.http.url, "timeout": 2}), \
        {"endpoint": f"http://127.0.0.1:{free_port()}"}
    server.http.close()


@pytest.fixture
def wechat_setup():
    server = WechatApi("wx-secrets-test")
    yield Destination(name="wx", kind="wechat", secret=APP_SECRET, config={
        "appid": server.appid, "api_base": f"{server.http.url}/cgi-bin/"}), \
        {"api_base": f"http://127.0.0.1:{free_port()}/cgi-bin/"}
    server.http.close()


@pytest.fixture
def s3_setup():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1", aws_access_key_id="AKID",
                 aws_secret_access_key="x").create_bucket(Bucket="audiences")
    yield Destination(name="a", kind="audience_file", secret="s3-secret-must-not-leak", config={
        "storage": "s3", "bucket": "audiences", "endpoint_url": f"http://{host}:{port}", "region": "us-east-1",
        "access_key_id": "AKID"}), {"endpoint_url": f"http://127.0.0.1:{free_port()}"}
    server.stop()


@pytest.mark.parametrize("setup", ["webhook_setup", "email_setup", "sms_setup", "wechat_setup", "s3_setup"])
def test_no_adapter_writes_its_secret_to_logs_errors_or_exceptions(setup, request, caplog):
    destination, unreachable = request.getfixturevalue(setup)
    destination.save()
    secrets = [destination.secret, WRONG]
    texts = []
    caplog.set_level(logging.DEBUG)

    def attempt():
        results = adapter_for(destination).send_batch([message(1, destination.kind), message(2, destination.kind)])
        texts.extend(r.error for r in results)
        try:
            texts.append(adapter_for(destination).test_connection())
        except DestinationError as error:
            texts.append(str(error))
        return results

    assert {r.outcome for r in attempt()} == {"sent"}  # the secret is in use...
    destination.secret = WRONG  # ...refused...
    attempt()
    destination.config.update(unreachable)  # ...and the vendor out of reach
    attempt()

    logged = [record.getMessage() + str(record.exc_text or "") + repr(record.args) for record in caplog.records]
    assert caplog.records  # the clients did log at DEBUG
    for secret in secrets:
        assert not [text for text in logged + texts + [caplog.text] if secret in text], secret

