"""Subscription event patterns: EventBridge's syntax, checked here, scoped to one tenant.

`check_pattern` walks a pattern and lists every problem with where it is, so a partner
gets one 400 naming them all (EventBridge's own TestEventPattern, called afterwards by the
admin function, names only the first, and the local emulator checks far less). It accepts
what EventBridge documents for content filtering: exact values (string, number, boolean,
null), `prefix`, `suffix`, `equals-ignore-case`, `anything-but` (values, or a prefix,
suffix, equals-ignore-case or wildcard), `numeric` (one comparison or a range), `exists`,
`cidr`, `wildcard`, and `$or` at any level.

`scoped_to_tenant` ANDs the subscription's tenant into the pattern (`detail.tenant`), so
no pattern can match another tenant's events: EventBridge ANDs every key of a pattern,
`$or` included, so a condition on `detail.tenant` the hub adds holds whatever else the
pattern says. A pattern that names `detail.tenant` itself must name exactly its own.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from typing import Any

from switchboard_core.errors import HubError

TOP_LEVEL_FIELDS = ("source", "detail-type", "detail", "$or")
COMPARISONS = ("<", "<=", "=", ">", ">=")
MAX_PATTERN_CHARS = 4096  # EventBridge's limit on a rule's EventPattern, tenant condition included
MAX_DEPTH = 10
OR = "$or"

Problems = list[dict[str, str]]


class InvalidPattern(HubError):
    status = 400
    code = "invalid_event_pattern"

    def __init__(self, problems: Problems) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"event_pattern is not a valid EventBridge pattern: {first['field']}: {first['problem']}{more}",
            details={"problems": problems},
        )


def check_pattern(pattern: Any, tenant: str | None = None) -> None:
    """Raise InvalidPattern naming every problem of `pattern`; with `tenant`, also refuse a
    `detail.tenant` condition other than exactly that tenant."""
    problems: Problems = []
    if not isinstance(pattern, dict) or not pattern:
        problems.append(_problem("", 'must be a non-empty JSON object, e.g. {"detail-type": ["message.received"]}'))
    else:
        for key in pattern:
            if key not in TOP_LEVEL_FIELDS:
                problems.append(
                    _problem(key, f"is not a field a subscription can match; use {', '.join(TOP_LEVEL_FIELDS)}")
                )
        _check_object(pattern, "", 1, problems)
        if tenant is not None:
            _check_tenant(pattern, tenant, problems)
        if len(json.dumps(scoped_to_tenant(pattern, tenant or "t"))) > MAX_PATTERN_CHARS and not problems:
            problems.append(_problem("", f"is longer than EventBridge's {MAX_PATTERN_CHARS} characters"))
    if problems:
        raise InvalidPattern(problems)


def scoped_to_tenant(pattern: dict[str, Any], tenant: str) -> dict[str, Any]:
    """The pattern the hub puts on the bus: the subscription's, with `detail.tenant` ANDed in."""
    scoped = copy.deepcopy(pattern)
    detail = scoped.get("detail")
    if not isinstance(detail, dict):
        detail = scoped["detail"] = {}
    detail["tenant"] = [tenant]
    return scoped


def _problem(field: str, problem: str) -> dict[str, str]:
    return {"field": "event_pattern" + (f".{field}" if field else ""), "in": "body", "problem": problem}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_object(node: dict[str, Any], path: str, depth: int, problems: Problems) -> None:
    if depth > MAX_DEPTH:
        problems.append(_problem(path, f"nests deeper than {MAX_DEPTH} levels"))
        return
    for key, value in node.items():
        where = _join(path, key)
        if key == OR:
            _check_or(value, where, depth, problems)
        elif isinstance(value, dict):
            if not value:
                problems.append(_problem(where, "is an empty object; name a field inside it or remove it"))
            _check_object(value, where, depth + 1, problems)
        elif isinstance(value, list):
            if not value:
                problems.append(_problem(where, "is an empty array, which matches nothing"))
            for index, matcher in enumerate(value):
                _check_matcher(matcher, f"{where}[{index}]", problems)
        else:
            problems.append(_problem(where, "must be an array of values or matchers, or an object of fields"))


def _check_or(value: Any, where: str, depth: int, problems: Problems) -> None:
    if not isinstance(value, list) or len(value) < 2:
        problems.append(_problem(where, "must be an array of at least two patterns"))
        return
    for index, branch in enumerate(value):
        if not isinstance(branch, dict) or not branch:
            problems.append(_problem(f"{where}[{index}]", "must be a non-empty object"))
        else:
            _check_object(branch, f"{where}[{index}]", depth + 1, problems)


def _check_matcher(matcher: Any, where: str, problems: Problems) -> None:
    if matcher is None or isinstance(matcher, str | bool | int | float):
        return  # an exact value
    if not isinstance(matcher, dict) or len(matcher) != 1:
        problems.append(_problem(where, "must be a value or an object with exactly one operator"))
        return
    ((operator, operand),) = matcher.items()
    check = _OPERATORS.get(operator)
    if check is None:
        problems.append(_problem(where, f"unknown operator {operator!r}; use one of {', '.join(_OPERATORS)}"))
        return
    problem = check(operand)
    if problem:
        problems.append(_problem(f"{where}.{operator}", problem))


def _string_or_ignore_case(operand: Any) -> str | None:
    if isinstance(operand, str):
        return None
    if isinstance(operand, dict) and list(operand) == ["equals-ignore-case"]:
        return _equals_ignore_case(operand["equals-ignore-case"])
    return 'must be a string, or {"equals-ignore-case": string}'


def _equals_ignore_case(operand: Any) -> str | None:
    return None if isinstance(operand, str) else "must be a string"


def _strings(operand: Any) -> str | None:
    if isinstance(operand, str):
        return None
    if isinstance(operand, list) and operand and all(isinstance(item, str) for item in operand):
        return None
    return "must be a string or a non-empty array of strings"


def _wildcard(operand: Any) -> str | None:
    if not isinstance(operand, str):
        return "must be a string"
    if "**" in operand:
        return "may not hold consecutive wildcard characters (**)"
    return None


def _anything_but(operand: Any) -> str | None:
    if isinstance(operand, str | int | float) and not isinstance(operand, bool):
        return None
    if isinstance(operand, list):
        if not operand:
            return "must not be an empty array"
        strings = all(isinstance(item, str) for item in operand)
        numbers = all(isinstance(item, int | float) and not isinstance(item, bool) for item in operand)
        return None if strings or numbers else "must be an array of only strings or only numbers"
    if isinstance(operand, dict) and len(operand) == 1:
        ((name, inner),) = operand.items()
        if name in ("prefix", "suffix"):
            return None if isinstance(inner, str) else f"{name} must be a string"
        if name == "equals-ignore-case":
            return _strings(inner)
        if name == "wildcard":
            return _strings(inner) or (_wildcard(inner) if isinstance(inner, str) else None)
        return f"unknown anything-but operator {name!r}; use prefix, suffix, equals-ignore-case or wildcard"
    return "must be a value, an array of values, or one of prefix, suffix, equals-ignore-case, wildcard"


def _numeric(operand: Any) -> str | None:
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        return 'must be [comparison, number] or a range [">", low, "<", high]'
    pairs = [operand[i : i + 2] for i in range(0, len(operand), 2)]
    for comparison, number in pairs:
        if comparison not in COMPARISONS:
            return f"{comparison!r} is not a comparison; use one of {', '.join(COMPARISONS)}"
        if isinstance(number, bool) or not isinstance(number, int | float):
            return f"{number!r} is not a number"
        if abs(number) > 5e9:
            return "numbers must lie between -5.0e9 and 5.0e9"
    if len(pairs) == 2:
        (low_op, low), (high_op, high) = pairs
        if low_op not in (">", ">=") or high_op not in ("<", "<="):
            return "a range is a lower bound (> or >=) then an upper bound (< or <=)"
        if low >= high:
            return "a range's lower bound must be below its upper bound"
    return None


def _exists(operand: Any) -> str | None:
    return None if isinstance(operand, bool) else "must be true or false"


def _cidr(operand: Any) -> str | None:
    if not isinstance(operand, str):
        return "must be a string"
    try:
        ipaddress.ip_network(operand, strict=False)
    except ValueError:
        return f"{operand!r} is not an IP address range (CIDR)"
    return None


_OPERATORS = {
    "prefix": _string_or_ignore_case,
    "suffix": _string_or_ignore_case,
    "equals-ignore-case": _equals_ignore_case,
    "anything-but": _anything_but,
    "numeric": _numeric,
    "exists": _exists,
    "cidr": _cidr,
    "wildcard": _wildcard,
}


def _check_tenant(pattern: dict[str, Any], tenant: str, problems: Problems) -> None:
    detail = pattern.get("detail")
    if isinstance(detail, dict) and "tenant" in detail and detail["tenant"] != [tenant]:
        problems.append(
            _problem(
                "detail.tenant",
                f"is set by the hub to the subscription's tenant; leave it out or write [{json.dumps(tenant)}]",
            )
        )
