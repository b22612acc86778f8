"""Simulator throughput vs the plain per-agent reference loop, and peak memory (``make bench``).

Usage: ``.venv/bin/python benchmarks/throughput.py [--quick] [--skip-memory]``.

Throughput: agent-steps per second of ``ptdlib.simulate.run`` (personalized, K = 1, Markov
sampling, one seed) and of ``benchmarks.reference_loop.reference_run`` on planted problems with
n = 50 states, d = 32, r = 4 and N in {1, 16, 256, 4096}, after a warm-up (numba compilation).
The steady rate N (T - 1) / (time(T) - time(1)) leaves out the one-off set-up (alias tables,
the N random streams), which is reported separately, as are the end-to-end rates N T / time(T)
of the long run and of a short 400-step run (what a sweep cell or a test pays). Reference runs
are kept short (a few thousand agent-steps at large N) and extrapolated per agent-step. Every
time is the best of 3 repeats (2 for the reference).

Both kernel arithmetics run side by side, each in a subprocess of its own (numba compiles at
import): exact IEEE (the default, the same bits on every CPU) and ``PTD_FASTMATH=1``
(reassociation and contraction), with the ratio fast / exact. Targets (issues 3 and 7, on 2
cores): simulator >= 100x the reference at N = 256, >= 2.5e7 agent-steps/s at N = 4096,
>= 1e6 steps/s at N = 1; at N = 4096 a set-up of at most 0.15 s and >= 5e6 agent-steps/s end to
end for 400 steps.

Memory: a subprocess runs N = 10^4 agents, d = 64 (so n = 65 states, the fewest the planted
factory allows: d <= n - 1), r = 4 for 10^5 steps recording every 100 steps and prints its
peak resident set size (``resource.getrusage``), target < 2 GB.

Timings on a shared machine are noisy; run it on an otherwise idle machine for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.reference_loop import reference_run  # noqa: E402
from ptdlib import problems, simulate  # noqa: E402

N_STATES, DIM, RANK = 50, 32, 4
STEP_SIZE = 0.01
#: N -> (simulator steps, reference steps)
PLAN = {1: (1_000_000, 1_000), 16: (200_000, 100), 256: (40_000, 8), 4096: (20_000, 6)}


def _problem(n_agents: int) -> problems.Problem:
    with warnings.catch_warnings():  # N = 1 < r: not identifiable, irrelevant for timing
        warnings.simplefilter("ignore", problems.NotIdentifiableWarning)
        return problems.shared_subspace_problem(max(n_agents, RANK), N_STATES, DIM, RANK,
                                                rng=0).subset(n_agents)


def _seconds(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls: the one least disturbed by other load."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _rates(run, steps: int, n_agents: int, repeats: int = 3) -> tuple[float, float, float]:
    """(steady agent-steps/s, end-to-end agent-steps/s, set-up s) of ``run(steps)``.

    The set-up (tables, random streams, first records) is timed as ``run(1)``; the steady rate
    leaves it out. Both times are the best of ``repeats``.
    """
    setup = _seconds(lambda: run(1), repeats)
    total = _seconds(lambda: run(steps), repeats)
    steady = n_agents * (steps - 1) / (total - setup) if total > setup else float("nan")
    return steady, n_agents * steps / total, setup


SHORT_RUN = 400


def mode_rates(quick: bool) -> dict[int, dict[str, float]]:
    """Simulator rates in this process's arithmetic mode, per N (steady, end-to-end, set-up)."""
    out = {}
    for n_agents, (sim_steps, _) in PLAN.items():
        problem = _problem(n_agents)
        if quick:
            sim_steps = max(2, sim_steps // 10)

        def sim(T: int, problem=problem) -> None:
            simulate.run(problem, steps=T, step_size=STEP_SIZE, seeds=1,
                         record_every=max(1, T // 100))

        sim(2)  # compile (or load the numba cache) outside the timings
        steady, end_to_end, setup = _rates(sim, sim_steps, n_agents)
        short = n_agents * SHORT_RUN / _seconds(lambda sim=sim: sim(SHORT_RUN), 3)
        out[n_agents] = {"steady": steady, "end_to_end": end_to_end, "setup": setup,
                         "short": short}
    return out


def _mode_in_subprocess(fastmath: bool, quick: bool) -> dict[int, dict[str, float]]:
    env = {key: value for key, value in os.environ.items() if key != "PTD_FASTMATH"}
    if fastmath:
        env["PTD_FASTMATH"] = "1"
    command = [sys.executable, __file__, "--mode-child", *(["--quick"] if quick else [])]
    result = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return {int(n): rates for n, rates in json.loads(result.stdout).items()}


def throughput(quick: bool) -> None:
    exact = _mode_in_subprocess(False, quick)
    fast = _mode_in_subprocess(True, quick)
    print(f"personalized, K = 1, Markov sampling, one seed; n = {N_STATES}, d = {DIM}, "
          f"r = {RANK}; agent-steps/s (steady = without set-up; best of 3)")
    print("exact = IEEE kernels (default); fast = PTD_FASTMATH=1; "
          f"short = end to end over {SHORT_RUN} steps")
    print(f"{'N':>6} {'exact':>10} {'fast':>10} {'fast/exact':>10} {'end-to-end':>11} "
          f"{'short':>10} {'set-up s':>9} {'reference':>10} {'exact/ref':>9}")
    for n_agents, (_, ref_steps) in PLAN.items():
        problem = _problem(n_agents)

        def ref(T: int, problem=problem) -> None:
            reference_run(problem, steps=T, step_size=STEP_SIZE, seed=0)

        ref_steady, _, _ = _rates(ref, ref_steps, n_agents, repeats=2)
        e, f = exact[n_agents], fast[n_agents]
        print(f"{n_agents:>6} {e['steady']:>10.3g} {f['steady']:>10.3g} "
              f"{f['steady'] / e['steady']:>9.2f}x {e['end_to_end']:>11.3g} {e['short']:>10.3g} "
              f"{e['setup']:>9.3f} {ref_steady:>10.3g} {e['steady'] / ref_steady:>8.0f}x",
              flush=True)


def memory_child(steps: int) -> None:
    """Run the large configuration and print the peak resident set size (this process)."""
    problem = problems.shared_subspace_problem(10_000, 65, 64, 4, rng=0)
    start = time.perf_counter()
    simulate.run(problem, steps=steps, step_size=STEP_SIZE, seeds=1, record_every=100)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"N = 10^4, n = 65, d = 64, r = 4, {steps} steps, records every 100: "
          f"peak RSS {peak_gib:.2f} GiB (target < 2 GB), {time.perf_counter() - start:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x shorter simulator runs")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--mode-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode_child:
        print(json.dumps(mode_rates(args.quick)))
        return
    if args.memory_child:
        memory_child(args.memory_child)
        return
    throughput(args.quick)
    if not args.skip_memory:
        steps = 10_000 if args.quick else 100_000
        subprocess.run([sys.executable, __file__, "--memory-child", str(steps)], check=True)


if __name__ == "__main__":
    main()
