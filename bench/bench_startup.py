"""Start-up benchmark: how long short `nexus` commands take, beside bare Python measured in the same run.

    python bench/bench_startup.py [--runs 20] [--explain] [--markdown] [--json PATH]

Run by hand, not a test. nexus's modules are byte-compiled first, as an installed nexus's are
(`compile_nexus`). Each command is a fresh `nexus` process (the console script of the Python running
this file), timed with `time.perf_counter` around `subprocess.run`, output discarded. Commands are run in
rounds, one run of each per round (after `--warmup` uncounted rounds), so a change of load on a shared
machine touches every row alike; each figure is the median of `--runs`. Rows and the issue's targets:

  python -c pass                 the baseline
  python -c 'import click'       a reference: what any command click parses costs at least
                                 (--version, --help and `completion SHELL` are answered without it)
  nexus --version / --help       at most 2x the baseline
  nexus completion bash          at most 2x the baseline
  tab completion                 what the shell runs on each TAB (_NEXUS_COMPLETE=bash_complete): 2x too
  nexus validate ONE_CLINIC      at most 0.25 s above the baseline
  nexus plan examples/orgs       no-op plan on SQLite (after an apply into a scratch file): 0.4 s above

`--explain` then runs each nexus command once more under `python -X importtime` and lists the modules
that cost the most: the slowest top-level imports (cumulative, what a lazy import would save) and the
slowest modules by their own time.

`--markdown` also prints the README's table: each command of the issue beside bare Python, wall and CPU
time, as its target is put (a ratio, or ms above).

Beside wall time, the CPU time (user + system) of each run: on a shared machine under load the wall
time of a 20 ms process can grow tenfold while its CPU time barely moves, so a target missed on wall
time but met on CPU time says "rerun on an idle machine", not "too slow".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
EXAMPLES = REPO / "examples" / "orgs"
ONE_CLINIC = EXAMPLES / "prairie-family-clinic"


@dataclass(frozen=True)
class Command:
    """One measured command and its target: a ratio to bare Python, or seconds above it."""

    label: str
    argv: list[str]
    env: dict[str, str]
    ratio_limit: float | None = None
    above_limit_s: float | None = None
    in_readme: bool = True


def nexus_script() -> Path:
    """The `nexus` console script installed beside this Python (what a user runs)."""
    script = Path(sys.executable).parent / "nexus"
    if not script.exists():
        raise SystemExit(f"no nexus script at {script}: install the project (pip install -e .) first")
    return script


def compile_nexus() -> list[str]:
    """Byte-compile nexus's own modules where they are imported from, as an installed nexus runs: pip
    compiles what it installs, and an editable checkout writes its `__pycache__` on the first run. Where
    `PYTHONDONTWRITEBYTECODE` is set (some CI images and containers set it), nothing ever writes them,
    and every measured process would compile ~40 modules from source again (about 0.1 s of each
    `validate`). Returns the packages compiled."""
    import compileall
    import importlib.util

    compiled = []
    for package in ("nexus_config", "plan_apply"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin is not None:
            compileall.compile_dir(Path(spec.origin).parent, quiet=1)
            compiled.append(package)
    return compiled


def commands(database_url: str) -> list[Command]:
    python, nexus = sys.executable, str(nexus_script())
    plain = {"NO_COLOR": "1"}
    tab = plain | {"_NEXUS_COMPLETE": "bash_complete", "COMP_WORDS": "nexus pl", "COMP_CWORD": "1"}
    db = plain | {"NEXUS_DATABASE_URL": database_url}
    return [
        Command("python -c pass", [python, "-c", "pass"], plain),
        # the floor of any command click parses (--version, --help and completion scripts skip click)
        Command("python -c 'import click'", [python, "-c", "import click"], plain, in_readme=False),
        Command("nexus --version", [nexus, "--version"], plain, ratio_limit=2.0),
        Command("nexus --help", [nexus, "--help"], plain, ratio_limit=2.0),
        Command("nexus completion bash", [nexus, "completion", "bash"], plain, ratio_limit=2.0),
        Command("tab completion (bash_complete)", [nexus], tab, ratio_limit=2.0, in_readme=False),
        Command(
            f"nexus validate {ONE_CLINIC.name}",
            [nexus, "validate", str(ONE_CLINIC)],
            plain,
            above_limit_s=0.25,
        ),
        Command(
            "nexus plan examples/orgs (no-op, SQLite)",
            [nexus, "plan", str(EXAMPLES), "--detailed-exitcode"],
            db,
            above_limit_s=0.4,
        ),
    ]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(command: Command) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of the command."""
    env = os.environ | command.env
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(command.argv, env=env, cwd=REPO, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise SystemExit(f"{command.label} exited {proc.returncode}: {' | '.join(tail)}")
    return seconds, cpu


def applied_database(scratch: Path) -> str:
    """A scratch SQLite file with the examples applied, so that the measured plan has nothing to do."""
    url = f"sqlite:///{scratch / 'startup.db'}"
    env = os.environ | {"NO_COLOR": "1", "NEXUS_DATABASE_URL": url}
    for argv in (
        ["db", "upgrade"],
        ["apply", str(EXAMPLES), "--auto-approve", "-q"],
        ["plan", str(EXAMPLES), "--detailed-exitcode"],
    ):
        proc = subprocess.run(
            [str(nexus_script()), *argv], env=env, cwd=REPO, capture_output=True, check=False
        )
        if proc.returncode != 0:
            raise SystemExit(
                f"nexus {argv[0]} of the examples exited {proc.returncode}: {proc.stderr.decode()[-500:]}"
            )
    return url


def measure(
    cmds: list[Command], runs: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Every command once per round, rounds after the warm-up counted: wall and CPU seconds."""
    times: dict[str, list[float]] = {c.label: [] for c in cmds}
    cpu: dict[str, list[float]] = {c.label: [] for c in cmds}
    for round_ in range(warmup + runs):
        for command in cmds:
            seconds, cpu_seconds = run_once(command)
            if round_ >= warmup:
                times[command.label].append(seconds)
                cpu[command.label].append(cpu_seconds)
    return times, cpu


def verdict(command: Command, median: float, base: float) -> tuple[str, bool | None]:
    if command.ratio_limit is not None:
        ok = median / base <= command.ratio_limit
        return f"<= {command.ratio_limit:.1f}x", ok
    if command.above_limit_s is not None:
        ok = median - base <= command.above_limit_s
        return f"<= +{1000 * command.above_limit_s:.0f} ms", ok
    return "", None


def print_table(
    cmds: list[Command], times: dict[str, list[float]], cpu: dict[str, list[float]]
) -> dict[str, Any]:
    """Wall time (what the targets are about) and CPU time (what a busy machine inflates least)."""
    base = statistics.median(times[cmds[0].label])
    cpu_base = statistics.median(cpu[cmds[0].label])
    print(
        f"\n{'command':<42} {'wall ms':>7} {'min-max':>11} {'ratio':>6} {'+ms':>6}  {'target':<10} {'wall':<4}"
        f"  {'cpu ms':>6} {'ratio':>6} {'+ms':>5} {'cpu':<4}"
    )
    figures: dict[str, Any] = {}
    for command in cmds:
        values, cpu_values = times[command.label], cpu[command.label]
        median, cpu_median = statistics.median(values), statistics.median(cpu_values)
        target, ok = verdict(command, median, base)
        _, cpu_ok = verdict(command, cpu_median, cpu_base)
        mark = "" if ok is None else ("PASS" if ok else "FAIL")
        cpu_mark = "" if cpu_ok is None else ("PASS" if cpu_ok else "FAIL")
        print(
            f"{command.label:<42} {1000 * median:>7.0f} {1000 * min(values):>5.0f}-{1000 * max(values):<5.0f} "
            f"{median / base:>5.2f}x {1000 * (median - base):>6.0f}  {target:<10} {mark:<4}"
            f"  {1000 * cpu_median:>6.0f} {cpu_median / cpu_base:>5.2f}x {1000 * (cpu_median - cpu_base):>5.0f} {cpu_mark:<4}"
        )
        figures[command.label] = {
            "median_s": median,
            "ratio": median / base,
            "above_s": median - base,
            "cpu_median_s": cpu_median,
            "cpu_ratio": cpu_median / cpu_base,
            "cpu_above_s": cpu_median - cpu_base,
            "target": target,
            "pass": ok,
            "cpu_pass": cpu_ok,
            "times": values,
            "cpu_times": cpu_values,
        }
    return figures


def versus_bare(command: Command, median: float, base: float) -> str:
    """A median beside bare Python's, in its target's terms: milliseconds above it, or a ratio."""
    if command.above_limit_s is not None:
        return f"+{1000 * (median - base):.0f} ms"
    return f"{median / base:.1f}×"


def markdown_table(cmds: list[Command], figures: dict[str, Any]) -> str:
    """The README's table: bare Python's median, then each command of the issue's targets beside it
    (wall and CPU time, as the target is put: a ratio or ms above) and its target."""
    bare = figures[cmds[0].label]
    lines = [
        f"Bare Python (`python -c pass`): {1000 * bare['median_s']:.0f} ms wall, "
        f"{1000 * bare['cpu_median_s']:.0f} ms CPU.",
        "",
        "| command | wall | CPU | target |",
        "|---|---|---|---|",
    ]
    for command in cmds[1:]:
        if not command.in_readme:
            continue
        f = figures[command.label]
        limit = command.above_limit_s
        target = f"≤ +{1000 * limit:.0f} ms" if limit is not None else f"≤ {command.ratio_limit:g}×"
        lines.append(
            f"| `{command.label.removeprefix('nexus ')}` | {versus_bare(command, f['median_s'], bare['median_s'])} "
            f"| {versus_bare(command, f['cpu_median_s'], bare['cpu_median_s'])} | {target} |"
        )
    return "\n".join(lines)


def import_times(command: Command) -> list[tuple[int, int, int, str]]:
    """(self µs, cumulative µs, depth, module) of each import of one run under `-X importtime`."""
    argv = [sys.executable, "-X", "importtime", *command.argv]  # the nexus script is a Python file
    env = os.environ | command.env
    proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((int(own), int(cumulative), depth, name.strip()))
    return rows


def explain(cmds: list[Command], top: int) -> None:
    """The imports that make each command slow, cumulative at the top level and by own time."""
    for command in [c for c in cmds if c.argv[0] != sys.executable]:  # nexus's commands, not Python's
        rows = import_times(command)
        total = sum(own for own, *_ in rows)
        print(f"\n-X importtime: {command.label}: {len(rows)} modules, {total / 1000:.0f} ms of imports")
        outer = sorted((r for r in rows if r[2] <= 1), key=lambda r: -r[1])[:top]
        print(
            "  top-level imports by cumulative ms: " + ", ".join(f"{r[3]} {r[1] / 1000:.0f}" for r in outer)
        )
        own = sorted(rows, key=lambda r: -r[0])[:top]
        print("  modules by own ms:                  " + ", ".join(f"{r[3]} {r[0] / 1000:.0f}" for r in own))
        heavy = [
            name
            for name in (
                "pydantic",
                "sqlalchemy",
                "alembic",
                "psycopg",
                "jsonschema",
                "ruamel.yaml",
                "yaml",
                "rich",
            )
            if any(r[3] == name for r in rows)
        ]
        print(f"  heavy packages imported: {', '.join(heavy) or 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="counted rounds (median)")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted rounds first")
    parser.add_argument(
        "--explain", action="store_true", help="then list the slowest imports of each command"
    )
    parser.add_argument("--top", type=int, default=8, help="modules listed per command by --explain")
    parser.add_argument(
        "--markdown", action="store_true", help="also print the figures as the README's table"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the raw times here")
    args = parser.parse_args(argv)

    compile_nexus()
    with tempfile.TemporaryDirectory(prefix="nexus-startup-") as scratch:
        cmds = commands(applied_database(Path(scratch)))
        print(
            f"{len(cmds)} commands x {args.runs} rounds (+{args.warmup} warm-up), Python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        started = time.perf_counter()
        times, cpu = measure(cmds, args.runs, args.warmup)
        figures = print_table(cmds, times, cpu)
        print(f"({time.perf_counter() - started:.0f} s, load average after {os.getloadavg()[0]:.1f})")
        if args.markdown:
            print("\n" + markdown_table(cmds, figures))
        if args.explain:
            explain(cmds, args.top)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0 if all(f["pass"] is not False for f in figures.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
