"""Routing keeps each tenant's parsed rule set and sensor across events, keyed by version: one
small consistent read of the versions per event, the documents read and parsed again only when
a save moved a version, so a saved rule set routes the very next event."""

from __future__ import annotations

from collections import Counter

import pytest

from functions.routing.logic import RoutingDeps, route
from switchboard_core.events import Channel, Contact
from switchboard_core.routing.config_store import RoutingConfigStore, Versions
from switchboard_core.routing.rules import RuleSet
from switchboard_core.routing.sensing import Taxonomy, Topic
from tests.unit.routing.test_route import NOW, RULES, canonical
from tests.unit.routing.test_route import deps as deps  # the fixture, reused


class CountingConfig(RoutingConfigStore):
    """The store, counting the document reads routing makes."""

    def __init__(self, table) -> None:
        super().__init__(table)
        self.reads: Counter[str] = Counter()

    def rules(self, tenant):
        self.reads["rules"] += 1
        return super().rules(tenant)

    def taxonomy(self, tenant):
        self.reads["taxonomy"] += 1
        return super().taxonomy(tenant)


@pytest.fixture
def counted(deps):
    deps.config = CountingConfig(deps.config._table)
    return deps


def post(n: int, text: str, tenant: str = "acme"):
    event = canonical(
        n, text, provider="meta", channel=Channel.SOCIAL, key=f"k{n}", contact=Contact(phone=f"+1415555{n:04d}")
    )
    return event.model_copy(update={"tenant": tenant})


def decisions(deps: RoutingDeps, *events) -> list[str]:
    found = []
    for event in events:
        derived = route(event, deps, NOW, lambda published: None)
        found += [e.attributes.get("rule") for e in derived if e.type == "routing.assigned"]
    return found


def test_documents_are_read_once_then_again_only_after_a_save(counted):
    assert decisions(counted, *(post(n, "my brake pad squeals") for n in range(1, 5))) == ["parts"] * 4
    assert counted.config.reads == {"rules": 1, "taxonomy": 1}

    _, version = counted.config.rules("acme")
    counted.config.reads.clear()
    renamed = {**RULES, "rules": [{**RULES["rules"][2], "name": "spares"}]}
    counted.config.put_rules("acme", RuleSet.model_validate(renamed), version, NOW)
    assert decisions(counted, post(10, "a brake pad please"), post(11, "brake pad again")) == ["spares", "spares"]
    assert counted.config.reads == {"rules": 1}  # once, for the first event after the save

    counted.config.reads.clear()
    counted.config.put_taxonomy("acme", Taxonomy(topics=[Topic(name="parts", phrases=["gearbox"])]), NOW)
    counted.config.reads.clear()
    assert decisions(counted, post(12, "a brake pad"), post(13, "my gearbox")) == ["spares"]  # only the new phrase
    assert counted.config.reads == {"taxonomy": 1}


def test_a_tenant_without_configuration_is_cached_too_and_tenants_do_not_evict_each_other(counted):
    for n in range(20, 26):
        decisions(counted, post(n, "hello", tenant="globex" if n % 2 else "acme"))
    assert counted.config.reads == {"rules": 2, "taxonomy": 2}  # one each per tenant, not per switch


def test_configuration_saved_before_versions_were_kept_is_read_once_and_versioned(counted):
    table = counted.config._table
    table.delete_item(Key={"pk": "TENANT#acme", "sk": "VERSIONS"})
    assert counted.config.versions("acme") is None
    assert decisions(counted, post(30, "brake pad"), post(31, "brake pad")) == ["parts", "parts"]
    assert counted.config.reads == {"rules": 1, "taxonomy": 1}
    assert counted.config.versions("acme") == Versions(rules=1, taxonomy=1)


def test_a_version_never_goes_back(counted):
    config = counted.config
    config.record_versions("acme", Versions(rules=0, taxonomy=0))  # a late legacy reader: saves win
    assert config.versions("acme") == Versions(rules=1, taxonomy=1)
    config._raise_version("acme", "rules", 1)  # an older save finishing late changes nothing
    assert config.versions("acme") == Versions(rules=1, taxonomy=1)
