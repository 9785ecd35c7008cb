"""Audience file: the audience as CSV for an ad platform's custom audience or a partner,
to a folder or an S3-compatible bucket (django-storages).

Config: storage "folder" with path; or "s3" with bucket, endpoint_url (any
S3-compatible service: AWS, Alibaba OSS, Tencent COS, MinIO), region, access_key_id
and optional prefix (the secret access key is the destination's secret); hash
(true: SHA-256 hex of the normalised value instead of the value); phone_format:
  "e164"     +8613800138000  Google Customer Match (the default),
  "digits"   8613800138000   Meta (Facebook) custom audiences: country code, no "+",
  "national" 13800138000     Tencent Ads (腾讯广告) and Ocean Engine (巨量引擎): the 11
                              digits of a mainland mobile (others keep their country code).
E-mails are trimmed and lower-cased before hashing, as every platform asks.

Columns: customer_id (the public id), phone, email (or phone_sha256, email_sha256).
A delivery carries one address, that of the campaign's purpose's channel: the file
holds that one (SMS → phone, e-mail → email) and nothing the purpose does not cover.

Each batch writes one part per run: <campaign id>/<run id>/part-<first delivery
id>.csv. A retried batch overwrites its own part, and an audience is a set (a row twice
adds nobody twice), so the adapter counts as idempotent.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import defaultdict

import phonenumbers
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.utils.translation import gettext as _

from ..models import Delivery
from . import SENT, Adapter, DestinationError, OutgoingMessage, SendResult

PHONE_FORMATS = ("e164", "digits", "national")
PROBE = ".cdp-connection-test"


def normalised_email(value: str) -> str:
    return value.strip().lower()


def normalised_phone(value: str, phone_format: str = "e164") -> str:
    """The phone as the platform takes it; "" for what is not a phone number."""
    try:
        number = phonenumbers.parse(value.strip(), "CN")
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_possible_number(number):
        return ""
    national = phonenumbers.national_significant_number(number)
    if phone_format == "national" and number.country_code == 86:
        return national
    if phone_format in ("digits", "national"):
        return f"{number.country_code}{national}"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest() if value else ""


class AudienceFileAdapter(Adapter):
    idempotent = True  # a retried batch rewrites its own part file; an audience is a set

    @property
    def hashed(self) -> bool:
        return bool(self.config.get("hash"))

    def _storage(self):
        kind = self.config.get("storage", "folder")
        if kind == "folder":
            path = self.config.get("path", "")
            if not path or not os.path.isabs(path):
                raise DestinationError(_("The audience file destination needs an absolute folder path."),
                                       retryable=False)
            return FileSystemStorage(location=path, allow_overwrite=True)
        if kind == "s3":
            from storages.backends.s3 import S3Storage

            if not self.config.get("bucket"):
                raise DestinationError(_("The audience file destination needs a bucket."), retryable=False)
            return S3Storage(
                bucket_name=self.config["bucket"], endpoint_url=self.config.get("endpoint_url") or None,
                region_name=self.config.get("region") or None, access_key=self.config.get("access_key_id") or None,
                secret_key=self.destination.secret or None, location=self.config.get("prefix", ""),
                file_overwrite=True, default_acl=None, querystring_auth=False, addressing_style="path",
                client_config=BotoConfig(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1,
                                                                                         "mode": "standard"}))
        raise DestinationError(_("Unknown storage “%(storage)s”: use folder or s3.") % {"storage": kind},
                               retryable=False)

    def _write(self, storage, name: str, content: bytes) -> None:
        try:
            storage.save(name, ContentFile(content))
        except (PermissionError, FileNotFoundError, NotADirectoryError) as error:
            raise DestinationError(_("The folder cannot be written: %(error)s") % {"error": type(error).__name__},
                                   retryable=False) from None
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            code = error.response.get("Error", {}).get("Code", "")
            raise DestinationError(_("The bucket refused the file: %(code)s") % {"code": code or status},
                                   retryable=status >= 500 or status == 429 or code in ("SlowDown", "RequestTimeout")) \
                from None
        except (BotoCoreError, OSError) as error:
            raise DestinationError(_("The storage cannot be reached: %(error)s") % {"error": type(error).__name__},
                                   retryable=True) from None

    def rows(self, messages: list[OutgoingMessage]) -> bytes:
        phone_format = self.config.get("phone_format", "e164")
        if phone_format not in PHONE_FORMATS:
            raise DestinationError(_("Unknown phone format “%(format)s”: use e164, digits or national.")
                                   % {"format": phone_format}, retryable=False)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["customer_id", "phone_sha256", "email_sha256"] if self.hashed
                        else ["customer_id", "phone", "email"])
        for message in messages:
            email = normalised_email(message.address) if "@" in message.address else ""
            phone = "" if email else normalised_phone(message.address, phone_format)
            writer.writerow([message.customer, sha256(phone), sha256(email)] if self.hashed
                            else [message.customer, phone, email])
        return out.getvalue().encode()

    def send_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        runs = {pk: (campaign_id, run_id) for pk, campaign_id, run_id in Delivery.objects.filter(
            pk__in=[m.delivery_id for m in messages]).values_list("pk", "campaign_id", "run_id")}
        parts = defaultdict(list)
        for message in messages:
            parts[runs.get(message.delivery_id, (0, 0))].append(message)
        try:
            storage = self._storage()
        except DestinationError as error:
            return self.all_failed(messages, error)
        results = []
        for (campaign_id, run_id), part in parts.items():
            part.sort(key=lambda m: m.delivery_id)
            name = f"{campaign_id}/{run_id}/part-{part[0].delivery_id}.csv"
            try:
                self._write(storage, name, self.rows(part))
            except DestinationError as error:
                results += self.all_failed(part, error)
            else:
                results += [SendResult(m.delivery_id, SENT, vendor_id=name) for m in part]
        return results

    def test_connection(self) -> str:
        storage = self._storage()
        self._write(storage, PROBE, b"ok\n")
        try:
            storage.delete(PROBE)
        except (ClientError, BotoCoreError, OSError):
            pass
        if self.config.get("storage", "folder") == "s3":
            return _("The bucket %(bucket)s accepts files.") % {"bucket": self.config["bucket"]}
        return _("The folder %(path)s accepts files.") % {"path": self.config["path"]}
