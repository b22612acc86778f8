"""The bad-input catalogue: every place a user can reach gives a one-line error naming the field
and the value, exit code 2 from the command line, and leaves no partial files behind.

Cases span the library API, notebook parameters, sweep specs (API and `ptd sweep`) and
`ptd run`. Nothing here runs a simulation: every input is rejected before work starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from _notebook_factory import make_project, protocol_cells

from ptdlib import cli, markov, notebook_params, problems, simulate, sweep

TINY = Path(__file__).parent / "data" / "tiny_sweep.yaml"


def _tree(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


def _one_line_error(call: Callable[[], Any], *fragments: str) -> str:
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture(scope="module")
def problem() -> problems.Problem:
    return problems.shared_subspace_problem(4, 6, 3, 2, rng=0)


# --- library API -----------------------------------------------------------------------------

def test_non_stochastic_chain() -> None:
    P = np.array([[0.5, 0.6], [0.5, 0.5]])
    _one_line_error(lambda: markov.stationary_distribution(P), "P", "row-stochastic", "1.1")


def test_non_stochastic_problem_arrays() -> None:
    P = np.full((1, 3, 3), 0.5)
    _one_line_error(lambda: problems.Problem.from_arrays(P, np.zeros((1, 3)), np.eye(3)[:, :2]),
                    "P", "row-stochastic", "1.5")


def test_rank_larger_than_dim() -> None:
    _one_line_error(lambda: problems.shared_subspace_problem(4, 6, 3, 5, rng=0),
                    "rank", "dim", "5")


def test_negative_agent_count() -> None:
    _one_line_error(lambda: problems.shared_subspace_problem(-2, 6, 3, 2, rng=0),
                    "n_agents", "-2")


@pytest.mark.parametrize(("options", "fragments"), [
    ({"step_size": 0.0}, ("step_size", "0.0")),
    ({"step_size": -0.1}, ("step_size", "-0.1")),
    ({"steps": -5}, ("steps", "-5")),
    ({"algorithm": "sarsa"}, ("algorithm", "'sarsa'")),
    ({"rank": 3}, ("rank", "3")),
])
def test_simulation_options(problem: problems.Problem, options: dict[str, Any],
                            fragments: tuple[str, ...]) -> None:
    kwargs = {"steps": 10, "step_size": 0.1, "seeds": 1, **options}
    _one_line_error(lambda: simulate.run(problem, **kwargs), *fragments)


# --- notebook parameters ---------------------------------------------------------------------

def test_notebook_parameter_of_the_wrong_type() -> None:
    _one_line_error(lambda: notebook_params.parse_cli_value("alpha", "fast", "float"),
                    "'alpha'", "float", "'fast'")


def test_notebook_profile_with_an_unknown_name(tmp_path: Path) -> None:
    declared = notebook_params.parse_parameters("seed = 0  # seed\nalpha = 0.5  # a float\n")
    profile = tmp_path / "x.paper.yaml"
    profile.write_text("alhpa: 0.1\n")
    _one_line_error(lambda: notebook_params.load_profile(profile, declared), "'alhpa'", "alpha")


def test_notebook_config_out_of_bounds() -> None:
    @dataclasses.dataclass(frozen=True)
    class Config:
        alpha: float = notebook_params.param(low=0.0, low_open=True)

    _one_line_error(lambda: notebook_params.config_from_namespace(Config, {"alpha": -1.0}),
                    "alpha", "-1.0")


# --- sweep specs (API) -----------------------------------------------------------------------

def _spec(**changes: Any) -> dict[str, Any]:
    raw = yaml.safe_load(TINY.read_text())
    for path, value in changes.items():
        section, _, name = path.partition("__")
        if name:
            raw[section][name] = value
        else:
            raw[section] = value
    return raw


@pytest.mark.parametrize(("changes", "fragments"), [
    ({"problem__n_states": -3}, ("problem.n_states", ">= 1", "-3")),
    ({"problem__dim": [3, 0]}, ("problem.dim", "0")),
    ({"run__step_size": 0.0}, ("run.step_size", "> 0", "0.0")),
    ({"run__step_size": -1.0e-2}, ("run.step_size", "-0.01")),
    ({"problem__rank": 4}, ("problem.rank", "problem.dim", "4")),
    ({"run__steps": "many"}, ("run.steps", "int", "'many'")),
    ({"run__steps": True}, ("run.steps", "int", "True")),
    ({"run__stepz": 10}, ("unknown key run.stepz",)),
    ({"extra": 1}, ("unknown key 'extra'",)),
    ({"run__algorithm": "sarsa"}, ("run.algorithm", "'sarsa'")),
    ({"seeds": 0}, ("seeds", "0")),
    ({"seeds": [1, 1]}, ("seeds", "[1, 1]")),
    ({"problem__heterogeneity": 1.5}, ("problem.heterogeneity", "1.5")),
    ({"run__warm_start": True}, ("run.warm_start", "personalized and fedrep", "'local'")),
    ({"run__warm_start": "yes"}, ("run.warm_start", "bool", "'yes'")),
])
def test_sweep_spec_fields(changes: dict[str, Any], fragments: tuple[str, ...]) -> None:
    _one_line_error(lambda: sweep.parse_spec(_spec(**changes)), *fragments)


def test_sweep_spec_malformed_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("problem:\n  n_agents: [1, 2\nrun: {}\n")
    _one_line_error(lambda: sweep.load_spec(path), "malformed YAML", "bad.yaml", "line")


# --- the command line ------------------------------------------------------------------------

def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


def _assert_exit_2(args: list[str], *fragments: str) -> str:
    code, _, err = run_cli(args)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("ptd: error: "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_cli_sweep_malformed_yaml(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("seeds: [0, 1\n")
    _assert_exit_2(["sweep", str(spec), "--out", str(tmp_path / "out")], "malformed YAML")
    assert _tree(tmp_path) == ["spec.yaml"]


def test_cli_sweep_missing_spec(tmp_path: Path) -> None:
    _assert_exit_2(["sweep", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "out")],
                   "nope.yaml")
    assert _tree(tmp_path) == []


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"problem__rank": 9}, "problem.rank"), ({"run__step_size": -1.0}, "run.step_size")])
def test_cli_sweep_invalid_spec(tmp_path: Path, changes: dict[str, Any], fragment: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(_spec(**changes)))
    _assert_exit_2(["sweep", str(spec), "--out", str(tmp_path / "out")], fragment)
    assert _tree(tmp_path) == ["spec.yaml"]


def test_cli_sweep_workers_below_one(tmp_path: Path) -> None:
    _assert_exit_2(["sweep", str(TINY), "--out", str(tmp_path / "out"), "--workers", "0"],
                   "workers", "0")
    assert _tree(tmp_path) == []


def test_cli_sweep_scheduler_that_does_not_answer(tmp_path: Path) -> None:
    start = time.monotonic()
    _assert_exit_2(["sweep", str(TINY), "--out", str(tmp_path / "out"),
                    "--scheduler", "tcp://127.0.0.1:9"], "scheduler", "tcp://127.0.0.1:9")
    assert time.monotonic() - start < 4 * sweep.CONNECT_TIMEOUT_S
    assert _tree(tmp_path) == []


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write to; root ignores modes, so use read-only /sys."""
    if os.geteuid() == 0:
        return Path("/sys/ptd-sweep-out")
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    return folder


def test_cli_sweep_read_only_output_folder(tmp_path: Path) -> None:
    folder = _read_only_folder(tmp_path)
    before = _tree(folder) if folder.exists() else None
    _assert_exit_2(["sweep", str(TINY), "--out", str(folder / "out")], "out", "not writable",
                   str(folder / "out"))
    assert (_tree(folder) if folder.exists() else None) == before


def test_cli_run_unknown_notebook_parameter(tmp_path: Path) -> None:
    root = make_project(tmp_path / "project", {"good": protocol_cells("good")})
    before = _tree(root)
    _assert_exit_2(["run", "good", "-p", "alpah", "0.1", "--root", str(root)],
                   "unknown parameter 'alpah'")
    _assert_exit_2(["run", "good", "-p", "n_points", "-2.5", "--root", str(root)],
                   "'n_points'", "-2.5")
    assert _tree(root) == before


def test_run_cells_scheduler_that_does_not_answer(tmp_path: Path) -> None:
    cells = sweep.load_spec(TINY).cells()[:2]
    _one_line_error(lambda: sweep.run_cells(cells, tmp_path / "store", progress=False,
                                            scheduler="tcp://127.0.0.1:9"),
                    "scheduler", "tcp://127.0.0.1:9")
    assert _tree(tmp_path) == []  # the store it created is gone again
