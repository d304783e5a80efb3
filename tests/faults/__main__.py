"""The long form: every function of the topology under fault injection, reconciled in one table.

    python -m tests.faults                      # 200 requests per function, 20% of AWS attempts faulted
    python -m tests.faults --requests 20 --rate 0.5 --seed 7 --only ingest,delivery

Exits 1 when any function lost a request or sent something to a partner twice beyond its retries.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time

from infra import topology
from tests.faults.harness import Row
from tests.faults.scenarios import SCENARIOS

COLUMNS = (
    ("function", 15),
    ("via", 8),
    ("requests", 8),
    ("invocations", 11),
    ("AWS calls", 9),
    ("injected", 8),
    ("surfaced", 8),
    ("acknowledged", 12),
    ("delivered", 9),
    ("in DLQ", 6),
    ("lost", 4),
    ("sends", 5),
    ("dup/bound", 9),
)


def table(rows: list[Row]) -> str:
    lines = [
        "| " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in rows:
        values = (
            row.function,
            row.source,
            row.requests,
            row.attempts,
            row.faults.calls,
            row.faults.injected_total,
            row.faults.surfaced,
            row.acknowledged,
            row.delivered,
            row.in_dlq,
            row.lost,
            row.partner_sends,
            f"{row.partner_duplicates}/{row.duplicate_bound}",
        )
        lines.append("| " + " | ".join(str(v) for v in values) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per function")
    parser.add_argument("--rate", type=float, default=0.2, help="fraction of AWS attempts that fail")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--only", default="", help="comma-separated function names")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(topology.FUNCTIONS)
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"no scenario for {', '.join(unknown)}")
    rows: list[Row] = []
    started = time.monotonic()
    for name in names:
        # The provider sandbox's and the servers' request lines go to stderr: kept out of the table.
        with contextlib.redirect_stderr(io.StringIO()):
            row = SCENARIOS[name](args.requests, args.rate, args.seed)
        rows.append(row)
        # As each finishes, so a long run that is cut short still shows what it measured.
        print(f"{name}: done in {time.monotonic() - started:.0f} s: {table([row]).splitlines()[-1]}", file=sys.stderr)
    print(
        f"Fault injection: {args.requests} requests per function, {args.rate:.0%} of AWS attempts faulted, "
        f"seed {args.seed}\n"
    )
    print(table(rows))
    print()
    kinds: dict[str, int] = {}
    for row in rows:
        for kind, count in row.faults.injected.items():
            kinds[kind] = kinds.get(kind, 0) + count
    print("Faults injected by kind: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    for row in rows:
        for note in row.notes[:3]:
            print(f"- {row.function}: {note}")
    problems = [problem for row in rows for problem in row.check()]
    for problem in problems:
        print(f"FAILED {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
