"""Scale-out benchmark: N concurrent `nexus apply --shard i/N` processes against one PostgreSQL.

    python bench/bench_shards.py --facilities 120 --shards 1,2,4 [--admin-url postgresql://postgres@127.0.0.1/postgres]

1. Generates the fleet with `bench/fleet.py` into `bench/out/shards-N` (git-ignored) and makes its
   facilities share documents: every agreement attaches one of a few PDFs, so parallel first applies store
   the same file from many transactions at once (what `uq_documents_sha256` used to refuse).
2. For each N: a fresh database (created, `nexus db upgrade`d), then N `nexus apply --shard i/N` processes
   started together (a CI matrix against one server); the first apply of the whole fleet.
3. Reports per N: wall seconds, organizations and items per second, organizations per shard (balance),
   failures (processes that exited non-zero: must be 0), and lock waits: how often, sampled every 20 ms
   from pg_locks, an apply's backend waited for a lock another held (and the most waiting at once).

The machine's core count and load average are printed with the figures: other work on the machine skews
them, and N processes cannot scale past the cores there are.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import fleet  # noqa: E402  (bench/fleet.py, next to this file)

NEXUS = str(Path(sys.executable).with_name("nexus"))
DOCUMENTS = 4
ITEMS_PER_FACILITY = 191
"""What bench/fleet.py writes per facility (its docstring); systems are counted as facilities here."""

_WAITING = (
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE NOT l.granted AND a.application_name LIKE 'nexus apply%%' AND a.datname = %s"
)


def shared_fleet(facilities: int) -> Path:
    """The fleet, every agreement attaching one of DOCUMENTS shared PDFs."""
    out = BENCH_DIR / "out" / f"shards-{facilities}"
    manifest = fleet.read_manifest(out)
    if manifest is None or manifest.get("facilities") != facilities or not (out / "documents").is_dir():
        if out.exists() and manifest is None:
            raise SystemExit(f"{out} exists without a fleet manifest: remove it")
        fleet.write_fleet(out, facilities)
        (out / "documents").mkdir()
        for number, path in enumerate(sorted(out.glob("*/agreements.yaml"))):
            name = f"signed-{number % DOCUMENTS}.pdf"  # the same bytes in every directory: one document
            (path.parent / name).write_bytes(f"%PDF-1.7\n% signed {number % DOCUMENTS}\n%%EOF\n".encode())
            text = path.read_text(encoding="utf-8")
            text = re.sub(r"(    disciplines: [^\n]*\n)", r"\1" + f"    document: {name}\n", text)
            path.write_text(text, encoding="utf-8")
    return out


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def fresh_database(admin_url: str, name: str) -> str:
    with psycopg.connect(_plain(admin_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _plain(admin_url).rsplit("/", 1)[0] + f"/{name}"
    done = subprocess.run([NEXUS, "db", "upgrade", "--database-url", url], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return url


class LockWatch(threading.Thread):
    """Samples pg_locks until stopped: how many samples saw an apply waiting, and the most at once."""

    def __init__(self, url: str, database: str) -> None:
        super().__init__(daemon=True)
        self.url, self.database, self.stop = url, database, threading.Event()
        self.samples = self.waiting = self.most = 0

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as watch:
            while not self.stop.is_set():
                row = watch.execute(_WAITING, (self.database,)).fetchone()
                count = int(row[0]) if row else 0
                self.samples += 1
                self.waiting += count > 0
                self.most = max(self.most, count)
                self.stop.wait(0.02)


@dataclass(frozen=True)
class Run:
    count: int
    seconds: float
    organizations: int
    per_shard: list[int]
    failures: int
    waits: float
    most_waiting: int
    errors: list[str]


def run_shards(url: str, database: str, tree: Path, count: int) -> Run:
    watch = LockWatch(url, database)
    watch.start()
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [
                NEXUS,
                "apply",
                str(tree),
                "--shard",
                f"{i}/{count}",
                "--auto-approve",
                "--quiet",
                "--database-url",
                url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(1, count + 1)
    ]
    outputs = [p.communicate() for p in processes]
    seconds = time.perf_counter() - started
    watch.stop.set()
    watch.join()
    failures = [p.returncode for p in processes if p.returncode != 0]
    per_shard = []
    for out, err in outputs:
        found = re.search(r"organizations: ([^.]*)\.", out + err)
        per_shard.append(sum(int(n) for n in re.findall(r"(\d+) \w+", found.group(1))) if found else 0)
    with psycopg.connect(url) as check:
        row = check.execute("SELECT count(*) FROM organizations").fetchone()
        organizations = int(row[0]) if row else 0
    return Run(
        count,
        seconds,
        organizations,
        per_shard,
        len(failures),
        watch.waiting / max(watch.samples, 1),
        watch.most,
        [
            err.strip().splitlines()[-1]
            for (_, err), p in zip(outputs, processes, strict=True)
            if p.returncode
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facilities", type=int, default=120)
    parser.add_argument("--shards", default="1,2,4")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1/postgres")
    args = parser.parse_args(argv)
    tree = shared_fleet(args.facilities)
    load = os.getloadavg()
    print(f"{os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"fleet: {args.facilities} facilities (+ systems), {DOCUMENTS} documents shared by every agreement")
    print(
        f"{'N':>2} {'seconds':>8} {'orgs/s':>7} {'items/s':>8} {'orgs per shard':<20} {'failures':>8} {'lock waits':>10}"
    )
    for count in [int(n) for n in args.shards.split(",")]:
        database = f"nexus_bench_shards_{count}"
        url = fresh_database(args.admin_url, database)
        r = run_shards(url, database, tree, count)
        print(
            f"{count:>2} {r.seconds:>8.1f} {r.organizations / r.seconds:>7.2f} "
            f"{r.organizations * ITEMS_PER_FACILITY / r.seconds:>8.0f} {'/'.join(map(str, r.per_shard)):<20} "
            f"{r.failures:>8} {f'{r.waits:.0%} (max {r.most_waiting})':>10}"
        )
        for error in r.errors:
            print(f"   failed: {error}")
        with psycopg.connect(_plain(args.admin_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
