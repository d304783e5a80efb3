"""Deployment settings for one stage, read from CDK context.

Every knob is a context value so a stage is chosen on the command line
(`npx cdk deploy -c stage=prod -c alarm_email=ops@example.com`) or pinned in
cdk.json; nothing here needs AWS credentials, so `cdk synth` works offline.

The keys, defaults and meanings are listed in docs/operations.md ("Context values").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Node

STAGE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
EMAIL_ADDRESS = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

# Matches the aws-lambda-powertools pin in pyproject.toml, so the layer the
# functions get on AWS is the library the tests and the local runtime run
# (tests/infra asserts the two agree). "latest" is accepted too.
DEFAULT_POWERTOOLS_VERSION = "3.37.0"
# Lambda refuses a reservation that leaves the account fewer unreserved executions than this.
UNRESERVED_MINIMUM = 100


@dataclass(frozen=True)
class StageConfig:
    stage: str = "dev"
    removal: str = "retain"
    throttle_rate: int = 100
    throttle_burst: int = 200
    # Concurrency reserved for ingest: what it can always run, whatever the consumers use (and
    # also its ceiling). 0 reserves none, which deploys in any account: one whose limit is still
    # a new account's 10 cannot reserve anything. docs/security.md, "Throttling and concurrency".
    ingest_reserved_concurrency: int = 0
    # The account's Lambda concurrency limit in this region (Service Quotas), to check a
    # reservation leaves AWS's unreserved minimum before deploying rather than failing there.
    account_concurrency: int = 1000
    log_retention_days: int = 30
    archive_days: int = 30
    powertools_version: str = DEFAULT_POWERTOOLS_VERSION
    alarm_email: str | None = None
    # The audio a live caller hears while the hub finds a responder (ingest's Twilio Voice answer).
    hold_music_url: str | None = None
    # The SES identity notifications are e-mailed from (an address; its domain may be the
    # verified identity). The notifications function may send only as it.
    notification_email_from: str | None = None
    # The sender number of SMS notifications when the connection has no Messaging Service.
    notification_sms_from: str | None = None

    def __post_init__(self) -> None:
        if not STAGE_PATTERN.match(self.stage):
            raise ValueError(
                f"stage {self.stage!r} must be 1-20 lowercase letters, digits or hyphens, starting with a letter"
            )
        if self.removal not in ("retain", "destroy"):
            raise ValueError(f"removal must be 'retain' or 'destroy', not {self.removal!r}")
        if self.throttle_rate <= 0 or self.throttle_burst <= 0:
            raise ValueError("throttle_rate and throttle_burst must be positive")
        if self.ingest_reserved_concurrency < 0 or self.account_concurrency <= 0:
            raise ValueError("ingest_reserved_concurrency must be 0 or more, account_concurrency positive")
        if 0 < self.ingest_reserved_concurrency > self.account_concurrency - UNRESERVED_MINIMUM:
            raise ValueError(
                f"ingest_reserved_concurrency={self.ingest_reserved_concurrency} would leave fewer than "
                f"{UNRESERVED_MINIMUM} of the account's {self.account_concurrency} executions unreserved, "
                "which Lambda refuses: lower it, or raise the account's limit and pass account_concurrency"
            )
        if self.hold_music_url is not None and not self.hold_music_url.startswith(("https://", "http://")):
            raise ValueError(f"hold_music_url must be an http(s) URL Twilio can fetch, not {self.hold_music_url!r}")
        if self.notification_email_from is not None and not EMAIL_ADDRESS.match(self.notification_email_from):
            raise ValueError(f"notification_email_from {self.notification_email_from!r} is not an e-mail address")
        if self.notification_sms_from is not None and not E164.match(self.notification_sms_from):
            raise ValueError(f"notification_sms_from {self.notification_sms_from!r} is not an E.164 number (+ digits)")
        if self.log_retention_days not in _RETENTION_NAMES:
            raise ValueError(f"log_retention_days={self.log_retention_days} is not one of {sorted(_RETENTION_NAMES)}")

    @classmethod
    def from_context(cls, node: Node) -> StageConfig:
        def value(key: str, default):
            raw = node.try_get_context(key)
            if raw is None or raw == "":
                return default
            return type(default)(raw) if default is not None else str(raw)

        defaults = cls()
        return cls(
            stage=value("stage", defaults.stage),
            removal=value("removal", defaults.removal),
            throttle_rate=value("throttle_rate", defaults.throttle_rate),
            throttle_burst=value("throttle_burst", defaults.throttle_burst),
            ingest_reserved_concurrency=value("ingest_reserved_concurrency", defaults.ingest_reserved_concurrency),
            account_concurrency=value("account_concurrency", defaults.account_concurrency),
            log_retention_days=value("log_retention_days", defaults.log_retention_days),
            archive_days=value("archive_days", defaults.archive_days),
            powertools_version=value("powertools_version", defaults.powertools_version),
            alarm_email=value("alarm_email", defaults.alarm_email),
            hold_music_url=value("hold_music_url", defaults.hold_music_url),
            notification_email_from=value("notification_email_from", defaults.notification_email_from),
            notification_sms_from=value("notification_sms_from", defaults.notification_sms_from),
        )

    @property
    def stack_name(self) -> str:
        return f"Switchboard-{self.stage}"

    @property
    def prefix(self) -> str:
        """Physical-name prefix for resources that need a name (bus, functions, API, log groups)."""
        return f"switchboard-{self.stage}"

    @property
    def notification_email_domain(self) -> str | None:
        return self.notification_email_from.rsplit("@", 1)[1] if self.notification_email_from else None

    @property
    def retain(self) -> bool:
        return self.removal == "retain"

    @property
    def removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.RETAIN if self.retain else RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> logs.RetentionDays:
        # The day count was checked against CloudWatch's periods in __post_init__ (frozen since).
        retention: logs.RetentionDays = getattr(logs.RetentionDays, _RETENTION_NAMES[self.log_retention_days])
        return retention


# CloudWatch Logs only accepts these periods (jsii enums carry names, not day counts).
_RETENTION_NAMES = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1827: "FIVE_YEARS",
    3653: "TEN_YEARS",
}
