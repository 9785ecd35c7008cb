"""The e-mail destination against a real SMTP server on 127.0.0.1 (aiosmtpd, started by
the test): one message per customer over one login, the RFC 8058 unsubscribe headers and
the footer link, a Message-ID from the delivery key; 4xx and timeouts retried, 5xx failed."""
import email
import email.policy
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from campaigns.destinations import FAILED, RETRY, SENT, DestinationError, OutgoingMessage, adapter_for
from campaigns.models import Delivery, Destination
from campaigns.services.runs import run_decide
from campaigns.services.sending import destination_drain

from .conftest import campaign_for, consenting, segment_of

pytestmark = [pytest.mark.django_db,
              # aiosmtpd's own warnings about its test set-up (AUTH without TLS on 127.0.0.1)
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
              pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")]
PASSWORD = "smtp-pa55-word"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """aiosmtpd handler: 'full@…' is refused with 452 (try later), 'nobody@…' with 550;
    a message to 'drop@…' loses the connection."""

    def __init__(self):
        self.messages, self.logins = [], []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("full@"):
            return "452 4.2.2 Mailbox full"
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if envelope.rcpt_tos[0].startswith("drop@"):
            server.transport.close()
            return "250 never heard"
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content,
                                                                           policy=email.policy.default)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    mailbox = Mailbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        login, password = (v.decode() if isinstance(v, bytes) else v for v in (auth_data.login, auth_data.password))
        mailbox.logins.append(login)
        return AuthResult(success=(login, password) == ("shop", PASSWORD), handled=False)

    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                            auth_require_tls=False, auth_required=True)
    controller.start()
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


@pytest.fixture
def destination(smtp):
    return Destination.objects.create(
        name="邮件", kind="email", secret=PASSWORD, rate_per_second=10_000,
        config={"host": "127.0.0.1", "port": smtp.port, "username": "shop", "from_address": "news@shop.example",
                "from_name": "星河商城", "timeout": 2})


def message(n, address, **fields):
    return OutgoingMessage(delivery_id=n, key=f"cdp-{n}", address=address, customer=f"c{n}", campaign="双十一",
                           variant="A", subject=fields.pop("subject", "会员专享"), text=fields.pop("text", "您好"),
                           unsubscribe_url=f"https://cdp.example/u/tok{n}", **fields)


def test_a_batch_goes_out_over_one_login_with_unsubscribe_headers_footer_and_a_stable_message_id(destination, smtp):
    results = adapter_for(destination).send_batch([
        message(1, "li@example.com", text="李女士，您好\n优惠见 https://cdp.example/r/abc"),
        message(2, "wang@example.com", subject="王先生专享")])

    assert [(r.delivery_id, r.outcome) for r in results] == [(1, SENT), (2, SENT)]
    assert smtp.logins == ["shop"]  # one connection, one login for the batch
    (to, first), (_to, second) = smtp.messages
    assert to == ["li@example.com"] and first["Subject"] == "会员专享" and second["Subject"] == "王先生专享"
    assert first["From"].addresses[0].display_name == "星河商城"
    assert first["From"].addresses[0].addr_spec == "news@shop.example"
    assert first["Message-ID"] == "<cdp-1@shop.example>" and results[0].vendor_id == "<cdp-1@shop.example>"
    assert first["List-Unsubscribe"] == "<https://cdp.example/u/tok1>"
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = first.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = first.get_body(("html",)).get_content()
    assert text.startswith("李女士，您好\n优惠见 https://cdp.example/r/abc")
    assert "https://cdp.example/u/tok1" in text.split("--")[-1]
    assert '<a href="https://cdp.example/r/abc"' in html and '<a href="https://cdp.example/u/tok1">' in html


def test_the_footer_is_in_the_messages_language(destination, smtp, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    adapter_for(destination).send_batch([message(1, "li@example.com")])
    assert "退订" in smtp.messages[0][1].get_body(("plain",)).get_content()


def test_a_4xx_recipient_is_retried_and_a_5xx_one_fails_while_the_rest_of_the_batch_goes(destination, smtp):
    results = adapter_for(destination).send_batch([
        message(1, "full@example.com"), message(2, "nobody@example.com"), message(3, "li@example.com")])

    assert [(r.delivery_id, r.outcome) for r in results] == [(1, RETRY), (2, FAILED), (3, SENT)]
    assert "452" in results[0].error and "550" in results[1].error
    assert [to for to, _m in smtp.messages] == [["li@example.com"]]


def test_a_server_that_does_not_answer_in_time_means_retry(destination):
    with socket.socket() as silent:  # accepts the connection, never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        destination.config.update(port=silent.getsockname()[1], timeout=0.5)

        results = adapter_for(destination).send_batch([message(1, "li@example.com"), message(2, "wang@example.com")])

    assert {r.outcome for r in results} == {RETRY}


def test_a_lost_connection_retries_the_message_and_the_rest_of_the_batch(destination, smtp):
    results = adapter_for(destination).send_batch([
        message(1, "li@example.com"), message(2, "drop@example.com"), message(3, "wang@example.com")])

    assert [r.outcome for r in results] == [SENT, RETRY, RETRY]
    assert [to for to, _m in smtp.messages] == [["li@example.com"]]


def test_a_setting_that_is_not_a_number_is_named_not_a_crash(destination):
    destination.config["port"] = "twenty-five"
    with pytest.raises(DestinationError) as wrong:
        adapter_for(destination).test_connection()
    assert "port" in str(wrong.value) and not wrong.value.retryable
    assert adapter_for(destination).send_batch([message(1, "li@example.com")])[0].outcome == FAILED


def test_a_wrong_password_fails_the_batch_for_good_and_the_connection_test_says_so(destination, smtp):
    destination.secret = "wrong"

    results = adapter_for(destination).send_batch([message(1, "li@example.com")])

    assert results[0].outcome == FAILED and "535" in results[0].error and "wrong" not in results[0].error
    with pytest.raises(DestinationError) as refused:
        adapter_for(destination).test_connection()
    assert not refused.value.retryable and "wrong" not in str(refused.value)
    assert smtp.messages == []


def test_the_connection_test_logs_in(destination, smtp):
    assert "127.0.0.1" in adapter_for(destination).test_connection()
    assert smtp.logins == ["shop"]


def test_the_settings_backend_is_used_when_config_says_so(settings):
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    destination = Destination.objects.create(name="ESP", kind="email", config={
        "backend": "settings", "from_address": "news@shop.example"})

    results = adapter_for(destination).send_batch([message(7, "li@example.com")])

    assert results[0].outcome == SENT and mail.outbox[0].to == ["li@example.com"]
    assert mail.outbox[0].extra_headers["List-Unsubscribe"] == "<https://cdp.example/u/tok7>"
    assert "locmem" in adapter_for(destination).test_connection()


def test_a_campaign_sends_each_customer_their_own_unsubscribe_link_that_unsubscribes(destination, smtp, settings,
                                                                                      client):
    settings.CAMPAIGN_QUIET_HOURS = {}
    people = consenting("email_marketing", n=2)
    campaign = campaign_for(segment_of(people), destination, purpose="email_marketing", body="{{ name }}，您好")
    campaign.variants.update(subject="{{ name }}的专属优惠")
    campaign.status = campaign.Status.SENDING
    campaign.save()
    run_decide(campaign=campaign)

    assert destination_drain(destination_id=destination.pk, budget_seconds=10).sent == 2

    received = {to[0]: m for to, m in smtp.messages}
    mine = received[people[0].email]
    assert mine["Subject"] == f"{people[0].name}的专属优惠"
    link = mine["List-Unsubscribe"].strip("<>")
    response = client.post(link[link.index("/u/"):])  # the one-click POST of RFC 8058
    assert response.status_code == 200
    delivery = Delivery.objects.get(profile=people[0])
    assert delivery.unsubscribed_at is not None and mine["Message-ID"] == f"<cdp-{delivery.pk}@shop.example>"
