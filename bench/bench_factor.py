"""How much smaller `nexus export --factor` writes a fleet than a plain export.

    python bench/bench_factor.py [--facilities 50]

Writes the generated fleet with every service in full (`bench/fleet.py --flat`, no templates) into
`bench/out/factor-N`, applies it to a fresh SQLite file there, exports every organization twice (plain,
then `--factor`) and prints the bytes of each export (`du -sb` of its directory) and of its YAML files,
with the ratio. Both exports plan empty against the database (the tests hold it); this measures size.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import fleet  # noqa: E402  (bench/fleet.py, next to this file)

NEXUS = str(Path(sys.executable).with_name("nexus"))


def _nexus(*args: str) -> None:
    subprocess.run([NEXUS, *args], check=True, stdout=subprocess.DEVNULL)


def _du(path: Path) -> int:
    """`du -sb`: the apparent size of a directory, directories included."""
    return int(
        subprocess.run(["du", "-sb", str(path)], check=True, capture_output=True, text=True).stdout.split()[0]
    )


def _yaml_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*.yaml"))


def main() -> None:
    """Generate, apply, export twice, and print both sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facilities", type=int, default=50)
    args = parser.parse_args()
    out = BENCH_DIR / "out" / f"factor-{args.facilities}"
    tree = out / "fleet"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    fleet.write_fleet(tree, args.facilities, flat=True)
    url = f"sqlite:///{out / 'nexus.db'}"
    _nexus("db", "upgrade", "--database-url", url)
    _nexus("apply", str(tree), "--auto-approve", "-q", "--no-progress", "--database-url", url)
    slugs = ",".join(sorted(p.name for p in tree.iterdir() if p.is_dir()))
    sizes = {}
    for name, extra in (("plain", []), ("factor", ["--factor"])):
        _nexus("export", "--org", slugs, "--out", str(out / name), "--database-url", url, *extra)
        sizes[name] = (_du(out / name), _yaml_bytes(out / name))
    organizations = len(slugs.split(","))
    print(
        f"{args.facilities} facilities ({organizations} organizations), flat fleet {_yaml_bytes(tree):,} bytes of YAML"
    )
    for name, (du, yaml) in sizes.items():
        print(f"export {'--factor' if name == 'factor' else '(plain)':<9} du -sb {du:>12,}  YAML {yaml:>12,}")
    print(f"--factor / plain: {sizes['factor'][1] / sizes['plain'][1]:.2f} (YAML bytes)")


if __name__ == "__main__":
    main()
