"""Contract: the code's providers, the docs' status table, the admin API and the
CLI samples all name the same set."""

from __future__ import annotations

import re
from pathlib import Path

from infra.local.samples import SAMPLES
from switchboard_core.providers import PROVIDER_NAMES, all_adapters

ROOT = Path(__file__).resolve().parents[2]


def documented_providers() -> list[str]:
    text = (ROOT / "docs/providers.md").read_text()
    return re.findall(r"^\| \[`([a-z0-9-]+)`\]\(providers/[a-z0-9-]+\.md\) \|", text, re.M)


def test_docs_status_table_lists_every_provider_once():
    documented = documented_providers()
    assert sorted(documented) == sorted(set(documented)), "a provider appears twice in docs/providers.md"
    assert set(documented) == set(PROVIDER_NAMES)


def test_every_provider_has_its_page():
    for name in PROVIDER_NAMES:
        assert (ROOT / "docs/providers" / f"{name}.md").exists(), name


def test_every_provider_has_samples_for_switchboard_send():
    assert set(SAMPLES) == set(PROVIDER_NAMES)
    assert all(SAMPLES[name] for name in PROVIDER_NAMES)


def test_every_adapter_describes_itself_for_the_admin_api():
    described = [adapter.describe() for adapter in all_adapters()]
    assert [d["name"] for d in described] == list(PROVIDER_NAMES)
    for description in described:
        assert description["credential_fields"], description["name"]
        assert description["channel"] in {"social", "crm", "telephony", "generic"}


def test_every_provider_has_recorded_payloads():
    for name in PROVIDER_NAMES:
        folder = ROOT / "tests/events" / name
        assert (folder / "README.md").exists(), f"tests/events/{name}/README.md says where payloads came from"
        assert len(list(folder.iterdir())) >= 2, name


def test_readme_tables_match_the_code():
    from switchboard_core.events import EVENT_TYPES
    from switchboard_core.outbound import SENDERS

    readme = (ROOT / "README.md").read_text()
    row = re.compile(r"^\| `([a-z0-9-]+)`(?: \([^)]*\))? \|", re.M)
    providers = row.findall(readme[readme.index("## Providers") : readme.index("## Events")])
    assert sorted(providers) == sorted(PROVIDER_NAMES)
    answering = row.findall(readme[readme.index("## Answering customers") : readme.index("## Sending a first webhook")])
    assert sorted(answering) == sorted(SENDERS), "README's answering table differs from the registered senders"
    assert f"\n{len(PROVIDER_NAMES)} providers, each verified" in readme, "README's provider count is stale"
    events_section = readme[readme.index("## Events") : readme.index("## Sending a first webhook")]
    listed = set(re.findall(r"`([a-z_]+\.[a-z_*]+)`", events_section))
    for event_type in EVENT_TYPES:
        family = event_type.split(".")[0] + ".*"
        assert event_type in listed or family in listed, f"README's event table misses {event_type}"
