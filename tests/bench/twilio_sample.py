"""The baseline ingest is measured against (tests/bench/ingest_handler.py): a handler that does
only what AWS's inbound-webhook sample for Twilio does (aws-samples serverless-patterns,
eventbridge-webhooks/3-twilio), written here from its description, not copied:

- its clients are built at import (a Secrets Manager client behind a secret cache, an
  EventBridge client);
- per request: decode the body, parse the form (`parse_qs`), verify `X-Twilio-Signature` with
  Twilio's documented algorithm (base64 HMAC-SHA1 over the URL followed by every parameter's
  name and value, sorted by name), flatten the parameters to JSON and send them to the bus in
  one PutEvents; 202 on success.

What it does not do, and the hub does: dedupe retries, keep the raw request, check the
connection and its credential rotation, map the message onto the canonical model, log and
emit metrics, answer each provider in its own format.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs

import boto3

SECRET_ID = os.environ.get("TWILIO_WEBHOOK_SECRET_ARN", "twilio-webhook-secret")
EVENT_BUS = os.environ.get("EVENT_BUS_NAME", "default")
SECRET_CACHE_SECONDS = 3600  # what the sample's secret cache keeps a value for by default

secrets_client = boto3.client("secretsmanager")
events_client = boto3.client("events")
_secret: list[Any] = []  # [value, fetched_at] once read


def auth_token() -> str:
    if not _secret or time.monotonic() - _secret[1] > SECRET_CACHE_SECONDS:
        value = secrets_client.get_secret_value(SecretId=SECRET_ID)["SecretString"]
        _secret[:] = [value, time.monotonic()]
    return str(_secret[0])


def valid_signature(params: dict[str, list[str]], url: str, signature: str) -> bool:
    signed = url + "".join(name + params[name][0] for name in sorted(params))
    digest = hmac.new(auth_token().encode(), signed.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(signature, base64.b64encode(digest).decode())


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    headers = event.get("headers") or {}
    body = event.get("body")
    if body is None:
        return {"statusCode": 400, "body": "Missing event body"}
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    if (headers.get("content-type") or "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {"statusCode": 400, "body": "Invalid content-type"}
    params = parse_qs(body, keep_blank_values=True)
    url = "https://" + headers["host"] + event["rawPath"]
    if not valid_signature(params, url, headers.get("x-twilio-signature", "")):
        return {"statusCode": 401, "body": "Invalid Signature"}
    detail = json.dumps({name: values[0] for name, values in params.items()})
    answer = events_client.put_events(
        Entries=[{"Source": "twilio.com", "DetailType": "twilio-webhook", "Detail": detail, "EventBusName": EVENT_BUS}]
    )
    if answer["FailedEntryCount"]:
        return {"statusCode": 500, "body": "the event was not forwarded"}
    return {"statusCode": 202, "body": "Message forwarded to Amazon EventBridge"}
