"""Checkpointed simulations: save the simulator's state every K iterations, resume after a crash.

Primer
------
`run` takes the arguments of `ptdlib.simulate.run` plus ``path`` and ``every``. It runs the
sampled (markov or iid) simulation in chunks that end on multiples of ``every``; after each
such chunk it writes the whole state to ``path`` (atomically: a temporary file, then a rename):
the iterates (B, local copies, heads w, gains eta, parameters theta, current states, divergence
flags, the running sum of ``average_from``), the records so far and every agent's bit-generator
state. If ``path`` exists when `run`
starts, it resumes from there. The simulator's draws are consumed in the same order whatever
the chunking (`ptdlib.simulate`, "Randomness"), so a resumed run returns a `Trace` bit-identical
to an uninterrupted ``simulate.run`` with the same arguments. The file is left in place at the
end (delete it to start afresh); a checkpoint written by a different run (other problem, seeds
or options: a fingerprint of all of them is stored) is refused with a ValueError.

The chunk loop is ``simulate._run_sampled``'s with chunks cut at the checkpoints: both advance
a chunk with ``simulate._advance_chunk``, and ``tests/test_checkpoint.py`` pins the two runs to
the same bits. The mean-path mode (``sampling="expected"``) is deterministic and fast, and is
not checkpointed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ptdlib import simulate
from ptdlib._validation import check_positive_int

__all__ = ["run"]

STATE_FIELDS = ("B", "B_local", "w", "eta", "theta", "states", "diverged", "records",
                "distances", "theta_sum")


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
            if name in saved.files or getattr(st, name).size:  # no running sum before issue 14
                getattr(st, name)[...] = saved[name]
        states = iter(json.loads(str(saved["generators"])))
        for pair in streams:
            for group in pair:
                for generator, state in zip(group, next(states), strict=True):
                    generator.bit_generator.state = state
        return int(saved["t"])


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
                "tau": 1, "divergence_threshold": None, "progress": False,
                "update_order": "simultaneous", "gain_update": "reward", "head_radius": None,
                "retraction": "qr", "representation_step_size": None, "average_from": None}
    unknown = sorted(set(options) - set(defaults) - {"steps", "step_size", "seeds"})
    if unknown or options.get("progress"):
        raise ValueError(f"options: not accepted by checkpoint.run: {unknown or ['progress']}")
    full = {**defaults, **options}
    cfg = simulate._configure(problem, algorithm, sampling, full)
    arr = simulate._kernel_arrays(problem)
    st = simulate._initial_state(problem, cfg)
    sampler = simulate._sampler(problem, cfg, arr, min(cfg.steps, every))
    # Without a running average the fingerprint is the one checkpoints had before the option.
    fingerprint = _fingerprint(problem, cfg.algorithm, cfg.sampling,
                               {k: v for k, v in full.items()
                                if k != "average_from" or v is not None})
    if path.exists():
        t = _load(path, fingerprint, st, sampler.streams)
    else:
        t = 0
        for s in range(len(cfg.seeds)):
            simulate._record_now(st, s, 0, cfg, arr, problem.B_star)
        if cfg.sampling == "markov":
            simulate._draw_initial_states(st, sampler, problem.n_states)
    while t < cfg.steps:
        # Chunks end on multiples of `every`, where the state is saved.
        length = min(sampler.length_max, every - t % every, cfg.steps - t)
        simulate._advance_chunk(problem, cfg, st, arr, sampler, t, length)
        t += length
        if t % every == 0 or t == cfg.steps:
            _save(path, fingerprint, t, st, sampler.streams)
    return simulate._trace(problem, cfg, st, arr, full["step_size"],
                           full["representation_step_size"])
