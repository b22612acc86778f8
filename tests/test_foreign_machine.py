"""Same seed, same numbers, on another machine.

A subprocess stands in for a reader's or CI's machine with another CPU: numba compiles for the
``generic`` x86-64/arm64 target (no AVX, no FMA) into its own cache folder, and OpenBLAS runs
its ``Prescott`` kernels (every x86-64 CPU has them; other architectures keep their default).
The fixed set of problems and simulations of ``tests/_foreign_runs.py`` must give bit-identical
arrays there and here (each process builds the problems: their products and QR are compiled
too), and one short notebook must give the same summary.json, value by value, at the precision
its compared cell prints.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import _foreign_runs
import numpy as np
import pytest

from ptdlib import checks

ROOT = Path(__file__).resolve().parents[1]
#: The foreign target's compiled kernels survive between test runs (a second `make test` does
#: not recompile them); git ignores the folder.
FOREIGN_CACHE = ROOT / ".numba-foreign"
#: A short notebook whose checks cover the library end to end (steps, simulator, stats).
NOTEBOOK = "04_walkthrough"

pytestmark = pytest.mark.slow


def foreign_environment() -> dict[str, str]:
    """This process's environment, as another CPU and another BLAS kernel would see it."""
    env = {key: value for key, value in os.environ.items() if key != "PTD_FASTMATH"}
    env["NUMBA_CPU_NAME"] = "generic"
    env["NUMBA_CACHE_DIR"] = str(FOREIGN_CACHE)
    if platform.machine().lower() in ("x86_64", "amd64"):
        env["OPENBLAS_CORETYPE"] = "Prescott"
    return env


def _differences(here: dict[str, np.ndarray], there: dict[str, np.ndarray]) -> list[str]:
    """Every array that is not the same bits in both runs, with its largest difference."""
    problems = [f"{key}: missing in one run" for key in sorted(set(here) ^ set(there))]
    for key in sorted(set(here) & set(there)):
        a, b = here[key], there[key]
        if a.dtype != b.dtype or a.shape != b.shape:
            problems.append(f"{key}: {a.dtype}{a.shape} here, {b.dtype}{b.shape} there")
        elif a.tobytes() != b.tobytes():
            gap = np.nanmax(np.abs(a.astype(float) - b.astype(float)), initial=0.0)
            problems.append(f"{key}: differs, max |difference| {gap:.3g}")
    return problems


def test_problems_and_simulations_are_bit_identical_on_a_foreign_target(tmp_path: Path) -> None:
    out = tmp_path / "foreign.npz"
    subprocess.run([sys.executable, str(ROOT / "tests" / "_foreign_runs.py"), str(out)],
                   env=foreign_environment(), check=True, cwd=ROOT)
    here = _foreign_runs.all_arrays()
    with np.load(out) as there:
        problems = _differences(here, dict(there))
    assert len(here) > 100, "the case list lost its runs"
    assert sum(key.startswith("problem:") for key in here) == 24, "the problem list changed"
    assert not problems, "arrays differ on the foreign target:\n" + "\n".join(problems)


def _run_notebook(out: Path, env: dict[str, str]) -> dict:
    subprocess.run([sys.executable, "-m", "ptdlib.cli", "run", NOTEBOOK, "--out", str(out)],
                   env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return json.loads((out / NOTEBOOK / "summary.json").read_text())


def _printed(summary: dict) -> dict[str, tuple[str, str]]:
    """Each check's verdict and measured value as the compared cell prints them."""
    out = {}
    for record in summary["checks"]:
        verdict = checks.Verdict.from_dict(record)
        out[verdict.name] = (checks.verdict_text(verdict),
                             checks.measured_text(verdict, stable=True))
    return out


def test_a_notebook_gives_the_same_summary_on_a_foreign_target(tmp_path: Path) -> None:
    here = _run_notebook(tmp_path / "here", dict(os.environ))
    there = _run_notebook(tmp_path / "there", foreign_environment())
    assert there["provenance"]["kernel_arithmetic"] == "exact IEEE"
    assert (there["status"], there["n_checks"]) == (here["status"], here["n_checks"])
    assert _printed(there) == _printed(here)
