"""What changed between two versions of a campaign: the start step, steps added and removed,
each changed step with its changed fields (dotted paths, `cases.0.next`), and the trigger.

Hand-written (docs/decisions.md): a flow is small, its steps are keyed by id, and what a
reviewer wants is "step s2: text changed", which a flattening comparison of each step's
JSON gives directly; a generic JSON diff library would report list moves and type changes
in a shape of its own, and none is in the layers."""

from __future__ import annotations

from typing import Any

from switchboard_core.campaigns.models import CampaignVersion

MISSING: Any = None  # a field one side does not have shows as null


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """{dotted path: leaf} of a JSON value; an empty object or array inside it is a leaf of its own."""
    items: list[tuple[str, Any]]
    if isinstance(value, dict) and value:
        items = [(str(key), item) for key, item in value.items()]
    elif isinstance(value, list) and value:
        items = [(str(index), item) for index, item in enumerate(value)]
    else:
        return {path: value} if path else {}  # an empty document has no fields
    flat: dict[str, Any] = {}
    for key, item in items:
        flat.update(flatten(item, f"{path}.{key}" if path else str(key)))
    return flat


def changed_fields(before: Any, after: Any) -> list[dict[str, Any]]:
    old, new = flatten(before), flatten(after)
    return [
        {"field": field, "from": old.get(field, MISSING), "to": new.get(field, MISSING)}
        for field in sorted(old.keys() | new.keys())
        if old.get(field, MISSING) != new.get(field, MISSING) or (field in old) != (field in new)
    ]


def diff_versions(before: CampaignVersion, after: CampaignVersion) -> dict[str, Any]:
    old_steps = {k: v.model_dump(mode="json") for k, v in before.flow.steps.items()}
    new_steps = {k: v.model_dump(mode="json") for k, v in after.flow.steps.items()}
    changed = [
        {"step": step_id, "fields": fields}
        for step_id in sorted(old_steps.keys() & new_steps.keys())
        if (fields := changed_fields(old_steps[step_id], new_steps[step_id]))
    ]
    old_trigger = before.trigger.model_dump(mode="json") if before.trigger else None
    new_trigger = after.trigger.model_dump(mode="json") if after.trigger else None
    return {
        "from": before.version,
        "to": after.version,
        "start": (
            {"from": before.flow.start, "to": after.flow.start} if before.flow.start != after.flow.start else None
        ),
        "steps": {
            "added": sorted(new_steps.keys() - old_steps.keys()),
            "removed": sorted(old_steps.keys() - new_steps.keys()),
            "changed": changed,
        },
        "trigger": (
            {"from": old_trigger, "to": new_trigger, "fields": changed_fields(old_trigger or {}, new_trigger or {})}
            if old_trigger != new_trigger
            else None
        ),
    }
