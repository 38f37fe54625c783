"""Turning a matched pair into a `Change`: which action it is, what it writes, and how people call it.

`before`/`after` hold only the fields that change (every field for create and delete); the
explanation (`notes`, `risk`, `cause`) comes from the guards' verdict and never drives apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from plan_apply.guards import Verdict
from plan_apply.matching import Pair
from plan_apply.plan import Action, Change
from plan_apply.records import Record

__all__ = ["action_of", "change_of", "created", "removed", "title_of"]


def action_of(pair: Pair) -> Action:
    """What applying the pair does to its row: create it, rename it, adopt it, or update it."""
    if pair.actual is None:
        return Action.CREATE
    if pair.renamed:
        return Action.RENAME
    if not pair.actual.managed:
        return Action.ADOPT
    return Action.UPDATE


def created(desired: Record, title: str) -> Change:
    """A new row with every field of the desired record."""
    return Change(desired.address, desired.type, Action.CREATE, {}, dict(desired.fields), title=title)


def _renamed(desired: Record, old: Record, changed: Sequence[str], title: str) -> Change:
    return Change(
        desired.address,
        desired.type,
        Action.RENAME,
        {"key": old.key, **{n: old.fields.get(n) for n in changed}},
        {"key": desired.key, **{n: desired.fields[n] for n in changed}},
        notes=(f"renamed from {old.address}; the row (and its history) is kept",),
        title=title,
    )


def _adopted(desired: Record, actual: Record, changed: Sequence[str], title: str) -> Change:
    return Change(
        desired.address,
        desired.type,
        Action.ADOPT,
        {n: actual.fields.get(n) for n in changed},
        {n: desired.fields[n] for n in changed},
        notes=("adopts an item created outside nexus: from now on the configuration owns it",),
        title=title,
    )


def _updated(
    desired: Record, actual: Record, changed: Sequence[str], verdict: Verdict, title: str
) -> Change | None:
    if not changed and not actual.archived:
        return None
    before = {n: actual.fields.get(n) for n in changed}
    after = {n: desired.fields[n] for n in changed}
    notes: tuple[str, ...] = ()
    if actual.archived:
        before["archived"], after["archived"] = True, False
        notes = ("restores an archived item",)
    return Change(
        desired.address,
        desired.type,
        Action.UPDATE,
        before,
        after,
        cause="drift" if verdict.drift else "config",
        risk="review" if verdict.review else "low",
        notes=notes + verdict.notes,
        title=title,
    )


def change_of(
    action: Action, desired: Record, actual: Record, changed: Sequence[str], verdict: Verdict, title: str
) -> Change | None:
    """The change that makes a matched row match its desired record, or None when there is none
    (nothing differs, or the guards withhold it)."""
    if verdict.withheld:
        return None
    match action:
        case Action.RENAME:
            return _renamed(desired, actual, changed, title)
        case Action.ADOPT:
            return _adopted(desired, actual, changed, title)
        case Action.UPDATE:
            return _updated(desired, actual, changed, verdict, title)
        case Action.CREATE | Action.DELETE | Action.ARCHIVE:
            raise AssertionError(f"a matched row is never a {action.value}")


def removed(actual: Record, reason: str | None, title: str) -> Change:
    """A row nothing desired claims: archived when live data depends on it (`reason`), else deleted."""
    return Change(
        actual.address,
        actual.type,
        Action.ARCHIVE if reason else Action.DELETE,
        dict(actual.fields),
        {},
        risk="destructive",
        notes=(reason,) if reason else (),
        title=title,
    )


def _name(address: str, desired: Mapping[str, Record], actual: Mapping[str, Record]) -> str:
    record = desired.get(address) or actual.get(address)
    if record is None:
        return address.rsplit("/", 1)[-1]
    name = record.fields.get("name")
    return str(name) if name else record.key or address


def title_of(address: str, type_: str, desired: Mapping[str, Record], actual: Mapping[str, Record]) -> str:
    """The item as a coordinator would say it: "Emergency Medicine › Spring nursing block"."""
    if type_ == "organization":
        return address
    if type_ == "profile":
        return "Profile"
    name = _name(address, desired, actual)
    if type_ == "capacity":
        service = address.split("/capacity/", 1)[0]
        return f"{_name(service, desired, actual)} › {name}"
    if type_ == "staff":
        key = address.rsplit("/", 1)[-1]
        return f"{name} ({key})" if name != key else name
    return name
