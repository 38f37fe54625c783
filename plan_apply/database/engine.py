"""Connecting to the platform database: URLs, redaction, the schema version, and which backend is asked.

What differs between backends (drivers, connect and begin hooks, locks, failure codes) is the dialect's
(`plan_apply.database.dialects`); this module only asks it. Engines never log bound parameters, and a
URL is only ever shown with its password (userinfo, `?password=`, also when the URL is malformed)
hidden; error texts are scrubbed of it as well. Only `apply` and `db upgrade` create a database (the
embedded default on first use); every other command opens it so that it cannot be created.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from plan_apply.database import DEFAULT_LOCK_TIMEOUT
from plan_apply.database.dialects import Dialect, dialect_for_url, dialect_of
from plan_apply.database.dialects.sessions import application_name, lock_milliseconds
from plan_apply.errors import DatabaseError, SchemaOutOfDate

__all__ = [
    "DEFAULT_URL",
    "ENVIRONMENT_VARIABLE",
    "HEAD_REVISION",
    "LOCK_TIMEOUT_OPTION",
    "REVISIONS",
    "CommitOutcomeUnknown",
    "application_name",
    "database_url",
    "describe_failure",
    "dialect_for",
    "engine_for",
    "failure_reason",
    "is_embedded_default",
    "lock_milliseconds",
    "open_database",
    "parallel_applies",
    "planning_workers",
    "redact",
    "require_current_schema",
    "same_database",
    "schema_state",
    "scrub",
    "upgrade_schema",
    "write_transaction",
]

DEFAULT_URL = "sqlite:///nexus.db"
ENVIRONMENT_VARIABLE = "NEXUS_DATABASE_URL"
_MEMORY_URL = "sqlite://"  # what `plan` compares with while the embedded default does not exist yet
_CREATES = frozenset({"apply", "db upgrade"})
"""The commands (`purpose`) that create the embedded default on first use; all others only read it."""
LOCK_TIMEOUT_OPTION = "nexus_lock_timeout"
"""Execution option (seconds, float) every connection of an `engine_for` engine carries: how long an
apply waits for another apply's lock (`--lock-timeout`)."""

_SECRET_PAIR = re.compile(
    r"""(?i)\b([\w.-]*(?:pass|pwd|secret|token)[\w.-]*)\s*=\s*('[^']*'|"[^"]*"|[^&;\s]*)"""
)


def database_url(option: str | None) -> str:
    """The URL in force: the one given, else `NEXUS_DATABASE_URL`, else the embedded default. An empty
    value (a CI secret that is not set expands to one) is an error, never the embedded default."""
    if option is not None:
        if not option.strip():
            raise DatabaseError("the database URL given is empty")
        return option
    variable = os.environ.get(ENVIRONMENT_VARIABLE)
    if variable is None:
        return DEFAULT_URL
    if not variable.strip():
        raise DatabaseError(
            f"{ENVIRONMENT_VARIABLE} is set but empty (a secret that is not defined?): set it to the "
            f"database's URL, or unset it to use the embedded {DEFAULT_URL}"
        )
    return variable


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
    """The parsed URL with the driver its dialect uses; anything nexus cannot drive is refused."""
    return _checked(url)[1]


def _checked(url: str) -> tuple[Dialect, URL]:
    """The dialect of `url` and the URL as it drives it; a backend nexus does not know is refused by name."""
    _scheme, separator, rest = url.partition("://")
    if separator and rest[: max(_userinfo_end(rest), 0)].count("@"):
        raise DatabaseError(
            f"the user name or password in {redact(url)} contains '@': percent-encode it (@ is %40, : is %3A, / is %2F)"
        )
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseError(f"not a database URL: {redact(url)}") from None
    dialect = dialect_for_url(parsed, redact(url))
    return dialect, dialect.checked_url(parsed, redact(url))


def dialect_for(url: str) -> Dialect:
    """The dialect that drives `url` (a DatabaseError naming any backend nexus does not know)."""
    return _checked(url)[0]


def parallel_applies(url: str, requested: int) -> int:
    """How many organizations may be applied at once on `url`'s database when `requested` were asked for."""
    return _checked(url)[0].parallel_applies(requested)


def planning_workers(url: str, requested: int) -> int:
    """How many worker processes may plan against `url` (each opens its own connection)."""
    dialect, parsed = _checked(url)
    return dialect.planning_workers(parsed, requested)


def engine_for(
    url: str, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, *, purpose: str | None = None, create: bool = True
) -> Engine:
    """An engine for `url` that hides bound parameters and behaves the same on every backend.

    `lock_timeout` (seconds) is how long a write waits for another apply (the dialect decides how).
    `purpose` (e.g. "apply") names the sessions where the database shows them, so lock holders can be
    named. With `create` false, connecting never creates the database (a missing SQLite file fails)."""
    dialect, parsed = _checked(url)
    if not create:
        parsed = dialect.never_create(parsed)
    kwargs: dict[str, Any] = {
        "hide_parameters": True,
        "execution_options": {LOCK_TIMEOUT_OPTION: float(lock_timeout)},
        **dialect.engine_options(parsed, purpose),
    }
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (sa.exc.ArgumentError, ImportError) as exc:  # e.g. a query argument the dialect refuses
        raise DatabaseError(describe_failure(exc, url)) from None
    dialect.prepare(engine, lock_timeout)
    return engine


@contextmanager
def open_database(
    url_option: str | None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, *, purpose: str | None = None
) -> Iterator[tuple[Engine, str]]:
    """An engine on the database in force (see `database_url`) with the current schema, and its URL.

    The embedded default is created by `apply` on first use and upgraded by any command; `plan` compares
    with an empty database while it does not exist, and every other command refuses a database that does
    not exist, naming it. Any other database must be created and upgraded with `nexus db upgrade`.
    Connection failures become one DatabaseError line."""
    url = database_url(url_option)
    dialect, parsed = _checked(url)
    embedded = is_embedded_default(url)
    creating = embedded and purpose in _CREATES
    if not creating and not dialect.exists(parsed):
        if not (embedded and purpose == "plan"):
            raise SchemaOutOfDate(
                f"database {redact(url)} has no nexus schema: {dialect.where(parsed)} does not exist; "
                "run `nexus db upgrade` first"
            )
        engine = engine_for(_MEMORY_URL, lock_timeout, purpose=purpose)
    else:
        engine = engine_for(url, lock_timeout, purpose=purpose, create=creating)
    try:
        with engine.connect() as connection:
            if embedded:
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


@dataclass(frozen=True, slots=True)
class FailureDescriber:
    """`describe_failure` on `url` for a database failure, the exception's own text for anything else:
    what apply says of an organization that failed, in this process or a worker (it pickles)."""

    url: str

    def __call__(self, exc: BaseException) -> str:
        return describe_failure(exc, self.url) if isinstance(exc, sa.exc.SQLAlchemyError) else str(exc)


def failure_reason(exc: BaseException, url: str) -> str:
    """The driver's own first line for `exc` (no SQL, no parameters), scrubbed of `url`'s passwords."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    text = text.splitlines()[0].strip() if text else type(original).__name__
    return scrub(text, url)


class CommitOutcomeUnknown(Exception):
    """The connection was lost during COMMIT: the transaction may or may not have been committed.
    Its `__cause__` is the driver's error; nobody may retry blindly (re-plan instead)."""


@contextmanager
def write_transaction(connection: Connection) -> Iterator[Connection]:
    """A write transaction: it begins as its dialect begins a write (SQLite takes its write lock at once).

    Committed on leaving the block; a connection lost during that COMMIT is `CommitOutcomeUnknown`. A
    COMMIT that failed otherwise may leave its transaction open (SQLite's, when a reader kept the file
    past the lock timeout): it is rolled back, never handed to the next transaction."""
    writing = connection.execution_options(nexus_write=True)
    with writing.begin() as transaction:
        yield writing
        try:
            transaction.commit()
        except sa.exc.DBAPIError as exc:
            if dialect_of(writing).is_disconnect(exc):
                raise CommitOutcomeUnknown(str(exc.orig)) from exc
            _roll_back_what_is_left(writing, exc)
            raise


def _roll_back_what_is_left(connection: Connection, failure: BaseException) -> None:
    """Roll back the driver's transaction a failed COMMIT left open (SQLAlchemy counts it ended); a
    connection that cannot is discarded (closing it rolls back)."""
    try:
        connection.connection.rollback()
    except Exception:
        connection.invalidate(failure)


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008")
"""Every schema revision of `plan_apply/migrations/versions`, oldest first (a test keeps them equal):
comparing a database with them needs neither alembic nor a scan of the migrations folder."""
HEAD_REVISION = REVISIONS[-1]
"""The newest schema revision this nexus knows: what every command but `db upgrade` requires."""


def schema_state(connection: Connection) -> tuple[str | None, str]:
    """(the database's alembic revision or None, the newest revision this nexus knows): one statement;
    alembic is imported only when they differ (`upgrade_schema`)."""
    return dialect_of(connection).schema_revision(connection), HEAD_REVISION


def _is_known(revision: str) -> bool:
    return revision in REVISIONS


def _newer(url: str, current: str, head: str) -> SchemaOutOfDate:
    where = f"database {redact(url)}" if url else "the database"
    return SchemaOutOfDate(
        f"{where} is at schema revision {current}, which this nexus does not know "
        f"(its newest is {head}): it was upgraded by a newer nexus; use that version. Nothing was changed"
    )


def upgrade_schema(connection: Connection, url: str = "") -> tuple[str | None, str]:
    """Create or upgrade the schema to the newest revision; returns (before, after). A database at a
    revision this nexus does not know (a newer one) is refused, never downgraded."""
    before, head = schema_state(connection)
    if before is not None and before != head and not _is_known(before):
        connection.rollback()
        raise _newer(url, before, head)
    if before != head:
        from alembic import command  # only when there is something to migrate: alembic costs ~0.1 s

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
