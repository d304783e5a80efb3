"""Partner subscriptions: /admin/subscriptions[/{id}[/pause|/resume|/rotate|/replay|/deliveries[/{event_id}/retry]]]."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from functions.admin import subscriptions
from functions.admin.dependencies import cursors, now, principal, subscription_deps
from functions.admin.models import (
    AttemptsPage,
    CreatedSubscription,
    ReplayStarted,
    ResumedSubscription,
    RetryQueued,
    RotatedSubscription,
    SubscriptionsPage,
    SubscriptionView,
)
from functions.admin.routes.params import Cursor, Limit, TenantQuery, answers, path_id

router = Router()
logger = Logger(child=True)
TAGS = ["subscriptions"]
SubscriptionId = Annotated[str, path_id("a subscription id (sub_...)")]
EventId = Annotated[str, path_id("an event id")]


@router.post(
    "/admin/subscriptions",
    status_code=201,
    tags=TAGS,
    responses=answers(415, ok=201, description="created; the answer holds the signing secret, shown only now"),
    summary="Subscribe an endpoint to the events an EventBridge pattern matches",
)
def create_subscription(request: Annotated[subscriptions.CreateSubscription, Body()]) -> CreatedSubscription:
    created = subscriptions.create(principal(router.current_event), request, subscription_deps(), now())
    logger.info("subscription created", extra={"subscription": created["id"], "tenant": created["tenant"]})
    return CreatedSubscription.model_validate(created)


@router.get("/admin/subscriptions", tags=TAGS, responses=answers(), summary="A tenant's subscriptions, oldest first")
def list_subscriptions(tenant: TenantQuery = None, limit: Limit = 50, cursor: Cursor = None) -> SubscriptionsPage:
    return SubscriptionsPage.model_validate(
        subscriptions.list_subscriptions(
            principal(router.current_event), tenant, limit, cursor, subscription_deps(), cursors()
        )
    )


@router.get("/admin/subscriptions/<subscription_id>", tags=TAGS, responses=answers(404), summary="One subscription")
def get_subscription(subscription_id: SubscriptionId) -> SubscriptionView:
    found = subscriptions.visible(principal(router.current_event), subscription_id, subscription_deps())
    return SubscriptionView.model_validate(subscriptions.view(found))


@router.patch(
    "/admin/subscriptions/<subscription_id>",
    tags=TAGS,
    responses=answers(404, 409, 415),
    summary="Change the URL, pattern, description or ordering (checked as on creation)",
)
def update_subscription(
    subscription_id: SubscriptionId, request: Annotated[subscriptions.UpdateSubscription, Body()]
) -> SubscriptionView:
    updated = subscriptions.update(
        principal(router.current_event), subscription_id, request, subscription_deps(), now()
    )
    logger.info("subscription updated", extra={"subscription": subscription_id})
    return SubscriptionView.model_validate(updated)


@router.delete(
    "/admin/subscriptions/<subscription_id>",
    status_code=204,
    tags=TAGS,
    responses=answers(404, ok=204, description="removed, with its rule and signing secret"),
    summary="Remove a subscription",
)
def delete_subscription(subscription_id: SubscriptionId) -> Response[None]:
    subscriptions.delete(principal(router.current_event), subscription_id, subscription_deps())
    logger.info("subscription deleted", extra={"subscription": subscription_id})
    return Response(status_code=204, body=None)


@router.post(
    "/admin/subscriptions/<subscription_id>/pause",
    tags=TAGS,
    responses=answers(404, 409),
    summary="Stop deliveries; what arrives meanwhile is held until resumed",
)
def pause_subscription(subscription_id: SubscriptionId) -> SubscriptionView:
    paused = subscriptions.set_paused(
        principal(router.current_event), subscription_id, True, subscription_deps(), now()
    )
    logger.info("subscription paused", extra={"subscription": subscription_id})
    return SubscriptionView.model_validate(paused)


@router.post(
    "/admin/subscriptions/<subscription_id>/resume",
    tags=TAGS,
    responses=answers(404, 409),
    summary="Deliver again (also a failing or disabled one); held deliveries are sent",
)
def resume_subscription(subscription_id: SubscriptionId) -> ResumedSubscription:
    resumed = subscriptions.set_paused(
        principal(router.current_event), subscription_id, False, subscription_deps(), now()
    )
    logger.info("subscription resumed", extra={"subscription": subscription_id, "resent": resumed["resent"]})
    return ResumedSubscription.model_validate(resumed)


@router.post(
    "/admin/subscriptions/<subscription_id>/rotate",
    tags=TAGS,
    responses=answers(404, 409),
    summary="A new signing secret; the previous one keeps signing for a grace period",
)
def rotate_secret(subscription_id: SubscriptionId) -> RotatedSubscription:
    rotated = subscriptions.rotate(principal(router.current_event), subscription_id, subscription_deps(), now())
    logger.info("subscription secret rotated", extra={"subscription": subscription_id})
    return RotatedSubscription.model_validate(rotated)


@router.get(
    "/admin/subscriptions/<subscription_id>/deliveries",
    tags=TAGS,
    responses=answers(404),
    summary="Delivery attempts, newest first: status or error, latency, response excerpt, next attempt",
)
def list_deliveries(
    subscription_id: SubscriptionId,
    event_id: Annotated[
        str | None, Query(description="only this event's attempts", min_length=1, max_length=64)
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AttemptsPage:
    return AttemptsPage.model_validate(
        subscriptions.list_attempts(
            principal(router.current_event), subscription_id, event_id, limit, cursor, subscription_deps(), cursors()
        )
    )


@router.post(
    "/admin/subscriptions/<subscription_id>/deliveries/<event_id>/retry",
    status_code=202,
    tags=TAGS,
    responses=answers(404, ok=202, description="queued for delivery"),
    summary="Send one event to the subscription again",
)
def retry_delivery(subscription_id: SubscriptionId, event_id: EventId) -> RetryQueued:
    queued = subscriptions.retry(principal(router.current_event), subscription_id, event_id, subscription_deps())
    logger.info("delivery retry queued", extra={"subscription": subscription_id, "event": event_id})
    return RetryQueued.model_validate(queued)


@router.post(
    "/admin/subscriptions/<subscription_id>/replay",
    status_code=202,
    tags=TAGS,
    responses=answers(404, 415, ok=202, description="replay started"),
    summary="Re-send every event of a time range the subscription matches",
)
def replay(subscription_id: SubscriptionId, request: Annotated[subscriptions.ReplayRange, Body()]) -> ReplayStarted:
    started = subscriptions.replay(
        principal(router.current_event), subscription_id, request, subscription_deps(), now()
    )
    logger.info("replay started", extra={"subscription": subscription_id, "replay": started["replay"]})
    return ReplayStarted.model_validate(started)
