"""Loading laws, property-tested: generated valid documents load without problems; v1beta1 → v1 is
lossless; any text at all gives problems, never an exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexus_config import load_configuration
from nexus_config.models import DocumentV1, DocumentV1beta1
from nexus_config.versions import downgrade, upgrade
from nexus_config.yaml_reader import read_documents

from .strategies import organization

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(document=organization())
def test_generated_valid_documents_load_without_problems(tmp_path: Path, document: dict[str, Any]) -> None:
    folder = tmp_path / "valid"
    folder.mkdir(exist_ok=True)
    (folder / "org.yaml").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    result = load_configuration([folder])
    assert result.ok, [p.as_text() for p in result.problems]
    assert list(result.state.organizations) == ["generated-org"]


@SETTINGS
@given(document=organization())
def test_v1beta1_to_v1_is_lossless(document: dict[str, Any]) -> None:
    v1 = DocumentV1.model_validate(document)
    beta = downgrade(v1)
    assert isinstance(beta, DocumentV1beta1)
    again = upgrade(DocumentV1beta1.model_validate(beta.model_dump(exclude_unset=True)))
    assert again.document.model_dump(exclude_unset=True) == _stage_grouped(v1.model_dump(exclude_unset=True))
    assert again.loose_capacity == ()


def _stage_grouped(dumped: dict[str, Any]) -> dict[str, Any]:
    """v1beta1 groups steps by stage, so a round trip lists them stage by stage (order within kept)."""
    order = {"application": 0, "onboarding": 1, "offboarding": 2}
    if "steps" in dumped:
        dumped["steps"] = sorted(dumped["steps"], key=lambda step: order[step["stage"]])
    return dumped


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400))
def test_any_text_gives_problems_never_an_exception(text: str) -> None:
    documents, problems = read_documents("fuzz.yaml", text)
    assert all(p.line >= 1 for p in problems)
    assert all(d.file == "fuzz.yaml" for d in documents)


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.sampled_from([*"[]{}:,-?&*!|>'\"#%@` \n\tab01.~", "---", "...", "  "]), max_size=80)
)
def test_yaml_punctuation_soup_gives_problems_never_an_exception(pieces: list[str]) -> None:
    _, problems = read_documents("soup.yaml", "".join(pieces))
    assert all(p.line >= 1 for p in problems)
