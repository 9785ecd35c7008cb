"""The audience file destination: CSV parts to a folder (a tmp dir) and to an S3 bucket
(moto's server mode on 127.0.0.1, read back with boto3), phones and e-mails clear or
SHA-256 of the normalised value; a retried batch rewrites its own part."""
import csv
import hashlib
import io
import socket

import boto3
import pytest
from moto.server import ThreadedMotoServer

from campaigns.destinations import FAILED, RETRY, SENT, DestinationError, OutgoingMessage, adapter_for
from campaigns.destinations.audience_file import normalised_phone
from campaigns.models import Campaign, Delivery, Destination
from campaigns.services.runs import run_decide
from campaigns.services.sending import destination_drain

from .conftest import campaign_for, consenting, segment_of

pytestmark = pytest.mark.django_db
S3_SECRET = "s3-secret-access-key-for-tests"


def message(n, address, customer=None):
    return OutgoingMessage(delivery_id=n, key=f"cdp-{n}", address=address, customer=customer or f"uuid-{n}",
                           campaign="双十一", variant="A", subject="", text="")


def read(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode())))


@pytest.fixture
def folder(tmp_path):
    return Destination.objects.create(name="人群包", kind="audience_file", rate_per_second=10_000,
                                      config={"storage": "folder", "path": str(tmp_path)})


@pytest.fixture
def sms_campaign(folder, settings):
    settings.CAMPAIGN_QUIET_HOURS = {}

    def launch(destination, n=3):
        people = consenting("sms_marketing", n=n)
        campaign = campaign_for(segment_of(people), destination)
        campaign.status = Campaign.Status.SENDING
        campaign.save()
        return people, campaign, run_decide(campaign=campaign)
    return launch


def test_a_campaigns_audience_lands_in_its_run_folder_as_one_part_per_batch(folder, sms_campaign, tmp_path):
    people, campaign, run = sms_campaign(folder)

    assert destination_drain(destination_id=folder.pk, budget_seconds=10).sent == 3

    first = Delivery.objects.filter(run=run).order_by("pk").first()
    part = tmp_path / str(campaign.pk) / str(run.pk) / f"part-{first.pk}.csv"
    assert {tuple(row.values()) for row in read(part.read_bytes())} == {(str(p.uuid), p.phone, "") for p in people}
    assert first.vendor_id == f"{campaign.pk}/{run.pk}/part-{first.pk}.csv"


def test_hashed_values_are_sha256_of_the_normalised_phone_and_email(folder, tmp_path):
    folder.config.update(hash=True, phone_format="national")
    results = adapter_for(folder).send_batch([message(1, "+86 138 0013 8000"), message(2, " Li.Na@Example.COM ")])

    assert {r.outcome for r in results} == {SENT}
    (part,) = tmp_path.glob("0/0/part-1.csv")  # not deliveries of a run: campaign and run 0
    rows = read(part.read_bytes())
    assert list(rows[0]) == ["customer_id", "phone_sha256", "email_sha256"]
    assert rows[0] == {"customer_id": "uuid-1", "phone_sha256": hashlib.sha256(b"13800138000").hexdigest(),
                       "email_sha256": ""}
    assert rows[1]["email_sha256"] == hashlib.sha256(b"li.na@example.com").hexdigest()
    assert "13800138000" not in part.read_text() and "example" not in part.read_text()


@pytest.mark.parametrize("phone_format,expected", [("e164", "+8613800138000"), ("digits", "8613800138000"),
                                                   ("national", "13800138000")])
def test_phone_formats_of_the_ad_platforms(phone_format, expected):
    assert normalised_phone("+86 138-0013-8000", phone_format) == expected
    assert normalised_phone("+85261234567", phone_format) == ("+85261234567" if phone_format == "e164"
                                                              else "85261234567")


def test_a_retried_batch_overwrites_its_own_part(folder, tmp_path):
    adapter_for(folder).send_batch([message(5, "+8613800138000"), message(6, "+8613900139000")])
    adapter_for(folder).send_batch([message(5, "+8613800138000"), message(6, "+8613900139000")])

    assert [p.name for p in tmp_path.glob("0/0/*")] == ["part-5.csv"]
    assert len(read((tmp_path / "0/0/part-5.csv").read_bytes())) == 2


def test_an_unwritable_folder_or_a_relative_path_fails_for_good(folder, tmp_path):
    (tmp_path / "a-file").write_text("x")
    folder.config["path"] = str(tmp_path / "a-file")
    assert adapter_for(folder).send_batch([message(1, "+8613800138000")])[0].outcome == FAILED
    with pytest.raises(DestinationError):
        adapter_for(folder).test_connection()

    folder.config["path"] = "relative/dir"
    assert adapter_for(folder).send_batch([message(1, "+8613800138000")])[0].outcome == FAILED


def test_the_folder_connection_test_leaves_nothing_behind(folder, tmp_path):
    assert str(tmp_path) in adapter_for(folder).test_connection()
    assert list(tmp_path.iterdir()) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(moto):
    s3 = boto3.client("s3", endpoint_url=moto, region_name="cn-north-1", aws_access_key_id="AKIDTEST",
                      aws_secret_access_key=S3_SECRET)
    name = f"audiences-{free_port()}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"})
    return s3, name


@pytest.fixture
def s3_destination(moto, bucket):
    return Destination.objects.create(name="S3 人群包", kind="audience_file", secret=S3_SECRET, rate_per_second=10_000,
                                      config={"storage": "s3", "bucket": bucket[1], "endpoint_url": moto,
                                              "region": "cn-north-1", "access_key_id": "AKIDTEST",
                                              "prefix": "cdp", "hash": True})


def test_parts_go_to_the_bucket_under_the_prefix(s3_destination, bucket, sms_campaign):
    s3, name = bucket
    people, campaign, run = sms_campaign(s3_destination, n=2)

    assert destination_drain(destination_id=s3_destination.pk, budget_seconds=10).sent == 2

    first = Delivery.objects.filter(run=run).order_by("pk").first()
    key = f"cdp/{campaign.pk}/{run.pk}/part-{first.pk}.csv"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == [key]
    rows = read(s3.get_object(Bucket=name, Key=key)["Body"].read())
    assert {r["phone_sha256"] for r in rows} == {hashlib.sha256(p.phone.encode()).hexdigest() for p in people}


def test_the_bucket_connection_test_writes_and_removes_a_probe(s3_destination, bucket):
    s3, name = bucket
    assert name in adapter_for(s3_destination).test_connection()
    assert s3.list_objects_v2(Bucket=name).get("KeyCount") == 0


def test_a_missing_bucket_fails_for_good_and_an_unreachable_endpoint_is_retried(s3_destination):
    s3_destination.config["bucket"] = "no-such-bucket"
    result = adapter_for(s3_destination).send_batch([message(1, "+8613800138000")])[0]
    assert result.outcome == FAILED and "NoSuchBucket" in result.error

    s3_destination.config["endpoint_url"] = f"http://127.0.0.1:{free_port()}"
    assert adapter_for(s3_destination).send_batch([message(1, "+8613800138000")])[0].outcome == RETRY
