"""The fixed set of simulations that tests/test_foreign_machine.py runs on two "machines".

``python tests/_foreign_runs.py PROBLEMS.pkl OUT.npz`` loads the pickled problems, runs every
case of `cases` and saves every array of every Trace. The test runs the same function in its
own process and in a subprocess that compiles for another CPU target with another OpenBLAS
kernel; the two files must agree bit for bit. The problems are built once, by the test, and
shipped pickled: building them goes through LAPACK, which this comparison is not about.
"""

from __future__ import annotations

import itertools
import pickle
import sys
from pathlib import Path

import numpy as np

from ptdlib import problems, simulate

#: Iterations per run: enough for several rounds at K = 5 and for the heads to move.
STEPS = 240
SEEDS = (0, 3)


def build_problems() -> dict[str, problems.Problem]:
    """A noisy planted problem (every algorithm) and a pooled one (shared alias tables)."""
    noisy = problems.shared_subspace_problem(6, 10, 5, 2, heterogeneity=0.6, reward_noise=0.3,
                                             rng=11)
    pooled = problems.Problem.from_pool(
        problems.shared_subspace_problem(3, 8, 4, 2, laziness=0.5, rng=12), 7)
    return {"noisy": noisy, "pooled": pooled}


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


def main(problems_path: str, out_path: str) -> None:
    with Path(problems_path).open("rb") as handle:
        problem_set = pickle.load(handle)
    np.savez(out_path, **run_cases(problem_set))


if __name__ == "__main__":
    main(*sys.argv[1:])
