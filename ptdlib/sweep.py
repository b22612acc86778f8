"""Parameter sweeps: a YAML grid of simulations run as Dask tasks into a resumable results store.

Primer
------
A sweep spec is a YAML mapping with three keys::

    problem:              # arguments of problems.shared_subspace_problem; a list is a grid axis
      n_agents: [1, 16, 256]
      n_states: 10
      dim: 6
      rank: 2
      pool: 64            # optional: agent i uses pool agent i mod 64 (Problem.from_pool)
      seed: 0             # the problem's rng (the same problem for every simulation seed)
    run:                  # arguments of simulate.run; a list is a grid axis
      algorithm: [personalized, local]
      steps: 2000
      step_size: 5.0e-2
      record_every: 200
      t0: 200.0           # optional: alpha_t = step_size / (t + t0) (schedules.inverse_time)
    seeds: 8              # simulation seeds 0..7 (or an explicit list)

Every combination of the axes and one simulation seed is a *cell*, run as one task by
`simulate.run` (one seed, so a cell's result does not depend on the other cells). A cell is
identified by the SHA-256 of its full parameters (every field, defaults filled in) and the
package version; its table (`simulate.Trace.to_frame` plus the cell's parameters) is written to
``<out>/cells/<key>.parquet`` through a temporary name and an atomic rename, by the client as
results arrive. A re-run skips cells whose file exists, so a sweep killed at any moment (kill
-9 included) and started again loses nothing and duplicates nothing; the assembled table
``<out>/table.parquet`` lists the cells in grid order and is bit-identical to an uninterrupted
run's.

Execution: by default a dask.distributed LocalCluster of spawned worker processes (numba's
OpenMP layer is not fork-safe; spawn is distributed's default) with one single-threaded worker
per core, scheduler and its HTTP endpoint bound to 127.0.0.1 and no dashboard; or an existing
cluster at ``scheduler`` (its workers must import the same ptdlib). One sweep per results
folder at a time: a starting sweep deletes the temporaries a killed one left there.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

import ptdlib

__all__ = ["Cell", "SweepResult", "SweepSpec", "assemble", "load_spec", "parse_spec",
           "prepare_store", "run_cell", "run_sweep", "spec_cells_summary"]

#: Fields of each section: name -> (type, default, rule). Rules: "pos" >= 1, "nonneg" >= 0,
#: "gt0" > 0, "unit" in [0, 1], "lazy" in [0, 1), "" none. A default of ... means required.
PROBLEM_FIELDS: dict[str, tuple[type, Any, str]] = {
    "n_agents": (int, ..., "pos"), "n_states": (int, ..., "pos"), "dim": (int, ..., "pos"),
    "rank": (int, ..., "pos"), "heterogeneity": (float, 0.5, "unit"),
    "laziness": (float, 0.0, "lazy"), "reward_noise": (float, 0.0, "nonneg"),
    "misspecification": (float, 0.0, "nonneg"), "head_spread": (float, 1.0, "unit"),
    "pool": (int, None, "pos"), "seed": (int, 0, "nonneg"),
}
RUN_FIELDS: dict[str, tuple[type, Any, str]] = {
    "algorithm": (str, "personalized", ""), "steps": (int, ..., "pos"),
    "step_size": (float, ..., "gt0"), "record_every": (int, None, "pos"),
    "sampling": (str, "markov", ""), "communication_period": (int, 1, "pos"),
    "rebase_heads": (bool, False, ""), "c_eta": (float, 1.0, "gt0"),
    "c_B": (float, 1.0, "gt0"), "tau": (int, 1, "pos"), "t0": (float, None, "gt0"),
}
RULES = {"pos": (lambda v: v >= 1, ">= 1"), "nonneg": (lambda v: v >= 0, ">= 0"),
         "gt0": (lambda v: v > 0, "> 0"), "unit": (lambda v: 0 <= v <= 1, "in [0, 1]"),
         "lazy": (lambda v: 0 <= v < 1, "in [0, 1)"), "": (lambda v: True, "")}
CONNECT_TIMEOUT_S = 5
LOCAL_HTTP = "127.0.0.1:0"


@dataclass(frozen=True)
class Cell:
    """One task: full problem and run parameters and one simulation seed."""

    problem: Mapping[str, Any]
    run: Mapping[str, Any]
    seed: int

    @property
    def key(self) -> str:
        """SHA-256 of the cell's parameters and the package version: its file name."""
        text = json.dumps({"problem": dict(self.problem), "run": dict(self.run),
                           "seed": self.seed, "version": ptdlib.__version__}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class SweepSpec:
    """A validated spec: the grid axes of each section and the simulation seeds."""

    problem: Mapping[str, tuple[Any, ...]]
    run: Mapping[str, tuple[Any, ...]]
    seeds: tuple[int, ...]

    def cells(self) -> list[Cell]:
        """Every cell in grid order: problem axes, then run axes, then seeds (last fastest)."""
        problems = [dict(zip(self.problem, v, strict=True))
                    for v in itertools.product(*self.problem.values())]
        runs = [dict(zip(self.run, v, strict=True)) for v in itertools.product(*self.run.values())]
        return [Cell(p, r, s) for p in problems for r in runs for s in self.seeds]

    @property
    def axes(self) -> list[str]:
        """Names of the fields that vary (lists in the spec), as table columns."""
        return [n for section in (self.problem, self.run) for n, v in section.items()
                if len(v) > 1]


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did: the table's path, cells run now, cells found finished, failures."""

    table: Path
    n_cells: int
    n_ran: int
    n_skipped: int
    failures: tuple[str, ...]


def _check_value(section: str, name: str, value: Any, kind: type, rule: str) -> Any:
    """One value of a field, type-checked (no bool for numbers) and rule-checked."""
    field = f"{section}.{name}"
    ok_type = (isinstance(value, bool) if kind is bool else
               isinstance(value, int) and not isinstance(value, bool) if kind is int else
               isinstance(value, int | float) and not isinstance(value, bool) if kind is float
               else isinstance(value, kind))
    if not ok_type:
        raise ValueError(f"sweep spec: {field} must be {kind.__name__}; got {value!r}")
    check, text = RULES[rule]
    if not check(value):
        raise ValueError(f"sweep spec: {field} must be {text}; got {value!r}")
    return float(value) if kind is float else value


def _section(raw: Any, section: str,
             fields: Mapping[str, tuple[type, Any, str]]) -> dict[str, tuple[Any, ...]]:
    """A section's axes: each field a tuple of values (scalars become one-value axes)."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"sweep spec: {section} must be a mapping; got {raw!r}")
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ValueError(f"sweep spec: unknown key {section}.{unknown[0]} (known: "
                         f"{', '.join(fields)})")
    axes = {}
    for name, (kind, default, rule) in fields.items():
        if name not in raw and default is ...:
            raise ValueError(f"sweep spec: {section}.{name} is required")
        value = raw.get(name, default)
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ValueError(f"sweep spec: {section}.{name} is an empty list")
        axes[name] = tuple(v if v is None else _check_value(section, name, v, kind, rule)
                           for v in values)
    return axes


def _check_choices(run: Mapping[str, tuple[Any, ...]]) -> None:
    from ptdlib import simulate

    for name, options in (("algorithm", simulate.ALGORITHMS), ("sampling", simulate.SAMPLINGS)):
        for value in run[name]:
            if value not in options:
                raise ValueError(f"sweep spec: run.{name} must be one of {', '.join(options)}; "
                                 f"got {value!r}")


def _check_sizes(problem: Mapping[str, tuple[Any, ...]]) -> None:
    for dim, rank in itertools.product(problem["dim"], problem["rank"]):
        if rank > dim:
            raise ValueError(f"sweep spec: problem.rank must be <= problem.dim ({dim}); "
                             f"got {rank}")
    for n_states, dim in itertools.product(problem["n_states"], problem["dim"]):
        if dim > n_states - 1:
            raise ValueError(f"sweep spec: problem.dim must be <= problem.n_states - 1 "
                             f"({n_states - 1}); got {dim}")


def _seeds(raw: Any) -> tuple[int, ...]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 1:
            raise ValueError(f"sweep spec: seeds must be >= 1 (a count) or a list; got {raw!r}")
        return tuple(range(raw))
    if (not isinstance(raw, list) or not raw
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in raw)
            or len(set(raw)) != len(raw)):
        raise ValueError(f"sweep spec: seeds must be a count >= 1 or a list of distinct ints "
                         f">= 0; got {raw!r}")
    return tuple(raw)


def parse_spec(raw: Any) -> SweepSpec:
    """Validate a parsed YAML spec; ValueError naming the field and the value otherwise."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"sweep spec: must be a mapping with problem, run, seeds; got {raw!r}")
    unknown = sorted(set(raw) - {"problem", "run", "seeds"})
    if unknown:
        raise ValueError(f"sweep spec: unknown key {unknown[0]!r} (known: problem, run, seeds)")
    for name in ("problem", "run", "seeds"):
        if name not in raw:
            raise ValueError(f"sweep spec: {name} is required")
    problem = _section(raw["problem"], "problem", PROBLEM_FIELDS)
    run = _section(raw["run"], "run", RUN_FIELDS)
    _check_choices(run)
    _check_sizes(problem)
    return SweepSpec(problem, run, _seeds(raw["seeds"]))


def load_spec(path: Path) -> SweepSpec:
    """Read and validate a YAML spec file; ValueError (one line) for any problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"sweep spec: cannot read {path}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"sweep spec: malformed YAML in {path}{where}: "
                         f"{getattr(exc, 'problem', exc)}") from exc
    return parse_spec(raw)


def run_cell(cell: Cell) -> bytes:
    """Run one cell and return its table as Parquet bytes (the task a worker executes)."""
    from ptdlib import problems, schedules, simulate

    p = dict(cell.problem)
    size, pool, seed = p.pop("n_agents"), p.pop("pool"), p.pop("seed")
    base = problems.shared_subspace_problem(pool or size, p.pop("n_states"), p.pop("dim"),
                                            p.pop("rank"), rng=seed, **p)
    problem = problems.Problem.from_pool(base, size) if pool else base
    opts = dict(cell.run)
    t0 = opts.pop("t0")
    if t0 is not None:
        opts["step_size"] = schedules.inverse_time(opts["step_size"], t0)
    trace = simulate.run(problem, opts.pop("algorithm"), seeds=[cell.seed], **opts)
    frame = trace.to_frame()
    for name, value in {**cell.problem, **cell.run}.items():
        if name not in frame:
            frame[name] = value
    frame.insert(0, "cell", cell.key)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, flush to disk, rename into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_store(out: Path) -> Path:
    """Create ``out/cells``, check it is writable and drop temporaries of a killed run."""
    cells = Path(out) / "cells"
    try:
        cells.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=cells, prefix=".probe-", suffix=".tmp")  # noqa: SIM115
        probe.close()
    except OSError as exc:
        raise ValueError(f"out: folder {str(out)!r} is not writable ({exc.strerror})") from exc
    for stale in cells.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    return cells


def assemble(spec: SweepSpec, out: Path) -> pd.DataFrame:
    """The finished cells' tables in grid order, one frame (missing cells left out)."""
    cells = Path(out) / "cells"
    frames = [pd.read_parquet(cells / f"{c.key}.parquet") for c in spec.cells()
              if (cells / f"{c.key}.parquet").exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@contextmanager
def _cleanup_if_unused(out: Path | None) -> Iterator[None]:
    """Remove the (still empty) store created by this run when no cell could be started."""
    try:
        yield
    except ValueError:
        if out is not None and not any((out / "cells").iterdir()):
            (out / "cells").rmdir()
            out.rmdir()
        raise


@contextmanager
def _client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A distributed Client: to ``scheduler``, or to a new LocalCluster on 127.0.0.1."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ValueError(f"scheduler: no Dask scheduler answers at {scheduler!r} within "
                             f"{CONNECT_TIMEOUT_S} s") from exc
        with client:
            yield client
        return
    # One single-threaded worker per core: numba inside a cell must not oversubscribe. No
    # dashboard; the scheduler's health endpoint takes a free port (its default 8787 may be
    # taken by another cluster, which distributed reports with a warning).
    # Spawned, not forked, workers (distributed's default, pinned here): numba's OpenMP
    # threading layer is not fork-safe.
    with dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}), \
            LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                         processes=True, host="127.0.0.1", dashboard_address=None,
                         scheduler_kwargs={"dashboard_address": LOCAL_HTTP},
                         env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}) as cluster, \
            Client(cluster) as client:
        yield client


def run_sweep(spec: SweepSpec, out: Path, *, scheduler: str | None = None,
              workers: int | None = None, progress: bool = True) -> SweepResult:
    """Run the cells of ``spec`` not yet in ``out/cells``, then write ``out/table.parquet``.

    Parameters
    ----------
    spec : SweepSpec
        From `load_spec` or `parse_spec`.
    out : path
        Results folder (created). Finished cells found there are skipped.
    scheduler : str, optional
        Address of an existing Dask scheduler; default a LocalCluster on this machine.
    workers : int, optional
        Workers of the LocalCluster (default one per core); ignored with ``scheduler``.
    progress : bool, optional
        Show a tqdm bar of cells done with the time left.

    Returns
    -------
    SweepResult
        ``failures`` lists "<key>: <error>" for cells that raised (their files are not written).
    """
    from distributed import as_completed
    from tqdm import tqdm

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an int >= 1; got {workers!r}")
    fresh = not Path(out).exists()
    cells_dir = prepare_store(out)
    cells = spec.cells()
    todo = [c for c in cells if not (cells_dir / f"{c.key}.parquet").exists()]
    failures = []
    if todo:
        with _cleanup_if_unused(Path(out) if fresh else None), \
                _client(scheduler, workers) as client:
            futures = {client.submit(run_cell, c, key=f"ptd-cell-{c.key}", pure=False): c
                       for c in todo}
            bar = tqdm(total=len(cells), initial=len(cells) - len(todo), unit="cell",
                       desc="cells", disable=not progress)
            for future in as_completed(futures):
                cell = futures[future]
                if future.status == "error":
                    failures.append(f"{cell.key[:12]}: {future.exception()!r}")
                else:
                    _write_atomic(cells_dir / f"{cell.key}.parquet", future.result())
                future.release()
                bar.update()
            bar.close()
    table = Path(out) / "table.parquet"
    buffer = io.BytesIO()
    assemble(spec, out).to_parquet(buffer, index=False)
    _write_atomic(table, buffer.getvalue())
    return SweepResult(table, len(cells), len(todo), len(cells) - len(todo), tuple(failures))


def spec_cells_summary(spec: SweepSpec) -> str:
    """One line: number of cells and the axes."""
    return f"{len(spec.cells())} cells over {', '.join(spec.axes) or 'no axes'} x seeds"
