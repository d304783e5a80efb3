"""Synthesises the CDK app once per session (synth takes seconds) with the same context
the CLI would use (cdk.json), and exposes the template, the stack and the assembly."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

# jsii prints a banner on every start under an end-of-life Node; it is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App
from aws_cdk.assertions import Template

from infra.aws.app import build
from infra.aws.stack import SwitchboardStack

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Synthesised:
    app: App
    stack: SwitchboardStack
    template: Template
    outdir: Path

    @cached_property
    def json(self) -> dict[str, Any]:
        """The template, fetched from jsii once: each to_json() sends the whole template (200 KB)
        over jsii's pipe again, seconds on a loaded machine, and tests read it hundreds of times.
        Shared by every test of the session: read it, never change it."""
        return self.template.to_json()

    def messages(self, *kinds: str) -> list[Any]:
        """The synthesis messages (aws:cdk:error, aws:cdk:warning...: cdk-nag's findings among
        them) of the assembly the fixture synthesised. `Annotations.from_stack` would give the
        same after synthesising the whole app again (it forces a synth)."""
        artifact = self.app.synth().get_stack_artifact(self.stack.artifact_id)  # the cached assembly
        return [message for kind in kinds for message in artifact.find_metadata_by_type(kind)]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.json["Resources"].items() if v["Type"] == kind}

    def logical_id(self, construct) -> str:
        return self.stack.resolve(construct.node.default_child.logical_id)


def cdk_json_context() -> dict[str, Any]:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


# With this cdk.json flag on, an error annotation (an unsuppressed cdk-nag finding) aborts
# synthesis, which is what `cdk synth` should do. Here it is off, so such a finding fails
# test_nag with the list of findings instead of erroring every test at fixture setup.
REPORT_ANNOTATIONS_AS_TESTS = {"@aws-cdk/core:annotationsInValidationReport": False}


def synthesise(outdir: Path, **context: Any) -> Synthesised:
    app, stack = build(
        App(context={**cdk_json_context(), **REPORT_ANNOTATIONS_AS_TESTS, **context}, outdir=str(outdir))
    )
    template = Template.from_stack(stack)  # synthesises the app, running the cdk-nag aspect
    return Synthesised(app, stack, template, outdir)


@pytest.fixture(scope="session", autouse=True)
def deps_layer() -> Path:
    """build/layers/deps, as `make install` builds it (a no-op when it is up to date; the one
    step that needs PyPI). Synth itself never builds it."""
    from infra.aws import layers

    return layers.build()


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesised:
    """The default stage (dev) exactly as `cdk synth` builds it: retain, default throttles."""
    return synthesise(tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def synth_qa_destroy(tmp_path_factory: pytest.TempPathFactory) -> Synthesised:
    """Another stage: removal=destroy, an alarm e-mail, hold music, notification senders, ingest's
    reserved concurrency, and numbers given as strings, as `-c` passes them."""
    return synthesise(
        tmp_path_factory.mktemp("cdk-qa"),
        stage="qa",
        removal="destroy",
        throttle_rate="50",
        throttle_burst="75",
        ingest_reserved_concurrency="100",
        account_concurrency="1000",
        alarm_email="ops@example.com",
        hold_music_url="https://cdn.example.com/hold.mp3",
        notification_email_from="dispatch@alerts.example.com",
        notification_sms_from="+14155550100",
    )


def referenced_ids(value: Any) -> set[str]:
    """Logical ids a template fragment points at through Ref or Fn::GetAtt."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        for item in value.values():
            found |= referenced_ids(item)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_ids(item)
    return found
