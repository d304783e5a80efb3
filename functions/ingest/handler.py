"""Ingest handler: parse the HTTP API event, run the ingest logic, shape the response.

Dependencies (clients, stores) are built on the first invocation and reused while
the execution environment lives; none is created at import time.

One route (`ANY /webhooks/{provider}/{connection}`), so the path is matched here rather than
through Powertools' event handler: importing that package (its AppSync, Bedrock and asyncio
parts come with it) cost about a fifth of this function's import, and resolving each request
through it about 3% of a webhook's CPU (docs/decisions.md, "Ingest's hot path"). The match is
Powertools' own: each segment one or more URL-safe characters (its `_SAFE_URI` and
`_UNSAFE_URI` sets and word characters), the stage stripped from `rawPath` unless `$default`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel, ConfigDict, Field

from functions.ingest.logic import IngestDeps, IngestOutcome, handle_webhook
from switchboard_core import aws
from switchboard_core.bus import EventPublisher, PublishError
from switchboard_core.connection_stats import ConnectionStatsStore, store_from_environment
from switchboard_core.connections import ConnectionStore, CredentialStore
from switchboard_core.dedupe import IdempotentRunner
from switchboard_core.dynamo import KeyReads
from switchboard_core.errors import HubError, NotFound
from switchboard_core.http import webhook_request
from switchboard_core.providers import PROVIDER_NAMES
from switchboard_core.raw_store import RawStore
from switchboard_core.settings import load_settings
from switchboard_core.tracing import LazyTracer

logger = Logger()
metrics = Metrics()
tracer = LazyTracer()

# What Powertools' resolver matched for `/webhooks/<provider>/<connection>`: a segment of
# RFC 3986's safe characters, the ones API Gateway decodes, and word characters (Unicode).
_SEGMENT = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"
WEBHOOK_PATH = re.compile(rf"^/webhooks/(?P<provider>{_SEGMENT})/(?P<connection>{_SEGMENT})$")
# The methods the route took; any other (TRACE, CONNECT...) was Powertools' not-found, as here.
ALL_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    connections_table: str = Field(alias="TABLE_CONNECTIONS")
    idempotency_table: str = Field(alias="TABLE_IDEMPOTENCY")
    raw_bucket: str = Field(alias="BUCKET_RAW")
    event_bus: str = Field(alias="EVENT_BUS_NAME")
    secrets_prefix: str = Field(alias="SECRETS_PREFIX")
    public_base_url: str | None = Field(default=None, alias="PUBLIC_BASE_URL")
    max_body_bytes: int = Field(default=1024 * 1024, alias="MAX_BODY_BYTES")
    dedupe_ttl_seconds: int = Field(default=8 * 24 * 3600, alias="DEDUPE_TTL_SECONDS")
    credentials_cache_seconds: int = Field(default=60, alias="CREDENTIALS_CACHE_SECONDS")


@cache
def settings() -> IngestSettings:
    return load_settings(IngestSettings)


@cache
def dependencies() -> IngestDeps:
    config = settings()
    return IngestDeps(
        # Reads by key only: the low-level client (shared with dedupe) spares the Table resource's setup.
        connections=ConnectionStore(
            KeyReads(aws.client("dynamodb"), config.connections_table), max_age_seconds=config.credentials_cache_seconds
        ),
        credentials=CredentialStore(
            aws.client("secretsmanager"), config.secrets_prefix, max_age_seconds=config.credentials_cache_seconds
        ),
        raw_store=RawStore(aws.client("s3"), config.raw_bucket),
        publisher=EventPublisher(aws.client("events"), config.event_bus),
        run_once=IdempotentRunner(
            config.idempotency_table, config.dedupe_ttl_seconds, boto3_client=aws.client("dynamodb")
        ),
        max_body_bytes=config.max_body_bytes,
    )


def http_response(
    status: int, content_type: str, body: str, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) answer, shaped as Powertools' resolver shaped it (a
    Content-Type among `headers` wins over `content_type`)."""
    answer_headers = dict(headers or {})
    answer_headers.setdefault("Content-Type", content_type)
    return {"statusCode": status, "body": body, "isBase64Encoded": False, "headers": answer_headers, "cookies": []}


def error_response(error: HubError) -> dict[str, Any]:
    headers = {"Allow": "GET, POST"} if error.status == 405 else None
    body = json.dumps(error.body(), separators=(",", ":"), default=str)
    return http_response(error.status, "application/json", body, headers)


def route(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The webhook route for `event`, or the hub's 404 for a path or method it does not take."""
    raw_path = event.get("rawPath") or "/"
    stage = (event.get("requestContext") or {}).get("stage")
    path = raw_path[len("/" + stage) :] if stage and stage != "$default" else raw_path
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method") or "").upper()
    matched = WEBHOOK_PATH.match(path)
    if matched is None or method not in ALL_METHODS:
        return not_found(path)
    try:
        return webhook(event, context, matched["provider"], matched["connection"])
    except HubError as error:
        return error_response(error)


def webhook(event: dict[str, Any], context: Any, provider: str, connection: str) -> dict[str, Any]:
    now = received_time(event)
    logger.append_keys(provider=provider[:64], connection=connection[:64])
    metrics.add_dimension(name="provider", value=metric_provider(provider))
    metrics.add_metric(name="WebhooksReceived", unit=MetricUnit.Count, value=1)
    try:
        deps = dependencies()
        if isinstance(deps.run_once, IdempotentRunner):
            deps.run_once.register_lambda_context(context)
        request = webhook_request(event, now, settings().public_base_url)
        outcome = handle_webhook(request, provider, connection, deps, now)
    except HubError as error:
        record_rejection(provider, error, connection, now)
        return error_response(error)
    record_outcome(outcome, connection, now)
    answer = outcome.response
    return http_response(answer.status, answer.content_type, answer.body, answer.headers)


def received_time(event: dict[str, Any]) -> datetime:
    """When API Gateway received the request (its `timeEpoch`), else now. A request replayed from
    the local hub's journal after a restart is verified and stored as of its first arrival, so a
    signed timestamp still falls in its window and the events keep their ids and raw key."""
    epoch = (event.get("requestContext") or {}).get("timeEpoch")
    if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch > 0:
        return datetime.fromtimestamp(epoch / 1000, UTC)
    return datetime.now(UTC)


def metric_provider(provider: str) -> str:
    """The provider as a metric dimension: path values are caller-controlled, so
    unknown names share one value instead of minting a metric each."""
    return provider if provider in PROVIDER_NAMES else "unknown"


def record_rejection(provider: str, error: HubError, connection: str | None = None, at: datetime | None = None) -> None:
    if isinstance(error, PublishError):
        # Own metric without the provider dimension: one alarm covers every provider.
        with single_metric(name="PublishFailures", unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="service", value=logger.service)
    with single_metric(name="WebhooksRejected", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="provider", value=metric_provider(provider))
        metric.add_dimension(name="reason", value=error.code)
    log = logger.error if error.status >= 500 else logger.warning
    log("webhook refused", extra={"status": error.status, "reason": error.code, "detail": error.message})
    if connection is not None and at is not None and error.code not in UNCHARGEABLE:
        count_for_connection(provider, connection, at, error.code)


def record_outcome(outcome: IngestOutcome, connection: str | None = None, at: datetime | None = None) -> None:
    if outcome.kind == "handshake":
        metrics.add_metric(name="HandshakesAnswered", unit=MetricUnit.Count, value=1)
        logger.info("handshake answered")
        return
    if outcome.event_ids:
        logger.set_correlation_id(outcome.event_ids[0])
    if outcome.kind == "duplicate":
        metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=1)
        logger.info("duplicate delivery acknowledged", extra={"delivery_id": outcome.delivery_id})
        if connection is not None and at is not None:
            count_for_connection(None, connection, at, None)  # handle_webhook matched it to the provider
        return
    metrics.add_metric(name="WebhooksAccepted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=len(outcome.event_ids))
    logger.info(
        "webhook accepted",
        extra={
            "delivery_id": outcome.delivery_id,
            "event_ids": outcome.event_ids,
            "types": sorted({e.type for e in outcome.events}),
        },
    )


# --- the Connections page's counts (switchboard_core.connection_stats): refusals and duplicates
# only. Accepted events are counted by the event-log consumer, off this function's answer.

# Refusals no connection can be charged with: the path names none that exists.
UNCHARGEABLE = frozenset({"unknown_provider", "unknown_connection", "unknown_route"})


@cache
def connection_stats() -> ConnectionStatsStore:
    return store_from_environment()


def count_for_connection(provider: str | None, connection: str, at: datetime, reason: str | None) -> None:
    """Count a refusal (`reason`, its error code) or a duplicate (None) for `connection`, if it
    exists and is the provider's (a caller-chosen path never makes an item). Best-effort: a
    failed count is logged, and the answer is the same."""
    try:
        known = dependencies().connections.get(connection)  # cached: ingest has just read it
        if provider is not None and known.provider != provider:
            return
        if reason is None:
            connection_stats().count_duplicate(known.id, at)
        else:
            connection_stats().count_rejection(known.id, reason, at)
    except Exception:  # counting must never change what the provider is answered
        logger.warning("connection stats not counted", extra={"reason": reason or "duplicate"}, exc_info=True)


def not_found(path: str) -> dict[str, Any]:
    """A path the webhook route does not match: one with a segment holding characters outside
    the URL-safe set (a decoded slash, a control or format character), or a missing segment;
    or a method no webhook uses. The hub's own 404 shape and a rejection metric."""
    metrics.add_dimension(name="provider", value="unknown")
    metrics.add_metric(name="WebhooksReceived", unit=MetricUnit.Count, value=1)
    error = NotFound(
        f"no webhook route for path {path[:200]!r}; use /webhooks/<provider>/<connection id>",
        code="unknown_route",
    )
    record_rejection("unknown", error)
    return error_response(error)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return route(event, context)
