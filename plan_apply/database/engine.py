"""Connecting to the platform database: URLs, redaction, SQLite/PostgreSQL behaviour, schema version.

SQLite runs with foreign keys on and explicit transactions (`BEGIN IMMEDIATE` for writes, so two
applies serialize instead of losing an update); PostgreSQL only through psycopg 3, each session named
(`application_name`) after the command, user, host and process so that a waiting apply can say who holds
its lock. Engines never log bound parameters, and a URL is only ever shown with its password (userinfo,
`?password=`, also when the URL is malformed) hidden; error texts are scrubbed of it as well.
"""

from __future__ import annotations

import getpass
import math
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from plan_apply.database import DEFAULT_LOCK_TIMEOUT
from plan_apply.errors import DatabaseError, SchemaOutOfDate

__all__ = [
    "DEFAULT_URL",
    "LOCK_TIMEOUT_OPTION",
    "CommitOutcomeUnknown",
    "application_name",
    "connect",
    "database_url",
    "describe_failure",
    "engine_for",
    "failure_reason",
    "is_disconnect",
    "is_embedded_default",
    "lock_milliseconds",
    "open_database",
    "redact",
    "require_current_schema",
    "same_database",
    "schema_state",
    "scrub",
    "upgrade_schema",
    "write_transaction",
]

DEFAULT_URL = "sqlite:///nexus.db"
LOCK_TIMEOUT_OPTION = "nexus_lock_timeout"
"""Execution option (seconds, float) every connection of an `engine_for` engine carries: how long an
apply waits for another apply's lock (`--lock-timeout`)."""

_SECRET_PAIR = re.compile(
    r"""(?i)\b([\w.-]*(?:pass|pwd|secret|token)[\w.-]*)\s*=\s*('[^']*'|"[^"]*"|[^&;\s]*)"""
)
_POSTGRES_DRIVERS = frozenset({"postgresql", "postgres", "postgresql+psycopg"})  # all meaning psycopg 3


def database_url(option: str | None) -> str:
    """The URL in force: `--database-url`, else `NEXUS_DATABASE_URL`, else the embedded default."""
    return option or os.environ.get("NEXUS_DATABASE_URL") or DEFAULT_URL


def is_embedded_default(url: str) -> bool:
    return url == DEFAULT_URL


def _userinfo_end(rest: str) -> int:
    """Where the userinfo of `rest` (the URL after `scheme://`) ends (its last `@`), or -1 if it has none.

    Read leniently, so that a password with an unencoded `@`, `/` or `?` is still hidden whole."""
    head = re.split(r"[?#]", rest, maxsplit=1)[0]
    if "@" in head:
        return head.rfind("@")
    if "@" in rest and ":" in head.split("/", 1)[0]:  # `user:pa?ss@host`: the `?` is the password's
        return rest.rfind("@")
    return -1


def _redact_query(text: str) -> str:
    return _SECRET_PAIR.sub(lambda m: f"{m.group(1)}=***", text)


def redact(url: str) -> str:
    """The URL with every password hidden: in userinfo and in query parameters, also when malformed."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return _redact_query(url)
    at = _userinfo_end(rest)
    userinfo, remainder = (rest[:at], rest[at:]) if at >= 0 else ("", rest)
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user + ':***' if colon else userinfo}{_redact_query(remainder)}"


def _secrets(url: str) -> list[str]:
    """Every password in `url`, as written, percent-decoded, as SQLAlchemy would parse it, and cut at the
    delimiters a malformed URL may have split it at (to scrub them all from error texts)."""
    found: list[str] = []
    _scheme, separator, rest = url.partition("://")
    at = _userinfo_end(rest) if separator else -1
    if at >= 0:
        _user, colon, password = rest[:at].partition(":")
        if colon and password:
            found.append(password)
            found.extend(piece for piece in re.split(r"[@/?#:]", password) if len(piece) >= 4)
    found.extend(m.group(2).strip("'\"") for m in _SECRET_PAIR.finditer(url))
    try:
        parsed = make_url(url).password
    except Exception:  # malformed: the lenient reading above is all there is
        parsed = None
    if parsed:
        found.append(str(parsed))
    found = [s for s in found if s]
    return sorted({*found, *(unquote(s) for s in found)}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` with every password of `url` hidden, however it was written into it."""
    for secret in _secrets(url):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
        else:  # a very short password is hidden only where it stands alone, not inside other words
            text = re.sub(rf"(?<![\w]){re.escape(secret)}(?![\w])", "***", text)
    return text


def same_database(recorded: str, url: str) -> bool:
    """Whether a URL recorded with its password hidden (a saved plan's `database`) names the database
    `url` names: `postgresql://` and `postgresql+psycopg://` are the same, a password never counts."""
    try:
        a, b = _normalized(recorded), _normalized(url)
    except DatabaseError:
        return False
    return redact(a.render_as_string(hide_password=False)) == redact(b.render_as_string(hide_password=False))


def _normalized(url: str) -> URL:
    """The parsed URL with `postgresql://` meaning psycopg 3; anything nexus cannot drive is refused."""
    _scheme, separator, rest = url.partition("://")
    if separator and rest[: max(_userinfo_end(rest), 0)].count("@"):
        raise DatabaseError(
            f"the user name or password in {redact(url)} contains '@': percent-encode it (@ is %40, : is %3A, / is %2F)"
        )
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseError(f"not a database URL: {redact(url)}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        if parsed.drivername not in _POSTGRES_DRIVERS:
            raise DatabaseError(
                f"nexus talks to PostgreSQL through psycopg 3 only, not {parsed.drivername!r}: "
                f"use postgresql:// or postgresql+psycopg:// in {redact(url)}"
            )
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return parsed
    raise DatabaseError(
        f"unsupported database {parsed.drivername!r} in {redact(url)}: use sqlite:/// or postgresql://"
    )


def application_name(purpose: str | None = None) -> str:
    """How this process shows in `pg_stat_activity` (and so to an apply waiting for its lock):
    `nexus apply alice@ci-runner-7 pid 4242`, within PostgreSQL's 63 bytes, ASCII only."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (a container without passwd entry): still say which process
        user = "?"
    host = socket.gethostname().split(".", 1)[0] or "?"
    name = f"nexus {purpose + ' ' if purpose else ''}{user}@{host} pid {os.getpid()}"
    name = name.encode("ascii", "replace").decode()
    if len(name) > 63:
        tail = f" pid {os.getpid()}"
        name = name[: 63 - len(tail)] + tail
    return name


_FOREVER_MS = 2**31 - 1  # the largest lock wait either database takes (about 24 days)


def lock_milliseconds(seconds: float) -> int | None:
    """A lock timeout in whole milliseconds (at least 1 unless it is 0), or None for "no limit"
    (infinite, not a number, or beyond what the databases accept)."""
    if not math.isfinite(seconds) or seconds * 1000 >= _FOREVER_MS:
        return None
    return 0 if seconds <= 0 else max(1, round(seconds * 1000))


def _sqlite_events(engine: Engine, lock_timeout: float) -> None:
    busy = lock_milliseconds(lock_timeout)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite: transactions are ours (BEGIN below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_FOREVER_MS if busy is None else busy}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = "IMMEDIATE" if connection.get_execution_options().get("nexus_write") else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")


def engine_for(url: str, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, *, purpose: str | None = None) -> Engine:
    """An engine for `url` that hides bound parameters and behaves the same on both backends.

    `lock_timeout` (seconds) is how long a write waits for another apply: SQLite's busy timeout, and on
    PostgreSQL the `lock_timeout` an apply sets before taking an organization's advisory lock.
    `purpose` (e.g. "apply") goes into PostgreSQL's `application_name`, so lock holders can be named."""
    parsed = _normalized(url)
    kwargs: dict[str, Any] = {
        "hide_parameters": True,
        "execution_options": {LOCK_TIMEOUT_OPTION: float(lock_timeout)},
    }
    if parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 10}
        if "application_name" not in parsed.query:  # the URL's own name wins: someone chose it
            kwargs["connect_args"]["application_name"] = application_name(purpose)
        kwargs["pool_pre_ping"] = False
    else:
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            parent = Path(database).resolve().parent
            if not parent.is_dir():
                raise DatabaseError(f"cannot open {redact(url)}: directory {parent} does not exist")
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (sa.exc.ArgumentError, ImportError) as exc:  # e.g. a query argument the dialect refuses
        raise DatabaseError(describe_failure(exc, url)) from None
    if parsed.get_backend_name() == "sqlite":
        _sqlite_events(engine, lock_timeout)
    return engine


@contextmanager
def open_database(
    url_option: str | None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, *, purpose: str | None = None
) -> Iterator[tuple[Engine, str]]:
    """An engine on the database in force (`--database-url`, NEXUS_DATABASE_URL, the embedded default),
    with the current schema: the embedded default is created or upgraded on first use, any other database
    must be upgraded with `nexus db upgrade`. Connection failures become one DatabaseError line."""
    url = database_url(url_option)
    engine = engine_for(url, lock_timeout, purpose=purpose)
    try:
        with engine.connect() as connection:
            if is_embedded_default(url):
                upgrade_schema(connection, url)
            else:
                require_current_schema(connection, url)
        yield engine, url
    except sa.exc.DBAPIError as exc:
        raise DatabaseError(describe_failure(exc, url)) from None
    finally:
        engine.dispose()


def describe_failure(exc: BaseException, url: str) -> str:
    """One line for a database failure: what failed and where, never a password or parameters."""
    return f"cannot use database {redact(url)}: {failure_reason(exc, url)}"


def failure_reason(exc: BaseException, url: str) -> str:
    """The driver's own first line for `exc` (no SQL, no parameters), scrubbed of `url`'s passwords."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    text = text.splitlines()[0].strip() if text else type(original).__name__
    return scrub(text, url)


def is_disconnect(exc: BaseException) -> bool:
    """Whether `exc` means the connection itself is gone (server restarted, backend terminated, network)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    state = str(getattr(getattr(exc, "orig", None), "sqlstate", "") or "")
    return state.startswith("08") or state in ("57P01", "57P02", "57P03")


@contextmanager
def connect(engine: Engine, url: str) -> Iterator[Connection]:
    """A connection, with connection failures turned into one clear DatabaseError."""
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise DatabaseError(describe_failure(exc, url)) from None
    except sa.exc.ArgumentError as exc:
        raise DatabaseError(describe_failure(exc, url)) from None
    try:
        yield connection
    finally:
        connection.close()


class CommitOutcomeUnknown(Exception):
    """The connection was lost during COMMIT: the transaction may or may not have been committed.
    Its `__cause__` is the driver's error; nobody may retry blindly (re-plan instead)."""


@contextmanager
def write_transaction(connection: Connection) -> Iterator[Connection]:
    """A transaction that takes SQLite's write lock at BEGIN (no lost updates between processes).

    Committed on leaving the block; a connection lost during that COMMIT is `CommitOutcomeUnknown`."""
    writing = connection.execution_options(nexus_write=True)
    with writing.begin() as transaction:
        yield writing
        try:
            transaction.commit()
        except sa.exc.DBAPIError as exc:
            if is_disconnect(exc):
                raise CommitOutcomeUnknown(str(exc.orig)) from exc
            raise


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def schema_state(connection: Connection) -> tuple[str | None, str]:
    """(the database's alembic revision or None, the newest revision this nexus knows)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    current = MigrationContext.configure(connection).get_current_revision()
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    return current, str(head)


def _is_known(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    try:
        return ScriptDirectory.from_config(_alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic's "can't locate revision": a revision from a newer nexus
        return False


def _newer(url: str, current: str, head: str) -> SchemaOutOfDate:
    where = f"database {redact(url)}" if url else "the database"
    return SchemaOutOfDate(
        f"{where} is at schema revision {current}, which this nexus does not know "
        f"(its newest is {head}): it was upgraded by a newer nexus; use that version. Nothing was changed"
    )


def upgrade_schema(connection: Connection, url: str = "") -> tuple[str | None, str]:
    """Create or upgrade the schema to the newest revision; returns (before, after). A database at a
    revision this nexus does not know (a newer one) is refused, never downgraded."""
    from alembic import command

    before, head = schema_state(connection)
    if before is not None and before != head and not _is_known(before):
        connection.rollback()
        raise _newer(url, before, head)
    if before != head:
        command.upgrade(_alembic_config(connection), "head")
        connection.commit()
    return before, head


def require_current_schema(connection: Connection, url: str) -> None:
    """Refuse a database whose schema is missing, behind or ahead of this nexus (naming both revisions)."""
    current, head = schema_state(connection)
    connection.rollback()
    if current == head:
        return
    if current is None:
        raise SchemaOutOfDate(f"database {redact(url)} has no nexus schema: run `nexus db upgrade` first")
    if not _is_known(current):
        raise _newer(url, current, head)
    raise SchemaOutOfDate(
        f"database {redact(url)} is at schema revision {current}, this nexus needs {head}: "
        "run `nexus db upgrade`"
    )
