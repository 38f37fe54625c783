"""Every figure of the scale issue from one run, each a ratio beside its target, with PASS or FAIL.

    python bench/bench_all.py --quick     # 100 -> 1,000 facilities, 10,000 windows, first apply of 200
    python bench/bench_all.py --full      # 1,000 -> 10,000 facilities, 100,000 windows, first apply of 1,000
    python bench/bench_all.py --full --parts apply --backend sqlite     # one part again

Run by hand, never in `.ci/run` (`--full` takes the better part of an hour on 2 cores). It runs the other
benchmarks' measurements, each in a fresh child process, and prints their figures together:

  startup (bench_startup) `--version`, `--help`, `completion bash` against bare Python (`python -c pass`),
                         `validate` of one clinic and a no-op plan of the examples above it
  scale   (bench_scale)  full-plan time against linear, peak memory of a full plan (big / small), the
                         no-op plan as a share of the full plan
  giant   (bench_giant)  one organization of --windows capacity windows and one of a tenth of that:
                         peak RSS per MB of YAML of `validate` and `plan --out` (big against small:
                         memory bounded by a constant times the size on disk), the memory writing the
                         plan file takes above the plan (streamed: the same at both sizes), and one
                         problem reached through many YAML aliases (one line of text, every use in JSON)
  apply   (bench_plan)   the first apply (`nexus apply`, its default --jobs unless --apply-jobs) into an
                         empty database against its floor (parse + one Core executemany per table, one
                         transaction), on SQLite and PostgreSQL, alternated `--apply-runs` times; wall
                         time, and the client's CPU time (its worker processes' included)

The machine is shared: compare the ratios, which are measured in the same run, not the seconds.
"""

from __future__ import annotations

import argparse
import functools
import json
import operator
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import bench_giant  # noqa: E402  (bench/: the giant organization, the alias case)
import bench_plan  # noqa: E402  (bench/: fleets, scratch databases, measurements in a child)
import bench_scale  # noqa: E402  (bench/: one fleet size's apply, full and no-op plans)
import bench_startup  # noqa: E402  (bench/: short commands beside bare Python)

# What the issue measured before (one giant organization of 100,000 windows): the "before" ratios.
BEFORE = {"validate_s": 12.7, "validate_mb": 238.0, "plan_s": 50.0, "plan_mb": 772.0}
PRESETS = {
    "quick": {
        "sizes": [100, 1000],
        "windows": 10_000,
        "alias_uses": 900,
        "apply_facilities": 200,
        "apply_runs": 1,
        "startup_runs": 10,
    },
    "full": {
        "sizes": [1000, 10_000],
        "windows": 100_000,
        "alias_uses": 9_000,
        "apply_facilities": 1000,
        "apply_runs": 3,
        "startup_runs": 20,
    },
}


PARTS = ("startup", "scale", "giant", "apply")


@dataclass(frozen=True)
class Figure:
    """One line of the summary: a ratio, its target and whether it is met."""

    name: str
    value: float | None
    shown: str
    target: str
    met: Callable[[float], bool]

    @property
    def verdict(self) -> str:
        return "n/a" if self.value is None else ("PASS" if self.met(self.value) else "FAIL")


def _ratio(value: float | None, digits: str = "{:.2f}x") -> str:
    return "n/a" if value is None else digits.format(value)


def startup_figures(args: argparse.Namespace) -> tuple[list[Figure], dict[str, Any]]:
    """bench_startup's commands beside bare Python (`python -c pass`), in the same rounds."""
    print(f"\n##### start-up: short commands beside bare Python, {args.startup_runs} rounds")
    with tempfile.TemporaryDirectory(prefix="nexus-startup-") as scratch:
        cmds = bench_startup.commands(bench_startup.applied_database(Path(scratch)))
        times, cpu = bench_startup.measure(cmds, args.startup_runs, 2)
    measured = bench_startup.print_table(cmds, times, cpu)
    figures = []
    for command in cmds[1:]:
        if not command.in_readme:
            continue
        f, base = measured[command.label], measured[cmds[0].label]
        ratio = command.ratio_limit is not None
        limit = command.ratio_limit if ratio else command.above_limit_s
        assert limit is not None, command.label  # every command in the README has a target
        wall_shown = bench_startup.versus_bare(command, f["median_s"], base["median_s"])
        cpu_shown = bench_startup.versus_bare(command, f["cpu_median_s"], base["cpu_median_s"])
        figures.append(
            Figure(
                f"{command.label} " + ("/ python -c pass" if ratio else "above python -c pass (s)"),
                f["ratio"] if ratio else f["above_s"],
                f"{wall_shown} (CPU time: {cpu_shown})",
                f["target"],
                functools.partial(operator.ge, limit),  # value <= limit
            )
        )
    return figures, measured


def scale_figures(args: argparse.Namespace) -> tuple[list[Figure], dict[str, Any]]:
    """bench_scale at two sizes: time against linear, memory, no-op share."""
    print(f"\n##### scale: {args.sizes[0]:,} and {args.sizes[1]:,} facilities, SQLite, --jobs {args.jobs}")
    scale_args = argparse.Namespace(
        out=args.out, seed=0, runs=1, cheap_runs=3, jobs=args.jobs, floor_gc="parse"
    )
    results = [bench_scale.measure_size(n, scale_args) | {"jobs": args.jobs} for n in args.sizes]
    bench_scale.print_figures(results)
    f = bench_scale.figures_of(results)
    label = f"{args.sizes[1]:,} vs {args.sizes[0]:,} facilities"
    figures = [
        Figure(
            f"full plan time against linear ({label})",
            f.get("time_vs_linear"),
            f"{_ratio(f.get('time_vs_linear'))} (CPU time: {_ratio(f.get('cpu_vs_linear'))})",
            f"<= {bench_scale.LINEAR_LIMIT}x",
            lambda v: v <= bench_scale.LINEAR_LIMIT,
        ),
        Figure(
            f"peak memory of a full plan ({label})",
            f.get("memory_ratio"),
            _ratio(f.get("memory_ratio")),
            f"<= {bench_scale.MEMORY_LIMIT}x",
            lambda v: v <= bench_scale.MEMORY_LIMIT,
        ),
        Figure(
            f"no-op plan / full plan ({args.sizes[1]:,} facilities)",
            f.get("noop_share"),
            f"{_ratio(f.get('noop_share'), '{:.1%}')} (CPU time: {_ratio(f.get('noop_cpu_share'), '{:.1%}')})",
            f"< {bench_scale.NOOP_LIMIT:.0%}",
            lambda v: v < bench_scale.NOOP_LIMIT,
        ),
    ]
    return figures, {"results": results, "figures": f}


def _per_mb(case: dict[str, Any], command: str) -> float | None:
    report = case.get(command, {})
    return report["rss_mb"] / (case["bytes"] / 1e6) if "rss_mb" in report else None


def giant_figures(args: argparse.Namespace) -> tuple[list[Figure], dict[str, Any]]:
    """bench_giant at --windows and a tenth of it, the streamed plan file, the alias case."""
    big_n, small_n = args.windows, args.windows // 10
    print(f"\n##### one giant organization: {small_n:,} and {big_n:,} capacity windows")
    out = args.out / "giant"
    out.mkdir(parents=True, exist_ok=True)
    small, big = (bench_giant.giant_case(out, n, 1, []) for n in (small_n, big_n))
    streams = [bench_giant.stream_case(out, n) for n in (small_n, big_n)]
    alias = bench_giant.alias_case(out, args.alias_uses, [])
    figures = []
    for command in ("validate", "plan"):
        s, b = _per_mb(small, command), _per_mb(big, command)
        value = b / s if s and b else None
        shown = f"{_ratio(value)} ({b or 0:.0f} vs {s or 0:.0f} MB per MB)"
        figures.append(
            Figure(
                f"{'validate' if command == 'validate' else 'plan --out'}: peak RSS per MB of YAML, "
                f"{big_n:,} vs {small_n:,} windows",
                value,
                shown,
                "<= 1.0x",
                lambda v: v <= 1.0,
            )
        )
    if big_n == 100_000:  # the issue's own figures were of this size
        for command, key in (("validate", "validate"), ("plan", "plan")):
            report = big.get(command, {})
            for unit, field, before in (
                ("s", "seconds", BEFORE[f"{key}_s"]),
                ("MB", "rss_mb", BEFORE[f"{key}_mb"]),
            ):
                value = report[field] / before if field in report else None
                figures.append(
                    Figure(
                        f"{'validate' if command == 'validate' else 'plan --out'} {big_n:,} windows, "
                        f"{'time' if unit == 's' else 'peak RSS'} now / before ({before:g} {unit})",
                        value,
                        f"{_ratio(value)} ({report.get(field, float('nan')):.1f} {unit})",
                        "< 1.0x",
                        lambda v: v < 1.0,
                    )
                )
    if all("streamed_peak_mb" in s for s in streams):
        value = streams[1]["streamed_peak_mb"] / streams[0]["streamed_peak_mb"]
        shown = (
            f"{value:.2f}x ({streams[1]['streamed_peak_mb']:.1f} MB for a {streams[1]['file_mb']:.0f} MB file;"
            f" one string: {streams[1]['whole_peak_mb']:.0f} MB)"
        )
    else:
        value, shown = None, "n/a"
    figures.append(
        Figure(
            f"plan --out streams: memory writing the file, {big_n:,} vs {small_n:,} windows",
            value,
            shown,
            "<= 1.5x",
            lambda v: v <= 1.5,
        )
    )
    uses = alias["uses"]
    lines = alias["text_lines"]
    figures.append(
        Figure(
            f"one problem through {uses:,} aliases: text lines / uses",
            lines / uses,
            f"{lines / uses:.4f} ({lines} lines)",
            f"<= {3 / uses:.4f} (3 lines)",
            lambda v: v * uses <= 3,
        )
    )
    problems = alias["json_problems"]
    figures.append(
        Figure(
            f"one problem through {uses:,} aliases: JSON problems / uses",
            problems / uses if problems is not None else None,
            f"{(problems or 0) / uses:.2f} ({problems} problems)",
            "= 1 (every use kept)",
            lambda v: v == 1,
        )
    )
    return figures, {"cases": [small, big], "streams": streams, "alias": alias}


def apply_figures(args: argparse.Namespace) -> tuple[list[Figure], dict[str, Any]]:
    """bench_plan's first apply and its floor, on each backend."""
    n = args.apply_facilities
    print(f"\n##### first apply of {n:,} facilities into an empty database, against its floor")
    fleet_dir, _ = bench_plan.ensure_fleet(args.out, n, 0, False)
    # nexus as it runs by default (--apply-jobs 0): planning in worker processes where the database allows
    # it, organizations committed while the next is prepared; --apply-jobs 1 keeps it to one process, as
    # its floor is (on a machine shared with other work the second core is not there to count on).
    plan_args = argparse.Namespace(floor_gc="parse", jobs=args.apply_jobs)
    jobs_shown = f"--jobs {args.apply_jobs}" if args.apply_jobs else "default --jobs"
    targets = {"sqlite": ("<= 1.1x", lambda v: v <= 1.1), "postgresql": ("< 1.0x", lambda v: v < 1.0)}
    figures, raw = [], {}
    for backend in args.backends:
        print(f"[{backend}]")
        dbs = bench_plan.Databases(backend, args.out, args.postgres_url)
        try:
            nexus_runs, floor_runs = [], []
            for _ in range(args.apply_runs):  # alternated, so a change of load touches both alike
                url, floor_url = dbs.new(), dbs.new()
                nexus_runs.append(bench_plan.measure("nexus apply", "apply", fleet_dir, 1, [url], plan_args))
                floor_runs.append(
                    bench_plan.measure(
                        "floor: parse + executemany", "floor-apply", fleet_dir, 1, [floor_url], plan_args
                    )
                )
        finally:
            dbs.drop_all()
        times = [r["times"][0] for r in nexus_runs if r.get("times")]
        floors = [r["times"][0] for r in floor_runs if r.get("times")]
        value = statistics.median(times) / statistics.median(floors) if times and floors else None
        cpu = [r["cpu_times"][0] for r in nexus_runs if r.get("cpu_times")]
        floor_cpu = [r["cpu_times"][0] for r in floor_runs if r.get("cpu_times")]
        cpu_ratio = statistics.median(cpu) / statistics.median(floor_cpu) if cpu and floor_cpu else 0.0
        target, met = targets[backend]
        shown = (
            f"{_ratio(value)} ({statistics.median(times):.1f} s vs {statistics.median(floors):.1f} s; CPU "
            f"{statistics.median(cpu):.1f} s vs {statistics.median(floor_cpu):.1f} s: {cpu_ratio:.2f}x)"
            if value is not None
            else "n/a: " + str((nexus_runs + floor_runs)[0].get("error", ""))[:80]
        )
        figures.append(
            Figure(
                f"first apply / its floor, {backend}, {n:,} facilities, {jobs_shown}",
                value,
                shown,
                target,
                met,
            )
        )
        raw[backend] = {"nexus": nexus_runs, "floor": floor_runs}
    return figures, raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    preset = parser.add_mutually_exclusive_group(required=True)
    preset.add_argument("--quick", action="store_const", dest="preset", const="quick")
    preset.add_argument("--full", action="store_const", dest="preset", const="full")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--apply-runs", type=int, default=None, help="first applies and floors, alternated")
    parser.add_argument("--startup-runs", type=int, default=None, help="rounds of the short commands")
    parser.add_argument("--apply-facilities", type=int, default=None, help="instead of the preset's")
    parser.add_argument("--jobs", type=int, default=1, help="nexus --jobs of the scale part's plans")
    parser.add_argument(
        "--apply-jobs", type=int, default=0, help="nexus --jobs of the first applies (0: nexus's default)"
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    parser.add_argument("--postgres-url", default=bench_plan.DEFAULT_POSTGRES)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    args = parser.parse_args(argv)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    bench_startup.compile_nexus()  # every part runs nexus as it is installed: byte-compiled
    started = time.perf_counter()
    loads = [os.getloadavg()[0]]
    print(f"engine: {bench_plan.code_state()}; --{args.preset}; load average {loads[0]:.1f}", flush=True)
    parts = {
        "startup": startup_figures,
        "scale": scale_figures,
        "giant": giant_figures,
        "apply": apply_figures,
    }
    figures: list[Figure] = []
    raw: dict[str, Any] = {}
    for name in PARTS:
        if name in args.parts:
            got, raw[name] = parts[name](args)
            figures += got
            loads.append(os.getloadavg()[0])
    width = max(len(f.name) for f in figures)
    print(f"\n===== every figure (--{args.preset}, {bench_plan.code_state()}) =====")
    print(f"{'figure':{width}}  {'verdict':7}  {'target':22}  value")
    for f in figures:
        print(f"{f.name:{width}}  {f.verdict:7}  {f.target:22}  {f.shown}")
    minutes = (time.perf_counter() - started) / 60
    print(
        f"({minutes:.0f} min; 1-minute load average {min(loads):.1f}-{max(loads):.1f} on "
        f"{os.cpu_count()} CPUs, sampled between parts)"
    )
    if args.json:
        summary = [
            {"name": f.name, "value": f.value, "target": f.target, "verdict": f.verdict} for f in figures
        ]
        args.json.write_text(json.dumps({"figures": summary, "raw": raw}, indent=1, default=str))
    return 1 if any(f.verdict == "FAIL" for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
