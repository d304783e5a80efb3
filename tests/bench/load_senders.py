"""The senders of `tests.bench.local_load`, in a process of their own: providers are other
machines, so their HTTP clients must not share the hub's interpreter (32 client threads in the
hub's process competed with the emulator and the gateway for its one interpreter lock).

Reads one JSON job on stdin: {"senders": N, "requests": [{"method", "url", "headers",
"body" (base64)}], "rate": R or null}. Posts them with N threads, each request once (with a
rate, the i-th no earlier than i / R seconds after the start: an open loop, as providers send
whatever the hub's pace; without, each thread sends its next as soon as its last is answered),
and writes one JSON line per answer as it comes ({"index", "sent", "acked", "status"};
`time.monotonic()`, which is one clock for every process of a Linux machine), then a last line
{"started", "stopped", "cpu"} (this process's CPU seconds while sending). Status 0: no answer
within the minute.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ANSWER_TIMEOUT_SECONDS = 60


def post(request: dict[str, Any]) -> tuple[float, float, int]:
    """Send one request: when it left, when its answer came, its status."""
    body = base64.b64decode(request["body"]) or None
    prepared = urllib.request.Request(request["url"], data=body, headers=request["headers"], method=request["method"])
    sent = time.monotonic()
    try:
        with urllib.request.urlopen(prepared, timeout=ANSWER_TIMEOUT_SECONDS) as answer:
            answer.read()
            status = answer.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError:  # no answer within the minute (a provider would have given up long before)
        status = 0
    return sent, time.monotonic(), status


def main() -> int:
    job = json.loads(sys.stdin.buffer.read())
    rate = job.get("rate")
    writing = threading.Lock()

    def send(indexed: tuple[int, dict[str, Any]]) -> None:
        index, request = indexed
        if rate:
            time.sleep(max(0.0, started + index / rate - time.monotonic()))
        sent, acked, status = post(request)
        line = json.dumps({"index": index, "sent": sent, "acked": acked, "status": status})
        with writing:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    cpu = time.process_time()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=job["senders"]) as senders:
        list(senders.map(send, enumerate(job["requests"])))
    stopped = time.monotonic()
    print(json.dumps({"started": started, "stopped": stopped, "cpu": time.process_time() - cpu}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
