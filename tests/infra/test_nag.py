"""cdk-nag's AwsSolutions pack: no unsuppressed finding, every suppression explained."""

from __future__ import annotations

import re

import pytest

from tests.infra.conftest import Synthesised

pytestmark = pytest.mark.infra

AWS_SOLUTIONS = re.compile("AwsSolutions-.*")


def _findings(synth: Synthesised) -> list[str]:
    """cdk-nag's errors and warnings, read from the fixture's assembly (not synthesised again)."""
    messages = synth.messages("aws:cdk:error", "aws:cdk:warning")  # what Annotations.find_error/_warning read
    return [f"{m.path}: {m.data}" for m in messages if AWS_SOLUTIONS.search(str(m.data))]


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


def test_the_findings_reader_reports_a_finding(tmp_path) -> None:
    """_findings reads the fixture's assembly instead of synthesising again: on a stack cdk-nag
    flags (a queue without SSL enforcement or a DLQ) it reports the findings."""
    from aws_cdk import App, Aspects, Stack
    from aws_cdk import aws_sqs as sqs
    from aws_cdk.assertions import Template
    from cdk_nag import AwsSolutionsChecks

    from tests.infra.conftest import REPORT_ANNOTATIONS_AS_TESTS

    app = App(context=REPORT_ANNOTATIONS_AS_TESTS, outdir=str(tmp_path))
    stack = Stack(app, "Flagged")
    sqs.Queue(stack, "Queue")
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    findings = _findings(Synthesised(app, stack, Template.from_stack(stack), tmp_path))
    assert any("AwsSolutions-SQS3" in finding for finding in findings), findings
    assert any("AwsSolutions-SQS4" in finding for finding in findings), findings
