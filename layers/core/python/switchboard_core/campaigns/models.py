"""A campaign as stored: its head (name, tenant, owner, shares, which version is latest and
which is live) and its versions, each saved once and never changed (its publication time aside)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from switchboard_core.campaigns.flow import Flow, Trigger

CAMPAIGN_ID_PREFIX = "cmp_"


class Access(StrEnum):
    VIEWER = "viewer"  # reads the campaign, its versions and diffs; may fork it
    EDITOR = "editor"  # also saves new versions and publishes


class Author(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    key_id: str
    name: str


class Share(BaseModel):
    """Access for one key (`principal`, its key id) or one team of the campaign's tenant (its
    members are the keys named after a responder of that team)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    principal: str | None = None
    team: str | None = None
    access: Access
    shared_by: Author
    shared_at: AwareDatetime

    @model_validator(mode="after")
    def _one_grantee(self) -> Share:
        if (self.principal is None) == (self.team is None):
            raise ValueError("a share names exactly one of principal, team")
        return self

    @property
    def grantee(self) -> str:
        return f"principal:{self.principal}" if self.principal is not None else f"team:{self.team}"


class ForkedFrom(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    campaign: str
    version: int = Field(ge=1)


class Campaign(BaseModel):
    """The head: what every version of the campaign shares."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    id: str
    tenant: str
    name: str
    owner: Author
    created_at: AwareDatetime
    updated_at: AwareDatetime
    latest_version: int = Field(ge=1)
    published_version: int | None = None
    published_at: AwareDatetime | None = None
    published_by: Author | None = None
    forked_from: ForkedFrom | None = None
    shares: list[Share] = Field(default_factory=list)
    # The last stop: runs started before it are stopped by the campaign function on their next input.
    stopped_at: AwareDatetime | None = None
    stopped_by: Author | None = None


class CampaignVersion(BaseModel):
    """One saved version: immutable once written (only `published_at` is set, once)."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    campaign: str
    version: int = Field(ge=1)
    flow: Flow
    trigger: Trigger | None = None
    saved_at: AwareDatetime
    saved_by: Author
    published_at: AwareDatetime | None = None
