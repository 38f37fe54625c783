"""The order of execution, as data: the registry's types in foreign-key order (`records.TYPES`), read
forward to rename, adopt, update and create, and backward to archive and delete.

One home for it: the diff pairs records, lists removals and emits the plan in this order, and apply
executes a plan in the order it is written.
"""

from __future__ import annotations

from collections.abc import Iterable

from plan_apply.plan import Action, Change
from plan_apply.records import TYPES, Record

__all__ = ["FORWARD_ACTIONS", "REMOVALS", "backward", "execution_order", "forward"]

_RANK = {name: i for i, name in enumerate(TYPES)}

FORWARD_ACTIONS = (Action.RENAME, Action.ADOPT, Action.UPDATE, Action.CREATE)
"""Within one type, going forward: a row is renamed or adopted before its fields change; new rows last."""
REMOVALS = (Action.ARCHIVE, Action.DELETE)
"""Going backward, children before parents; archives and deletes of one type go by address."""
_FORWARD_RANK = {action: i for i, action in enumerate(FORWARD_ACTIONS)}


def forward(records: Iterable[Record]) -> list[Record]:
    """Parents before children (types forward), then by address."""
    return sorted(records, key=lambda r: (_RANK[r.type], r.address))


def backward(records: Iterable[Record]) -> list[Record]:
    """Children before parents (types backward), then by address."""
    return sorted(records, key=lambda r: (-_RANK[r.type], r.address))


def _position(change: Change) -> tuple[int, int, int, str]:
    if change.action in REMOVALS:
        return (1, -_RANK[change.type], 0, change.address)
    return (0, _RANK[change.type], _FORWARD_RANK[change.action], change.address)


def execution_order(changes: Iterable[Change]) -> tuple[Change, ...]:
    """The changes as apply executes them: everything forward first, then the removals backward."""
    return tuple(sorted(changes, key=_position))
