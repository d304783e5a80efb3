from datetime import UTC, datetime

import pytest

from functions.authorizer.handler import authorize, bearer_token
from switchboard_core import aws
from switchboard_core.principals import ApiKeyStore, Role


@pytest.fixture
def store(aws_world):
    return ApiKeyStore(aws.resource("dynamodb").Table(aws_world.names.table("api_keys")))


def test_bearer_token_parsing():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def test_a_key_authorizes_its_principal_until_revoked(store):
    key, record = store.create(tenant="acme", name="ops", role=Role.ADMIN, now=datetime.now(UTC))
    principal = authorize(f"Bearer {key}", store)
    assert principal is not None and (principal.tenant, principal.role) == ("acme", Role.ADMIN)
    assert authorize(f"Bearer {key}x", store) is None
    assert authorize("Bearer sbk_nothing", store) is None
    store.revoke(record.key_id, datetime.now(UTC))
    assert authorize(f"Bearer {key}", store) is None


def test_keys_are_stored_only_as_hashes(store, aws_world):
    key, _ = store.create(tenant="acme", name="ops", role=Role.STAFF, now=datetime.now(UTC))
    items = aws.client("dynamodb").scan(TableName=aws_world.names.table("api_keys"))["Items"]
    assert key not in str(items)
