"""Laws of loading, property-tested with hypothesis.

- Generated valid v1 organizations (every section, parents, forms, agreements, windows inside their
  agreements) load with no problem, also when split over several files.
- v1beta1 → v1 → v1beta1 gives back the same document: the preview format converts losslessly.
- YAML written by a small emitter of our own (not PyYAML, not ruamel) reads back as the same data.
- No text, bytes or mangled document ever makes loading raise: only located problems come out.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nexus_config import load_configuration
from nexus_config.models import DocumentV1, DocumentV1beta1
from nexus_config.versions import downgrade, upgrade
from nexus_config.yaml_reader import read_documents
from plan_apply import batching
from plan_apply.batching import check_tree

from .strategies import (
    family,
    organization,
)

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- a tiny YAML emitter: block style, plain scalars where YAML 1.2 keeps them strings, else "..." ---------

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]*\Z")
_TRAPS = re.compile(
    r"([0-9]+(:[0-9]+)+|0x[0-9a-f]+|0o[0-7]+|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]+(_[0-9]+)+)\Z"
)
"""Plain scalars YAML 1.1 reads as numbers or dates and YAML 1.2 (and nexus) as strings."""
_RESERVED = {"true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL"}
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0"}


def _printable(c: str) -> bool:
    """YAML's c-printable, minus the characters libyaml reads as line breaks (NEL, LS, PS) and the BOM."""
    o = ord(c)
    return (
        (0x20 <= o <= 0x7E)
        or (0xA0 <= o <= 0xD7FF and o not in (0x2028, 0x2029))
        or (0xE000 <= o <= 0xFFFD and o != 0xFEFF)
        or o >= 0x10000
    )


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (".inf" if value > 0 else "-.inf") if math.isinf(value) else repr(value)
    if (_PLAIN.match(value) and value not in _RESERVED and not value.endswith(" ")) or _TRAPS.match(value):
        return str(value)  # NO, off, yes, 1:20, 0x10, 2026-1-5... stay strings, written plain
    body = "".join(
        _ESCAPES.get(c)
        or (
            c
            if _printable(c)
            else f"\\x{ord(c):02x}"
            if ord(c) <= 0xFF
            else f"\\u{ord(c):04x}"
            if ord(c) <= 0xFFFF
            else f"\\U{ord(c):08x}"
        )
        for c in value
    )
    return f'"{body}"'


def emit(value: Any, indent: int = 0) -> str:
    """Block-style YAML for JSON-like data (dicts with string keys, lists, scalars)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{scalar(key)}:\n{emit(item, indent + 2)}")
            else:
                out.append(f"{pad}{scalar(key)}: {emit(item).strip()}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        out = []
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = emit(item, indent + 2)
                out.append(f"{pad}- {nested[indent + 2 :]}")
            else:
                out.append(f"{pad}- {emit(item).strip()}\n")
        return "".join(out)
    return pad + scalar(value) + "\n"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
    | st.sampled_from(
        ["NO", "off", "on", "yes", "y", "~x", "1:20", "0777", "0o17", "0x10", "2026-02-30", "1_000"]
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, with -0.0 == 0.0 and 1 == 1.0 distinguished (a float must stay a float)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@settings(max_examples=120, deadline=None)
@given(data=st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=5))
def test_yaml_written_by_our_emitter_reads_back_as_the_same_data(data: dict[str, Any]) -> None:
    text = emit(data)
    documents, problems = read_documents("emitted.yaml", text)
    assert not problems, (text, problems)
    assert len(documents) == 1 and _same(documents[0].data, data), text


def test_the_emitter_writes_yaml_1_1_words_plain() -> None:
    """The round trip above really exercises plain scalars: `NO` and `off` are written unquoted."""
    assert emit(
        {"country": "NO", "submit": "off", "t": "1:20", "n": "0x10", "name": "true", "z": "0777"}
    ) == ('country: NO\nsubmit: off\nt: 1:20\nn: 0x10\nname: "true"\nz: "0777"\n')


# --- valid organizations ---------------------------------------------------------------------------------


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@FAST
@given(documents=family())
def test_generated_valid_organizations_load_without_problems(
    tmp_path: Path, documents: list[dict[str, Any]]
) -> None:
    tree = _write(tmp_path / "tree", {f"{d['metadata']['slug']}.yaml": emit(d) for d in documents})
    result = load_configuration([tree])
    assert not result.problems, [p.as_text() for p in result.problems]
    assert list(result.state.organizations) == [d["metadata"]["slug"] for d in documents]
    for document in documents:
        loaded = result.state.organizations[document["metadata"]["slug"]]
        assert [s.key for s in loaded.services or ()] == [s["key"] for s in document["services"]]
        assert loaded.profile is not None and loaded.profile.name == document["profile"]["name"]


SECTIONS = ("staff", "steps", "schools", "agreements", "services")


@FAST
@given(document=organization("lakeview"), data=st.data())
def test_an_organization_split_over_files_loads_as_if_it_were_one(
    tmp_path: Path, document: dict[str, Any], data: st.DataObject
) -> None:
    head = {k: document[k] for k in ("apiVersion", "kind", "metadata")}
    parts: list[dict[str, Any]] = [{**head, "profile": document["profile"]}, dict(head), dict(head)]
    for section in SECTIONS:
        items = document[section]
        cut = data.draw(st.integers(0, len(items)))
        first, second = data.draw(st.sampled_from([(0, 1), (1, 2), (0, 2)]))
        parts[first][section] = items[:cut]
        parts[second][section] = items[cut:] if second != first else items
    whole = load_configuration([_write(tmp_path / "whole", {"org.yaml": emit(document)})])
    split = load_configuration(
        [_write(tmp_path / "split", {f"part{i}.yaml": emit(p) for i, p in enumerate(parts)})]
    )
    assert not split.problems, [p.as_text() for p in split.problems]
    one, many = whole.state.organizations["lakeview"], split.state.organizations["lakeview"]
    for section in ("profile", "parent", "labels", *SECTIONS):
        assert getattr(many, section) == getattr(one, section), section


# --- v1beta1 → v1 → v1beta1 ------------------------------------------------------------------------------


@st.composite
def beta_document(draw: st.DrawFn, interleaved: bool = False) -> dict[str, Any]:
    """A valid v1beta1 document whose capacity windows all name services of the same document.

    A stage is listed only with at least one step, and `capacity:` only beside at least one service:
    `onboarding: []` and a services-less `capacity: []` say nothing v1 can carry in one document.
    """
    v1 = draw(organization("beta"))
    stages: dict[str, list[dict[str, Any]]] = {}
    for step in v1["steps"]:
        stages.setdefault(step["stage"], []).append({k: v for k, v in step.items() if k != "stage"})
    capacity = [
        {
            **{k: v for k, v in w.items() if k != "workflow"},
            "workflow_type": w["workflow"],
            "service": s["key"],
        }
        for s in v1["services"]
        for w in s["capacity"]
    ]
    if interleaved:
        capacity = draw(st.permutations(capacity))
    document = {k: v for k, v in v1.items() if k not in ("steps", "services", "apiVersion")}
    document["apiVersion"] = "nexus/v1beta1"
    if draw(st.booleans()):
        document["steps"] = stages
    document["services"] = [{k: v for k, v in s.items() if k != "capacity"} for s in v1["services"]]
    if v1["services"] and draw(st.booleans()):
        document["capacity"] = capacity
    return document


@FAST
@given(document=beta_document())
def test_v1beta1_to_v1_and_back_gives_the_same_document(document: dict[str, Any]) -> None:
    beta = DocumentV1beta1.model_validate(document)
    upgraded = upgrade(beta)
    assert upgraded.loose_capacity == ()
    assert isinstance(upgraded.document, DocumentV1)
    again = downgrade(upgraded.document)
    assert again.model_dump() == beta.model_dump()
    assert again.model_dump(exclude_unset=True) == beta.model_dump(exclude_unset=True)


@FAST
@given(document=beta_document(interleaved=True))
def test_v1beta1_capacity_keeps_its_order_within_each_service(document: dict[str, Any]) -> None:
    """v1 nests windows under their service, so only the interleaving across services is not kept."""
    beta = DocumentV1beta1.model_validate(document)
    again = downgrade(upgrade(beta).document)
    service_order = [s.key for s in beta.services or ()]
    regrouped = sorted(beta.model_dump()["capacity"] or [], key=lambda w: service_order.index(w["service"]))
    assert (again.model_dump()["capacity"] or []) == regrouped


@FAST
@given(document=organization("lakeview"))
def test_v1_to_v1beta1_and_back_keeps_every_step_and_window(document: dict[str, Any]) -> None:
    v1 = DocumentV1.model_validate(document)
    again = upgrade(downgrade(v1)).document
    order = {"application": 0, "onboarding": 1, "offboarding": 2}
    assert again.steps == sorted(v1.steps or [], key=lambda s: order[s.stage])
    assert again.services == v1.services


# --- fuzz: problems, never exceptions ----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_gives_located_problems_never_an_exception(text: str) -> None:
    _, problems = read_documents("fuzz.yaml", text)
    assert all(p.line >= 1 and p.column >= 1 and p.file == "fuzz.yaml" for p in problems)


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from([*"[]{}:,-?&*!|>'\"#%@` \n\t\r\\ab01.~\x85\u2028\ufeff", "---", "...", "  ", "<<"]),
        max_size=60,
    )
)
def test_yaml_punctuation_soup_gives_located_problems_never_an_exception(pieces: list[str]) -> None:
    _, problems = read_documents("soup.yaml", "".join(pieces))
    assert all(p.line >= 1 and p.column >= 1 for p in problems)


@FAST
@given(data=st.binary(max_size=300))
def test_any_bytes_in_a_file_give_problems_never_an_exception(tmp_path: Path, data: bytes) -> None:
    folder = tmp_path / "bytes"
    folder.mkdir(exist_ok=True)
    (folder / "x.yaml").write_bytes(data)
    result = load_configuration([folder])
    assert all(p.line >= 1 and p.column >= 1 for p in result.problems), [p.as_text() for p in result.problems]


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5000),
    st.floats(allow_nan=True),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at] if at else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*at, index))
    return found


@FAST
@given(document=organization("lakeview"), data=st.data())
def test_a_valid_document_with_one_value_replaced_by_junk_gives_located_problems(
    tmp_path: Path, document: dict[str, Any], data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(_paths(document)))
    junk = data.draw(_JUNK)
    assume(not (isinstance(junk, float) and math.isnan(junk)))
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = junk
    folder = _write(tmp_path / "mangled", {"org.yaml": emit(document)})
    result = load_configuration([folder])
    assert all(p.line >= 1 and p.column >= 1 and p.file.endswith("org.yaml") for p in result.problems), [
        p.as_text() for p in result.problems
    ]


@FAST
@given(families=st.lists(family(), min_size=1, max_size=3), data=st.data())
def test_validating_in_batches_reports_what_loading_at_once_reports(
    tmp_path: Path, families: list[list[dict[str, Any]]], data: st.DataObject
) -> None:
    """The batch law behind `validate` (and plan): any tree, any batch size, junk anywhere, the same
    problems, located the same, as one load of the whole tree."""
    files: dict[str, str] = {}
    for number, documents in enumerate(families):
        for document in documents:
            slug = f"{document['metadata']['slug']}-{number}"
            document["metadata"]["slug"] = slug
            if document["metadata"].get("parent"):
                document["metadata"]["parent"] = f"{document['metadata']['parent']}-{number}"
            if data.draw(st.booleans()):
                path = data.draw(st.sampled_from([p for p in _paths(document) if p[0] != "metadata"]))
                target = document
                for step in path[:-1]:
                    target = target[step]
                target[path[-1]] = data.draw(
                    _JUNK.filter(lambda j: not (isinstance(j, float) and math.isnan(j)))
                )
            files[f"{slug}.yaml"] = emit(document)
    tree = _write(tmp_path / "tree", files)
    at_once = load_configuration([tree])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batching, "BATCH_ORGANIZATIONS", data.draw(st.integers(1, 4)))
        checked = check_tree([tree])
    assert [p.as_text() for p in checked.problems] == [p.as_text() for p in at_once.problems]
    assert checked.ok == at_once.ok
