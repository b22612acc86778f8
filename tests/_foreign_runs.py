"""The problems and simulations that tests/test_foreign_machine.py runs on two "machines".

``python tests/_foreign_runs.py OUT.npz`` builds the problems, runs every case of `cases` and
saves every array of every problem and of every Trace. The test runs the same function in its
own process and in a subprocess that compiles for another CPU target with another OpenBLAS
kernel; the two files must agree bit for bit: building a problem is part of the comparison.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np

from ptdlib import problems, simulate

#: Iterations per run: enough for several rounds at K = 5 and for the heads to move.
STEPS = 240
SEEDS = (0, 3)


#: The arrays of a problem that the comparison covers (what the simulator and the checks read).
PROBLEM_FIELDS = ("P", "rewards", "features", "mu", "average_reward", "theta_star", "B_star",
                  "heads_star")


def build_problems() -> dict[str, problems.Problem]:
    """A noisy planted problem (every algorithm), a pooled one (shared alias tables) and a
    misspecified one at the dimensions of the hard regimes (d = 32, r = 4)."""
    noisy = problems.shared_subspace_problem(6, 10, 5, 2, heterogeneity=0.6, reward_noise=0.3,
                                             rng=11)
    pooled = problems.Problem.from_pool(
        problems.shared_subspace_problem(3, 8, 4, 2, laziness=0.5, rng=12), 7)
    misspecified = problems.shared_subspace_problem(12, 48, 32, 4, laziness=0.8,
                                                    misspecification=0.1, rng=13)
    return {"noisy": noisy, "pooled": pooled, "misspecified": misspecified}


def problem_arrays(problem_set: dict[str, problems.Problem]) -> dict[str, np.ndarray]:
    """Every compared array of every problem, keyed ``problem:name/field``."""
    return {f"problem:{name}/{field}": np.asarray(getattr(problem, field))
            for name, problem in problem_set.items() for field in PROBLEM_FIELDS}


def cases() -> list[tuple[str, str, dict]]:
    """(name, problem key, run options): every algorithm x sampling x K x rebase (shared ones)."""
    out = []
    for algorithm, sampling, period in itertools.product(
            simulate.ALGORITHMS, ("markov", "iid"), (1, 5)):
        rebases = (False, True) if algorithm in simulate.SHARED_ALGORITHMS else (False,)
        for rebase in rebases:
            name = f"{algorithm}-{sampling}-K{period}-rebase{int(rebase)}"
            options = {"algorithm": algorithm, "sampling": sampling,
                       "communication_period": period, "rebase_heads": rebase}
            out.append((name, "noisy", options))
    out.append(("pooled-personalized", "pooled", {"algorithm": "personalized"}))
    return out


def run_cases(problem_set: dict[str, problems.Problem]) -> dict[str, np.ndarray]:
    """Every array of every case's Trace, keyed ``case/field``."""
    arrays = {}
    for name, key, options in cases():
        trace = simulate.run(problem_set[key], steps=STEPS, step_size=0.05, seeds=SEEDS,
                             record_every=20, **options)
        for field in ("subspace_distance", "subspace_distance_frobenius", "parameter_error",
                      "relative_parameter_error", "head_error", "gain_error", "theta", "eta",
                      "B", "heads", "diverged"):
            value = getattr(trace, field)
            if value is not None:
                arrays[f"{name}/{field}"] = np.asarray(value)
    return arrays


def all_arrays() -> dict[str, np.ndarray]:
    """The problems' arrays and every case's Trace arrays, built and run in this process."""
    problem_set = build_problems()
    return {**problem_arrays(problem_set), **run_cases(problem_set)}


def main(out_path: str) -> None:
    np.savez(out_path, **all_arrays())


if __name__ == "__main__":
    main(*sys.argv[1:])
