"""cdk-nag's AwsSolutions pack: no unsuppressed finding, every suppression explained."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Annotations, Match

from tests.infra.conftest import Synthesised

pytestmark = pytest.mark.infra

AWS_SOLUTIONS = Match.string_like_regexp("AwsSolutions-.*")


def _findings(synth: Synthesised) -> list[str]:
    annotations = Annotations.from_stack(synth.stack)
    messages = annotations.find_error("*", AWS_SOLUTIONS) + annotations.find_warning("*", AWS_SOLUTIONS)
    return [f"{m.id}: {m.entry.data}" for m in messages]


def test_no_unsuppressed_findings_on_a_retained_stage(synth: Synthesised) -> None:
    findings = _findings(synth)
    assert not findings, "\n".join(findings)


def test_no_unsuppressed_findings_on_a_destroy_stage(synth_qa_destroy: Synthesised) -> None:
    findings = _findings(synth_qa_destroy)
    assert not findings, "\n".join(findings)


@pytest.mark.parametrize("fixture", ["synth", "synth_qa_destroy"])
def test_every_suppression_has_a_specific_reason(fixture: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesised = request.getfixturevalue(fixture)
    template = synth.json
    suppressions = [
        rule
        for resource in template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    suppressions += template.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    assert suppressions
    for rule in suppressions:
        assert rule["id"].startswith("AwsSolutions-")
        assert len(rule["reason"]) >= 60, rule
        if rule["id"] in ("AwsSolutions-IAM4", "AwsSolutions-IAM5"):
            assert rule.get("applies_to"), f"{rule['id']} must be narrowed with applies_to: {rule}"
