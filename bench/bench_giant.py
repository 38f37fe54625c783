"""One giant organization: `validate` and `plan --out` of 100,000 capacity windows, time and peak memory.

    python bench/bench_giant.py [--windows 100000] [--alias-uses 9000] [--runs 1]

Run by hand, not a test. Generates on the fly, into `bench/out/giant/` (git-ignored):

  giant/        one organization: a profile and `--windows` student-requested capacity windows under
                services of 100 windows each, 100 services a file (nexus refuses a file over 4 MiB)
  alias/        one organization whose windows name one anchored unknown discipline (a scalar, one node
                an alias: within nexus's alias budget), used `--alias-uses` times: that many errors

and measures, each command a fresh `nexus` process run under a small Python parent whose
`resource.getrusage(RUSAGE_CHILDREN)` gives the peak RSS of nexus and its workers:

  nexus validate giant/                     wall seconds, peak RSS, peak RSS / size on disk
  nexus plan giant/ --out PLAN              against an empty, migrated SQLite file: every window a create;
                                            also the plan file's size
  nexus validate alias/                     the lines of text it prints for its errors (target: one per
                                            distinct problem, not one per use) and the JSON problems

Targets (issue 16): memory bounded by a constant times the organization's size on disk (the ratio is
printed for two sizes, `--windows` and a tenth of it, so that a constant shows as an equal ratio), and
repeated identical problems folded into one line with a count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WINDOWS_PER_SERVICE = 100
SERVICES_PER_FILE = 100
"""10,000 windows, ~1.9 MB a file: under nexus's 4 MiB limit on one file, and the alias case's anchor
and its uses in one document."""
DISCIPLINES = ("nursing", "medicine", "physical_therapy", "occupational_therapy", "pharmacy")

# The measuring parent: runs argv, prints its wall time and the children's peak RSS (KiB on Linux).
PARENT = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
seconds = time.perf_counter() - started
out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
print(json.dumps({"seconds": seconds, "rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "exit": proc.returncode, "stdout_lines": out.count("\\n"), "stderr_lines": err.count("\\n"),
                  "head": (err or out).splitlines()[:3], "tail": (err or out).splitlines()[-2:],
                  "stdout": out if len(out) < 64_000_000 else ""}))
"""


def _window(i: int, discipline: str) -> list[str]:
    year = 2027 + (i % 3)
    month = 1 + (i % 12)
    return [
        f"      - key: w{i:06d}",
        f"        name: Window {i}",
        "        workflow: student_requested",
        f"        disciplines: {discipline}",
        f"        start_date: {year}-{month:02d}-01",
        f"        end_date: {year}-{month:02d}-28",
        f"        slots: {1 + i % 20}",
    ]


def write_organization(directory: Path, slug: str, windows: int, alias_uses: int = 0) -> int:
    """One organization with `windows` capacity windows, in files of `SERVICES_PER_FILE` services (a file
    may not exceed nexus's `MAX_FILE_BYTES`, 4 MiB: a giant organization is split over files); the first
    `alias_uses` windows name an unknown discipline, anchored once as a scalar and reached through YAML
    aliases (one node each: within nexus's alias budget). Returns the bytes written."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("services*.yaml"):
        old.unlink()
    profile = (
        "apiVersion: nexus/v1\nkind: Organization\n"
        f"metadata: {{slug: {slug}}}\n"
        f"profile: {{name: Giant {slug}, type: hospital}}\n"
    )
    (directory / "profile.yaml").write_text(profile)
    services = (windows + WINDOWS_PER_SERVICE - 1) // WINDOWS_PER_SERVICE
    for first in range(0, services, SERVICES_PER_FILE):
        lines = ["apiVersion: nexus/v1", "kind: Organization", f"metadata: {{slug: {slug}}}", "services:"]
        for s in range(first, min(services, first + SERVICES_PER_FILE)):
            lines += [f"  - key: service-{s:05d}", f"    name: Service {s}", "    disciplines: [nursing]"]
            lines.append("    capacity:")
            for i in range(s * WINDOWS_PER_SERVICE, min(windows, (s + 1) * WINDOWS_PER_SERVICE)):
                if i == 0 and alias_uses:
                    discipline = f"[{DISCIPLINES[0]}, &bad astrology]"
                elif i < alias_uses:
                    discipline = f"[{DISCIPLINES[0]}, *bad]"
                else:
                    discipline = f"[{DISCIPLINES[0]}]"
                lines += _window(i, discipline)
        (directory / f"services-{first // SERVICES_PER_FILE:03d}.yaml").write_text("\n".join(lines) + "\n")
    return sum(f.stat().st_size for f in directory.iterdir())


def run_measured(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run `argv` under the measuring parent; wall seconds, peak RSS in MB and output line counts."""
    proc = subprocess.run(
        [sys.executable, "-c", PARENT, *argv], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    try:
        report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": proc.stderr.strip()[-500:]}
    report["rss_mb"] = report.pop("rss_kib") / 1024
    return report


def measure(
    label: str, argv: list[str], env: dict[str, str], runs: int, ok: tuple[int, ...]
) -> dict[str, Any]:
    print(f"  {label} ({runs} run(s)) ...", end="", flush=True)
    reports = [run_measured(argv, env) for _ in range(runs)]
    bad = [r for r in reports if "error" in r or r.get("exit") not in ok]
    if bad:
        print(f" FAILED: {bad[0].get('error') or bad[0].get('head')}")
        return {"error": bad[0]}
    result = {
        "seconds": statistics.median(r["seconds"] for r in reports),
        "rss_mb": max(r["rss_mb"] for r in reports),
        "last": reports[-1],
    }
    print(f" {result['seconds']:.2f} s, peak RSS {result['rss_mb']:.0f} MB (load {os.getloadavg()[0]:.1f})")
    return result


# The streaming check, in a fresh interpreter: plan the organization (not traced), then trace only the
# writing of the plan file, streamed as `plan --out` writes it, and the whole-string write it replaced.
STREAM_CHILD = """
import json, sys, tracemalloc
from pathlib import Path
from plan_apply.console import write_plan_file
from plan_apply.database.engine import engine_for, upgrade_schema
from plan_apply.planner import plan_tree
directory, scratch = Path(sys.argv[1]), Path(sys.argv[2])
url = f"sqlite:///{scratch / 'stream.db'}"
engine = engine_for(url, create=True)
with engine.connect() as connection:
    upgrade_schema(connection)
    plan = plan_tree([directory], connection, database=url, full=True).plan
engine.dispose()
assert plan is not None, "the organization did not plan"
report = {}
for name, pieces in (("streamed", lambda: plan.json_chunks()), ("whole", lambda: plan.to_json())):
    target = scratch / f"{name}.json"
    tracemalloc.start()
    write_plan_file(str(target), pieces())
    report[name + "_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    report["file_mb"] = target.stat().st_size / 1e6
print(json.dumps(report))
"""


def stream_case(out: Path, windows: int) -> dict[str, Any]:
    """The memory writing the plan file of one organization takes, beyond the plan itself: constant when
    `plan --out` streams (`Plan.json_chunks`), the file's size again when it writes one string."""
    directory = out / f"giant-{windows}"
    if not (directory / "services-000.yaml").exists():
        write_organization(directory, "giant", windows)
    with tempfile.TemporaryDirectory(prefix="nexus-stream-", dir=out) as scratch:
        proc = subprocess.run(
            [sys.executable, "-c", STREAM_CHILD, str(directory), scratch],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
        )
    try:
        report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"windows": windows, "error": proc.stderr.strip()[-500:]}
    print(
        f"  writing the plan file of {windows:,} windows ({report['file_mb']:.1f} MB): streamed "
        f"{report['streamed_peak_mb']:.2f} MB at peak, one string {report['whole_peak_mb']:.1f} MB"
    )
    return {"windows": windows, **report}


def nexus() -> str:
    script = Path(sys.executable).parent / "nexus"
    if not script.exists():
        raise SystemExit(f"no nexus script at {script}: install the project (pip install -e .) first")
    return str(script)


def giant_case(out: Path, windows: int, runs: int, jobs: list[str]) -> dict[str, Any]:
    """validate and plan --out of one organization of `windows` windows."""
    directory = out / f"giant-{windows}"
    size = write_organization(directory, "giant", windows)
    print(f"\n[one organization, {windows:,} capacity windows: {size / 1e6:.1f} MB on disk]", flush=True)
    env = os.environ | {"NO_COLOR": "1"}
    result: dict[str, Any] = {"windows": windows, "bytes": size}
    result["validate"] = measure(
        "nexus validate", [nexus(), "validate", str(directory), *jobs], env, runs, (0,)
    )
    with tempfile.TemporaryDirectory(prefix="nexus-giant-", dir=out) as scratch:
        env = env | {"NEXUS_DATABASE_URL": f"sqlite:///{scratch}/giant.db"}
        setup = run_measured([nexus(), "db", "upgrade"], env)
        if setup.get("exit") != 0:
            raise SystemExit(f"nexus db upgrade failed: {setup}")
        plan_file = Path(scratch) / "plan.json"
        argv = [nexus(), "plan", str(directory), "--out", str(plan_file), "--no-progress", *jobs]
        result["plan"] = measure("nexus plan --out (empty database)", argv, env, runs, (0, 2))
        result["plan_file_bytes"] = plan_file.stat().st_size if plan_file.exists() else None
    return result


def alias_case(out: Path, uses: int, jobs: list[str]) -> dict[str, Any]:
    """validate of one anchored unknown discipline used `uses` times: lines printed."""
    directory = out / f"alias-{uses}"
    size = write_organization(directory, "alias", max(uses, WINDOWS_PER_SERVICE), alias_uses=uses)
    print(f"\n[one anchored unknown discipline used {uses:,} times: {size / 1e6:.1f} MB]")
    env = os.environ | {"NO_COLOR": "1"}
    text = run_measured([nexus(), "validate", str(directory), *jobs], env)
    data = run_measured([nexus(), "validate", str(directory), "--format", "json", *jobs], env)
    try:
        problems = len(json.loads(data.get("stdout") or "[]"))
    except json.JSONDecodeError:
        problems = None
    lines = text.get("stdout_lines", 0) + text.get("stderr_lines", 0)
    print(
        f"  text: {lines} line(s) for {problems} problems in JSON; first: {(text.get('head') or [''])[0][:160]}"
    )
    return {"uses": uses, "text_lines": lines, "json_problems": problems, "head": text.get("head")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--windows", type=int, default=100_000)
    parser.add_argument("--alias-uses", type=int, default=9_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=None, help="passed to nexus (default: nexus's own)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "giant")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    started = time.perf_counter()
    sizes = [args.windows // 10, args.windows]
    cases = [giant_case(args.out, n, args.runs, jobs) for n in sizes]
    alias = alias_case(args.out, args.alias_uses, jobs)

    print("\n== one giant organization ==")
    print(
        f"{'windows':>8} {'MB disk':>8} {'validate s':>10} {'RSS MB':>7} {'RSS/disk':>8} {'plan s':>7} {'RSS MB':>7} {'RSS/disk':>8} {'plan MB':>8}"
    )
    for c in cases:
        mb = c["bytes"] / 1e6
        v, p = c["validate"], c["plan"]
        print(
            f"{c['windows']:>8,} {mb:>8.1f} {v.get('seconds', float('nan')):>10.2f} {v.get('rss_mb', float('nan')):>7.0f} "
            f"{v.get('rss_mb', float('nan')) / mb:>7.1f}x {p.get('seconds', float('nan')):>7.2f} "
            f"{p.get('rss_mb', float('nan')):>7.0f} {p.get('rss_mb', float('nan')) / mb:>7.1f}x "
            f"{(c['plan_file_bytes'] or 0) / 1e6:>8.1f}"
        )
    small, big = cases
    for name in ("validate", "plan"):
        if "rss_mb" in small[name] and "rss_mb" in big[name]:
            marginal = (big[name]["rss_mb"] - small[name]["rss_mb"]) / ((big["bytes"] - small["bytes"]) / 1e6)
            print(
                f"{name}: {marginal:.1f} MB of peak RSS per MB of YAML from {small['windows']:,} to "
                f"{big['windows']:,} windows (the constant memory is bounded by)"
            )
    folded = alias["text_lines"] <= 3
    print(
        f"alias used {alias['uses']:,} times: {alias['text_lines']} text line(s), {alias['json_problems']} JSON "
        f"problems; repeated problems folded: {'PASS' if folded else 'FAIL'}"
    )
    print(f"(whole run {time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"cases": cases, "alias": alias}, indent=1, default=str))
    failed = any("error" in c[k] for c in cases for k in ("validate", "plan"))
    return 1 if failed or not folded else 0


if __name__ == "__main__":
    sys.exit(main())
