"""switchboard_core.aws: lazily made clients from one boto3 session."""

from __future__ import annotations

import threading

import pytest

from switchboard_core import aws
from tests.conftest import AWS_TEST_ENV


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    yield
    aws.reset_clients()


def test_clients_are_made_once_and_share_one_session():
    sqs = aws.client("sqs")
    assert aws.client("sqs") is sqs
    session = aws._session()
    aws.client("s3")
    aws.resource("dynamodb")
    assert aws._session() is session


def test_keep_session_renews_clients_with_the_current_endpoint_and_region(monkeypatch):
    before, session = aws.client("sqs"), aws._session()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    aws.reset_clients(keep_session=True)
    after = aws.client("sqs")
    assert after is not before and aws._session() is session
    assert after.meta.endpoint_url == "http://127.0.0.1:4566" and after.meta.region_name == "eu-west-1"


def test_a_full_reset_picks_up_new_credentials(monkeypatch):
    session = aws._session()
    assert aws.client("sqs")._request_signer._credentials.access_key == "testing"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "rotated")
    aws.reset_clients(keep_session=True)
    assert aws.client("sqs")._request_signer._credentials.access_key == "testing"  # the session's, resolved once
    aws.reset_clients()
    assert aws._session() is not session
    assert aws.client("sqs")._request_signer._credentials.access_key == "rotated"


def test_clients_made_from_many_threads_at_once():
    barrier = threading.Barrier(8)
    made: list = []
    errors: list = []

    def make(service: str) -> None:
        barrier.wait()
        try:
            made.append(aws.client(service))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=make, args=(s,)) for s in ["sqs", "s3", "events", "dynamodb"] * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(made) == 8
    assert {type(c).__name__ for c in made} == {"SQS", "S3", "EventBridge", "DynamoDB"}
