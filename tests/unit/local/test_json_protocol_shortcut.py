"""The emulator's shortcut past moto's Flask layer (infra/local/emulator.py, JsonProtocolShortcut):
for the JSON-protocol calls our functions make, the shortcut's answer is moto's own (status line,
headers but flask-cors's, the body's bytes), errors included; every other request reaches moto's
app."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from infra.local.emulator import JSON_PROTOCOL_TARGETS, JsonProtocolShortcut, patch_moto

# Differ between any two answers, whoever gives them.
PER_ANSWER_HEADERS = {"x-amzn-requestid", "x-amz-crc32", "date", "server"}
# flask-cors's, which moto's Flask app adds and the shortcut does not (botocore ignores it).
CORS_HEADER = "access-control-allow-origin"
READ_ACTIONS = ("Get", "Describe", "List", "Query", "Scan")


class Body:
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data.read()

    def read(self, *args: Any) -> bytes:
        return self._data.read(*args)


def environ_of(request: Any) -> dict[str, Any]:
    """The WSGI environ werkzeug's server would make of botocore's request."""
    url = urlsplit(request.url)
    body = request.body or b""
    body = body.read() if hasattr(body, "read") else body
    body = body.encode() if isinstance(body, str) else body
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "PATH_INFO": url.path or "/",
        "QUERY_STRING": url.query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": url.netloc,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "body": body,
    }
    for name, value in request.headers.items():
        value = value.decode() if isinstance(value, bytes) else value
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ[key] = value
        elif key != "CONTENT_LENGTH":
            environ[f"HTTP_{key}"] = value
    return environ


def answer(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    environ = {**environ, "wsgi.input": io.BytesIO(environ["body"])}
    started: list[Any] = []
    data = b"".join(app(environ, lambda status, headers, exc_info=None: started.extend([status, headers])))
    return started[0], started[1], data


class Served:
    """botocore's requests served in-process: read actions by moto's app and by the shortcut
    (both answers kept), changes by the shortcut alone (answering twice would change twice)."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        patch_moto()
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.shortcut = JsonProtocolShortcut(self.moto)
        self.compared: list[tuple[str, Any, Any]] = []
        self.session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )

    def client(self, service: str) -> Any:
        client = self.session.client(service, endpoint_url="http://127.0.0.1:5000")
        client.meta.events.register_first("before-send", self.send)
        return client

    def send(self, request: Any, **_: Any) -> AWSResponse:
        environ = environ_of(request)
        action = str(environ.get("HTTP_X_AMZ_TARGET", "")).rsplit(".", 1)[-1]
        status, headers, data = answer(self.shortcut, environ)
        if action.startswith(READ_ACTIONS):
            self.compared.append((action, answer(self.moto, environ), (status, headers, data)))
        return AWSResponse(request.url, int(status.split()[0]), dict(headers), Body(data))


def comparable(answered: tuple[str, list[tuple[str, str]], bytes]) -> tuple[str, list[tuple[str, str]], bytes]:
    status, headers, data = answered
    ignored = PER_ANSWER_HEADERS | {CORS_HEADER}
    return status, sorted((k.lower(), v) for k, v in headers if k.lower() not in ignored), data


@pytest.fixture
def served() -> Iterator[Served]:
    with mock_aws():
        yield Served()


def attempt(call: Any) -> None:
    try:
        call()
    except Exception:  # noqa: BLE001 - the answer is what is compared, errors included
        pass


def test_the_shortcuts_answers_are_motos_own_errors_included(served: Served) -> None:
    dynamodb, sqs, events, secrets = (served.client(name) for name in ("dynamodb", "sqs", "events", "secretsmanager"))
    attempt(lambda: dynamodb.get_item(TableName="missing", Key={"pk": {"S": "a"}}))
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}, "text": {"S": "é ☃ \U0001f600"}})
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)")
    assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]["text"] == {"S": "é ☃ \U0001f600"}
    attempt(lambda: dynamodb.get_item(TableName="t", Key={"other": {"S": "a"}}))
    attempt(lambda: dynamodb.query(TableName="t", KeyConditionExpression="pk = :p"))
    dynamodb.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}})
    attempt(lambda: secrets.get_secret_value(SecretId="missing"))
    secrets.create_secret(Name="s", SecretString="x")
    assert secrets.get_secret_value(SecretId="s")["SecretString"] == "x"
    attempt(lambda: sqs.get_queue_url(QueueName="missing"))
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="hello")
    assert sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]["QueueArn"].endswith(":q")
    attempt(lambda: events.describe_event_bus(Name="missing"))
    failed = events.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}, {"Source": "s"}])
    assert failed["FailedEntryCount"] == 1

    statuses = {moto[0] for _, moto, _ in served.compared}
    assert {"200 OK", "400 BAD REQUEST", "404 NOT FOUND"} <= statuses, "errors and successes both compared"
    for action, moto, shortcut in served.compared:
        assert comparable(shortcut) == comparable(moto), action
        assert CORS_HEADER not in {name.lower() for name, _ in shortcut[1]}
    # Every API was answered by the shortcut itself, not handed back to moto's app.
    assert set(served.shortcut._handlers) == set(JSON_PROTOCOL_TARGETS)
    assert all(served.shortcut._handlers.values())


def test_other_requests_reach_motos_app(served: Served) -> None:
    dynamodb = served.client("dynamodb")
    dynamodb.list_tables()  # the shortcut's: it finds moto's handler for `/` once, through moto's app
    reached: list[str] = []
    moto = served.moto

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        reached.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return moto(environ, start_response)

    served.shortcut.app = recording
    s3 = served.client("s3")
    s3.create_bucket(Bucket="raw")
    s3.put_object(Bucket="raw", Key="a/b.json", Body=b"{}")
    assert s3.get_object(Bucket="raw", Key="a/b.json")["Body"].read() == b"{}"
    dynamodb.list_tables()
    assert reached == ["PUT /raw", "PUT /raw/a/b.json", "GET /raw/a/b.json"]
