"""The `nexus` console script (and `python -m plan_apply`): `nexus --version` is answered here, before
the command line (click and every command's flags) is imported; anything else goes to `cli.main`.

Editors, hooks and CI call nexus many times: a bare version check should cost about what Python's own
start does.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run nexus with `argv` (default: the process's arguments) and exit with its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # exactly what click's --version prints, without loading click
        from plan_apply.version import version_line

        print(version_line())
        sys.exit(0)
    from plan_apply.cli import main as run

    run(args)


if __name__ == "__main__":  # pragma: no cover
    main()
