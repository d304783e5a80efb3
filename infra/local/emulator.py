"""The embedded AWS: moto in server mode on loopback, and the resources of the topology.

`create_resources` walks infra/topology.py -- the same declarations the CDK app
builds from -- so the local hub has exactly the tables, bucket, bus, rules and
queues a deployment has.
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import os
import re
import string
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from secrets import token_urlsafe
from typing import TYPE_CHECKING, Any, cast

from infra import topology

if TYPE_CHECKING:
    from moto.events.utils import EventMessageType

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


def patch_moto() -> None:
    """Every fix this project makes to moto 5.2.5, applied once (calling again changes nothing):
    by the embedded emulator and by the unit tests' in-process mock_aws (tests/conftest.py)."""
    from infra.local.moto_dynamodb import patch_moto_dynamodb_queries

    patch_moto_event_delivery()
    patch_moto_test_event_pattern()
    patch_moto_dynamodb_queries(_DYNAMODB_WRITES)  # before the writes' lock wraps update_item
    patch_moto_atomic_operations()
    patch_moto_server_dispatch()
    patch_moto_sqs_scans()
    patch_moto_per_request_work()


def patch_moto_event_delivery() -> None:
    """Three fixes to moto 5.2.5's EventBridge -> target delivery (all worth offering upstream):

    - it re-parses eight jsonpath expressions for every event it delivers (~9 ms
      each time, measured in design.md); parsed expressions are immutable, so the
      parser is cached;
    - its default target template drops the envelope's `account` field, which AWS
      delivers and consumers' envelope models (Powertools' EventBridgeModel) require;
    - an input transformer's `<aws.events.event.json>` is moto's internal event (its `time`
      a float, plus an `ingestion-time` AWS never shows), and an empty InputPathsMap falls back
      to moto's default paths, whose placeholders (`<detail>`, `<id>`...) are then replaced a
      second time inside the text already substituted, so a message body containing "<id>"
      came out altered. Templates are filled as AWS fills them: in one pass, from the paths
      the target names and the predefined `aws.events.*` variables, with the envelope AWS
      delivers (subscriptions' rules use exactly this: `{"subscription": ..., "event":
      <aws.events.event.json>}`).
    """
    import jsonpath_ng.ext
    from moto.events.utils import EventTemplateParser

    if not hasattr(jsonpath_ng.ext.parse, "cache_info"):
        jsonpath_ng.ext.parse = lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"version": "0",', '"version": "0", "account": "<account>",'
        )
    if not getattr(EventTemplateParser.parse, "switchboard_patched", False):
        moto_parse = EventTemplateParser.parse

        def parse(input_template: str | None, input_paths_map: dict[str, Any], event: Any) -> Any:
            if not input_template:  # no transformer: moto's default template (patched above)
                return moto_parse("", input_paths_map, event)
            return json.loads(fill_input_template(input_template, input_paths_map or {}, event))

        parse.switchboard_patched = True  # type: ignore[attr-defined]
        EventTemplateParser.parse = staticmethod(parse)  # type: ignore[method-assign]


# One lock for moto's DynamoDB writes and one per queue for its SQS receives (see below).
_DYNAMODB_WRITES = threading.RLock()
_SQS_RECEIVES: dict[str, threading.Lock] = {}
_SQS_RECEIVES_LOCK = threading.Lock()
_EVENTS_RULES = threading.RLock()
EVENTS_RULE_CHANGES = ("put_rule", "delete_rule", "put_targets", "remove_targets", "put_events")
DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


def patch_moto_atomic_operations() -> None:
    """moto 5.2.5's server answers requests on many threads, and its backends check and act in
    two steps without a lock: two conditional writes to one item can both pass their condition
    (DynamoDB applies each atomically: ingest's dedupe and every claim rely on it), and two
    receives of one queue can both take the same message. With the local runtime's functions
    running concurrently (infra/local/workers.py) both happen, so every DynamoDB write runs
    alone, and receives take messages one at a time (their long-poll waits stay outside the lock).
    EventBridge's rule changes and deliveries run apart too, and SQS deletes apart from sends
    (see below)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.events.models import EventsBackend
    from moto.sqs.models import Queue, SQSBackend

    for name in DYNAMODB_WRITES:
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "switchboard_patched", False):
            continue

        def atomic(self: Any, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            with _DYNAMODB_WRITES:
                return _method(self, *args, **kwargs)

        atomic.switchboard_patched = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, atomic)

    # EventBridge: put_events iterates a bus's rules while the campaigns and admin functions add
    # and remove rules ("OrderedDict mutated during iteration", a 500): rules change one at a time,
    # never during a delivery.
    for name in EVENTS_RULE_CHANGES:
        method = getattr(EventsBackend, name)
        if getattr(method, "switchboard_patched", False):
            continue

        def alone(self: Any, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            with _EVENTS_RULES:
                return _method(self, *args, **kwargs)

        alone.switchboard_patched = True  # type: ignore[attr-defined]
        setattr(EventsBackend, name, alone)

    # SQS: a delete builds the queue's list without the deleted message and then assigns it, while
    # a send appends to the list under the queue's condition lock; a message sent between the two
    # steps went with the old list. The 20,000-webhook reconciliation lost nine acknowledged events
    # that way (delivered to routing's queue, gone from the event log's). Deletes hold that lock.
    delete = Queue.delete_message
    if not getattr(delete, "switchboard_patched", False):

        def delete_message(self: Any, receipt_handle: str) -> None:
            with self._messages_lock:
                delete(self, receipt_handle)

        delete_message.switchboard_patched = True  # type: ignore[attr-defined]
        Queue.delete_message = delete_message  # type: ignore[method-assign]

    receive = SQSBackend.receive_message
    if getattr(receive, "switchboard_patched", False):
        return

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with _SQS_RECEIVES_LOCK:
                lock = _SQS_RECEIVES.setdefault(queue_name, threading.Lock())
            with lock:
                found = receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            self.get_queue(queue_name).wait_for_messages(min(1.0, remaining))

    receive_message.switchboard_patched = True  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


def patch_moto_server_dispatch() -> None:
    """moto 5.2.5's server finds the backend of every request under one lock, and inside it lists
    moto's package directory (a listdir and ~150 isdir calls) and tries every service's URL
    patterns: a few milliseconds per request, one request at a time, which queued the concurrent
    functions' AWS calls behind each other. The answer for a host never changes: it is kept."""
    import moto.core.responses
    import moto.core.utils
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    # Per request, moto also lists its response class's methods (inspect.getmembers) and converts
    # the action's name with a character loop; both answers depend only on their argument.
    for module in (moto.core.utils, moto.core.responses):
        for name in ("method_names_from_class", "camelcase_to_underscores"):
            original = getattr(module, name)
            if not hasattr(original, "cache_info"):
                setattr(module, name, lru_cache(maxsize=4096)(original))

    find = DomainDispatcherApplication.get_backend_for_host
    if getattr(find, "switchboard_patched", False):
        return
    found: dict[str, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host is None:
            return None
        if host not in found:
            found[host] = find(self, host)
        return found[host]

    get_backend_for_host.switchboard_patched = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


def patch_moto_sqs_scans() -> None:
    """moto 5.2.5's SQS walks every message of a queue several times for each message it sends or
    receives, reading the clock twice per message walked, so a queue's cost per message grew with
    its backlog (routing's queue holds a few hundred messages during a load run: ReceiveMessage took
    ~7 ms of the hub's CPU, PutEvents to the queues ~8 ms):

    - `Queue.attributes` (built whole by SendMessage, for one FIFO setting, and by every attribute
      read) counted the visible, delayed and in-flight messages in three walks, reading the clock for
      each message in each, and converted each attribute's name with a character loop; now one walk
      with one clock reading, the names converted once;
    - `Queue.messages` (the visible ones, walked by every receive) read the clock twice per message;
      now once per walk;
    - a receive checked each message it took against the queue's retention period by asking
      GetQueueAttributes, which built `Queue.attributes` three times: the period is read from the queue;
    - each receipt handle drew its 185 letters one `random.choice` call at a time: one `choices` call.

    The answers are the same (counts, order, attributes; a message's visibility and delay are compared
    with the clock read once per walk instead of once per message)."""
    import moto.sqs.models
    from moto.core.utils import camelcase_to_underscores, unix_time, unix_time_millis
    from moto.moto_api._internal import mock_random
    from moto.sqs.models import Queue, SQSBackend

    if getattr(vars(Queue)["messages"].fget, "switchboard_patched", False):
        return
    # The counts `attributes` computes itself; every other attribute is the queue's field of that name.
    counted = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesDelayed",
        "ApproximateNumberOfMessagesNotVisible",
    )
    field_names = {
        name: camelcase_to_underscores(name)
        for name in (*Queue.BASE_ATTRIBUTES, *Queue.FIFO_ATTRIBUTES, *Queue.KMS_ATTRIBUTES)
    }

    def messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        return [message for message in self._messages if now > message.visible_at and now >= message.delayed_until]

    def attributes(self: Any) -> dict[str, Any]:
        now = unix_time_millis()
        visible = delayed = not_visible = 0
        for message in self._messages:
            is_delayed = now < message.delayed_until
            delayed += is_delayed
            if now > message.visible_at:
                visible += not is_delayed
            else:
                not_visible += 1
        counts = dict(zip(counted, (visible, delayed, not_visible), strict=True))
        result: dict[str, Any] = {}
        names = list(Queue.BASE_ATTRIBUTES)
        if self.fifo_queue:
            names += Queue.FIFO_ATTRIBUTES
        if self.kms_master_key_id:
            names += Queue.KMS_ATTRIBUTES
        for name in names:
            result[name] = counts[name] if name in counts else getattr(self, field_names[name])
        if self.policy:
            result["Policy"] = self.policy
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy)
        for key, value in result.items():
            if isinstance(value, bool):
                result[key] = str(value).lower()
        return result

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    def generate_receipt_handle() -> str:
        return "".join(mock_random.choices(string.ascii_lowercase, k=185))

    messages.switchboard_patched = True  # type: ignore[attr-defined]
    Queue.messages = property(messages)  # type: ignore[assignment, method-assign]
    Queue.attributes = property(attributes)  # type: ignore[assignment, method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    moto.sqs.models.generate_receipt_handle = generate_receipt_handle


def patch_moto_per_request_work() -> None:
    """Work moto 5.2.5 repeats on every request although its answer depends only on what it is given
    (found by profiling the hub process under load: about 1.5 ms of moto's framework per request, a
    dozen requests per webhook):

    - its response serialiser looks up each member of the output model in the result by asking six
      alias providers, built anew for every member, which names to try (the member's name, its
      snake_case form, the shape's name...), and tries each name in a dict by catching KeyError: the
      names are the same for the same kind of object, member and model shape, so they are kept, and
      a plain dict is read with `dict.get` (a DynamoDB item of ten attributes is a hundred members);
    - DynamoDB parses each UpdateExpression twice per UpdateItem (once to validate the request, once
      to apply it) with a character-by-character tokenizer; the parsed tree is only read afterwards
      (validation works on a deep copy), so it is parsed once per distinct expression;
    - DynamoDB lexes each ConditionExpression twice per conditional PutItem (to validate, to apply),
      trying six regular expressions at every token: the tokens of each distinct expression are
      kept (the parse that follows gets fresh copies, as the lexer makes them);
    - its update-expression validation walks the tree ten times, and at every node of every walk
      rebuilds the walker's table of node types to act on (a dict of bound methods, then a tuple of
      its keys): the table is the walker's own and never changes, so each walker builds it once; and
      the walks ask `isinstance` of its node classes (abc.ABCMeta's, answered in Python) ~1,300
      times per UpdateItem: the answer for a node's class is kept (moto registers no virtual
      subclasses, so it never changes);
    - each response's request id is 52 random characters drawn one `random.choice` call at a time
      (so are the other ids moto makes with `get_random_string` / `get_random_hex`): one `choices` call.

    Every answer is unchanged: the same names tried in the same order, the same values found, the same
    tree, ids of the same length and alphabet."""
    import moto.core.utils
    from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS, XFormedAttributePicker
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]
        DepthFirstTraverser,
        Expression,
        Node,
        UpdateExpressionFunction,
    )
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
    from moto.moto_api._internal.moto_random import MotoRandom

    if getattr(XFormedAttributePicker.get_possible_keys, "switchboard_patched", False):
        return

    # (class of the result object, member name, id(shape), id(shape.parent)) -> (shape, parent, names)
    possible_keys: dict[tuple[type, str, int, int], tuple[Any, Any, tuple[str, ...]]] = {}
    find_keys = XFormedAttributePicker.get_possible_keys

    def get_possible_keys(self: Any, context: Any) -> Any:
        obj, shape = context.obj, context.shape
        parent = getattr(shape, "parent", None)
        # The names depend on the object only through its class (and its class's Meta aliases).
        if self.alias_providers is not DEFAULT_ALIAS_PROVIDERS or getattr(obj, "Meta", None) is not getattr(
            obj.__class__, "Meta", None
        ):
            return find_keys(self, context)
        key = (obj.__class__, context.key, id(shape), id(parent))
        found = possible_keys.get(key)
        if found is None or found[0] is not shape or found[1] is not parent:
            found = (shape, parent, tuple(find_keys(self, context)))
            possible_keys[key] = found
        return found[2]

    get_value_for_key = moto.core.utils._get_value_for_key

    def _get_value_for_key(obj: Any, key: int | str, default: Any) -> Any:
        if type(obj) is dict:  # what obj[key] finds, or the default where it raises KeyError
            return obj.get(key, default)
        return get_value_for_key(obj, key, default)

    def get_random_string(self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False) -> str:
        pool = string.ascii_letters + (string.digits if include_digits else "")
        random_str = "".join(self.choices(pool, k=length))
        return random_str.lower() if lower_case else random_str

    def get_random_hex(self: Any, length: int = 8) -> str:
        return "".join(self.choices("0123456789abcdef", k=length))

    def processing_map(self: Any) -> dict[type, Any]:
        table = self.__dict__.get("_switchboard_processing_map")
        if table is None:
            table = self.__dict__["_switchboard_processing_map"] = self._processing_map()
        return table

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        types = self.__dict__.get("_switchboard_node_types")
        if types is None:
            types = self.__dict__["_switchboard_node_types"] = tuple(processing_map(self))
        return types

    kinds: dict[tuple[type, Any], bool] = {}

    def is_a(obj: Any, classinfo: Any) -> bool:
        key = (type(obj), classinfo)
        found = kinds.get(key)
        if found is None:
            found = kinds[key] = isinstance(obj, classinfo)
        return found

    def process(self: Any, node: Any) -> Any:
        for class_key, processor in processing_map(self).items():
            if is_a(node, class_key):
                return processor(node)
        return None

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        if is_a(node, Node):  # moto's own walk, with is_a for isinstance
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    self.pre_processing_of_child(node, i)
                    self.traverse_node_recursively(child_node, i)
            if is_a(node, self.nodes_to_be_processed()):
                node = self.process(node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    def find_clauses(self: Any, clause_types: Any) -> list[Any]:
        clauses: list[Any] = []
        for child in self.children or []:
            if type(child) in clause_types:
                clauses.append(child)
            elif is_a(child, Expression) or is_a(child, UpdateExpressionFunction):
                clauses.extend(child.find_clauses(clause_types))
        return clauses

    lex = ConditionExpressionParser._lex_condition_expression
    lexed: dict[str, tuple[Any, ...]] = {}

    def _lex_condition_expression(self: Any) -> deque[Any]:
        expression = self.condition_expression
        tokens = lexed.get(expression)
        if tokens is None:
            tokens = tuple(lex(self))
            if len(lexed) >= 1024:  # the functions' expressions are a few dozen; a bound all the same
                lexed.clear()
            lexed[expression] = tokens
        # The lexer's nodes are named tuples with an empty list of children: each parse gets its own.
        return deque(token._replace(children=[]) for token in tokens)

    get_possible_keys.switchboard_patched = True  # type: ignore[attr-defined]
    ConditionExpressionParser._lex_condition_expression = _lex_condition_expression  # type: ignore[method-assign]
    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed
    DepthFirstTraverser.process = process
    DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively
    Node.find_clauses = find_clauses
    XFormedAttributePicker.get_possible_keys = get_possible_keys  # type: ignore[method-assign]
    moto.core.utils._get_value_for_key = _get_value_for_key
    UpdateExpressionParser.make = classmethod(cast(Any, lru_cache(maxsize=1024)(UpdateExpressionParser.make.__func__)))
    MotoRandom.get_random_string = get_random_string  # type: ignore[method-assign]
    MotoRandom.get_random_hex = get_random_hex  # type: ignore[method-assign]


PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def delivered_envelope(event: dict[str, Any]) -> dict[str, Any]:
    """An event as EventBridge hands it to a target: `time` in ISO 8601 (moto keeps a float),
    no `ingestion-time` (moto's own bookkeeping)."""
    envelope = {key: value for key, value in event.items() if key != "ingestion-time"}
    if isinstance(envelope.get("time"), int | float):
        envelope["time"] = datetime.fromtimestamp(envelope["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return envelope


def fill_input_template(template: str, paths: dict[str, str], event: dict[str, Any]) -> str:
    """An InputTransformer's InputTemplate with each `<name>` replaced in a single pass: a
    name of InputPathsMap by the value its JSON path finds in the event, `aws.events.event.json`
    by the delivered envelope, `aws.events.event.ingestion-time` by moto's ingestion time; other
    text is left as it is (as AWS leaves it). Objects, arrays and numbers go in as JSON,
    strings as they are (the template quotes them), as moto does."""
    from jsonpath_ng.ext import parse

    values: dict[str, Any] = {
        "aws.events.event.json": delivered_envelope(event),
        "aws.events.event.ingestion-time": event.get("ingestion-time"),
    }
    for name, path in paths.items():
        matches = parse(path).find(event)
        values[name] = matches[0].value if matches else None

    def value_of(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in values:
            return found.group(0)
        value = values[name]
        if isinstance(value, str):
            return value
        return json.dumps(value)

    return PLACEHOLDER.sub(value_of, template)


# --- TestEventPattern ------------------------------------------------------------------------

# The fields TestEventPattern requires of the event it tests (EventBridge's API reference).
TEST_EVENT_REQUIRED_FIELDS = ("id", "account", "source", "time", "region", "resources", "detail-type")
NUMERIC_COMPARISONS = ("<", "<=", "=", ">=", ">")


def patch_moto_test_event_pattern() -> None:
    """moto 5.2.5 does not implement TestEventPattern (the backend raises NotImplementedError,
    the response handler returns nothing). Implement it with moto's own rule matcher (the
    EventPattern a rule uses to pick events), so a pattern tests locally exactly as a local rule
    matches. moto's parser checks little (JSON, arrays not empty), and its matcher accepts any
    operator name, matching everything with one it does not know; `pattern_problem` refuses
    those first, as EventBridge does, with its error: InvalidEventPatternException, "Event pattern
    is not valid. Reason: ...". docs/partners.md lists which operators each supports."""
    from moto.events.models import EventsBackend
    from moto.events.responses import EventsHandler

    if getattr(EventsBackend.test_event_pattern, "switchboard_patched", False):
        return

    def backend_test_event_pattern(self: Any, event_pattern: str | None, event: str | None) -> bool:
        return test_event_pattern(event_pattern, event)

    def handler_test_event_pattern(self: Any) -> str:
        result = self.events_backend.test_event_pattern(self._get_param("EventPattern"), self._get_param("Event"))
        return json.dumps({"Result": result})

    backend_test_event_pattern.switchboard_patched = True  # type: ignore[attr-defined]
    EventsBackend.test_event_pattern = backend_test_event_pattern  # type: ignore[assignment, method-assign]
    EventsHandler.test_event_pattern = handler_test_event_pattern  # type: ignore[assignment, method-assign]


def test_event_pattern(event_pattern: str | None, event: str | None) -> bool:
    """Whether `event` (JSON) matches `event_pattern` (JSON) by moto's rule matcher; moto's
    InvalidEventPatternException for a pattern EventBridge would refuse, ValidationException
    for an event that is not one."""
    from moto.events.exceptions import InvalidEventPatternException, ValidationException
    from moto.events.models import EventPattern

    try:
        raw = json.loads(event_pattern or "")
    except ValueError:
        raise InvalidEventPatternException(reason="Invalid JSON") from None
    if not isinstance(raw, dict) or not raw:
        raise InvalidEventPatternException(reason="the pattern must be a non-empty JSON object")
    problem = pattern_problem(raw)
    if problem:
        raise InvalidEventPatternException(reason=problem)
    pattern = EventPattern.load(event_pattern)  # moto's own checks (arrays not empty, leaves are arrays)
    try:
        parsed: Any = json.loads(event or "")
    except ValueError:
        raise ValidationException("Parameter Event is not valid. Reason: Invalid JSON") from None
    if not isinstance(parsed, dict):
        raise ValidationException("Parameter Event is not valid. Reason: the event must be a JSON object")
    missing = [name for name in TEST_EVENT_REQUIRED_FIELDS if name not in parsed]
    if missing:
        raise ValidationException(f"Parameter Event is not valid. Reason: missing field(s) {', '.join(missing)}")
    return bool(pattern.matches_event(cast("EventMessageType", parsed)))


def pattern_problem(node: dict[str, Any], path: str = "") -> str | None:
    """The first reason EventBridge would refuse this pattern (object level), or None."""
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(b, dict) and b for b in value):
                return f"{where} must be an array of at least two non-empty objects"
            for index, branch in enumerate(value):
                if problem := pattern_problem(branch, f"{where}[{index}]"):
                    return problem
        elif isinstance(value, dict):
            if not value:
                return f"{where} is an empty object"
            if problem := pattern_problem(value, where):
                return problem
        elif isinstance(value, list):
            if not value:
                return f"{where}: Empty arrays are not allowed"
            for index, matcher in enumerate(value):
                if problem := _matcher_problem(matcher, f"{where}[{index}]"):
                    return problem
        else:
            return f"{where} must be an object or an array"
    return None


def _matcher_problem(matcher: Any, where: str) -> str | None:
    if matcher is None or isinstance(matcher, str | bool | int | float):
        return None  # an exact value
    if not isinstance(matcher, dict) or len(matcher) != 1:
        return f"{where} must be a value or an object with exactly one match type"
    ((operator, operand),) = matcher.items()
    check = _OPERAND_CHECKS.get(operator)
    if check is None:
        return f"{where}: Unrecognized match type {operator}"
    problem = check(operand)
    return f"{where}: {operator} {problem}" if problem else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string_or_ignore_case(operand: Any) -> str | None:
    if isinstance(operand, str):
        return None
    if (
        isinstance(operand, dict)
        and list(operand) == ["equals-ignore-case"]
        and isinstance(operand["equals-ignore-case"], str)
    ):
        return None
    return 'match pattern must be a string or {"equals-ignore-case": string}'


def _string(operand: Any) -> str | None:
    return None if isinstance(operand, str) else "match pattern must be a string"


def _strings(operand: Any) -> str | None:
    if isinstance(operand, str) or (isinstance(operand, list) and operand and all(isinstance(o, str) for o in operand)):
        return None
    return "match pattern must be a string or a non-empty array of strings"


def _anything_but(operand: Any) -> str | None:
    if isinstance(operand, str) or _is_number(operand):
        return None
    if isinstance(operand, list):
        if operand and (all(isinstance(o, str) for o in operand) or all(_is_number(o) for o in operand)):
            return None
        return "array must hold only strings or only numbers, and at least one"
    if isinstance(operand, dict) and len(operand) == 1:
        ((inner, value),) = operand.items()
        if inner in ("prefix", "suffix"):
            return _string(value)
        if inner in ("equals-ignore-case", "wildcard"):
            return _strings(value)
    return "must be a value, an array of values, or one of prefix, suffix, equals-ignore-case, wildcard"


def _numeric(operand: Any) -> str | None:
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        return 'must be an array of one or two comparisons, e.g. [">", 0, "<=", 5]'
    for operator, value in zip(operand[::2], operand[1::2], strict=True):
        if operator not in NUMERIC_COMPARISONS:
            return f"comparison {operator!r} is not one of {', '.join(NUMERIC_COMPARISONS)}"
        if not _is_number(value):
            return f"value {value!r} is not a number"
    return None


def _exists(operand: Any) -> str | None:
    return None if isinstance(operand, bool) else "match pattern must be true or false"


def _cidr(operand: Any) -> str | None:
    try:
        ipaddress.ip_network(operand, strict=False)
    except (TypeError, ValueError):
        return f"{operand!r} is not an IP prefix (CIDR)"
    return None


_OPERAND_CHECKS = {
    "prefix": _string_or_ignore_case,
    "suffix": _string_or_ignore_case,
    "equals-ignore-case": _string,
    "wildcard": _string,
    "anything-but": _anything_but,
    "numeric": _numeric,
    "exists": _exists,
    "cidr": _cidr,
}


def aws_environment(endpoint: str) -> dict[str, str]:
    """What every boto3 client in this process needs to talk to the emulator."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def keep_alive_handler() -> type:
    """moto's request handler (werkzeug's, with moto's header fixes) answering HTTP/1.1 with the
    connection kept open. werkzeug's development server closes every connection after one answer,
    so each AWS call of every function cost a TCP connection, a thread and a 10 ms linger on both
    sides; botocore keeps its connections in a pool and reuses them when the server lets it.

    The body is read whole before the app runs (by Content-Length, or de-chunked), so the next
    request on the connection starts where this one ended; the answer goes out with its length."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveRequestHandler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"

        def run_wsgi(self) -> None:
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.environ = environ = self.make_environ()
            if environ.pop("wsgi.input_terminated", False):
                body = environ["wsgi.input"].read()  # werkzeug's de-chunking reader
            else:
                body = self.rfile.read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            answer: list[Any] = []
            chunks: list[bytes] = []

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                answer[:] = [status, headers]
                return chunks.append

            try:
                result = self.server.app(environ, start_response)
                try:
                    chunks.extend(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
            except Exception:  # as werkzeug's server: a 500, and the connection closed
                logging.getLogger(__name__).exception("emulator request failed")
                answer[:] = ["500 Internal Server Error", [("Content-Type", "text/plain")]]
                chunks[:] = [b"Internal Server Error"]
                self.close_connection = True
            status, headers = answer
            data = b"".join(chunks)
            code, _, reason = status.partition(" ")
            lines = [f"HTTP/1.1 {code} {reason}"]
            length_given = False
            for name, value in headers:
                lowered = name.lower()
                if lowered in ("connection", "transfer-encoding"):
                    continue
                if lowered == "content-length":
                    if self.command != "HEAD":
                        continue  # the length of what is sent, below
                    length_given = True
                lines.append(f"{name}: {value}")
            if self.command != "HEAD" or not length_given:
                lines.append(f"Content-Length: {len(data) if self.command != 'HEAD' else 0}")
            if self.close_connection:
                lines.append("Connection: close")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            self.wfile.write(head if self.command == "HEAD" else head + data)

    return KeepAliveRequestHandler


# The APIs our functions call with the AWS JSON protocol, by X-Amz-Target's prefix: every call is
# a POST to `/` with the header naming the action, and moto answers each API from one `dispatch`.
# (The prefix, not the signing service, picks moto's app: DynamoDB Streams is signed `dynamodb`.)
JSON_PROTOCOL_TARGETS = frozenset({"DynamoDB_20120810", "AmazonSQS", "AWSEvents", "secretsmanager"})


class JsonProtocolShortcut:
    """moto's WSGI app, with its Flask layer skipped for the JSON-protocol calls.

    moto's server answers every request through a Flask app per service: a request context, URL
    rules, the CORS hook, moto's wrapper and a Flask Response around `BaseResponse.dispatch`,
    about two fifths of what moto spends on a DynamoDB GetItem (docs/benchmarks.md, "The
    emulator's Flask layer"). For the JSON protocol that layer decides nothing: the URL is always
    `/` and the action is in a header. So the first such call of a service goes through Flask's
    URL map once to find moto's handler for `/`, and every call after it hands moto's request
    (the class its Flask app uses) straight to that handler, and shapes the answer as Flask
    would (status line, moto's headers, Content-Type and Content-Length; flask-cors's
    Access-Control-Allow-Origin is the one header it leaves out). Everything else (S3, the
    scheduler's REST calls, moto's own API) goes through moto's app unchanged."""

    def __init__(self, app: Any) -> None:
        # Imported once here, not per request: this is the emulator's hot path.
        from botocore.exceptions import ClientError
        from moto.moto_api import recorder
        from moto.moto_server.werkzeug_app import BackendRequest
        from werkzeug.exceptions import HTTPException
        from werkzeug.http import HTTP_STATUS_CODES

        self.app = app  # moto's DomainDispatcherApplication
        self._handlers: dict[str, Callable[..., Any] | None] = {}
        self._handlers_lock = threading.Lock()
        self._client_error, self._http_exception = ClientError, HTTPException
        self._request_class, self._record = BackendRequest, recorder._record_request
        # Status lines as werkzeug writes them ("400 BAD REQUEST").
        self._status_lines = {code: f"{code} {reason.upper()}" for code, reason in HTTP_STATUS_CODES.items()}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        handler = self._handler(environ) if self._is_json_protocol(environ) else None
        if handler is None:
            return self.app(environ, start_response)
        request = self._request_class(environ)
        self._record(request)
        try:
            result = handler(request, request.raw_url, dict(request.headers))
        except self._client_error as exc:  # as moto's Flask wrapper answers it
            result = 400, {}, exc.response["Error"]["Message"]
        except self._http_exception as exc:  # as Flask answers it
            return exc.get_response(environ)(environ, start_response)
        status, headers, body = result if len(result) == 3 else (200, {}, result)
        return self._respond(int(status), headers, body, start_response)

    @staticmethod
    def _is_json_protocol(environ: dict[str, Any]) -> bool:
        return (
            environ.get("REQUEST_METHOD") == "POST"
            and environ.get("PATH_INFO") == "/"
            and _target_api(environ) in JSON_PROTOCOL_TARGETS
        )

    def _handler(self, environ: dict[str, Any]) -> Callable[..., Any] | None:
        """moto's handler for `/` of the request's API, found once through its Flask app's URL
        map; None (moto's app answers) if that rule is not a plain handler."""
        api = _target_api(environ)
        if api not in self._handlers:
            with self._handlers_lock:
                flask_app = self.app.get_application(environ)
                try:
                    endpoint, arguments = flask_app.url_map.bind_to_environ(environ).match()
                except Exception:  # noqa: BLE001 - no rule for `/`: moto's app answers as it would
                    endpoint, arguments = None, {"unmatched": True}
                view = flask_app.view_functions.get(endpoint) if endpoint else None
                callback = getattr(view, "callback", None)
                self._handlers[api] = callback if callback is not None and not arguments else None
        return self._handlers[api]

    def _respond(
        self, status: int, headers: dict[str, Any], body: str | bytes, start_response: Callable[..., Any]
    ) -> Any:
        data = body.encode() if isinstance(body, str) else bytes(body or b"")
        lines = [
            (str(name), str(value))  # as werkzeug's Headers: a list value is one header per item
            for name, values in headers.items()
            if str(name).lower() != "content-length"
            for value in (values if isinstance(values, list | tuple) else [values])
        ]
        if not any(name.lower() == "content-type" for name, _ in lines):
            lines.append(("Content-Type", "text/html; charset=utf-8"))  # Flask's default
        lines.append(("Content-Length", str(len(data))))
        start_response(self._status_lines.get(status, f"{status} UNKNOWN"), lines)
        return [data]


def _target_api(environ: dict[str, Any]) -> str:
    """X-Amz-Target's API (`DynamoDB_20120810.PutItem` -> `DynamoDB_20120810`); "" without one."""
    return str(environ.get("HTTP_X_AMZ_TARGET", "")).partition(".")[0]


class Emulator:
    """moto's threaded server on 127.0.0.1 (port 0 picks a free one), its connections kept alive
    (keep_alive_handler), the JSON-protocol calls past moto's Flask layer (JsonProtocolShortcut;
    `shortcut=False` leaves moto's app alone, for the benchmark that compares the two). `wrap`,
    when given, wraps the WSGI app (the local hub's persistence puts its snapshot lock there)."""

    def __init__(self, port: int = 0, wrap: Callable[[Any], Any] | None = None, shortcut: bool = True) -> None:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        patch_moto()
        handler = keep_alive_handler()

        class WrappedMotoServer(ThreadedMotoServer):
            def _server_entry(self) -> None:  # moto's own, with the app wrapped
                app: Any = DomainDispatcherApplication(create_backend_app)
                if shortcut:
                    app = JsonProtocolShortcut(app)
                self._server = make_server(
                    self._ip_address, self._port, wrap(app) if wrap else app, True, request_handler=handler
                )
                self._server_ready_event.set()
                self._server.serve_forever()

        self._server = WrappedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint = ""

    def start(self) -> str:
        # werkzeug's per-request access lines (moto's and the gateway's) are noise;
        # the gateway logs its own one-line summary per request.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        # moto keeps its state per process: start from empty, as a new account would.
        reset = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 - loopback
        os.environ.update(aws_environment(self.endpoint))
        from switchboard_core import aws

        aws.reset_clients()
        return self.endpoint

    def stop(self) -> None:
        self._server.stop()


@dataclass(frozen=True)
class LocalNames:
    """Physical names of the topology's resources for one local stage."""

    stage: str

    def table(self, name: str) -> str:
        return f"switchboard-{self.stage}-{name.replace('_', '-')}"

    def bucket(self, name: str) -> str:
        return f"switchboard-{self.stage}-{name}"

    @property
    def bus(self) -> str:
        return f"switchboard-{self.stage}"

    def secret(self, name: str) -> str:
        return f"switchboard/{self.stage}/{name.replace('_', '-')}"

    def queue(self, name: str) -> str:
        return f"switchboard-{self.stage}-{name}"

    def dead_letter_queue(self, name: str) -> str:
        return f"switchboard-{self.stage}-{name}-dlq"

    def rule(self, name: str) -> str:
        return f"switchboard-{self.stage}-{name}"

    def mapping(self) -> dict[str, str]:
        """The `names` argument topology.function_environment expects."""
        names = {f"table:{t}": self.table(t) for t in topology.TABLES}
        names.update({f"bucket:{b}": self.bucket(b) for b in topology.BUCKETS})
        names.update({f"secret:{s}": self.secret(s) for s in topology.SECRETS})
        names["bus"] = self.bus
        names["rule_prefix"] = self.rule(topology.SUBSCRIPTION_RULE_INFIX)
        delivery_queue = self.queue(topology.DELIVERY_QUEUE)
        names[f"queue_url:{topology.DELIVERY_QUEUE}"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{delivery_queue}"
        names[f"queue_arn:{topology.DELIVERY_QUEUE}"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{delivery_queue}"
        delivery_dlq = self.dead_letter_queue(topology.DELIVERY_QUEUE)
        names[f"dlq_arn:{topology.DELIVERY_QUEUE}"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{delivery_dlq}"
        names["notification_email_from"] = LOCAL_NOTIFICATION_EMAIL_FROM
        names["notification_sms_from"] = LOCAL_NOTIFICATION_SMS_FROM
        campaign_queue, campaign_dlq = (
            self.queue(topology.CAMPAIGN_QUEUE),
            self.dead_letter_queue(topology.CAMPAIGN_QUEUE),
        )
        names[f"queue_url:{topology.CAMPAIGN_QUEUE}"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{campaign_queue}"
        names[f"queue_arn:{topology.CAMPAIGN_QUEUE}"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{campaign_queue}"
        names[f"dlq_arn:{topology.CAMPAIGN_QUEUE}"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{campaign_dlq}"
        names["campaign_rule_prefix"] = self.rule(topology.CAMPAIGN_RULE_INFIX)
        names["campaign_schedule_group"] = self.campaign_schedule_group
        names["campaign_scheduler_role_arn"] = f"arn:aws:iam::{ACCOUNT}:role/{self.campaign_scheduler_role}"
        return names

    @property
    def campaign_schedule_group(self) -> str:
        return topology.campaign_schedule_group(self.stage)

    @property
    def campaign_scheduler_role(self) -> str:
        """The role the campaign runs' schedules name: on AWS it may only send to the campaigns queue;
        the local scheduler sends with the emulator's credentials and never assumes it."""
        return f"switchboard-{self.stage}-campaign-scheduler"


def create_table(dynamodb: Any, physical_name: str, table: topology.Table) -> None:
    key_names = {table.partition_key, *([table.sort_key] if table.sort_key else [])}
    for index in table.indexes:
        key_names.update(k for k in (index.partition_key, index.sort_key) if k)
    kwargs: dict[str, Any] = {
        "TableName": physical_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k in sorted(key_names)],
        "KeySchema": key_schema(table.partition_key, table.sort_key),
    }
    if table.indexes:
        kwargs["GlobalSecondaryIndexes"] = [
            {
                "IndexName": i.name,
                "KeySchema": key_schema(i.partition_key, i.sort_key),
                "Projection": {"ProjectionType": "ALL"},
            }
            for i in table.indexes
        ]
    dynamodb.create_table(**kwargs)
    if table.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=physical_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )


def add_missing_indexes(dynamodb: Any, physical_name: str, table: topology.Table) -> None:
    """The indexes a table restored from an older snapshot lacks (the topology grew since), added
    as CloudFormation adds them on AWS; DynamoDB (and moto) fill them from the items."""
    present = {
        index["IndexName"]
        for index in dynamodb.describe_table(TableName=physical_name)["Table"].get("GlobalSecondaryIndexes", [])
    }
    for index in table.indexes:
        if index.name in present:
            continue
        keys = [k for k in (index.partition_key, index.sort_key) if k]
        dynamodb.update_table(
            TableName=physical_name,
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            GlobalSecondaryIndexUpdates=[
                {
                    "Create": {
                        "IndexName": index.name,
                        "KeySchema": key_schema(index.partition_key, index.sort_key),
                        "Projection": {"ProjectionType": "ALL"},
                    }
                }
            ],
        )


def key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        schema.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return schema


@dataclass(frozen=True)
class ConsumerQueue:
    function: str
    queue_url: str
    queue_arn: str
    dead_letter_url: str
    batch_size: int


# Notifications' senders on one machine: SES's (moto keeps what it "sends") and the SMS
# sender number the provider sandbox records.
LOCAL_NOTIFICATION_EMAIL_FROM = "notifications@switchboard.local"
LOCAL_NOTIFICATION_SMS_FROM = "+15005550006"


def create_resources(names: LocalNames) -> list[ConsumerQueue]:
    """Create every resource of the topology in the emulator; return the consumer queues.
    What a restored snapshot already holds is kept as it is (a secret keeps its value): only
    what is missing (the topology grew since) is created."""
    from switchboard_core import aws

    dynamodb, s3, events, sqs = (aws.client(s) for s in ("dynamodb", "s3", "events", "sqs"))
    for table in topology.TABLES.values():
        unless_exists(create_table, dynamodb, names.table(table.name), table)
        add_missing_indexes(dynamodb, names.table(table.name), table)
    for bucket in topology.BUCKETS.values():
        unless_exists(s3.create_bucket, Bucket=names.bucket(bucket.name))
    unless_exists(events.create_event_bus, Name=names.bus)
    # Notifications' e-mail sender: verified in the emulator's SES, as the stage's identity is on AWS.
    aws.client("ses").verify_email_identity(EmailAddress=LOCAL_NOTIFICATION_EMAIL_FROM)
    for secret in topology.SECRETS:  # a fresh random value, as the CDK app generates one
        unless_exists(
            aws.client("secretsmanager").create_secret, Name=names.secret(secret), SecretString=token_urlsafe(48)
        )
    # Campaign runs' waits: one-time schedules in this group, fired by the local scheduler
    # (infra/local/scheduler.py, which needs no role: the schedules name one only as AWS wants).
    unless_exists(aws.client("scheduler").create_schedule_group, Name=names.campaign_schedule_group)

    queues: list[ConsumerQueue] = []
    for function in topology.consumers():
        consumer = function.consumer
        assert consumer is not None
        dlq_url = sqs.create_queue(QueueName=names.dead_letter_queue(consumer.queue))["QueueUrl"]
        dlq_arn = queue_arn(sqs, dlq_url)
        queue_url = sqs.create_queue(
            QueueName=names.queue(consumer.queue),
            Attributes={
                "VisibilityTimeout": str(consumer.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(consumer.max_receive_count)}
                ),
            },
        )["QueueUrl"]
        arn = queue_arn(sqs, queue_url)
        if consumer.event_pattern is not None:  # else rules made at run time target the queue
            rule = names.rule(consumer.queue)
            events.put_rule(Name=rule, EventBusName=names.bus, EventPattern=json.dumps(consumer.event_pattern))
            events.put_targets(Rule=rule, EventBusName=names.bus, Targets=[{"Id": "queue", "Arn": arn}])
        queues.append(ConsumerQueue(function.name, queue_url, arn, dlq_url, consumer.batch_size))
    return queues


# What moto answers when a resource of that name is already there (a restored snapshot's).
ALREADY_EXISTS = (
    "ResourceInUseException",
    "BucketAlreadyOwnedByYou",
    "BucketAlreadyExists",
    "ResourceAlreadyExistsException",
    "ResourceExistsException",
    "ConflictException",
)


def unless_exists(create: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    from botocore.exceptions import ClientError

    try:
        create(*args, **kwargs)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ALREADY_EXISTS:
            raise


def queue_arn(sqs: Any, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
