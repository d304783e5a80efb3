"""CDK entry point (cdk.json: `.venv/bin/python -m infra.aws.app`).

    npx cdk synth -c stage=dev
    npx cdk deploy -c stage=prod -c alarm_email=ops@example.com

The stack is environment-agnostic (no account/region lookups), so synth runs
offline; the AWS account and region come from the credentials at deploy time.
Every synth runs cdk-nag's AwsSolutions pack: an unsuppressed finding is an
error annotation and fails `cdk synth`.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import App, Aspects
from cdk_nag import AwsSolutionsChecks

from infra.aws.config import StageConfig
from infra.aws.stack import SwitchboardStack


def build(app: App | None = None, *, context: dict[str, Any] | None = None) -> tuple[App, SwitchboardStack]:
    app = app or App(context=context)
    config = StageConfig.from_context(app.node)
    stack = SwitchboardStack(app, config.stack_name, config=config)
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app, stack


def main() -> None:
    app, _ = build()
    app.synth()


if __name__ == "__main__":
    main()
