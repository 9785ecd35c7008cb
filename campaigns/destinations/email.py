"""E-mail through Django's e-mail backend: the destination's own SMTP server, or the
project's EMAIL_BACKEND (an ESP through django-anymail, say) when config says
`"backend": "settings"`.

Config: host, port, username, use_tls (STARTTLS) or use_ssl, from_address, from_name,
timeout (seconds, default 10); the SMTP password is the destination's secret.

One EmailMultiAlternatives per message (text and an HTML alternative), all of a batch
over one connection. Each message carries `List-Unsubscribe: <our /u/ link>` and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058: mail clients POST to the
link, which our unsubscribe page accepts) and the same link in its footer. Its
Message-ID is derived from the delivery's key, the same on every attempt.

Per message: a 4xx SMTP answer, a timeout or a dropped connection is retried (the
rest of the batch too, when the connection is gone); a 5xx answer (recipient or
message refused) fails for good. SMTP servers do not de-duplicate, so the adapter is
not idempotent: a batch whose worker died is dead-lettered, not sent again.
"""
from __future__ import annotations

import smtplib
from email.utils import formataddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils import translation
from django.utils.html import escape, linebreaks, urlize
from django.utils.translation import gettext as _

from . import FAILED, RETRY, SENT, Adapter, DestinationError, OutgoingMessage, SendResult
from .settings_values import config_number

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def message_id(key: str, from_address: str) -> str:
    domain = from_address.rsplit("@", 1)[-1] if "@" in from_address else "localhost"
    return f"<{key}@{domain}>"


class EmailAdapter(Adapter):
    idempotent = False  # an SMTP server delivers a repeated message again

    def _from(self) -> tuple[str, str]:
        address = self.config.get("from_address") or settings.DEFAULT_FROM_EMAIL
        name = self.config.get("from_name") or ""
        return address, (formataddr((name, address)) if name else address)

    def _connection(self):
        if self.config.get("backend") == "settings":
            return get_connection(fail_silently=False)
        host = self.config.get("host", "")
        if not host:
            raise DestinationError(_("The e-mail destination has no SMTP host."), retryable=False)
        use_ssl = bool(self.config.get("use_ssl"))
        return get_connection(
            SMTP_BACKEND, fail_silently=False, host=host,
            port=int(config_number(self.config, "port", 465 if use_ssl else 25)),
            username=self.config.get("username") or "", password=self.destination.secret or "",
            use_tls=bool(self.config.get("use_tls")), use_ssl=use_ssl, timeout=config_number(self.config, "timeout", 10))

    def _open(self, connection) -> None:
        try:
            connection.open()
        except smtplib.SMTPAuthenticationError as error:
            raise DestinationError(_("The SMTP server refused the username or password (%(code)s).")
                                   % {"code": error.smtp_code}, retryable=False) from None
        except smtplib.SMTPResponseException as error:
            raise DestinationError(_("The SMTP server answered %(code)s.") % {"code": error.smtp_code},
                                   retryable=error.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError) as error:
            raise DestinationError(_("The SMTP server cannot be reached: %(error)s") % {"error": type(error).__name__},
                                   retryable=True) from None

    def _email(self, message: OutgoingMessage, connection) -> EmailMultiAlternatives:
        address, sender = self._from()
        text, html = message.text, linebreaks(urlize(escape(message.text), autoescape=False))
        headers = {"Message-ID": message_id(message.key, address)}
        if message.unsubscribe_url:
            with translation.override(settings.LANGUAGE_CODE):
                footer = _("Do not want these e-mails any more? Unsubscribe: %(url)s")
            text += "\n\n--\n" + footer % {"url": message.unsubscribe_url}
            html += '<hr><p style="font-size:12px;color:#888">%s</p>' % (
                escape(footer) % {"url": f'<a href="{escape(message.unsubscribe_url)}">'
                                         f'{escape(message.unsubscribe_url)}</a>'})
            headers["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email = EmailMultiAlternatives(subject=message.subject, body=text, from_email=sender, to=[message.address],
                                       headers=headers, connection=connection)
        email.attach_alternative(html, "text/html")
        return email

    def send_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        try:
            connection = self._connection()
            self._open(connection)
        except DestinationError as error:
            return self.all_failed(messages, error)
        results = []
        try:
            for index, message in enumerate(messages):
                try:
                    connection.send_messages([self._email(message, connection)])
                except smtplib.SMTPRecipientsRefused as error:
                    code = min((answer[0] for answer in error.recipients.values()), default=550)
                    results.append(_refused(message, code, _("The SMTP server refused the recipient (%(code)s).")))
                except smtplib.SMTPServerDisconnected:
                    # the connection is gone: this message and the rest of the batch later
                    error = DestinationError(_("The SMTP server closed the connection."), retryable=True)
                    return results + self.all_failed(messages[index:], error)
                except smtplib.SMTPResponseException as error:
                    results.append(_refused(message, error.smtp_code,
                                            _("The SMTP server refused the message (%(code)s).")))
                except (smtplib.SMTPException, OSError) as error:  # timeouts, resets
                    error = DestinationError(_("The SMTP server cannot be reached: %(error)s")
                                             % {"error": type(error).__name__}, retryable=True)
                    return results + self.all_failed(messages[index:], error)
                else:
                    results.append(SendResult(message.delivery_id, SENT,
                                              vendor_id=message_id(message.key, self._from()[0])))
        finally:
            try:
                connection.close()
            except (smtplib.SMTPException, OSError):
                pass
        return results

    def test_connection(self) -> str:
        connection = self._connection()
        self._open(connection)
        try:
            connection.close()
        except (smtplib.SMTPException, OSError):
            pass
        if self.config.get("backend") == "settings":
            return _("The e-mail backend %(backend)s is ready.") % {"backend": settings.EMAIL_BACKEND}
        return _("The SMTP server %(host)s accepted the connection.") % {"host": self.config["host"]}


def _refused(message: OutgoingMessage, code: int, text: str) -> SendResult:
    return SendResult(message.delivery_id, RETRY if 400 <= code < 500 else FAILED, error=text % {"code": code})
