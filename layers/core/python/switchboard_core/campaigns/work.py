"""What reaches the campaign function's queue besides bus events, as JSON bodies.

* `TriggerMessage`: a published campaign's trigger rule matched a bus event (the rule's
  input transformer wraps the event: `{"kind": "trigger", "campaign", "event"}`);
* `StartRequest`: `POST /admin/campaigns/{id}/runs` asked for a run for one contact;
* `StopRequest`: `POST /admin/campaigns/{id}/stop` asked to stop one run in flight;
* `TimerMessage`: a run's wait ended (an EventBridge Scheduler one-time schedule on AWS,
  the local runtime's scheduler on one machine, both sending the same body).

Bus events (routing's `conversation.*` carrying replies and opt-outs, the providers' delivery
and call reports) arrive in EventBridge's own envelope, which has a `detail-type`; everything
else is read with `CAMPAIGN_WORK`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Work(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TriggerMessage(_Work):
    kind: Literal["trigger"] = "trigger"
    campaign: str = Field(min_length=1)
    event: dict[str, Any] = Field(description="the bus event as EventBridge delivered it (source, detail-type, detail)")


class StartRequest(_Work):
    kind: Literal["start"] = "start"
    tenant: str = Field(min_length=1)
    campaign: str = Field(min_length=1)
    version: int = Field(ge=1, description="the version live when the request was accepted")
    contact: str = Field(min_length=1, description="a contact id, or an E.164 phone (its contact is resolved)")
    request: str = Field(min_length=1, description="the runs request's id: the run's trigger event id")
    requested_by: str | None = None


class StopRequest(_Work):
    kind: Literal["stop"] = "stop"
    run: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class TimerMessage(_Work):
    kind: Literal["timer"] = "timer"
    run: str = Field(min_length=1)
    sequence: int = Field(ge=0)


CampaignWork = Annotated[TriggerMessage | StartRequest | StopRequest | TimerMessage, Field(discriminator="kind")]
CAMPAIGN_WORK: TypeAdapter[TriggerMessage | StartRequest | StopRequest | TimerMessage] = TypeAdapter(CampaignWork)
