"""Load benchmark: nexus `load_configuration` against the YAML floor, on a synthetic fleet.

    python bench/bench_load.py --facilities 1000 --runs 3

1. Generates the fleet with `bench/fleet.py` into `bench/out/fleet-N` (git-ignored), or reuses it when
   its manifest says it was made with the same parameters and generator version.
2. Measures, each in a fresh child process (so each peak RSS is its own), median of `--runs` runs with
   `gc.collect()` before each:
   - floor: read every `*.yaml` file and parse it with PyYAML `yaml.load(text, Loader=yaml.CSafeLoader)`
     (GC paused during the run by default, as nexus does; `--floor-gc on|both` for the GC-on floor);
   - nexus: `load_configuration([fleet_dir])` (read, parse, validate, upgrade, merge, rules), which
     returns an object with `.state` and `.problems`.
3. Prints seconds, min-max, MB/s, peak RSS, the ratio nexus/floor and the facility count.

If nexus cannot be imported (or raises), its row says why and the floor is still measured.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import fleet  # noqa: E402  (bench/fleet.py, next to this file)

DEFAULT_LOADER = "nexus_config:load_configuration"


# ----------------------------------------------------------------------------------------- helpers


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _yaml_files(fleet_dir: Path) -> list[Path]:
    return sorted(p for p in fleet_dir.rglob("*.yaml") if not any(part.startswith(".") for part in p.parts))


def ensure_fleet(
    out: Path, facilities: int, seed: int, systems: int | None, regenerate: bool, flat: bool = False
) -> tuple[Path, dict[str, Any]]:
    name = (
        f"fleet-{facilities}"
        + (f"-s{seed}" if seed else "")
        + (f"-h{systems}" if systems else "")
        + ("-flat" if flat else "")
    )
    fleet_dir = out / name
    wanted = {
        "generator_version": fleet.GENERATOR_VERSION,
        "facilities": facilities,
        "seed": seed,
        "systems": systems if systems is not None else fleet.default_systems(facilities),
        "changed_fraction": 0.0,
        "change_round": 0,
        "flat": flat,
    }
    manifest = fleet.read_manifest(fleet_dir)
    if regenerate or manifest is None or any(manifest.get(k) != v for k, v in wanted.items()):
        started = time.perf_counter()
        print(f"generating {facilities} facilities into {fleet_dir} ...", flush=True)
        fleet.write_fleet(fleet_dir, facilities, seed=seed, systems=systems, flat=flat)
        manifest = fleet.read_manifest(fleet_dir) or {}
        print(
            f"  {manifest.get('files')} files, {manifest.get('bytes', 0) / 1e6:.1f} MB "
            f"in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    else:
        print(f"reusing {fleet_dir} (delete it or pass --regenerate to rebuild)", flush=True)
    return fleet_dir, manifest


# ----------------------------------------------------------------------------------------- workers


def _floor_once(files: list[Path], gc_paused: bool, compose_only: bool = False) -> list[object]:
    import yaml

    docs: list[object] = []
    if gc_paused:
        gc.disable()
    try:
        for path in files:
            text = path.read_text(encoding="utf-8")
            if compose_only:  # libyaml's node tree only: no Python values, no tag resolution of values
                docs.append(yaml.compose(text, Loader=yaml.CSafeLoader))
            else:
                docs.append(yaml.load(text, Loader=yaml.CSafeLoader))
    finally:
        if gc_paused:
            gc.enable()
    return docs


def _resolve(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "load_configuration")


def _describe_nexus(result: object) -> dict[str, Any]:
    info: dict[str, object] = {}
    state = getattr(result, "state", None)
    orgs = getattr(state, "organizations", None)
    if orgs is not None and hasattr(orgs, "__len__"):
        info["orgs"] = len(orgs)
    problems = getattr(result, "problems", None)
    if problems is not None:
        problems = list(problems)
        info["problems"] = len(problems)
        errors = [p for p in problems if getattr(p, "severity", "error") == "error"]
        info["errors"] = len(errors)
        info["first_problems"] = [str(p)[:300] for p in problems[:3]]
    files = getattr(result, "files", None)
    if isinstance(files, int):
        info["files"] = files
    return info


def run_worker(kind: str, fleet_dir: Path, runs: int, warmup: int, loader_spec: str) -> dict[str, Any]:
    """Measure one kind in this process; returns times, RSS and details (never raises)."""
    report: dict[str, object] = {"kind": kind}
    try:
        if kind in ("floor", "floor-gc", "compose"):
            import yaml  # noqa: F401  (import cost outside the timed region)

            gc_paused = kind != "floor-gc"
            files = _yaml_files(fleet_dir)

            def work() -> object:
                return _floor_once(files, gc_paused, compose_only=kind == "compose")

            def describe(result: object) -> dict[str, Any]:
                return {"files": len(files), "documents": len(result)}  # type: ignore[arg-type]
        else:
            try:
                load = _resolve(loader_spec)
            except Exception as exc:  # ImportError, AttributeError, anything raised at import time
                report["error"] = f"cannot import {loader_spec}: {type(exc).__name__}: {exc}"
                return report

            def work() -> object:
                return load([fleet_dir])

            describe = _describe_nexus
        report["rss_before_mb"] = _peak_rss_mb()
        times = []
        details: dict[str, Any] = {}
        for n in range(warmup + runs):
            gc.collect()
            started = time.perf_counter()
            result = work()
            elapsed = time.perf_counter() - started
            if n >= warmup:
                times.append(elapsed)
            details = describe(result)
            del result
        report["times"] = times
        report["details"] = details
        report["rss_peak_mb"] = _peak_rss_mb()
    except Exception as exc:  # report, don't crash the table
        report["error"] = f"{type(exc).__name__}: {exc}"
    return report


def _in_child(kind: str, fleet_dir: Path, runs: int, warmup: int, loader_spec: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        kind,
        "--dir",
        str(fleet_dir),
        "--runs",
        str(runs),
        "--warmup",
        str(warmup),
        "--loader",
        loader_spec,
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            report: dict[str, Any] = json.loads(line)
            return report
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"kind": kind, "error": f"worker exited {proc.returncode}: {' | '.join(tail)}"}


# ----------------------------------------------------------------------------------------- table

LABELS = {
    "floor": "floor: read + CSafeLoader (GC paused)",
    "floor-gc": "floor: read + CSafeLoader (GC on)",
    "compose": "read + libyaml compose only (GC paused)",
    "nexus": "nexus: load_configuration",
}


def print_table(
    reports: list[dict[str, Any]], manifest: dict[str, Any], fleet_dir: Path, runs: int, in_process: bool
) -> None:
    mb = manifest.get("bytes", 0) / 1e6
    facilities = manifest.get("facilities")
    print()
    print(
        f"fleet {fleet_dir}: {facilities} facilities + {manifest.get('systems')} health systems, "
        f"{manifest.get('files')} files, {mb:.1f} MB; median of {runs} run(s), gc.collect() before each"
    )
    header = f"{'':40} {'median s':>9} {'min-max s':>13} {'MB/s':>6} {'ms/fac':>7} {'peak RSS MB':>12}  notes"
    print(header)
    print("-" * len(header))
    medians: dict[str, float] = {}
    for r in reports:
        label = LABELS.get(r["kind"], r["kind"])
        if "error" in r or not r.get("times"):
            print(f"{label:40} {'n/a':>9}  {r.get('error', 'no runs')}")
            continue
        times = r["times"]
        med = statistics.median(times)
        medians[r["kind"]] = med
        per_fac = f"{med * 1000 / facilities:.1f}" if facilities else "-"
        rss = f"{r['rss_peak_mb']:.0f} ({r['rss_before_mb']:.0f})"
        d = r.get("details", {})
        if r["kind"] == "nexus":
            notes = (
                f"{d.get('orgs', '?')} orgs, {d.get('errors', '?')} errors, {d.get('problems', '?')} problems"
            )
        else:
            notes = f"{d.get('documents', '?')} documents"
        spread = f"{min(times):6.2f}-{max(times):<6.2f}"
        print(f"{label:40} {med:9.2f} {spread} {mb / med:6.1f} {per_fac:>7} {rss:>12}  {notes}")
    if in_process:
        print(
            "(peak RSS of this one process so far: cumulative over the rows; in parentheses: before the row)"
        )
    else:
        print("(peak RSS of each child process; in parentheses: after imports, before the first run)")
    if "nexus" in medians and "floor" in medians:
        print(f"ratio nexus/floor (GC paused): {medians['nexus'] / medians['floor']:.2f}x")
    if "nexus" in medians and "floor-gc" in medians:
        print(f"ratio nexus/floor (GC on):     {medians['nexus'] / medians['floor-gc']:.2f}x")
    for r in reports:
        for p in r.get("details", {}).get("first_problems", []) if r["kind"] == "nexus" else []:
            print(f"  problem: {p}")


# ----------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="nexus load_configuration vs the CSafeLoader floor")
    parser.add_argument("--facilities", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=0, help="uncounted runs before measuring (default 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--systems", type=int, default=None, help="health systems (default: 1 per 20)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    parser.add_argument("--fleet", type=Path, default=None, help="measure this existing tree instead")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--flat", action="store_true", help="a fleet without service templates")
    parser.add_argument("--floor-gc", choices=("paused", "on", "both"), default="paused")
    parser.add_argument("--only", choices=("floor", "nexus"), default=None)
    parser.add_argument(
        "--compose", action="store_true", help="also time yaml.compose (C node tree only): below the floor"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="no child processes (RSS is then cumulative)"
    )
    parser.add_argument("--loader", default=DEFAULT_LOADER, help="module:function to benchmark as nexus")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    parser.add_argument("--worker", choices=tuple(LABELS), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        sys.path.insert(0, str(REPO))
        print(json.dumps(run_worker(args.worker, args.dir, args.runs, args.warmup, args.loader)))
        return 0

    if args.fleet is not None:
        fleet_dir = args.fleet
        files = _yaml_files(fleet_dir)
        manifest = fleet.read_manifest(fleet_dir) or {
            "facilities": None,
            "systems": None,
            "files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
        }
    else:
        fleet_dir, manifest = ensure_fleet(
            args.out, args.facilities, args.seed, args.systems, args.regenerate, args.flat
        )

    kinds: list[str] = []
    if args.only != "nexus":
        kinds += {"paused": ["floor"], "on": ["floor-gc"], "both": ["floor", "floor-gc"]}[args.floor_gc]
        if args.compose:
            kinds.append("compose")
    if args.only != "floor":
        kinds.append("nexus")
    reports = []
    for kind in kinds:
        print(f"measuring {LABELS[kind]} ({args.runs} run(s)) ...", flush=True)
        if args.in_process:
            sys.path.insert(0, str(REPO))
            reports.append(run_worker(kind, fleet_dir, args.runs, args.warmup, args.loader))
        else:
            reports.append(_in_child(kind, fleet_dir, args.runs, args.warmup, args.loader))
    print_table(reports, manifest, fleet_dir, args.runs, args.in_process)
    if args.json:
        args.json.write_text(
            json.dumps({"fleet": str(fleet_dir), "manifest": manifest, "reports": reports}, indent=1)
        )
    return 0 if all("error" not in r for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
