"""Scale benchmark: does a plan stay linear in time and flat in memory from 1,000 to 10,000 facilities?

    python bench/bench_scale.py                       # 1,000 and 10,000 facilities, SQLite, --jobs 1
    python bench/bench_scale.py --sizes 100 1000      # a quick look

Run by hand, not in `.ci/run`: 10,000 facilities are ~600 MB of YAML and take many minutes on 2 cores.
For each size it generates the fleet on the fly into `bench/out/plan-fleet-N` (reused when its manifest
matches), applies it into a scratch SQLite file, then measures in fresh child processes (bench_plan's
machinery: imports outside the timer, peak RSS per child):

  full plan   `nexus plan FLEET --full`: every organization read, parsed and compared
  no-op plan  `nexus plan FLEET`: the default incremental plan right after the apply

and prints, for the largest size against the smallest, the issue's figures as ratios from this one run:
full-plan time against linear (time_big / (time_small × size ratio), target ≤ 1.2), peak memory of the
full plan (big / small, target ≤ 1.5), and the no-op plan as a share of the full plan (target < 5%).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import bench_plan  # noqa: E402  (bench/bench_plan.py: fleets, scratch databases, child measurements)

LINEAR_LIMIT = 1.2
MEMORY_LIMIT = 1.5
NOOP_LIMIT = 0.05


def measure_size(facilities: int, args: argparse.Namespace) -> dict[str, Any]:
    """Apply the fleet of `facilities` into a fresh database, then time its full and no-op plans."""
    fleet_dir, manifest = bench_plan.ensure_fleet(args.out, facilities, args.seed, False)
    print(
        f"\n[{facilities} facilities: {manifest.get('files')} files, {manifest.get('bytes', 0) / 1e6:.1f} MB]",
        flush=True,
    )
    dbs = bench_plan.Databases("sqlite", args.out, "")
    try:
        url = dbs.new()
        setup = argparse.Namespace(**{**vars(args), "jobs": None})  # nexus's default --jobs: quicker
        apply = bench_plan.measure("apply (setup, default --jobs)", "apply", fleet_dir, 1, [url], setup)
        full = bench_plan.measure("full plan (--full)", "plan-full", fleet_dir, args.runs, [url], args)
        noop = bench_plan.measure("no-op plan", "plan", fleet_dir, args.cheap_runs, [url], args)
    finally:
        dbs.drop_all()
    return {"facilities": facilities, "manifest": manifest, "apply": apply, "full": full, "noop": noop}


def _seconds(report: dict[str, Any], kind: str = "times") -> float | None:
    """The median of a child's wall times (or of its CPU times, `kind="cpu_times"`)."""
    return statistics.median(report[kind]) if report.get(kind) else None


def _verdict(value: float | None, limit: float, strict: bool = False) -> str:
    if value is None:
        return "n/a"
    return "PASS" if (value < limit if strict else value <= limit) else "FAIL"


def figures_of(results: list[dict[str, Any]]) -> dict[str, float]:
    """The issue's three figures, largest size against smallest: full-plan time against linear, peak
    memory of the full plan (big / small), no-op plan as a share of the full plan (largest size)."""
    small, big = results[0], results[-1]
    figures: dict[str, float] = {}
    t_small, t_big = _seconds(small["full"]), _seconds(big["full"])
    scale = big["facilities"] / small["facilities"]
    if t_small and t_big:
        figures["time_vs_linear"] = t_big / (t_small * scale)
    if "rss_peak_mb" in small["full"] and "rss_peak_mb" in big["full"]:
        figures["memory_ratio"] = big["full"]["rss_peak_mb"] / small["full"]["rss_peak_mb"]
    noop_big = _seconds(big["noop"])
    if t_big and noop_big:
        figures["noop_share"] = noop_big / t_big
    # The same on CPU time (with --jobs 1 the child does all the work): what other load on the machine
    # inflates less than wall time, for telling a slower engine from a busier machine.
    c_small, c_big, c_noop = (
        _seconds(small["full"], "cpu_times"),
        _seconds(big["full"], "cpu_times"),
        _seconds(big["noop"], "cpu_times"),
    )
    if c_small and c_big:
        figures["cpu_vs_linear"] = c_big / (c_small * scale)
    if c_big and c_noop:
        figures["noop_cpu_share"] = c_noop / c_big
    return figures


def print_figures(results: list[dict[str, Any]]) -> dict[str, float]:
    """Per size: seconds and MB; then the ratios of the largest size against the smallest."""
    print(f"\n== SQLite, --jobs {results[0]['jobs']}: full plan, no-op plan, peak RSS of the full plan ==")
    print(
        f"{'facilities':>10}  {'MB YAML':>8}  {'apply s':>8}  {'full s':>8}  {'no-op s':>8}  {'no-op %':>8}  {'RSS MB':>7}"
    )
    for r in results:
        full, noop, apply = _seconds(r["full"]), _seconds(r["noop"]), _seconds(r["apply"])
        share = f"{100 * noop / full:.1f}" if full and noop else "n/a"
        print(
            f"{r['facilities']:>10}  {r['manifest'].get('bytes', 0) / 1e6:>8.1f}  "
            f"{apply or float('nan'):>8.2f}  {full or float('nan'):>8.2f}  {noop or float('nan'):>8.3f}  "
            f"{share:>8}  {r['full'].get('rss_peak_mb', float('nan')):>7.0f}"
        )
        for name in ("apply", "full", "noop"):
            if "error" in r[name]:
                print(f"  {name} FAILED: {r[name]['error']}")
    small, big = results[0], results[-1]
    figures = figures_of(results)
    label = f"{big['facilities']:,} vs {small['facilities']:,} facilities"
    v = figures.get("time_vs_linear")
    print(
        f"\nfull-plan time vs linear ({label}): {'n/a' if v is None else f'{v:.2f}x'}"
        f"  target <= {LINEAR_LIMIT}x  {_verdict(v, LINEAR_LIMIT)}"
    )
    v = figures.get("memory_ratio")
    print(
        f"peak memory of a full plan ({label}): {'n/a' if v is None else f'{v:.2f}x'}"
        f"  target <= {MEMORY_LIMIT}x  {_verdict(v, MEMORY_LIMIT)}"
    )
    v = figures.get("noop_share")
    print(
        f"no-op plan as a share of the full plan ({big['facilities']:,} facilities): "
        f"{'n/a' if v is None else f'{100 * v:.1f}%'}  target < {100 * NOOP_LIMIT:.0f}%  "
        f"{_verdict(v, NOOP_LIMIT, strict=True)}"
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1000, 10000], help="facilities, smallest first"
    )
    parser.add_argument("--runs", type=int, default=1, help="runs of the full plan (median)")
    parser.add_argument("--cheap-runs", type=int, default=3, help="runs of the no-op plan (median)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="nexus --jobs (default 1: one process does everything, so its peak RSS counts all of it)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="fleets and SQLite files")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    args = parser.parse_args(argv)
    args.floor_gc = "parse"  # read by bench_plan.measure; no floor is measured here
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    sizes = sorted(args.sizes)
    if len(sizes) < 2:
        parser.error("--sizes needs two sizes or more")
    started = time.perf_counter()
    print(f"engine: {bench_plan.code_state()}", flush=True)
    results = [measure_size(n, args) | {"jobs": args.jobs} for n in sizes]
    figures = print_figures(results)
    print(f"\n(whole run {time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "results": results}, indent=1, default=str))
    failed = any("error" in r[k] for r in results for k in ("apply", "full", "noop"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
