"""The CI examples in examples/ci are real: valid against their platforms' published schemas, their shell
passes shellcheck, and the GitHub workflow's own steps plan, comment and apply against PostgreSQL.

Health systems copy these files into the job that holds the production database secret, so every
promise the README makes of them is checked here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from .support.harness import postgres_database

ROOT = Path(__file__).resolve().parents[1]
GITHUB = ROOT / "examples" / "ci" / "github-actions.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab-ci.yml"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    """A checker installed beside this Python (the test extra), else on PATH, else the test skips."""
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def _workflow() -> dict[str, Any]:
    # PyYAML reads the key `on` as True (YAML 1.1): the tests ask for it by that name.
    return yaml.safe_load(GITHUB.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _gitlab() -> dict[str, Any]:
    return yaml.safe_load(GITLAB.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _step(job: str, name: str) -> dict[str, Any]:
    steps = _workflow()["jobs"][job]["steps"]
    (step,) = [s for s in steps if s.get("name") == name]
    return step  # type: ignore[no-any-return]


def _run_blocks() -> list[tuple[str, str]]:
    """(job/step, script) of every `run:` step of the GitHub workflow."""
    return [
        (f"{job_name}/{step.get('name', step.get('uses'))}", step["run"])
        for job_name, job in _workflow()["jobs"].items()
        for step in job["steps"]
        if "run" in step
    ]


def _gitlab_scripts() -> list[tuple[str, str]]:
    """(job, script) of every GitLab job, its items joined as the runner runs them."""
    config = _gitlab()
    before = config.get("default", {}).get("before_script", [])
    return [
        (name, "\n".join([*before, *job["script"]]))
        for name, job in config.items()
        if isinstance(job, dict) and "script" in job
    ]


# --- schemas and shellcheck ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "schema"),
    [(GITHUB, "vendor.github-workflows"), (GITLAB, "vendor.gitlab-ci")],
    ids=["github", "gitlab"],
)
def test_the_ci_example_is_valid_against_its_platforms_published_schema(path: Path, schema: str) -> None:
    checker = _tool("check-jsonschema")
    done = subprocess.run(
        [checker, "--builtin-schema", schema, str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("where", "script"),
    _run_blocks() + _gitlab_scripts(),
    ids=[w for w, _ in _run_blocks() + _gitlab_scripts()],
)
def test_every_shell_step_passes_shellcheck(where: str, script: str, tmp_path: Path) -> None:
    shellcheck = _tool("shellcheck")
    target = tmp_path / "step.sh"
    target.write_text("#!/usr/bin/env bash\n" + script, encoding="utf-8")
    done = subprocess.run(
        [shellcheck, "--shell=bash", str(target)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{where}:\n{done.stdout}"


@pytest.mark.parametrize(("where", "script"), _run_blocks(), ids=[w for w, _ in _run_blocks()])
def test_shell_steps_read_expressions_from_the_environment_never_inline(where: str, script: str) -> None:
    # `${{ ... }}` inside a script is pasted in before bash parses it: a branch or title could run code.
    assert "${{" not in script, where


# --- what the workflow promises -------------------------------------------------------------------------


def test_nexus_is_installed_pinned_to_a_commit_never_by_an_unclaimed_package_name() -> None:
    for text in (GITHUB.read_text(encoding="utf-8"), GITLAB.read_text(encoding="utf-8")):
        assert "nexus-config==" not in text
        (package,) = set(re.findall(r'NEXUS_PACKAGE: "([^"]+)"', text))
        assert re.fullmatch(r"nexus-config @ git\+https://\S+@[0-9a-f]{40}", package), package
    installs = [s for _, s in _run_blocks() + _gitlab_scripts() if "pip install" in s]
    assert installs and all('"$NEXUS_PACKAGE"' in s for s in installs)


def test_every_job_has_a_time_limit() -> None:
    assert all("timeout-minutes" in job for job in _workflow()["jobs"].values())
    assert all("timeout" in job for _, job in _gitlab().items() if isinstance(job, dict) and "script" in job)


def test_plan_and_apply_run_the_same_shards_each_with_its_own_artifact() -> None:
    workflow = _workflow()
    shards = int(workflow["env"]["SHARDS"])
    for job in ("plan", "apply"):
        assert workflow["jobs"][job]["strategy"]["matrix"]["shard"] == list(range(1, shards + 1))
    upload = _step("plan", "Keep this shard's plan for the comment and the merge")
    assert upload["with"]["name"] == "nexus-plan-${{ matrix.shard }}-of-${{ env.SHARDS }}"
    assert (
        '--name "nexus-plan-$SHARD-of-$SHARDS"' in _step("apply", "Fetch the plan reviewers approved")["run"]
    )


def test_plans_use_the_read_only_url_and_only_apply_the_writer_url() -> None:
    jobs = _workflow()["jobs"]
    assert jobs["plan"]["env"]["NEXUS_DATABASE_URL"] == "${{ secrets.NEXUS_DATABASE_URL_READONLY }}"
    assert jobs["apply"]["env"]["NEXUS_DATABASE_URL"] == "${{ secrets.NEXUS_DATABASE_URL }}"
    assert [name for name, job in jobs.items() if "NEXUS_DATABASE_URL }}" in json.dumps(job)] == ["apply"]
    assert _gitlab()["plan"]["variables"]["NEXUS_DATABASE_URL"] == "$NEXUS_DATABASE_URL_READONLY"


def test_apply_runs_only_from_the_default_branch() -> None:
    condition = " ".join(_workflow()["jobs"]["apply"]["if"].split())
    assert "&& github.ref == format('refs/heads/{0}', github.event.repository.default_branch)" in condition
    assert _gitlab()["apply"]["rules"] == [
        {"if": '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "push"'}
    ]


def test_gitlab_applies_the_reviewed_plan_not_a_fresh_one() -> None:
    script = "\n".join(_gitlab()["apply"]["script"])
    assert "artifacts/plan.json" in script and "nexus apply --plan plan.json" in script
    assert script.index("artifacts/plan.json") < script.index("nexus apply --plan plan.json")
    assert "--out plan.json" not in script


# --- the steps themselves, run --------------------------------------------------------------------------


def _bash(script: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a step as GitHub Actions does: `bash --noprofile --norc -eo pipefail {0}`."""
    path = cwd / f".step-{uuid.uuid4().hex[:8]}.sh"
    path.write_text(script, encoding="utf-8")
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
        cwd=cwd,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line)


def _fake_gh(tmp_path: Path, reviews: list[dict[str, Any]]) -> dict[str, str]:
    """A `gh` that answers the reviews API with `reviews` (as `--paginate --jq` would, page by page)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "reviews.json").write_text(json.dumps(reviews), encoding="utf-8")
    gh = bin_dir / "gh"
    gh.write_text(
        '#!/usr/bin/env bash\nfilter=""\nwhile [ $# -gt 0 ]; do [ "$1" = --jq ] && filter=$2; shift; done\n'
        f'jq -c "$filter" {tmp_path / "reviews.json"}\n',
        encoding="utf-8",
    )
    gh.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}"}


def _review(user: str, state: str) -> dict[str, Any]:
    return {"user": {"login": user}, "state": state}


@pytest.mark.parametrize(
    ("reviews", "passes"),
    [
        ([_review("ana", "APPROVED"), _review("ana", "COMMENTED")], False),
        ([_review("ana", "APPROVED"), _review("ana", "APPROVED")], False),
        ([_review("ana", "APPROVED"), _review("ben", "COMMENTED"), _review("ben", "APPROVED")], True),
        (
            [_review("ana", "APPROVED"), _review("ben", "APPROVED"), _review("ben", "CHANGES_REQUESTED")],
            False,
        ),
        ([_review("ana", "APPROVED"), _review("ben", "APPROVED"), _review("ana", "COMMENTED")], True),
        ([_review("ana", "APPROVED"), _review("ben", "APPROVED"), _review("ben", "DISMISSED")], False),
    ],
    ids=[
        "approve-then-comment-is-one",
        "approving-twice-is-one",
        "two-reviewers",
        "changes-requested-withdraws",
        "a-later-comment-keeps-the-approval",
        "a-dismissed-approval-is-gone",
    ],
)
def test_risky_plans_count_each_reviewers_latest_review(
    reviews: list[dict[str, Any]], passes: bool, tmp_path: Path
) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    step = _step("comment", "Risky plans need a second approver")
    env = {**_fake_gh(tmp_path, reviews), "RISKY": "3", "PR": "7", "GITHUB_REPOSITORY": "health/orgs"}
    done = _bash(step["run"], tmp_path, env)
    assert (done.returncode == 0) == passes, done.stdout + done.stderr


@pytest.fixture
def roles(postgres_server_url: str) -> Iterator[tuple[str, str]]:
    """(read-only URL, writer URL) of a scratch database with the schema migrated."""
    reader = f"nexus_reader_{uuid.uuid4().hex[:8]}"
    with postgres_database(postgres_server_url, prefix="nexus_ci") as writer_url:
        engine = sa.create_engine(writer_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE ROLE "{reader}" LOGIN')
            connection.exec_driver_sql(f'GRANT USAGE ON SCHEMA public TO "{reader}"')
            connection.exec_driver_sql(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{reader}"')
        engine.dispose()
        reader_url = sa.engine.make_url(writer_url).set(username=reader, password=None)
        try:
            yield reader_url.render_as_string(hide_password=False), writer_url
        finally:
            engine = sa.create_engine(writer_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                connection.exec_driver_sql(f'DROP OWNED BY "{reader}"')
            engine.dispose()
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{reader}"')
    admin.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_github_workflow_shell_steps_plan_comment_apply_verify(
    roles: tuple[str, str], tmp_path: Path
) -> None:
    reader_url, writer_url = roles
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    workflow = _workflow()
    shards = int(workflow["env"]["SHARDS"])
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "orgs", repo / "orgs")
    base = {**workflow["env"], "GITHUB_REPOSITORY": "health/orgs", "RUN_URL": "https://ci.example/run/1"}

    # Pull request: every shard plans with the read-only role; the comment job combines their artifacts.
    comment_dir = tmp_path / "comment"
    comment_dir.mkdir()
    for shard in range(1, shards + 1):
        outputs, summary = tmp_path / f"plan-{shard}.out", tmp_path / f"plan-{shard}.summary"
        env = {**base, "NEXUS_DATABASE_URL": reader_url, "SHARD": str(shard)}
        env |= {"GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)}
        done = _bash(_step("plan", "Plan")["run"], repo, env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert summary.read_text(encoding="utf-8").startswith("<!-- nexus-plan -->")
        shutil.copytree(repo / f"plan-{shard}", comment_dir / f"nexus-plan-{shard}-of-{shards}")
    outputs = tmp_path / "comment.out"
    env = {**base, "PLANS": "success", "GITHUB_OUTPUT": str(outputs)}
    done = _bash(_step("comment", "Combine the shards' plans into one comment")["run"], comment_dir, env)
    assert done.returncode == 0, done.stdout + done.stderr
    comment = (comment_dir / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith("<!-- nexus-plan -->\n") and comment.count("<!-- nexus-plan -->") == 1
    assert [f"#### Shard {i} of {shards}" in comment for i in range(1, shards + 1)] == [True] * shards
    assert "to create" in comment
    assert _outputs(outputs) == {"risky": "0"}

    # The merge: each apply shard applies its reviewed plan with the writer role, then verifies.
    for shard in range(1, shards + 1):
        env = {**base, "NEXUS_DATABASE_URL": writer_url, "SHARD": str(shard)}
        done = _bash(_step("apply", "Apply")["run"], repo, env)
        assert done.returncode == 0, done.stdout + done.stderr
        done = _bash(_step("apply", "Verify the default branch and the database agree")["run"], repo, env)
        assert done.returncode == 0, done.stdout + done.stderr
