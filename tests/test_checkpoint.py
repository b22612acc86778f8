"""Tests of ptdlib.checkpoint: a run stopped midway and resumed equals simulate.run bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ptdlib import checkpoint, problems, simulate

ARRAYS = ("record_steps", "subspace_distance", "subspace_distance_frobenius", "parameter_error",
          "relative_parameter_error", "head_error", "gain_error", "theta", "eta", "B", "heads",
          "diverged", "averaged_theta", "averaged_parameter_error")
CASES = [
    ("personalized", "markov", {}),
    ("personalized", "iid", {"communication_period": 3, "record_every": 30}),
    ("fedrep", "markov", {"tau": 2}),
    ("local", "markov", {}),
    ("lowrank_svd", "iid", {"communication_period": 5, "record_every": 25}),
    ("personalized", "markov", {"average_from": 100}),
    ("fedtd", "iid", {"communication_period": 4, "record_every": 20, "average_from": 0}),
    ("personalized", "markov", {"update_order": "heads_first", "retraction": "polar",
                                "rebase_heads": True, "gain_update": "td", "head_radius": 0.5,
                                "representation_step_size": 0.02}),
]


@pytest.fixture(scope="module")
def problem() -> problems.Problem:
    pool = problems.shared_subspace_problem(4, 6, 3, 2, reward_noise=0.3, rng=1)
    return problems.Problem.from_pool(pool, 8)


def _assert_identical(a: simulate.Trace, b: simulate.Trace) -> None:
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.tobytes() == y.tobytes(), name  # bit for bit, NaNs included
    assert dict(a.settings) == dict(b.settings)


class Crash(Exception):
    pass


@pytest.mark.parametrize(("algorithm", "sampling", "extra"), CASES)
def test_a_crashed_run_resumes_to_the_uninterrupted_result(
        problem: problems.Problem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        algorithm: str, sampling: str, extra: dict[str, Any]) -> None:
    options = {"steps": 300, "step_size": 0.05, "seeds": [3, 7], **extra}
    expected = simulate.run(problem, algorithm, sampling=sampling, **options)
    path = tmp_path / "state.npz"
    original, calls = simulate._advance_chunk, []

    def crash_on_the_fourth_chunk(*args: Any) -> None:
        calls.append(args[-2])
        if len(calls) == 4:
            raise Crash
        original(*args)

    monkeypatch.setattr(simulate, "_advance_chunk", crash_on_the_fourth_chunk)
    with pytest.raises(Crash):
        checkpoint.run(problem, algorithm, path=path, every=60, sampling=sampling, **options)
    assert calls == [0, 60, 120, 180]  # chunks end on multiples of `every`
    with np.load(path) as saved:
        assert int(saved["t"]) == 180
    monkeypatch.setattr(simulate, "_advance_chunk", original)
    resumed = checkpoint.run(problem, algorithm, path=path, every=60, sampling=sampling,
                             **options)
    _assert_identical(resumed, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.npz"]  # no temporaries


def test_an_uninterrupted_checkpointed_run_matches(problem: problems.Problem,
                                                   tmp_path: Path) -> None:
    options = {"steps": 250, "step_size": 0.05, "seeds": 2, "record_every": 50}
    expected = simulate.run(problem, **options)
    _assert_identical(checkpoint.run(problem, path=tmp_path / "c.npz", every=7, **options),
                      expected)
    # a finished checkpoint resumes to the end at once, same trace
    _assert_identical(checkpoint.run(problem, path=tmp_path / "c.npz", every=7, **options),
                      expected)


def test_a_checkpoint_from_before_the_running_average_still_resumes(
        problem: problems.Problem, tmp_path: Path) -> None:
    # Checkpoints written before `average_from` existed have no running sum, and a fingerprint
    # without the option (a run without it keeps that fingerprint): they still resume.
    path = tmp_path / "c.npz"
    options = {"steps": 120, "step_size": 0.05, "seeds": 2, "record_every": 30}
    checkpoint.run(problem, path=path, every=60, **options)
    with np.load(path) as saved:
        old = {name: saved[name] for name in saved.files if name != "theta_sum"}
    np.savez(path, **old)
    _assert_identical(checkpoint.run(problem, path=path, every=60, **options),
                      simulate.run(problem, **options))


def test_a_checkpoint_of_another_run_is_refused(problem: problems.Problem,
                                                tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    checkpoint.run(problem, path=path, every=50, steps=100, step_size=0.05, seeds=1)
    with pytest.raises(ValueError, match="different run"):
        checkpoint.run(problem, path=path, every=50, steps=100, step_size=0.04, seeds=1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"every": 0}, "every"),
    ({"every": 10, "sampling": "expected"}, "sampling"),
    ({"every": 10, "progress": True}, "progress"),
    ({"every": 10, "step_size": -1.0}, "step_size"),
])
def test_bad_arguments(problem: problems.Problem, tmp_path: Path, kwargs: dict[str, Any],
                       message: str) -> None:
    options = {"steps": 20, "step_size": 0.05, "seeds": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        checkpoint.run(problem, path=tmp_path / "c.npz", **options)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_refused(problem: problems.Problem, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        checkpoint.run(problem, path=tmp_path / "no" / "c.npz", every=5, steps=10,
                       step_size=0.05, seeds=1)
