"""Cold-start benchmark: `make bench` (full) or `python -m tests.bench.coldstart --quick`.

For every function in infra/topology.FUNCTIONS (a new function is covered as soon as it is
declared there), a fresh interpreter imports the function's handler module, and another
imports only boto3, which every function pays (its first AWS client imports it). Each
round spawns one interpreter per module, interleaved, so a busy moment of the machine falls
on all of them alike; the figure per module is the median over the rounds, and the ratio to
boto3's is set against its target: ingest <= 1.5x, every other function <= 1.8x.

The interpreters see what a Lambda sandbox sees: the function's package and the core layer
copied without bytecode into a task root and a layer directory, compiled at import as Lambda
compiles them (our assets ship no .pyc; the libraries' own .pyc are used, as the runtime's
are), the function's environment from infra/topology, and Lambda's own variables with active
tracing (LAMBDA_TASK_ROOT, the region, the X-Ray daemon address; POWERTOOLS_TRACE_DISABLED
unset), so what tracing costs at import is counted. The verdict compares CPU time (time.process_time
in the child), which other processes on a shared machine do not inflate; wall time is printed
beside it. `--importtime FUNCTION` lists the heaviest imports of one handler that boto3 does
not already bring (`python -X importtime`), to find what to make lazy. `--against PATH`
measures another checkout's handlers (the code before a change) in the same rounds,
interleaved with this tree's, so a before/after comparison is made in one run.

Exit status 1 when a target is missed in a full run; the quick form (CI) only proves the
benchmark runs and prints its figures, since two rounds on a loaded machine are no verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.topology import FUNCTIONS, function_environment

REPOSITORY = Path(__file__).resolve().parents[2]
BASELINE = "boto3"
TARGETS = {"ingest": 1.5}
DEFAULT_TARGET = 1.8

# What Lambda sets in a function's environment that changes what an import does: tracing is
# on (Powertools and the X-Ray SDK look for LAMBDA_TASK_ROOT), the region is known.
LAMBDA_ENVIRONMENT = {
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.14",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    # Our code is compiled at every import, as on Lambda, whose read-only task root keeps no .pyc.
    "PYTHONDONTWRITEBYTECODE": "1",
}

# The child times only the import: interpreter start-up is the same for every module.
# Compiling source (ours: the libraries come with .pyc) is counted apart as well, to show what
# shipping bytecode built for Lambda's Python would save.
MEASURE = """
import json, sys, time
from importlib.machinery import SourceFileLoader
compiling = [0.0]
source_to_code = SourceFileLoader.source_to_code
def timed_source_to_code(self, *args, **kwargs):
    started = time.process_time()
    try:
        return source_to_code(self, *args, **kwargs)
    finally:
        compiling[0] += time.process_time() - started
SourceFileLoader.source_to_code = timed_source_to_code
before = len(sys.modules)
cpu, wall = time.process_time(), time.perf_counter()
import {module}
print(json.dumps({{"cpu_ms": (time.process_time() - cpu) * 1000, "wall_ms": (time.perf_counter() - wall) * 1000,
                  "compile_ms": compiling[0] * 1000, "modules": len(sys.modules) - before}}))
"""


@dataclass(frozen=True)
class Sample:
    cpu_ms: float
    wall_ms: float
    modules: int
    compile_ms: float = 0.0


def handler_modules() -> dict[str, str]:
    """Function name -> its handler's module (functions.<name>.handler), as the topology declares."""
    return {name: function.handler.rsplit(".", 1)[0] for name, function in FUNCTIONS.items()}


def target(function: str) -> float:
    return TARGETS.get(function, DEFAULT_TARGET)


class _PlaceholderNames(dict[str, str]):
    """Physical resource names for function_environment: any name will do for an import."""

    def __missing__(self, key: str) -> str:
        return f"bench-{key.replace(':', '-')}"


@dataclass(frozen=True)
class Sandbox:
    """This tree's functions/ and core layer, copied without bytecode, as Lambda unpacks them."""

    task_root: Path
    layer: Path

    @classmethod
    def stage(cls, directory: Path, repository: Path = REPOSITORY) -> Sandbox:
        ignored = shutil.ignore_patterns("__pycache__", "*.pyc")
        task_root, layer = directory / "task", directory / "opt" / "python"
        shutil.copytree(repository / "functions", task_root / "functions", ignore=ignored)
        core = repository / "layers" / "core" / "python" / "switchboard_core"
        shutil.copytree(core, layer / "switchboard_core", ignore=ignored)
        return cls(task_root, layer)

    def environment(self, function: str | None) -> dict[str, str]:
        """The process environment for `function`'s sandbox (None: the boto3 baseline's)."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_TRACE")}
        if function is not None:
            environment.update(function_environment(FUNCTIONS[function], _PlaceholderNames(), "bench"))
        path = [str(self.task_root), str(self.layer)]
        if environment.get("PYTHONPATH"):
            path.append(environment["PYTHONPATH"])
        return {
            **environment,
            **LAMBDA_ENVIRONMENT,
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "PYTHONPATH": os.pathsep.join(path),
        }


def measure(sandbox: Sandbox, module: str, function: str | None) -> Sample:
    """One fresh interpreter importing `module`, started in the task root as Lambda starts it."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE.format(module=module)],
        capture_output=True,
        text=True,
        env=sandbox.environment(function),
        cwd=sandbox.task_root,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{out.stderr}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return Sample(
        cpu_ms=figures["cpu_ms"],
        wall_ms=figures["wall_ms"],
        modules=figures["modules"],
        compile_ms=figures["compile_ms"],
    )


def run(rounds: int, only: list[str] | None = None, against: Path | None = None) -> dict[str, object]:
    handlers = {name: module for name, module in handler_modules().items() if not only or name in only}
    modules = {BASELINE: BASELINE, **handlers}
    samples: dict[str, list[Sample]] = {name: [] for name in modules}
    before: dict[str, list[Sample]] = {name: [] for name in handlers}
    with tempfile.TemporaryDirectory(prefix="switchboard-coldstart-") as directory:
        sandbox = Sandbox.stage(Path(directory))
        other = Sandbox.stage(Path(directory) / "against", against) if against else None
        for _ in range(rounds):
            for name, module in modules.items():
                samples[name].append(measure(sandbox, module, None if name == BASELINE else name))
                if other is not None and name != BASELINE:
                    before[name].append(measure(other, module, name))
    medians = {name: _medians(taken) for name, taken in samples.items()}
    baseline = medians.pop(BASELINE)
    functions: dict[str, dict[str, Any]] = {
        name: {
            **figures,
            "ratio": round(figures["cpu_ms"] / baseline["cpu_ms"], 2),
            "wall_ratio": round(figures["wall_ms"] / baseline["wall_ms"], 2),
            "target": target(name),
        }
        for name, figures in medians.items()
    }
    if other is not None:
        for name, taken in before.items():
            figures = _medians(taken)
            functions[name]["against"] = {**figures, "ratio": round(figures["cpu_ms"] / baseline["cpu_ms"], 2)}
    return {"rounds": rounds, "boto3": baseline, "functions": functions, "against": str(against) if against else None}


def _medians(taken: list[Sample]) -> dict[str, float]:
    return {
        "cpu_ms": round(statistics.median(s.cpu_ms for s in taken), 1),
        "wall_ms": round(statistics.median(s.wall_ms for s in taken), 1),
        "compile_ms": round(statistics.median(s.compile_ms for s in taken), 1),
        "modules": max(s.modules for s in taken),
    }


def missed(report: dict[str, object]) -> list[str]:
    """The functions whose ratio to boto3 is above their target."""
    functions = report["functions"]
    assert isinstance(functions, dict)
    return sorted(name for name, figures in functions.items() if figures["ratio"] > figures["target"])


def heaviest_imports(function: str, count: int = 15) -> list[tuple[str, float]]:
    """The handler's imports that boto3 does not bring, heaviest first (cumulative ms, -X importtime)."""

    def importtime(sandbox: Sandbox, module: str, function: str | None) -> dict[str, float]:
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            env=sandbox.environment(function),
            cwd=sandbox.task_root,
            check=True,
        )
        times = {}
        for line in out.stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
                if cumulative.isdigit():
                    times[name] = int(cumulative) / 1000
        return times

    with tempfile.TemporaryDirectory(prefix="switchboard-coldstart-") as directory:
        sandbox = Sandbox.stage(Path(directory))
        shared = importtime(sandbox, BASELINE, None)
        own = importtime(sandbox, handler_modules()[function], function)
    return sorted(((name, ms) for name, ms in own.items() if name not in shared), key=lambda x: -x[1])[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (CI): two rounds, no verdict")
    parser.add_argument("--rounds", type=int, help="fresh interpreters per module (default 11, quick 2)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--function", action="append", choices=sorted(FUNCTIONS), help="only these (repeatable)")
    parser.add_argument("--importtime", metavar="FUNCTION", choices=sorted(FUNCTIONS), help="list what it imports")
    parser.add_argument(
        "--against", metavar="PATH", type=Path, help="another checkout (the code before), measured in the same rounds"
    )
    args = parser.parse_args(argv)
    if args.importtime:
        for name, ms in heaviest_imports(args.importtime):
            print(f"{ms:8.1f} ms  {name}")
        return 0

    report = run(args.rounds or (2 if args.quick else 11), args.function, args.against)
    report["quick"] = args.quick
    failed = missed(report)
    report["missed"] = failed
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        boto3 = report["boto3"]
        assert isinstance(boto3, dict)
        print(
            f"cold import, median of {report['rounds']} fresh interpreters each, CPU (wall) ms, of which compiling "
            f"this tree's code; boto3 alone: {boto3['cpu_ms']} ({boto3['wall_ms']}) ms, {boto3['modules']} modules"
        )
        functions = report["functions"]
        assert isinstance(functions, dict)
        for name, figures in functions.items():
            verdict = "ok" if figures["ratio"] <= figures["target"] else "MISSED"
            cpu, wall, compiling = figures["cpu_ms"], figures["wall_ms"], figures["compile_ms"]
            print(
                f"  {name:16} {cpu:7.1f} ({wall:7.1f}) ms, compiling {compiling:5.1f}  {figures['modules']:4} modules  "
                f"{figures['ratio']:5.2f}x boto3 (wall {figures['wall_ratio']:.2f}x)  "
                f"target <= {figures['target']}x  {verdict}"
                + (f"  (against: {figures['against']['ratio']:.2f}x)" if "against" in figures else "")
            )
    if failed and not args.quick:
        print(f"cold-start target missed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
