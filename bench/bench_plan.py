"""Plan and apply benchmark: nexus beside its floor on a generated fleet, on SQLite and PostgreSQL.

    python bench/bench_plan.py --facilities 1000 --backend both [--runs 1] [--json out.json]

Run by hand; it is not a test. Every measurement runs in a fresh child process (peak RSS is that
measurement's own) and times only the work: interpreter start-up and imports are outside the timer, in
nexus's rows and in the floors' alike. Scenarios, in this order, each beside its floor:

  validate             `nexus validate` (check_tree)        vs  read + PyYAML CSafeLoader of every file
  first apply          `nexus apply --auto-approve` into an empty, migrated database
                                                          vs  CSafeLoader + one Core executemany INSERT
                                                              per table of the same rows (no RETURNING)
  no-op plan           `nexus plan` right after the apply: the default incremental plan (unchanged
                       organizations are skipped unparsed); shown as a fraction of the full plan
  template renamed     `nexus plan` after the first system's first service template was renamed (restored
                       afterwards): its users, and only they, show an update
  incremental, 1%      `nexus plan` after 1% of the facilities changed (the fleet is rewritten in
                       place, at the same paths, and restored afterwards)
  full plan, 1%        `nexus plan --full`, same 1% change  vs  CSafeLoader + one Core SELECT per table
  peak memory          max RSS of the full plan for --small facilities (default 100) vs --facilities

The floors pause the cyclic GC while parsing, as nexus pauses it while loading (`paused_gc`), and run the
database part with it on, as nexus does; `--floor-gc all` pauses it for the whole floor.

Before each timed run, outside the timer, the fleet's files and any SQLite database file are read once
(`_warm`): a kernel that reclaims cold pages (DAMON on some machines) would otherwise make whichever side
runs first read them from disk, and at 10,000 facilities (600 MB of YAML) that is most of the run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import fleet  # noqa: E402  (bench/fleet.py, next to this file)

DEFAULT_POSTGRES = os.environ.get(
    "NEXUS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CHANGED_FRACTION = 0.01
CHANGE_ROUND = 1

# Tables the floors write (first apply) and read (full plan): what nexus writes and what its plan reads.
WRITTEN = (
    "organizations",
    "profiles",
    "people",
    "staff",
    "steps",
    "services",
    "service_steps",
    "partnerships",
    "invitations",
    "agreements",
    "agreement_services",
    "capacity_windows",
)
READ = (
    "organizations",
    "profiles",
    "people",
    "staff",
    "steps",
    "services",
    "service_steps",
    "partnerships",
    "schools",
    "agreements",
    "agreement_services",
    "documents",
    "capacity_windows",
    "rotations",
)


# ============================================================================ child: measured work


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _yaml_files(fleet_dir: Path) -> list[Path]:
    return sorted(p for p in fleet_dir.rglob("*.yaml") if not any(part.startswith(".") for part in p.parts))


@contextlib.contextmanager
def _gc_paused(paused: bool) -> Iterator[None]:
    """The same pause nexus_config.heap.paused_gc makes around loading."""
    enabled = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused and enabled:
            gc.enable()


def _parse(fleet_dir: Path) -> list[dict[str, Any]]:
    """Read every configuration file and parse it with libyaml's CSafeLoader (the parse floor)."""
    import yaml

    documents: list[dict[str, Any]] = []
    for path in _yaml_files(fleet_dir):
        documents.extend(
            d for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader) if d
        )
    return documents


def _plain(item: dict[str, Any], drop: str = "") -> dict[str, Any]:
    """An item as JSON-ready values (dates as text): what the floor stores in `applied`, as nexus does."""
    return {k: v.isoformat() if isinstance(v, datetime.date) else v for k, v in item.items() if k != drop}


def _expand_templates(orgs: dict[str, dict[str, Any]]) -> None:
    """Services that name a service template, as the template's fields under their own (the floor's
    share of nexus' expansion: the organization's templates, then its parent's)."""
    templates = {
        slug: {t["key"]: t for doc in org["docs"] for t in doc.get("templates") or ()}
        for slug, org in orgs.items()
    }
    for slug, org in orgs.items():
        for doc in org["docs"]:
            services = doc.get("services") or ()
            if not any("template" in service for service in services):
                continue
            expanded = []
            for service in services:
                if "template" in service:
                    owner, _, key = service["template"].rpartition("/")
                    owner = owner or (slug if key in templates[slug] else org["parent"])
                    base = {k: v for k, v in templates[owner][key].items() if k != "key"}
                    service = {**base, **{k: v for k, v in service.items() if k != "template"}}
                expanded.append(service)
            doc["services"] = expanded


def floor_rows(documents: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The rows nexus writes for a fleet, built as plainly as possible from the parsed documents.

    Organizations are merged by slug (a facility spreads over 5 files); ids are assigned here, so no
    statement needs RETURNING or a read-back; `applied` holds the item as nexus keeps its baseline.
    """
    rows: dict[str, list[dict[str, Any]]] = {table: [] for table in WRITTEN}
    orgs: dict[str, dict[str, Any]] = {}
    for doc in documents:
        meta = doc["metadata"]
        org = orgs.setdefault(meta["slug"], {"parent": None, "labels": {}, "docs": []})
        if meta.get("parent"):
            org["parent"] = meta["parent"]
        if meta.get("labels"):
            org["labels"] = meta["labels"]
        org["docs"].append(doc)
    _expand_templates(orgs)
    order = sorted(orgs, key=lambda slug: (orgs[slug]["parent"] is not None, slug))  # parents first
    org_id = {slug: n for n, slug in enumerate(order, 1)}
    step_id: dict[tuple[str, str], int] = {}
    now = datetime.datetime.now(datetime.UTC)
    ids = {"step": 0, "service": 0, "agreement": 0, "person": 0}

    def next_id(kind: str) -> int:
        ids[kind] += 1
        return ids[kind]

    for slug in order:  # steps first: services of a facility link to its parent's steps too
        for doc in orgs[slug]["docs"]:
            for s in doc.get("steps") or ():
                step_id[slug, s["key"]] = sid = next_id("step")
                rows["steps"].append(
                    {
                        "id": sid,
                        "org_id": org_id[slug],
                        "key": s["key"],
                        "stage": s["stage"],
                        "name": s["name"],
                        "type": s["type"],
                        "completed_by": s.get("completed_by", "student"),
                        "description": s.get("description"),
                        "instructions": s.get("instructions"),
                        "required": s.get("required", True),
                        "due_days": s.get("due_days"),
                        "expires_after_days": s.get("expires_after_days"),
                        "applies_to": s.get("applies_to"),
                        "all_services": s.get("all_services", False),
                        "fields": s.get("fields"),
                        "managed": True,
                        "applied": _plain(s),
                    }
                )
    # Ids up front, across the fleet: a system-wide agreement links its facilities' services, and a
    # facility's window names its system's agreement as `system-slug/key`.
    service_ids: dict[tuple[str, str], int] = {}
    agreement_ids: dict[tuple[str, str], int] = {}
    for slug in order:
        for doc in orgs[slug]["docs"]:
            for a in doc.get("agreements") or ():
                agreement_ids[slug, a["key"]] = next_id("agreement")
            for s in doc.get("services") or ():
                service_ids[slug, s["key"]] = next_id("service")

    def covered(slug: str, covers: Any) -> list[str]:
        """The declaring organization and the descendants `covers` selects."""
        below = []
        for other in order:
            parent = orgs[other]["parent"]
            while parent is not None and parent != slug:
                parent = orgs[parent]["parent"] if parent in orgs else None
            if parent == slug:
                below.append(other)
        if covers != "all":
            below = (
                [o for o in below if o in covers]
                if isinstance(covers, list)
                else [
                    o
                    for o in below
                    if all(orgs[o]["labels"].get(k) == v for k, v in covers["labels"].items())
                ]
            )
        return [slug, *below]

    for slug in order:
        org, oid = orgs[slug], org_id[slug]
        rows["organizations"].append(
            {
                "id": oid,
                "slug": slug,
                "parent_id": org_id.get(org["parent"]) if org["parent"] else None,
                "labels": org["labels"],
                "managed": True,
                "applied": {"parent": org["parent"], "labels": org["labels"]},
            }
        )
        for doc in org["docs"]:
            p = doc.get("profile")
            if p:
                rows["profiles"].append(
                    {
                        "org_id": oid,
                        "name": p["name"],
                        "type": p["type"],
                        "description": p.get("description"),
                        "website": p.get("website"),
                        "email": p.get("email"),
                        "phone": p.get("phone"),
                        "address": p.get("address"),
                        "timezone": p.get("timezone"),
                        "managed": True,
                        "applied": _plain(p),
                    }
                )
            for person in doc.get("staff") or ():
                pid = next_id("person")
                rows["people"].append(
                    {"id": pid, "email": person["email"].lower(), "name": person.get("name")}
                )
                rows["staff"].append(
                    {
                        "org_id": oid,
                        "person_id": pid,
                        "role": person["role"],
                        "title": person.get("title"),
                        "managed": True,
                        "applied": _plain(person),
                    }
                )
            for school in doc.get("schools") or ():
                rows["partnerships"].append(
                    {
                        "org_id": oid,
                        "school_key": school["key"],
                        "name": school["name"],
                        "contact_email": school.get("contact_email"),
                        "status": "invited",
                        "managed": True,
                        "applied": _plain(school),
                    }
                )
                if school.get("contact_email"):
                    rows["invitations"].append(
                        {
                            "org_id": oid,
                            "school_key": school["key"],
                            "email": school["contact_email"],
                            "created_at": now,
                        }
                    )
            for a in doc.get("agreements") or ():
                aid = agreement_ids[slug, a["key"]]
                rows["agreements"].append(
                    {
                        "id": aid,
                        "org_id": oid,
                        "key": a["key"],
                        "school_key": a["school"],
                        "name": a["name"],
                        "description": a.get("description"),
                        "start_date": a["start_date"],
                        "end_date": a.get("end_date"),
                        "reminder_days": a.get("reminder_days"),
                        "disciplines": a.get("disciplines") or [],
                        "status": "pending_school" if a.get("submit") else "draft",
                        "protected": bool(a.get("protect")),
                        "managed": True,
                        "applied": _plain(a),
                    }
                )
                keys = set(a.get("services") or ())
                rows["agreement_services"].extend(
                    {"agreement_id": aid, "service_id": service_ids[owner, key]}
                    for owner in (covered(slug, a["covers"]) if a.get("covers") else [slug])
                    for key in sorted(keys)
                    if (owner, key) in service_ids
                )
            for s in doc.get("services") or ():
                sid = service_ids[slug, s["key"]]
                rows["services"].append(
                    {
                        "id": sid,
                        "org_id": oid,
                        "key": s["key"],
                        "name": s["name"],
                        "description": s.get("description"),
                        "location": s.get("location"),
                        "department": s.get("department"),
                        "disciplines": s.get("disciplines") or [],
                        "specialties": s.get("specialties"),
                        "protected": bool(s.get("protect")),
                        "managed": True,
                        "applied": _plain(s, drop="capacity"),
                    }
                )
                for key in s.get("steps") or ():
                    owner = slug if (slug, key) in step_id else org["parent"]
                    rows["service_steps"].append({"service_id": sid, "step_id": step_id[owner, key]})
                for c in s.get("capacity") or ():
                    rows["capacity_windows"].append(
                        {
                            "service_id": sid,
                            "key": c["key"],
                            "name": c["name"],
                            "workflow": c["workflow"],
                            "agreement_id": _agreement_id(agreement_ids, slug, c.get("agreement")),
                            "disciplines": c.get("disciplines") or [],
                            "start_date": c["start_date"],
                            "end_date": c["end_date"],
                            "slots": c["slots"],
                            "max_group_size": c.get("max_group_size", 1),
                            "allow_specific_dates": c.get("allow_specific_dates", False),
                            "visibility": c.get("visibility", "published"),
                            "description": c.get("description"),
                            "protected": bool(c.get("protect")),
                            "managed": True,
                            "applied": _plain(c),
                        }
                    )
    return rows


def _agreement_id(ids: dict[tuple[str, str], int], slug: str, reference: str | None) -> int | None:
    """A window's agreement: its own organization's by key, a parent's by `parent-slug/key`."""
    if reference is None:
        return None
    owner, _, key = reference.rpartition("/")
    return ids[owner or slug, key]


def _floor(
    fleet_dir: Path, url: str, gc_all: bool, database_work: Callable[[Any, Any], Any]
) -> tuple[Any, Any]:
    """A floor: parse the fleet (GC paused, as nexus loads), then `database_work(connection, documents)`
    in one transaction; returns (documents, what the work returned)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with _gc_paused(gc_all):
            with _gc_paused(True):
                documents = _parse(fleet_dir)
            with engine.begin() as connection:
                return documents, database_work(connection, documents)
    finally:
        engine.dispose()


def _floor_apply(fleet_dir: Path, url: str, gc_all: bool) -> dict[str, Any]:
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    def insert(connection: Any, documents: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        rows = floor_rows(documents)
        for name in WRITTEN:
            if rows[name]:
                connection.execute(sa.insert(t.metadata.tables[name]), rows[name])
        return rows

    _, rows = _floor(fleet_dir, url, gc_all, insert)
    return {"rows": sum(len(r) for r in rows.values()), "tables": sum(1 for r in rows.values() if r)}


def _floor_read(fleet_dir: Path, url: str, gc_all: bool) -> dict[str, Any]:
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    def select(connection: Any, documents: list[dict[str, Any]]) -> dict[str, Any]:
        return {name: connection.execute(sa.select(t.metadata.tables[name])).all() for name in READ}

    documents, read = _floor(fleet_dir, url, gc_all, select)
    return {"documents": len(documents), "rows": sum(len(r) for r in read.values())}


def _nexus(args: list[str]) -> dict[str, Any]:
    """Run the nexus CLI in this process (as `nexus ARGS` would), its output captured, not printed."""
    from plan_apply.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code
    lines = [line for line in (out.getvalue() + err.getvalue()).splitlines() if line.strip()]
    keep = ("Plan:", "No changes", "unchanged since", "Apply complete", "error", "failed")
    notes = [line.strip() for line in lines if any(k in line for k in keep)]
    return {"exit": code, "notes": notes[-3:], "tail": lines[-3:]}


def _validate(fleet_dir: Path, nexus_options: Sequence[str]) -> dict[str, Any]:
    """What `nexus validate` does (batches, worker processes unless --jobs 1), through its API."""
    from plan_apply.batching import check_tree

    jobs = int(nexus_options[1]) if nexus_options[:1] == ["--jobs"] else max(1, os.cpu_count() or 1)
    result = check_tree([fleet_dir], jobs=jobs)
    return {
        "orgs": result.organizations,
        "errors": sum(1 for p in result.problems if p.severity == "error"),
        "problems": len(result.problems),
        "first_problems": [str(p)[:200] for p in result.problems[:3]],
    }


def _warm(fleet_dir: Path, urls: Sequence[str]) -> None:
    """Read the fleet's files and SQLite database files once, so that the timed run finds them in the page
    cache whatever the kernel reclaimed meanwhile, as its rival run did."""
    files = [path for path in fleet_dir.rglob("*") if path.is_file()]
    for url in urls:
        if url.startswith("sqlite:///"):
            database = Path(url.removeprefix("sqlite:///"))
            files += [p for p in database.parent.glob(database.name + "*") if p.is_file()]
    for path in files:
        with path.open("rb") as handle:
            while handle.read(1 << 20):
                pass


def _preimport(kind: str, urls: list[str]) -> None:
    """Imports outside the timer, for nexus and the floors alike (start-up is not what is measured)."""
    import sqlalchemy  # noqa: F401
    import yaml  # noqa: F401

    import nexus_config  # noqa: F401
    import plan_apply.actual
    import plan_apply.apply
    import plan_apply.cli
    import plan_apply.database.engine
    import plan_apply.planner
    import plan_apply.views.text  # noqa: F401

    if any(u.startswith("postgresql") for u in urls):
        import psycopg  # noqa: F401


def _work(
    kind: str, fleet_dir: Path, urls: list[str], gc_all: bool, nexus_options: Sequence[str] = ()
) -> Callable[[int], dict[str, Any]]:
    """The measured work of one kind; its argument is the run number (apply: which fresh database)."""
    if kind == "validate":
        return lambda n: _validate(fleet_dir, list(nexus_options))
    if kind == "parse":

        def parse(n: int) -> dict[str, Any]:
            with _gc_paused(True):
                return {"documents": len(_parse(fleet_dir))}

        return parse
    if kind == "apply":  # one fresh database per run
        apply = ["--color", "never", "apply", str(fleet_dir), "--auto-approve", "-q", "--no-progress"]
        return lambda n: _nexus([*apply, *nexus_options, "--database-url", urls[n]])
    if kind == "floor-apply":
        return lambda n: _floor_apply(fleet_dir, urls[n], gc_all)
    if kind in ("plan", "plan-full"):
        plan = ["--color", "never", "plan", str(fleet_dir), "--detailed-exitcode"]
        plan += ["--full"] if kind == "plan-full" else []
        return lambda n: _nexus([*plan, *nexus_options, "--database-url", urls[0]])
    if kind == "floor-read":
        return lambda n: _floor_read(fleet_dir, urls[0], gc_all)
    raise ValueError(f"unknown kind {kind}")


def _cpu_seconds() -> float:
    """This process's CPU time and its worker processes': those of the fork server nexus starts them from,
    which reaps them (so a run's workers are counted once they have ended), and the server's own."""
    total = time.process_time()
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)  # private: a benchmark's look only
    if pid:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return total
        total += sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure one kind in this process; returns times, peak RSS and details (never raises)."""
    kind, fleet_dir, runs = spec["kind"], Path(spec["fleet"]), spec["runs"]
    urls: list[str] = spec.get("urls") or []
    report: dict[str, Any] = {"kind": kind}
    try:
        _preimport(kind, urls)
        work = _work(kind, fleet_dir, urls, spec.get("floor_gc") == "all", spec.get("nexus_options", ()))
        report["rss_before_mb"] = _peak_rss_mb()
        times, cpu, details = [], [], {}
        for n in range(runs):
            _warm(fleet_dir, urls)
            gc.collect()
            started, cpu_started = time.perf_counter(), _cpu_seconds()
            details = work(n)
            times.append(time.perf_counter() - started)
            cpu.append(_cpu_seconds() - cpu_started)
            if details.get("exit") not in (None, 0, 2):
                report["error"] = f"nexus exited {details['exit']}: {' | '.join(details['tail'])}"
                break
        report.update(times=times, cpu_times=cpu, details=details, rss_peak_mb=_peak_rss_mb())
    except Exception as exc:  # reported in the table, never a crash of the whole benchmark
        report["error"] = f"{type(exc).__name__}: {exc}"
    return report


# ============================================================================ parent: orchestration


def _in_child(spec: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            report: dict[str, Any] = json.loads(line)
            return report
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"kind": spec["kind"], "error": f"worker exited {proc.returncode}: {' | '.join(tail)}"}


class Databases:
    """Scratch databases, each migrated to the current schema; all dropped (or deleted) at the end."""

    def __init__(self, backend: str, scratch: Path, postgres_url: str) -> None:
        self.backend, self.scratch, self.postgres_url = backend, scratch, postgres_url
        self.cleanups: list[Callable[[], None]] = []

    def new(self) -> str:
        import sqlalchemy as sa

        from plan_apply.database.engine import engine_for, upgrade_schema

        tag = uuid.uuid4().hex[:8]
        if self.backend == "sqlite":
            path = self.scratch / f"bench-plan-{tag}.db"
            url = f"sqlite:///{path}"

            def cleanup() -> None:
                for suffix in ("", "-journal", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:
            name = f"nexus_bench_{tag}"
            admin = sa.create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            admin.dispose()
            url = (
                sa.engine.make_url(self.postgres_url).set(database=name).render_as_string(hide_password=False)
            )

            def cleanup() -> None:
                engine = sa.create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
                with engine.connect() as connection:
                    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                engine.dispose()

        self.cleanups.append(cleanup)
        engine = engine_for(url)
        try:
            with engine.connect() as connection:
                upgrade_schema(connection)
        finally:
            engine.dispose()
        return url

    def drop_all(self) -> None:
        while self.cleanups:
            try:
                self.cleanups.pop()()
            except Exception as exc:  # keep dropping the others
                print(f"warning: cleanup failed: {exc}", file=sys.stderr)


def code_state() -> str:
    """Which engine is measured: the commit, and the uncommitted files of the engine packages."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        except OSError:
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "nexus_config", "plan_apply").splitlines()
    return f"commit {head}" + (f" + uncommitted changes in {len(dirty)} engine file(s)" if dirty else "")


def ensure_fleet(out: Path, facilities: int, seed: int, regenerate: bool) -> tuple[Path, dict[str, Any]]:
    """The unchanged fleet in `out/plan-fleet-N` (reused when its manifest matches)."""
    fleet_dir = out / (f"plan-fleet-{facilities}" + (f"-s{seed}" if seed else ""))
    wanted = {
        "generator_version": fleet.GENERATOR_VERSION,
        "facilities": facilities,
        "seed": seed,
        "systems": fleet.default_systems(facilities),
        "changed_fraction": 0.0,
        "change_round": 0,
    }
    manifest = fleet.read_manifest(fleet_dir)
    if regenerate or manifest is None or any(manifest.get(k) != v for k, v in wanted.items()):
        print(f"generating {facilities} facilities into {fleet_dir} ...", flush=True)
        fleet.write_fleet(fleet_dir, facilities, seed=seed)
        manifest = fleet.read_manifest(fleet_dir)
    return fleet_dir, manifest or {}


@contextlib.contextmanager
def changed_in_place(fleet_dir: Path, facilities: int, seed: int) -> Iterator[dict[str, Any]]:
    """The fleet rewritten at the same paths with 1% of its facilities changed, then restored."""
    fleet.write_fleet(
        fleet_dir, facilities, seed=seed, changed_fraction=CHANGED_FRACTION, change_round=CHANGE_ROUND
    )
    try:
        yield fleet.read_manifest(fleet_dir) or {}
    finally:
        fleet.write_fleet(fleet_dir, facilities, seed=seed)


@contextlib.contextmanager
def template_renamed(fleet_dir: Path) -> Iterator[int]:
    """The first system's first service template renamed in place, then restored; yields how many of
    its facilities use it (what an incremental plan should show changed, and nothing else)."""
    manifest = fleet.read_manifest(fleet_dir) or {}
    system = next(
        slug for slug in manifest.get("org_dirs", ()) if (fleet_dir / slug / "templates.yaml").exists()
    )
    path = fleet_dir / system / "templates.yaml"
    original = path.read_bytes()
    key = fleet.SERVICES[0][0]
    marker = f"  - key: {key}\n    name: "
    users = sum(
        f"template: {key}\n" in services.read_text(encoding="utf-8")
        for services in fleet_dir.glob("*/services.yaml")
        if f"parent: {system} " in (services.parent / "profile.yaml").read_text(encoding="utf-8")
    )
    path.write_bytes(original.replace(marker.encode(), (marker + "Renamed ").encode(), 1))
    try:
        yield users
    finally:
        path.write_bytes(original)


def _median(report: dict[str, Any] | None) -> float | None:
    return statistics.median(report["times"]) if report and report.get("times") else None


def measure(label: str, kind: str, fleet_dir: Path, runs: int, urls: list[str], args: Any) -> dict[str, Any]:
    print(f"  {label} ({runs} run(s)) ...", end="", flush=True)
    spec = {
        "kind": kind,
        "fleet": str(fleet_dir),
        "runs": runs,
        "urls": urls,
        "floor_gc": args.floor_gc,
        "nexus_options": ["--jobs", str(args.jobs)] if args.jobs else [],
    }
    started = time.perf_counter()
    report = _in_child(spec)
    seconds = _median(report)
    shown = f"{seconds:.2f} s" if seconds is not None else f"FAILED: {report.get('error')}"
    load = os.getloadavg()[0]
    print(f" {shown} (child wall {time.perf_counter() - started:.1f} s, load average {load:.1f})", flush=True)
    report["load_average"] = load
    return report


def run_backend(
    backend: str,
    fleet_dir: Path,
    manifest: dict[str, Any],
    small: tuple[Path, dict[str, Any]] | None,
    validate: tuple[dict[str, Any], dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Every scenario on one backend; returns the raw reports by name."""
    print(f"\n[{backend}]", flush=True)
    dbs = Databases(backend, args.out, args.postgres_url)
    facilities = args.facilities
    r: dict[str, Any] = {"validate": validate[0], "validate_floor": validate[1]}
    try:
        urls = [dbs.new() for _ in range(args.runs)]
        r["apply"] = measure("first apply: nexus apply", "apply", fleet_dir, args.runs, urls, args)
        floor_urls = [dbs.new() for _ in range(args.runs)]
        r["apply_floor"] = measure(
            "first apply floor: parse + executemany", "floor-apply", fleet_dir, args.runs, floor_urls, args
        )
        url = urls[-1]  # the applied database the plans run against
        r["noop"] = measure("no-op plan (incremental)", "plan", fleet_dir, args.cheap_runs, [url], args)
        with template_renamed(fleet_dir) as users:
            r["template_users"] = users
            r["template"] = measure(
                "incremental plan, one template renamed", "plan", fleet_dir, args.cheap_runs, [url], args
            )
        with changed_in_place(fleet_dir, facilities, args.seed) as changed:
            r["changed_facilities"] = len(changed.get("changed_facilities", []))
            r["incremental"] = measure(
                "incremental plan, 1% changed", "plan", fleet_dir, args.cheap_runs, [url], args
            )
            r["full"] = measure("full plan, 1% changed", "plan-full", fleet_dir, args.runs, [url], args)
            r["full_floor"] = measure(
                "full plan floor: parse + SELECT per table", "floor-read", fleet_dir, args.runs, [url], args
            )
        if small is not None:
            small_dir, small_manifest = small
            small_url = dbs.new()
            r["small_apply"] = measure(
                f"({small_manifest['facilities']} facilities: apply, not compared)",
                "apply",
                small_dir,
                1,
                [small_url],
                args,
            )
            with changed_in_place(small_dir, small_manifest["facilities"], args.seed):
                r["small_full"] = measure(
                    f"full plan, 1% changed, {small_manifest['facilities']} facilities",
                    "plan-full",
                    small_dir,
                    args.runs,
                    [small_url],
                    args,
                )
    finally:
        dbs.drop_all()
    return r


# ============================================================================ the table


def _ok(value: float | None, limit: float) -> str:
    if value is None:
        return "n/a"
    return "met" if value <= limit else "NOT met"


def _median_cpu(report: dict[str, Any] | None) -> float | None:
    return statistics.median(report["cpu_times"]) if report and report.get("cpu_times") else None


def _cell(report: dict[str, Any] | None) -> tuple[str, str]:
    """(median seconds, min-max) as text."""
    if not report or not report.get("times"):
        return "n/a", ""
    times = report["times"]
    spread = f"{min(times):.2f}-{max(times):.2f}" if len(times) > 1 else ""
    return f"{statistics.median(times):.2f}", spread


def _rss(report: dict[str, Any] | None) -> str:
    return f"{report['rss_peak_mb']:.0f}" if report and "rss_peak_mb" in report else "n/a"


def _nexus_note(report: dict[str, Any] | None) -> str:
    if not report:
        return ""
    if "error" in report:
        return str(report["error"])[:160]
    d = report.get("details", {})
    if "orgs" in d:
        return f"{d['orgs']} orgs, {d['errors']} errors, {d['problems']} problems"
    notes = d.get("notes") or []
    return "; ".join(n if len(n) < 110 else n[:107] + "..." for n in notes if "Legend" not in n)


def print_table(
    backend: str, r: dict[str, Any], manifest: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """The table of one backend, and the issue's target checks; returns the figures printed."""
    mb = manifest.get("bytes", 0) / 1e6
    print(
        f"\n== {backend}: {manifest.get('facilities')} facilities + {manifest.get('systems')} health "
        f"systems, {manifest.get('files')} files, {mb:.1f} MB; median of --runs {args.runs} "
        f"(no-op and incremental plans: {args.cheap_runs}); floors: GC paused "
        f"{'for the whole floor' if args.floor_gc == 'all' else 'while parsing, as nexus while loading'} =="
    )
    full = _median(r.get("full"))
    rows = [
        ("validate (nexus validate)", r.get("validate"), r.get("validate_floor"), "parse"),
        ("first apply (nexus apply)", r.get("apply"), r.get("apply_floor"), "parse + INSERT"),
        ("no-op plan (incremental)", r.get("noop"), None, "full plan"),
        (
            f"incremental plan, {r.get('changed_facilities', '?')} changed",
            r.get("incremental"),
            None,
            "full plan",
        ),
        (
            f"one template renamed ({r.get('template_users', '?')} users)",
            r.get("template"),
            None,
            "full plan",
        ),
        ("full plan (--full), 1% changed", r.get("full"), r.get("full_floor"), "parse + SELECT"),
    ]
    header = (
        f"{'scenario':34} {'seconds':>8} {'min-max':>11} {'cpu s':>7} {'floor s':>8} {'floor cpu':>9} "
        f"{'ratio':>7} {'cpu ratio':>9} {'floor is':>15} {'RSS MB':>7} {'floor RSS':>9} {'load':>9}  notes"
    )
    print(header)
    print("-" * len(header))
    figures: dict[str, Any] = {}
    full_cpu = _median_cpu(r.get("full"))
    for name, nexus, floor, floor_kind in rows:
        seconds, spread = _cell(nexus)
        med, med_cpu = _median(nexus), _median_cpu(nexus)
        if floor_kind == "full plan":
            base, base_cpu, floor_s, floor_cpu, floor_rss = full, full_cpu, "-", "-", "-"
        else:
            base, base_cpu = _median(floor), _median_cpu(floor)
            floor_s, floor_rss = _cell(floor)[0], _rss(floor)
            floor_cpu = f"{base_cpu:.2f}" if base_cpu is not None else "n/a"
        ratio = med / base if med is not None and base else None
        cpu_ratio = med_cpu / base_cpu if med_cpu is not None and base_cpu else None
        digits = "{:.3f}" if floor_kind == "full plan" else "{:.2f}x"
        ratio_s = digits.format(ratio) if ratio else "n/a"
        cpu_ratio_s = digits.format(cpu_ratio) if cpu_ratio else "n/a"
        loads = "/".join(f"{x['load_average']:.1f}" for x in (nexus, floor) if x and "load_average" in x)
        note = _nexus_note(nexus)
        if floor is not None and floor.get("error"):
            note += f" | floor: {floor['error'][:120]}"
        elif floor is not None and floor.get("details", {}).get("rows"):
            note += f" | floor rows {floor['details']['rows']:,}"
        cpu_s = f"{med_cpu:.2f}" if med_cpu is not None else "n/a"
        print(
            f"{name:34} {seconds:>8} {spread:>11} {cpu_s:>7} {floor_s:>8} {floor_cpu:>9} {ratio_s:>7} "
            f"{cpu_ratio_s:>9} {floor_kind:>15} {_rss(nexus):>7} {floor_rss:>9} {loads:>9}  {note}"
        )
        figures[name] = {
            "seconds": med,
            "cpu_seconds": med_cpu,
            "floor": base,
            "floor_cpu": base_cpu,
            "ratio": ratio,
            "cpu_ratio": cpu_ratio,
            "rss_mb": _rss(nexus),
        }
    small, big = r.get("small_full"), r.get("full")
    memory_ratio = None
    if small and big and "rss_peak_mb" in small and "rss_peak_mb" in big:
        memory_ratio = big["rss_peak_mb"] / small["rss_peak_mb"]
        print(
            f"{'peak memory, full plan':34} {'':>8} {'':>11} {'':>8} {memory_ratio:>6.2f}x {'':>15} "
            f"{big['rss_peak_mb']:>7.0f} {'':>9}  {args.small} facilities: {small['rss_peak_mb']:.0f} MB "
            f"(after imports: {small['rss_before_mb']:.0f}); {args.facilities}: {big['rss_peak_mb']:.0f} MB "
            f"(after imports: {big['rss_before_mb']:.0f}); plan of {args.small} took {_cell(small)[0]} s"
        )
    print(
        "(seconds: wall time, without interpreter start-up and imports; cpu s: the child's CPU time, its worker processes' included "
        "(not the PostgreSQL server's, not waits; a busy machine inflates it too, less than wall time); RSS: each "
        "child's peak; load: 1-minute load average after the nexus/floor measurement)"
    )
    if args.jobs != 1:
        print(
            f"(nexus ran with --jobs {args.jobs or 'default: ' + str(os.cpu_count())}: it loads and plans (and "
            "on PostgreSQL applies) in worker processes, whose CPU time the cpu column counts and whose memory "
            "the RSS column leaves out; measure with --jobs 1 for one process doing everything)"
        )
    print(f"(engine measured: {args.code}; Python {sys.version.split()[0]})")
    load_averages = [v["load_average"] for v in r.values() if isinstance(v, dict) and "load_average" in v]
    if load_averages:
        cpus = os.cpu_count() or 1
        busy = max(load_averages) > cpus * 0.75
        print(
            f"1-minute load average after the measurements: {min(load_averages):.1f}-{max(load_averages):.1f} on {cpus} CPUs"
            + (" -- the machine was busy: other processes skew these figures" if busy else "")
        )
    apply_ratio = figures["first apply (nexus apply)"]["ratio"]
    full_ratio = figures["full plan (--full), 1% changed"]["ratio"]
    noop_ratio = figures["no-op plan (incremental)"]["ratio"]

    def fmt(v: float | None, pattern: str) -> str:
        return pattern.format(v) if v is not None else "n/a"

    print("targets:")
    print(f"  full plan <= 2x floor:                {fmt(full_ratio, '{:.2f}x'):>7}  {_ok(full_ratio, 2)}")
    print(f"  first apply <= 2x floor:              {fmt(apply_ratio, '{:.2f}x'):>7}  {_ok(apply_ratio, 2)}")
    print(f"  no-op plan <= 10% of full plan:       {fmt(noop_ratio, '{:.1%}'):>7}  {_ok(noop_ratio, 0.10)}")
    print(
        f"  peak memory {args.facilities} <= 1.5x {args.small}:"
        f"{' ' * (19 - len(str(args.facilities)) - len(str(args.small)))}"
        f"{fmt(memory_ratio, '{:.2f}x'):>7}  {_ok(memory_ratio, 1.5)}"
    )
    figures["memory_ratio"] = memory_ratio
    return figures


# ============================================================================ --profile


def profile(args: argparse.Namespace) -> int:
    """One scenario in this process under cProfile, its preconditions set up outside the profile."""
    import cProfile
    import pstats

    kind = args.profile
    backend = "sqlite" if args.backend == "both" else args.backend
    fleet_dir, _ = ensure_fleet(args.out, args.facilities, args.seed, args.regenerate)
    dbs = Databases(backend, args.out, args.postgres_url)
    try:
        urls = [dbs.new()] if kind != "validate" and kind != "parse" else []
        changed: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if kind in ("plan", "plan-full", "floor-read"):
            measure("apply first (not profiled)", "apply", fleet_dir, 1, urls, args)
            changed = changed_in_place(fleet_dir, args.facilities, args.seed)
        with changed:
            _preimport(kind, urls)
            # cProfile sees only this thread: planning's worker processes and apply's threads would be missed
            jobs = ("--jobs", "1") if kind in ("validate", "apply", "plan", "plan-full") else ()
            work = _work(kind, fleet_dir, urls, args.floor_gc == "all", jobs)
            profiler = cProfile.Profile()
            gc.collect()
            started = time.perf_counter()
            details = profiler.runcall(work, 0)
            elapsed = time.perf_counter() - started
    finally:
        dbs.drop_all()
    target = args.out / f"profile-{kind}-{backend}-{args.facilities}.prof"
    profiler.dump_stats(target)
    print(
        f"\n{kind} on {backend}, {args.facilities} facilities: {elapsed:.2f} s under cProfile"
        + (" (with --jobs 1: cProfile follows one thread of one process)" if jobs else "")
        + f"; {details}"
    )
    print(f"profile saved to {target} (python -m pstats {target})\n")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(args.profile_top)
    stats.sort_stats("tottime").print_stats(args.profile_top)
    return 0


# ============================================================================ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="nexus plan/apply beside their floors",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--facilities", type=int, default=1000)
    parser.add_argument(
        "--small", type=int, default=100, help="facilities of the memory comparison (0: skip it)"
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--runs", type=int, default=1, help="runs of the expensive measurements (median)")
    parser.add_argument("--cheap-runs", type=int, default=3, help="runs of the no-op and incremental plans")
    parser.add_argument("--floor-gc", choices=("parse", "all"), default="parse")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="fleets and SQLite files")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="server for scratch databases")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    parser.add_argument(
        "--profile",
        choices=("validate", "parse", "apply", "floor-apply", "plan", "plan-full", "floor-read"),
        help="run this one scenario in-process under cProfile (first backend) and print its hotspots",
    )
    parser.add_argument("--profile-top", type=int, default=40, help="functions listed by --profile")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="passed to nexus plan/apply (default: nexus's own, the number of CPUs); with more than one, "
        "the RSS column is the main process's only: --jobs 1 measures everything in one process",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        sys.path.insert(0, str(REPO))
        print(json.dumps(run_worker(json.loads(args.worker))))
        return 0

    sys.path.insert(0, str(REPO))
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.profile:
        return profile(args)
    fleet_dir, manifest = ensure_fleet(args.out, args.facilities, args.seed, args.regenerate)
    small = None
    if 0 < args.small < args.facilities:
        small = ensure_fleet(args.out, args.small, args.seed, args.regenerate)
    args.code = code_state()
    print(
        f"fleet {fleet_dir}: {manifest.get('files')} files, {manifest.get('bytes', 0) / 1e6:.1f} MB; "
        f"engine: {args.code}",
        flush=True,
    )
    print("\n[no database]", flush=True)
    validate = (
        measure("validate: nexus validate", "validate", fleet_dir, args.runs, [], args),
        measure("validate floor: read + CSafeLoader", "parse", fleet_dir, args.runs, [], args),
    )
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {}
    for backend in backends:
        results[backend] = run_backend(backend, fleet_dir, manifest, small, validate, args)
    figures = {backend: print_table(backend, results[backend], manifest, args) for backend in backends}
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "fleet": str(fleet_dir),
                    "manifest": manifest,
                    "engine": args.code,
                    "python": sys.version.split()[0],
                    "args": sys.argv[1:] if argv is None else argv,
                    "figures": figures,
                }
                | {"reports": results},
                indent=1,
                default=str,
            )
        )
    failed = [k for r in results.values() for k, v in r.items() if isinstance(v, dict) and "error" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
