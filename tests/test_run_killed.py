"""`ptd run` killed with SIGKILL in the middle of a notebook leaves the previous report intact.

A real subprocess and a real kernel (the in-process interruption case is in test_cli.py): the
notebook announces that it is running by writing a marker into its staging folder, then sleeps
until the whole `ptd` process group is killed. The killed run's staging folder stays behind
until the next `ptd run` removes it.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _notebook_factory import make_project, protocol_cells

from ptdlib import cli

# A real kernel in a subprocess, killed with SIGKILL: out of the fast lane (pytest -m "not slow").
pytestmark = pytest.mark.slow

SLEEPER = ("import time\n"
           "if n_points == 7:  # the run to be killed: announce it, then wait for the kill\n"
           "    open('started', 'w').close()\n"
           "    time.sleep(60)")


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _run(root: Path, *args: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli.main(["run", "good", "--root", str(root), *args])


def test_kill_9_midway_keeps_the_previous_report_and_the_next_run_cleans_up(
        tmp_path: Path) -> None:
    cells = protocol_cells("good")
    root = make_project(tmp_path / "project", {"good": [SLEEPER, *cells]})
    reports = root / "reports"
    assert _run(root) == 0
    before = _tree(reports)
    process = subprocess.Popen([sys.executable, "-m", "ptdlib.cli", "run", "good", "--root",
                                str(root), "-p", "n_points", "7"], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(reports.glob(".staging-good-*/started")) and time.monotonic() < deadline:
        assert process.poll() is None, "ptd run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert list(reports.glob(".staging-good-*/started")), "the notebook never started"
    visible = {k: v for k, v in _tree(reports).items() if not k.startswith(".staging-")}
    assert visible == before  # the old report, index and manifest, byte for byte
    assert _run(root, "-p", "alpha", "0.75") == 0  # a later run swaps its report in
    assert _tree(reports)["good/summary.json"] != before["good/summary.json"]
    assert list(reports.glob(".staging-*")) == list(reports.glob(".old-*")) == []
