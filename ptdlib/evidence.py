"""The committed evidence store: the hard regimes' finished sweep cells, kept in the repository.

Why
---
A hard regime (fresh agents, d >= 32, random B_0, several problem instances; the README's
"Easy and hard regimes") costs more simulation than `make reports` can spend every time, so its
cells (`ptdlib.sweep.Cell`: one problem, one run, one seed) are computed once and committed
under ``evidence/<name>.parquet``. A notebook asks for its cells with `gather`:

1. cells already in the store are read;
2. a seeded random sample of them (`SPOT_FRACTION`, at least one) is recomputed and compared
   bit for bit: a difference raises `EvidenceMismatch`, naming the cell and the first column
   that differs, before anything is written;
3. missing cells are computed (in this process, one vectorised run per grid point, or on a
   Dask cluster given ``scheduler``) and added to the store. Nothing is ever dropped: cells a
   run did not ask for (another profile's, a ``-p`` override's) stay, and ``ptd evidence``
   recomputes them with the rest.

The sample is drawn from a seed derived from the hash of ptdlib's sources unless given, so each
edit of the code spot-checks other cells, and the whole store is covered over time.

Identity. A stored cell is known by `evidence_id`, the SHA-256 of its parameters alone (problem,
run, seed; fields at their default left out, so that a new option with a default keeps every
id), unlike `sweep.Cell.key`, which also hashes ptdlib's sources: a committed store has to
survive edits that do not change any number. The spot check keeps that honest: code that
changes a cell's numbers fails it, and ``ptd evidence`` (``make evidence``) recomputes every
cell and says how many changed. This rests on the simulator's machine independence (README,
"Same seed, same numbers"), and on exact arithmetic: with ``PTD_FASTMATH=1`` the store is
refused.

File. One Parquet table (zstd) per name: column ``evidence_id`` and the trace columns of
`simulate.Trace.to_frame` (seed, step, diverged, metrics); the cells' parameters (in order) and
the provenance of the last write go in the file's metadata (key ``ptd.evidence``), so that
``ptd evidence`` recomputes a store without its notebook.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import platform
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import ptdlib
from ptdlib import reports, sweep

__all__ = ["SPOT_FRACTION", "EvidenceMismatch", "Gathered", "Recomputation", "evidence_id",
           "gather", "read_store", "recompute_store", "store_names", "store_path"]

#: Share of the stored cells a `gather` recomputes and compares bit for bit (at least one).
SPOT_FRACTION = 0.03
#: Parquet metadata key holding the cells' parameters and the provenance.
METADATA_KEY = b"ptd.evidence"
#: Format of the stored tables; `read_store` refuses another (`recompute_store` rewrites it).
FORMAT = 1
#: What a store keeps of a sweep table: the simulation seed, the record step, whether the seed
#: diverged, and the metrics (the parameters are in the file's metadata).
TRACE_COLUMNS = ("seed", "step", "diverged")


class EvidenceMismatch(RuntimeError):
    """A stored cell differs from its recomputation: the code changed its numbers."""


@dataclass(frozen=True)
class Gathered:
    """What `gather` returns: the table and what was read, computed and spot-checked.

    ``table`` has the cells' rows in the order asked for, column ``cell`` = `sweep.Cell.key`
    (what `sweep.records` reads) and the trace columns.
    """

    name: str
    table: pd.DataFrame
    read: int
    computed: int
    spot_checked: tuple[str, ...]

    def __str__(self) -> str:
        return (f"evidence store {self.name}: {self.read} cells read, {self.computed} computed; "
                f"{len(self.spot_checked)} recomputed and identical bit for bit")


@dataclass(frozen=True)
class Recomputation:
    """What `recompute_store` found: cells recomputed and those whose numbers changed."""

    name: str
    cells: int
    changed: tuple[str, ...]


def _non_default(section: Mapping[str, Any], fields: Mapping[str, tuple[Any, Any, str]]
                 ) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k not in fields or v != fields[k][1]}


def evidence_id(cell: sweep.Cell) -> str:
    """SHA-256 of a cell's parameters (problem, run, seed; fields at their default left out)."""
    text = json.dumps({"problem": _non_default(cell.problem, sweep.PROBLEM_FIELDS),
                       "run": _non_default(cell.run, sweep.RUN_FIELDS), "seed": cell.seed},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def store_path(name: str, root: Path | None = None) -> Path:
    """``<root>/evidence/<name>.parquet``; ``name`` a plain file stem (letters, digits, _ -)."""
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"name must be a non-empty file stem of letters, digits, '_' and '-'; "
                         f"got {name!r}")
    return reports.evidence_store_path(root or reports.project_root(), name)


def store_names(root: Path | None = None) -> list[str]:
    """The names of the stores under ``<root>/evidence``, sorted."""
    folder = (root or reports.project_root()) / reports.EVIDENCE_FOLDER
    return sorted(p.stem for p in folder.glob("*.parquet"))


def _require_exact_arithmetic() -> None:
    from ptdlib import _kernels

    if _kernels.FASTMATH:
        raise RuntimeError("the evidence store holds exact-arithmetic results only: unset "
                           "PTD_FASTMATH (README, Same seed, same numbers)")


def _trace_columns(table: pd.DataFrame) -> pd.DataFrame:
    from ptdlib import simulate

    return table[[*TRACE_COLUMNS, *(m for m in simulate.METRICS if m in table.columns)]]


def _compute(cells: Sequence[sweep.Cell], scheduler: str | None, workers: int | None,
             progress: bool) -> dict[str, pd.DataFrame]:
    """Each cell's trace rows by evidence id, run here or on a Dask cluster."""
    if not cells:
        return {}
    if scheduler is None and workers is None:
        table = sweep.run_cells(cells, progress=progress)
    else:
        with tempfile.TemporaryDirectory(prefix="ptd-evidence-") as scratch:
            table = sweep.run_cells(cells, Path(scratch), scheduler=scheduler, workers=workers,
                                    progress=progress)
    by_key = dict(iter(table.groupby("cell", sort=False)))
    return {evidence_id(c): _trace_columns(by_key[c.key]).reset_index(drop=True) for c in cells}


def _metadata(table: pa.Table) -> dict[str, Any]:
    return json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}"))


def read_store(path: Path) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]]]:
    """A store's cells (evidence id -> trace rows) and their parameters, in stored order.

    Empty if the file does not exist; ValueError for another `FORMAT` (``ptd evidence``
    rewrites such a store).
    """
    if not path.exists():
        return {}, []
    table = pq.read_table(path)
    meta = _metadata(table)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: evidence store format {meta.get('format')!r}, this ptdlib "
                         f"reads format {FORMAT}; recompute it with `ptd evidence`")
    frame = table.to_pandas()
    cells = {key: rows.drop(columns="evidence_id").reset_index(drop=True)
             for key, rows in frame.groupby("evidence_id", sort=False)}
    return cells, [parameters for _, parameters in meta["cells"]]


def _provenance() -> dict[str, Any]:
    return {"ptdlib_version": ptdlib.__version__,
            "ptdlib_sources": reports.ptdlib_source_hash(),
            "numpy": np.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "kernel_arithmetic": "exact IEEE"}


def _write_store(path: Path, parameters: Sequence[dict[str, Any]],
                 rows: Mapping[str, pd.DataFrame]) -> None:
    """The cells of ``parameters`` in this order, with the provenance, atomically."""
    ids = [evidence_id(_cell_from(p)) for p in parameters]
    frame = pd.concat([rows[i].assign(evidence_id=i) for i in ids], ignore_index=True)
    frame = frame[["evidence_id", *[c for c in frame.columns if c != "evidence_id"]]]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {"format": FORMAT, "cells": [[i, p] for i, p in zip(ids, parameters, strict=True)],
            "provenance": _provenance()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           METADATA_KEY: json.dumps(meta, sort_keys=True)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep.write_atomic(path, buffer.getvalue())


def _parameters(cell: sweep.Cell) -> dict[str, Any]:
    return {"problem": dict(cell.problem), "run": dict(cell.run), "seed": cell.seed}


def _cell_from(parameters: Mapping[str, Any]) -> sweep.Cell:
    """The cell of stored parameters, with fields added since then at their defaults."""
    spec = sweep.parse_spec({"problem": parameters["problem"], "run": parameters["run"],
                             "seeds": [parameters["seed"]]})
    return spec.cells()[0]


def _first_difference(stored: pd.DataFrame, fresh: pd.DataFrame) -> str | None:
    """The first column whose values are not the same bits (NaN equal to NaN), or None."""
    if list(stored.columns) != list(fresh.columns) or len(stored) != len(fresh):
        return (f"shape or columns differ ({len(stored)} rows {list(stored.columns)} stored, "
                f"{len(fresh)} rows {list(fresh.columns)} now)")
    for column in stored.columns:
        a, b = stored[column].to_numpy(), fresh[column].to_numpy()
        if a.dtype != b.dtype or a.tobytes() != b.tobytes():
            if a.dtype.kind == "f" and b.dtype.kind == "f" and np.array_equal(
                    np.isnan(a), np.isnan(b)):
                gap = np.nanmax(np.abs(a - b), initial=0.0)
                return f"column {column!r} (largest difference {gap:.3g})"
            return f"column {column!r}"
    return None


def _default_spot_seed() -> int:
    return int(reports.ptdlib_source_hash()[:8], 16)


def _spot_sample(ids: Sequence[str], fraction: float, seed: int) -> list[str]:
    """``ceil(fraction * len(ids))`` ids drawn without replacement (from the sorted ids, so the
    sample does not depend on the order the notebook lists its cells in)."""
    if not ids or fraction == 0.0:
        return []
    size = min(len(ids), math.ceil(fraction * len(ids)))
    pool = sorted(ids)
    picks = np.random.default_rng(seed).choice(len(pool), size=size, replace=False)
    return [pool[k] for k in sorted(picks)]


def gather(cells: Sequence[sweep.Cell], name: str, *, root: Path | None = None,
           spot_fraction: float = SPOT_FRACTION, spot_seed: int | None = None,
           scheduler: str | None = None, workers: int | None = None,
           progress: bool = True) -> Gathered:
    """The tables of ``cells`` from the store ``name``: read, spot-checked, computed if missing.

    Parameters
    ----------
    cells : sequence of sweep.Cell
        What the notebook reads (`sweep.parse_spec(...).cells()`); a cell listed twice is stored
        once and returned twice.
    name : str
        The store: ``<root>/evidence/<name>.parquet``.
    root : path, optional
        The project folder (default ``$PTD_ROOT``, else the folder holding ptdlib).
    spot_fraction : float in [0, 1], optional
        Share of the cells read from the store that are recomputed and compared bit for bit; at
        least one when any is read (0 disables the check).
    spot_seed : int, optional
        Seed of the sample; default derived from the hash of ptdlib's sources.
    scheduler, workers : optional
        Compute missing cells on a Dask cluster (`sweep.run_cells`); default in this process.
    progress : bool, optional
        Show tqdm bars.

    Returns
    -------
    Gathered

    Raises
    ------
    EvidenceMismatch
        A sampled stored cell differs from its recomputation (the message names it); the store
        is left as it was.
    RuntimeError
        With ``PTD_FASTMATH=1``.
    """
    _require_exact_arithmetic()
    if not 0.0 <= spot_fraction <= 1.0:
        raise ValueError(f"spot_fraction must be in [0, 1]; got {spot_fraction!r}")
    path = store_path(name, root)
    stored, stored_parameters = read_store(path)
    unique = {evidence_id(c): c for c in cells}
    read_ids = [i for i in unique if i in stored]
    seed = _default_spot_seed() if spot_seed is None else spot_seed
    spot = _spot_sample(read_ids, spot_fraction, seed)
    fresh = _compute([unique[i] for i in spot], None, None, progress=False)
    for i in spot:
        difference = _first_difference(stored[i], fresh[i])
        if difference is not None:
            raise EvidenceMismatch(
                f"evidence store {name}: cell {i[:12]} differs from its recomputation, "
                f"{difference}; cell {json.dumps(_parameters(unique[i]), sort_keys=True)}. The "
                "code changed its numbers: review the change, then recompute the store "
                "(`make evidence`).")
    missing = [c for i, c in unique.items() if i not in stored]
    computed = _compute(missing, scheduler, workers, progress)
    if computed:
        _write_store(path, [*stored_parameters, *(_parameters(c) for c in missing)],
                     {**stored, **computed})
    rows = {**stored, **computed}
    frame = pd.concat([rows[evidence_id(c)].assign(cell=c.key) for c in cells],
                      ignore_index=True)
    frame = frame[["cell", *[c for c in frame.columns if c != "cell"]]]
    return Gathered(name, frame, len(read_ids), len(computed), tuple(spot))


def recompute_store(name: str, *, root: Path | None = None, scheduler: str | None = None,
                    workers: int | None = None, progress: bool = True) -> Recomputation:
    """Recompute every cell of the store ``name`` from its metadata; rewrite it if any changed.

    A store of another `FORMAT` is recomputed whole (its cells all count as changed); the ids
    are derived again from the parameters. Returns the evidence ids of the cells whose numbers
    changed.
    """
    _require_exact_arithmetic()
    path = store_path(name, root)
    if not path.exists():
        raise ValueError(f"no evidence store {name!r} at {path}")
    try:
        stored, parameters = read_store(path)
    except ValueError:  # another format: its numbers cannot be trusted, only its parameters
        stored, parameters = {}, [p for _, p in _metadata(pq.read_table(path))["cells"]]
    cells = [_cell_from(p) for p in parameters]
    fresh = _compute(cells, scheduler, workers, progress)
    ids = [evidence_id(c) for c in cells]
    changed = tuple(i for i in ids if i not in stored
                    or _first_difference(stored[i], fresh[i]) is not None)
    if changed:
        _write_store(path, [_parameters(c) for c in cells], fresh)
    return Recomputation(name, len(ids), changed)
