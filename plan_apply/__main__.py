"""The `nexus` console script (and `python -m plan_apply`): `nexus --version`, `nexus --help` and `nexus
completion SHELL` are answered here, before the command line (click and every command's flags) is
imported; anything else goes to `cli.main`.

Editors, hooks, shells and CI call nexus many times: a version check, the help or the completion script
should cost about what Python's own start does. The help and the scripts are click's own rendering,
stored by `docs/generate.py` in `rendered_texts`, and printed only when click would print the same bytes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

__all__ = ["main"]

COMPLETE_VAR = "_NEXUS_COMPLETE"  # set (by the shell, on TAB), click completes instead of parsing


def main(argv: Sequence[str] | None = None) -> None:
    """Run nexus with `argv` (default: the process's arguments) and exit with its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # exactly what click's --version prints, without loading click
        from plan_apply.version import version_line

        _write(version_line() + "\n")
    stored = _stored_answer(args)
    if stored is not None:
        if args[0] == "completion" and args[1] == "bash":
            _check_bash_version()
        _write(stored)
    console = argv is None  # the process is nexus's own; a program passing `argv` keeps its environment,
    if console:  # its modules and its heap as they were
        _without_pydantic_plugins()
    from plan_apply.cli import main as run

    try:
        run(args)
    finally:
        if console:
            _end_without_collecting()


def _end_without_collecting() -> None:
    """Freeze the heap before the interpreter's exit: the collection it runs then would walk every object
    the command made (about a third of a no-op plan) only to find them freed with the process anyway.
    Nothing may rely on a finalizer inside a reference cycle at exit: databases, files and pools are
    closed by their `with` blocks, before this."""
    import gc

    gc.freeze()


PLUGIN_LOADER = "pydantic.plugin._loader"
NO_PLUGINS = ("__all__", "1", "true")  # the values by which pydantic's loader finds no plugin


def _without_pydantic_plugins() -> None:
    """pydantic looks for plugins in every installed distribution's entry points the first time a model
    validates; nexus's models are its own business, so none are looked for (a value the user set is kept).
    Where none may load, pydantic's loader is not imported either: it imports `importlib.metadata` (a
    tenth of a one-file `validate`) only for `get_plugins` to return nothing, which a stand-in does."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ["PYDANTIC_DISABLE_PLUGINS"] in NO_PLUGINS and PLUGIN_LOADER not in sys.modules:
        import types

        loader = types.ModuleType(PLUGIN_LOADER, "No pydantic plugins: PYDANTIC_DISABLE_PLUGINS says so.")
        loader.get_plugins = tuple  # type: ignore[attr-defined]  # () as the real one returns
        sys.modules[PLUGIN_LOADER] = loader


def _write(text: str) -> None:
    """Print `text` and exit 0; a reader that went away (`nexus --help | head -1`) ends it quietly with 1,
    as click ends it."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        sys.exit(1)
    sys.exit(0)


def _stored_answer(args: list[str]) -> str | None:
    """What click would print on stdout for `args`, when it is stored and would be printed byte for byte
    as it is; else None (click answers)."""
    if len(args) not in (1, 2) or os.environ.get(COMPLETE_VAR) or not _stdout_as_click_writes_it():
        return None
    from plan_apply import rendered_texts

    if not _imports_click(rendered_texts.CLICK_VERSION):
        return None
    if len(args) == 2:
        return rendered_texts.COMPLETION.get(args[1]) if args[0] == "completion" else None
    if args[0] not in rendered_texts.HELP_OPTIONS:
        return None
    import shutil  # what click reads the width from: COLUMNS, else the terminal's, else 80

    columns = shutil.get_terminal_size().columns
    for first, last, text in rendered_texts.HELP:
        if first <= columns and (last is None or columns <= last):
            return text
    return None


def _imports_click(version: str) -> bool:
    """Whether `import click` would load that release: the first folder on the path holding a `click`
    package has its `click-VERSION.dist-info` beside it (found some other way, or not found: no)."""
    for entry in sys.path:
        folder = entry or os.getcwd()
        if os.path.isfile(os.path.join(folder, "click", "__init__.py")):
            return os.path.isdir(os.path.join(folder, f"click-{version}.dist-info"))
    return False


def _stdout_as_click_writes_it() -> bool:
    """Whether click's echo would write to stdout as it stands: it rewraps an ASCII stdout as UTF-8 and
    writes to a Windows console its own way; a UTF-8 stdout elsewhere it writes to as is."""
    import codecs

    stdout = sys.stdout
    if stdout is None or sys.platform == "win32" or not getattr(stdout, "encoding", None):
        return False
    try:
        return codecs.lookup(stdout.encoding).name == "utf-8"
    except LookupError:
        return False


def _check_bash_version() -> None:
    """The warning click's `completion bash` writes to stderr first when bash cannot use the script, in
    click's words and by its test (the version's parts compared as strings)."""
    version = _bash_version()
    if version is None:
        _warn("Couldn't detect Bash version, shell completion is not supported.")
        return
    major, minor = version
    if major < "4" or (major == "4" and minor < "4"):
        _warn("Shell completion is not supported for Bash versions older than 4.4.")


def _bash_version() -> tuple[str, str] | None:
    """The major and minor version of the bash on PATH, asked as click asks it (None: none found)."""
    import re
    import shutil
    import subprocess

    bash = shutil.which("bash")
    if bash is None:
        return None
    output = subprocess.run(
        [bash, "--norc", "-c", 'echo "${BASH_VERSION}"'], stdout=subprocess.PIPE, check=False
    )
    match = re.search(r"^(\d+)\.(\d+)\.\d+", output.stdout.decode())
    return None if match is None else (match[1], match[2])


def _warn(message: str) -> None:
    """A line on stderr, as click's echo writes it (nothing when there is no stderr)."""
    if sys.stderr is not None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


if __name__ == "__main__":  # pragma: no cover
    main()
