"""The bad-input catalogue: every place a user can reach gives a one-line error naming the field
and the value, exit code 2 from the command line, and leaves no partial files behind.

Cases span the entry points no module test covers in full: notebook parameters from the
command line, sweep specs (API and `ptd sweep`) and the sweep runner. A rule tested in a module's
own tests (or in tests/test_validation.py for the shared validators) is not repeated here; the
comments say where it is. Nothing here runs a simulation: every input is rejected before work
starts.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ptdlib import cli, notebook_params, problems, simulate, sweep

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

# markov, problems and simulate.run validate their arrays and options in their own modules
# (tests/test_markov.py, tests/test_problems.py, tests/test_simulate.py) and the validators'
# messages, one line with name, rule and value, are tested in tests/test_validation.py. Kept
# here: the one message those module tests do not check in full.

def test_unknown_algorithm_is_echoed(problem: problems.Problem) -> None:
    _one_line_error(lambda: simulate.run(problem, "sarsa", steps=10, step_size=0.1, seeds=1),
                    "algorithm", "'sarsa'")


# The readings' rules are tests/test_simulate.py (test_bad_arguments_raise_naming_the_argument)
# and tests/test_stability.py; here: every message is one line with the field and the value,
# in simulate.run and in simulate.pause.
@pytest.mark.parametrize(("kwargs", "fragments"), [
    ({"update_order": "alternating"}, ("update_order", "'alternating'")),
    ({"gain_update": "sarsa"}, ("gain_update", "'sarsa'")),
    ({"retraction": "cayley"}, ("retraction", "'cayley'")),
    ({"head_radius": -2.0}, ("head_radius", "-2.0")),
    ({"representation_step_size": 0.0}, ("representation_step_size", "0.0")),
    ({"head_radius": 1.0, "algorithm": "fedtd"}, ("head_radius=1.0", "'fedtd'")),
    ({"retraction": "polar", "algorithm": "lowrank_svd"}, ("retraction='polar'",
                                                           "'lowrank_svd'")),
    ({"update_order": "heads_first", "algorithm": "oracle"}, ("update_order='heads_first'",
                                                             "'oracle'")),
])
@pytest.mark.parametrize("entry", ["run", "pause"])
def test_readings_errors_are_one_line(problem: problems.Problem, kwargs: dict[str, Any],
                                      fragments: tuple[str, ...], entry: str) -> None:
    function, seed = (simulate.run, {"seeds": 1}) if entry == "run" else (simulate.pause,
                                                                           {"seed": 1})
    _one_line_error(lambda: function(problem, steps=10, step_size=0.1, **seed, **kwargs),
                    *fragments)


# --- notebook parameters ---------------------------------------------------------------------

def test_notebook_parameter_of_the_wrong_type() -> None:
    _one_line_error(lambda: notebook_params.parse_cli_value("alpha", "fast", "float"),
                    "'alpha'", "float", "'fast'")


# unknown profile names and out-of-bounds config values: tests/test_notebook_params.py
# (test_load_profile_rejects, test_config_rejects).


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
    ({"run__update_order": "late"}, ("run.update_order", "simultaneous, heads_first", "'late'")),
    ({"run__gain_update": "q"}, ("run.gain_update", "reward, td", "'q'")),
    ({"run__retraction": ["qr", "cayley"]}, ("run.retraction", "qr, polar", "'cayley'")),
    ({"run__head_radius": 0.0}, ("run.head_radius", "> 0", "0.0")),
    ({"run__head_radius": "big"}, ("run.head_radius", "float", "'big'")),
    ({"run__representation_step_size": -1.0}, ("run.representation_step_size", "> 0", "-1.0")),
    ({"run__representation_t0": 0.0}, ("run.representation_t0", "> 0", "0.0")),
    ({"run__head_radius": 1.0},
     ("run.head_radius", "personalized, fedrep and oracle", "head_radius=1.0", "'local'")),
    ({"run__retraction": "polar"}, ("run.retraction", "personalized and fedrep", "'local'")),
    ({"run__update_order": "heads_first"},
     ("run.update_order", "personalized only", "'heads_first'", "'local'")),
    ({"run__algorithm": "personalized", "run__representation_step_size": 0.1,
      "run__c_B": 2.0}, ("run.c_B", "1.0", "representation_step_size", "2.0")),
    ({"run__representation_t0": 5.0},
     ("run.representation_t0", "run.representation_step_size", "5.0")),
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


def test_cli_sweep_invalid_spec(tmp_path: Path) -> None:
    # one invalid field shows `ptd sweep` turns a spec error into exit 2 before any file is
    # written; the field rules themselves are test_sweep_spec_fields above
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(_spec(problem__rank=9)))
    _assert_exit_2(["sweep", str(spec), "--out", str(tmp_path / "out")], "problem.rank", "9")
    assert _tree(tmp_path) == ["spec.yaml"]


def test_cli_sweep_reading_without_meaning(tmp_path: Path) -> None:
    # a reading that means nothing for one of the grid's algorithms: exit 2, nothing written
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(_spec(run__retraction="polar")))
    _assert_exit_2(["sweep", str(spec), "--out", str(tmp_path / "out")], "run.retraction",
                   "'polar'", "'local'")
    assert _tree(tmp_path) == ["spec.yaml"]


def test_cli_sweep_unknown_reading(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(_spec(run__gain_update="sarsa")))
    _assert_exit_2(["sweep", str(spec), "--out", str(tmp_path / "out")], "run.gain_update",
                   "'sarsa'")
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


# `ptd run` with an unknown or mistyped notebook parameter: tests/test_cli.py
# (test_bad_input_exits_2_with_one_line).


def test_run_cells_scheduler_that_does_not_answer(tmp_path: Path) -> None:
    cells = sweep.load_spec(TINY).cells()[:2]
    _one_line_error(lambda: sweep.run_cells(cells, tmp_path / "store", progress=False,
                                            scheduler="tcp://127.0.0.1:9"),
                    "scheduler", "tcp://127.0.0.1:9")
    assert _tree(tmp_path) == []  # the store it created is gone again
