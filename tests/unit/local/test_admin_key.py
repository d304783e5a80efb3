"""The local hub's admin key: a chosen key (SWITCHBOARD_ADMIN_KEY, or .switchboard/admin-key)
the authorizer would refuse stops `switchboard dev` with what a key must look like, instead
of printing it as the admin key and answering a bare 403 to every call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.runtime import AdminKeyRefused, LocalRuntime, StateDir, admin_key_problem
from switchboard_core.principals import ApiKeyStore, Role


class Table:
    """Just enough of a DynamoDB table for ApiKeyStore."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def put_item(self, Item: dict[str, Any]) -> None:
        self.items[Item["key_hash"]] = Item

    def get_item(self, Key: dict[str, str]) -> dict[str, Any]:
        found = self.items.get(Key["key_hash"])
        return {"Item": found} if found else {}


ACCEPTED = ["sbk_local_dev_key_1", "sbk_1a2b3c4d_Zm9vYmFyYmF6cXV4", "sbk_x", "sbk_" + "a" * 196]
REFUSED = ["letmein", "SBK_upper", "sbk_", "sbk_with space", "sbk_ünïcode", "sbk_" + "a" * 197, "Bearer sbk_abc"]


@pytest.mark.parametrize("key", ACCEPTED)
def test_a_key_the_check_accepts_is_one_the_authorizer_accepts(key):
    store = ApiKeyStore(Table())
    assert admin_key_problem(key) is None
    store.create(tenant="demo", name="local-admin", role=Role.ADMIN, now=datetime.now(UTC), key=key)
    assert store.authenticate(key) is not None


@pytest.mark.parametrize("key", REFUSED)
def test_a_key_the_authorizer_would_refuse_is_named_with_its_shape(key):
    problem = admin_key_problem(key)
    assert problem and "must start with 'sbk_'" in problem and "at most 200 characters" in problem


def test_seeding_refuses_a_bad_chosen_key_before_touching_aws(tmp_path, monkeypatch):
    runtime = LocalRuntime(state_dir=tmp_path)
    runtime.state = StateDir(tmp_path)  # no emulator: the check comes first
    monkeypatch.setenv("SWITCHBOARD_ADMIN_KEY", "letmein")
    with pytest.raises(AdminKeyRefused, match=r"^SWITCHBOARD_ADMIN_KEY is not a Switchboard API key.*unset it"):
        runtime.seed_admin_key()
    monkeypatch.delenv("SWITCHBOARD_ADMIN_KEY")
    (tmp_path / "admin-key").write_text("hunter2\n")  # edited by hand
    with pytest.raises(AdminKeyRefused, match=r"admin-key is not a Switchboard API key.*delete the file"):
        runtime.seed_admin_key()
