"""A plan file is written as a stream: writing it takes the same memory whatever the plan's size."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

from plan_apply.console import write_plan_file
from plan_apply.database.engine import engine_for
from plan_apply.plan import Plan
from plan_apply.planner import plan_tree


def _organization(folder: Path, windows: int) -> Path:
    """One organization whose `windows` capacity windows are all new: a plan of as many creates."""
    lines = [
        "apiVersion: nexus/v1",
        "kind: Organization",
        "metadata: {slug: big-hospital}",
        "profile: {name: Big Hospital, type: hospital}",
        "services:",
        "  - key: wards",
        "    name: Wards",
        "    disciplines: [nursing]",
        "    capacity:",
    ]
    for i in range(windows):
        lines += [
            f"      - key: w{i:05d}",
            f"        name: Window {i}",
            "        workflow: student_requested",
            "        disciplines: [nursing]",
            f"        start_date: 2027-{1 + i % 12:02d}-01",
            f"        end_date: 2027-{1 + i % 12:02d}-28",
            f"        slots: {1 + i % 9}",
        ]
    folder.mkdir(parents=True)
    (folder / "org.yaml").write_text("\n".join(lines) + "\n")
    return folder


def _plan(tmp_path: Path, sqlite_template: Path, windows: int) -> Plan:
    database = tmp_path / f"{windows}.db"
    shutil.copyfile(sqlite_template, database)
    url = f"sqlite:///{database}"
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            plan = plan_tree([_organization(tmp_path / str(windows), windows)], connection, database=url).plan
    finally:
        engine.dispose()
    assert plan is not None
    return plan


def _peak_writing(plan: Plan, path: Path) -> int:
    """The most memory writing `plan`'s file took, in bytes, beyond what was held before."""
    tracemalloc.start()
    try:
        write_plan_file(str(path), plan.json_chunks())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_writing_a_plan_ten_times_larger_takes_no_more_memory(tmp_path: Path, sqlite_template: Path) -> None:
    small, big = (_plan(tmp_path, sqlite_template, n) for n in (150, 1500))
    small_peak = _peak_writing(small, tmp_path / "small.json")
    big_peak = _peak_writing(big, tmp_path / "big.json")
    big_size = (tmp_path / "big.json").stat().st_size
    assert big_size > 8 * (tmp_path / "small.json").stat().st_size
    assert big_peak < 1.2 * small_peak + 64 * 1024  # one 64 KiB piece more at most
    assert big_peak < big_size / 2  # the file never is one string in memory
