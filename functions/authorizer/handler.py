"""Lambda authorizer (HTTP API, simple responses) for /admin.

`Authorization: Bearer <key>` is hashed and looked up; the principal it belongs to
(tenant, name, role) is handed to the admin function as the authorizer context.
The same function authorizes requests on AWS and in the local runtime.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerResponseV2,
)
from pydantic import BaseModel, ConfigDict, Field

from switchboard_core import aws
from switchboard_core.principals import ApiKeyStore, Principal
from switchboard_core.settings import load_settings

logger = Logger()


class AuthorizerSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    api_keys_table: str = Field(alias="TABLE_API_KEYS")


@cache
def key_store() -> ApiKeyStore:
    return ApiKeyStore(aws.resource("dynamodb").Table(load_settings(AuthorizerSettings).api_keys_table))


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def authorize(authorization: str | None, store: ApiKeyStore) -> Principal | None:
    token = bearer_token(authorization)
    return store.authenticate(token) if token else None


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerEventV2)
def handler(event: APIGatewayAuthorizerEventV2, context: Any) -> dict[str, Any]:
    found = authorize(event.headers.get("authorization"), key_store())
    if found is None:
        logger.info("admin request refused", extra={"route": event.route_key})
        return APIGatewayAuthorizerResponseV2(authorize=False).asdict()
    logger.append_keys(key_id=found.key_id, tenant=found.tenant)
    logger.debug("admin request authorized", extra={"route": event.route_key, "role": found.role.value})
    return APIGatewayAuthorizerResponseV2(authorize=True, context=found.as_context()).asdict()
