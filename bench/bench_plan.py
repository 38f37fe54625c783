"""Plan and apply benchmark: nexus beside its floor, for a generated fleet, on SQLite and PostgreSQL.

Run by hand (not a test):  python bench/bench_plan.py --facilities 1000 --backend both

Scenarios, each measured in its own child process (so peak RSS is that measurement's alone):
  validate            nexus loading the fleet        vs  parsing the files with PyYAML's CSafeLoader
  first apply         `nexus apply` into an empty DB  vs  CSafeLoader + one executemany INSERT per table
  no-op plan          `nexus plan` right after        (incremental: unchanged organizations skipped)
  incremental 1%      `nexus plan`, 1% changed        (only the changed organizations are compared)
  full plan 1%        `nexus plan --full`, 1% changed vs  CSafeLoader + one SELECT per table
and the peak memory of the full plan for a tenth of the fleet, for the memory ratio.
The floors pause the cyclic GC around parsing, as nexus does.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

POSTGRES = os.environ.get("NEXUS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# --- measured in a child process ------------------------------------------------------------------------


def _files(fleet: Path) -> list[Path]:
    return sorted(p for p in fleet.rglob("*.yaml") if not any(part.startswith(".") for part in p.parts))


def _parse_floor(fleet: Path) -> list[Any]:
    import yaml

    gc.disable()
    documents = []
    for path in _files(fleet):
        documents.extend(d for d in yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader) if d)
    return documents


def _rows(documents: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """The main tables' rows, as plainly as the floor can build them from parsed YAML."""
    rows: dict[str, list[dict[str, Any]]] = {
        "organizations": [],
        "profiles": [],
        "steps": [],
        "services": [],
        "capacity_windows": [],
        "agreements": [],
        "partnerships": [],
    }
    ids: dict[str, int] = {}
    service_ids = 0
    for doc in documents:
        slug = doc["metadata"]["slug"]
        if slug not in ids:
            ids[slug] = len(ids) + 1
            rows["organizations"].append({"id": ids[slug], "slug": slug, "labels": "{}"})
        org = ids[slug]
        if "profile" in doc:
            p = doc["profile"]
            rows["profiles"].append({"org_id": org, "name": p["name"], "type": p["type"]})
        for s in doc.get("steps") or ():
            rows["steps"].append(
                {"org_id": org, "key": s["key"], "stage": s["stage"], "name": s["name"], "type": s["type"],
                 "completed_by": "student", "required": True, "all_services": False}
            )
        for s in doc.get("schools") or ():
            rows["partnerships"].append({"org_id": org, "school_key": s["key"], "name": s["name"], "status": "invited"})
        for a in doc.get("agreements") or ():
            rows["agreements"].append(
                {"org_id": org, "key": a["key"], "school_key": a["school"], "name": a["name"],
                 "start_date": a["start_date"], "disciplines": "[]", "status": "draft"}
            )
        for s in doc.get("services") or ():
            service_ids += 1
            rows["services"].append({"id": service_ids, "org_id": org, "key": s["key"], "name": s["name"], "disciplines": "[]"})
            for c in s.get("capacity") or ():
                rows["capacity_windows"].append(
                    {"service_id": service_ids, "key": c["key"], "name": c["name"], "workflow": c["workflow"],
                     "disciplines": "[]", "start_date": c["start_date"], "end_date": c["end_date"],
                     "slots": c["slots"], "max_group_size": 1, "allow_specific_dates": False, "visibility": "published"}
                )
    return rows


def _floor(kind: str, fleet: Path, url: str) -> None:
    import sqlalchemy as sa

    documents = _parse_floor(fleet)
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    if kind == "apply":
        rows = _rows(documents)
        with engine.begin() as connection:
            for table, values in rows.items():
                if values:
                    connection.execute(sa.insert(metadata.tables[table]), values)
    else:
        with engine.connect() as connection:
            for table in ("organizations", "profiles", "steps", "services", "capacity_windows", "agreements",
                          "partnerships", "staff", "service_steps", "agreement_services"):
                connection.execute(sa.select(metadata.tables[table])).all()
    engine.dispose()


def _nexus(args: list[str]) -> None:
    from plan_apply.cli import main

    real_stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (the plan text is not what is measured)
    try:
        main(args)
    except SystemExit as exc:
        if exc.code not in (0, None, 2):
            raise SystemExit(f"nexus {' '.join(args)} exited {exc.code}") from None
    finally:
        sys.stdout = real_stdout


def _child(argv: list[str]) -> None:
    kind, *rest = argv
    started = time.perf_counter()
    if kind == "nexus":
        _nexus(rest)
    elif kind == "load":
        from nexus_config import load_configuration

        result = load_configuration([rest[0]])
        assert result.ok, result.errors[:3]
    elif kind == "parse":
        _parse_floor(Path(rest[0]))
    else:
        _floor(kind, Path(rest[0]), rest[1])
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


# --- the parent: orchestration and the table ----------------------------------------------------------


def _measure(*argv: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *argv], capture_output=True, text=True, check=False, cwd=HERE.parent
    )
    if out.returncode != 0:
        raise SystemExit(f"measurement {argv[:3]} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _database(backend: str, scratch: Path) -> tuple[str, Any]:
    import sqlalchemy as sa

    from plan_apply.database.engine import engine_for, upgrade_schema

    if backend == "sqlite":
        path = scratch / f"bench-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        cleanup: Any = lambda: path.unlink(missing_ok=True)  # noqa: E731
    else:
        name = f"nexus_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.engine.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)

        def cleanup() -> None:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()

    engine = engine_for(url)
    with engine.connect() as connection:
        upgrade_schema(connection)
    engine.dispose()
    return url, cleanup


def _row(name: str, nexus: dict[str, float], floor: dict[str, float] | None) -> dict[str, Any]:
    return {
        "scenario": name,
        "seconds": round(nexus["seconds"], 2),
        "floor": round(floor["seconds"], 2) if floor else None,
        "ratio": round(nexus["seconds"] / floor["seconds"], 2) if floor else None,
        "rss_mb": round(nexus["rss_mb"]),
    }


def run_backend(backend: str, fleet: Path, small: Path, facilities: int, out: Path) -> list[dict[str, Any]]:
    from fleet import write_fleet

    rows = []
    url, cleanup = _database(backend, out)
    floor_url, floor_cleanup = _database(backend, out)
    try:
        rows.append(_row("validate", _measure("load", str(fleet)), _measure("parse", str(fleet))))
        apply = _measure("nexus", "apply", str(fleet), "--auto-approve", "-q", "--database-url", url)
        rows.append(_row("first apply", apply, _measure("apply", str(fleet), floor_url)))
        noop = _measure("nexus", "plan", str(fleet), "--database-url", url)
        write_fleet(fleet, facilities, changed_fraction=0.01, change_round=1)
        incremental = _measure("nexus", "plan", str(fleet), "--database-url", url)
        full = _measure("nexus", "plan", str(fleet), "--full", "--database-url", url)
        full_row = _row("full plan, 1% changed", full, _measure("read", str(fleet), url))
        rows.append({**_row("no-op plan (incremental)", noop, None), "vs full plan": round(noop["seconds"] / full["seconds"], 3)})
        rows.append({**_row("incremental plan, 1% changed", incremental, None), "vs full plan": round(incremental["seconds"] / full["seconds"], 3)})
        rows.append(full_row)
        small_url, small_cleanup = _database(backend, out)
        try:
            _measure("nexus", "apply", str(small), "--auto-approve", "-q", "--database-url", small_url)
            small_full = _measure("nexus", "plan", str(small), "--full", "--database-url", small_url)
        finally:
            small_cleanup()
        rows.append(
            {
                "scenario": f"peak memory, full plan: {facilities} vs {facilities // 10} facilities",
                "rss_mb": round(full["rss_mb"]),
                "small_rss_mb": round(small_full["rss_mb"]),
                "ratio": round(full["rss_mb"] / small_full["rss_mb"], 2),
            }
        )
    finally:
        write_fleet(fleet, facilities)  # restore the unchanged fleet for the next run
        cleanup()
        floor_cleanup()
    return rows


def _print(backend: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n== {backend} ==")
    for row in rows:
        print("  " + ", ".join(f"{k}={v}" for k, v in row.items()))
    by = {r["scenario"]: r for r in rows}
    checks = [
        ("full plan <= 2x floor", by["full plan, 1% changed"]["ratio"] <= 2),
        ("first apply <= 2x floor", by["first apply"]["ratio"] <= 2),
        ("no-op plan <= 10% of full plan", by["no-op plan (incremental)"]["vs full plan"] <= 0.10),
        ("peak memory 10x fleet <= 1.5x", rows[-1]["ratio"] <= 1.5),
    ]
    for name, ok in checks:
        print(f"  target {name}: {'met' if ok else 'NOT met'}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--facilities", type=int, default=1000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from fleet import write_fleet

    out = HERE / "out"
    out.mkdir(exist_ok=True)
    fleet, small = out / f"plan-fleet-{args.facilities}", out / f"plan-fleet-{args.facilities // 10}"
    write_fleet(fleet, args.facilities)
    write_fleet(small, max(1, args.facilities // 10))
    results = {}
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        results[backend] = run_backend(backend, fleet, small, args.facilities, out)
        if not args.json:
            _print(backend, results[backend])
    if args.json:
        print(json.dumps(results, indent=2))
    shutil.rmtree(out / "__pycache__", ignore_errors=True)


if __name__ == "__main__":
    main()
