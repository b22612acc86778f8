"""Checkpointed simulations: save the simulator's state every K iterations, resume after a crash.

Primer
------
`run` takes the arguments of `ptdlib.simulate.run` plus ``path`` and ``every``. It runs the
sampled (markov or iid) simulation in chunks that end on multiples of ``every``; after each
such chunk it writes the whole state to ``path`` (atomically: a temporary file, then a rename):
the iterates (B, local copies, heads w, gains eta, parameters theta, current states, divergence
flags), the records so far and every agent's bit-generator state. If ``path`` exists when `run`
starts, it resumes from there. The simulator's draws are consumed in the same order whatever
the chunking (`ptdlib.simulate`, "Randomness"), so a resumed run returns a `Trace` bit-identical
to an uninterrupted ``simulate.run`` with the same arguments. The file is left in place at the
end (delete it to start afresh); a checkpoint written by a different run (other problem, seeds
or options: a fingerprint of all of them is stored) is refused with a ValueError.

The chunk loop mirrors ``simulate._run_sampled`` over the simulator's private building blocks;
``tests/test_checkpoint.py`` pins the two to the same bits. The mean-path mode
(``sampling="expected"``) is deterministic and fast, and is not checkpointed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import types
from pathlib import Path
from typing import Any

import numba
import numpy as np

from ptdlib import _kernels as kern
from ptdlib import markov, simulate
from ptdlib._validation import check_positive_int

__all__ = ["run"]

STATE_FIELDS = ("B", "B_local", "w", "eta", "theta", "states", "diverged", "records",
                "distances")


def _fingerprint(problem: Any, algorithm: str, sampling: str, options: dict[str, Any]) -> str:
    """SHA-256 of the problem's arrays and every option (arrays by their bytes)."""
    digest = hashlib.sha256(f"{algorithm}|{sampling}|{problem.reward_noise!r}".encode())
    for name in ("P", "rewards", "features", "theta_star"):
        digest.update(np.ascontiguousarray(getattr(problem, name)).tobytes())
    for name in sorted(options):
        value = options[name]
        text = (np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray)
                else repr(value).encode())
        digest.update(name.encode() + b"=" + text + b";")
    return digest.hexdigest()


def _save(path: Path, fingerprint: str, t: int, st: Any, streams: list) -> None:
    generators = [[g.bit_generator.state for g in group] for pair in streams for group in pair]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, fingerprint=fingerprint, t=t, generators=json.dumps(generators),
                     **{name: getattr(st, name) for name in STATE_FIELDS})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path, fingerprint: str, st: Any, streams: list) -> int:
    """Restore ``st`` and the generators from ``path``; the iteration to continue from."""
    with np.load(path, allow_pickle=False) as saved:
        if str(saved["fingerprint"]) != fingerprint:
            raise ValueError(f"path: checkpoint {str(path)!r} was written by a different run "
                             f"(problem or options differ); delete it to start afresh")
        for name in STATE_FIELDS:
            getattr(st, name)[...] = saved[name]
        states = iter(json.loads(str(saved["generators"])))
        for pair in streams:
            for group in pair:
                for generator, state in zip(group, next(states), strict=True):
                    generator.bit_generator.state = state
        return int(saved["t"])


def _chunk(problem: Any, cfg: Any, st: Any, arr: Any, tables: Any, buffers: Any,
           t: int, length: int) -> None:
    """Iterations t .. t + length - 1 of every seed (the body of simulate._run_sampled)."""
    S, d = len(cfg.seeds), problem.dim
    live = st.diverged < 0
    simulate._fill_draws([tr for tr, _ in buffers.streams], live, length, buffers.uniforms,
                         normal=False)
    if arr.sigma > 0:
        simulate._fill_draws([nz for _, nz in buffers.streams], live, length, buffers.normals,
                             normal=True)
    record_at, offset, count = simulate._record_positions(cfg.record_steps, t, length)
    snapshots = np.full((S, max(count, 1), d, simulate._snapshot_width(cfg, d)), np.nan)
    common = (arr.Phi, arr.rewards, tables.P, tables.mu, tables.chain,
              0 if cfg.sampling == "markov" else 1, buffers.uniforms, buffers.normals,
              arr.sigma, cfg.schedule.values(np.arange(t, t + length)), t)
    tail = (record_at, offset, arr.theta_star, arr.J, arr.rel_weight, st.records, snapshots)
    if buffers.by_agents:
        kern.shared_chunk_by_agents(st.B, st.w, st.eta, st.states, st.diverged, *common,
                                    cfg.code, cfg.tau, cfg.rebase_heads, cfg.c_eta, cfg.c_B,
                                    cfg.threshold, *tail)
    elif cfg.shared:
        kern.shared_chunk(st.B, st.B_local, st.w, st.eta, st.states, st.diverged, *common,
                          cfg.steps, cfg.period, cfg.code, cfg.tau, cfg.rebase_heads,
                          cfg.c_eta, cfg.c_B, cfg.threshold, *tail)
    else:
        kern.theta_chunk(st.theta, st.eta, st.states, st.diverged, *common, cfg.steps,
                         cfg.period, cfg.code, cfg.rank or 1, cfg.c_eta, cfg.threshold, *tail)
    if count:
        st.distances[:, :, offset:offset + count] = simulate._subspace_distances(
            snapshots[:, :count], cfg, problem.B_star)


def _buffers(problem: Any, cfg: Any, arr: Any, every: int) -> types.SimpleNamespace:
    S, N, n = len(cfg.seeds), problem.n_agents, problem.n_states
    per_step = 1 if cfg.sampling == "markov" else 2
    length_max = max(1, min(cfg.steps, every, simulate.DRAW_BUDGET // (S * N * per_step)))
    noisy = arr.sigma > 0
    return types.SimpleNamespace(
        streams=[simulate._agent_streams(seed, N, noisy) for seed in cfg.seeds],
        length_max=length_max, uniforms=np.empty((S, N, length_max, per_step)),
        normals=np.empty((S, N, length_max if noisy else 0)),
        by_agents=(cfg.shared and cfg.period == 1 and numba.get_num_threads() > S
                   and max(n, simulate.AGENT_PARALLEL_MIN) <= N))


def run(problem: Any, algorithm: str = "personalized", *, path: str | Path, every: int,
        sampling: str = "markov", **options: Any) -> simulate.Trace:
    """`ptdlib.simulate.run` with a checkpoint at ``path`` every ``every`` iterations.

    Parameters
    ----------
    problem, algorithm, sampling, **options
        As for `ptdlib.simulate.run` (sampling "markov" or "iid"; ``progress`` not supported).
    path : path
        Checkpoint file (NumPy .npz). Resumed from if it exists; written every ``every``
        iterations and kept at the end.
    every : int
        K >= 1: iterations between checkpoints.

    Returns
    -------
    Trace
        Bit-identical to ``simulate.run(problem, algorithm, sampling=sampling, **options)``.

    Raises
    ------
    ValueError
        For the arguments `simulate.run` rejects, every < 1, sampling "expected", a
        checkpoint of another run, or a folder of ``path`` that does not exist.
    """
    every = check_positive_int(every, "every")
    if sampling == "expected":
        raise ValueError("sampling must be 'markov' or 'iid' to checkpoint; got 'expected' "
                         "(the mean path is deterministic: rerun it)")
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"path: folder {str(path.parent)!r} of the checkpoint does not exist")
    defaults = {"rank": None, "record_every": None, "init_subspace": None,
                "communication_period": 1, "rebase_heads": False, "c_eta": 1.0, "c_B": 1.0,
                "tau": 1, "divergence_threshold": None, "progress": False}
    unknown = sorted(set(options) - set(defaults) - {"steps", "step_size", "seeds"})
    if unknown or options.get("progress"):
        raise ValueError(f"options: not accepted by checkpoint.run: {unknown or ['progress']}")
    full = {**defaults, **options}
    cfg = simulate._configure(problem, algorithm, sampling, full)
    arr = simulate._kernel_arrays(problem)
    st = simulate._initial_state(problem, cfg)
    tables = simulate._sampling_tables(problem)
    buffers = _buffers(problem, cfg, arr, every)
    fingerprint = _fingerprint(problem, cfg.algorithm, cfg.sampling, full)
    if path.exists():
        t = _load(path, fingerprint, st, buffers.streams)
    else:
        t = 0
        for s in range(len(cfg.seeds)):
            simulate._record_now(st, s, 0, cfg, arr, problem.B_star)
        if cfg.sampling == "markov":  # s_0 ~ mu_i from the first uniform of each stream
            u0 = np.array([[g.random() for g in tr] for tr, _ in buffers.streams])
            st.states[:] = markov.sample_next_states(
                tables.mu_tables, tables.chain // problem.n_states,
                tables.chain % problem.n_states, u0)
    while t < cfg.steps:
        # Chunks end on multiples of `every`, where the state is saved.
        length = min(buffers.length_max, every - t % every, cfg.steps - t)
        _chunk(problem, cfg, st, arr, tables, buffers, t, length)
        t += length
        if t % every == 0 or t == cfg.steps:
            _save(path, fingerprint, t, st, buffers.streams)
    return simulate._trace(problem, cfg, st, arr, full["step_size"])
