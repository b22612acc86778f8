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
      # signal_states: 8  # optional: problems.product_chain_problem instead (with coupling)
      seed: 0             # the problem's rng (the same problem for every simulation seed)
    run:                  # arguments of simulate.run; a list is a grid axis
      algorithm: [personalized, local]
      steps: 2000
      step_size: 5.0e-2
      record_every: 200
      t0: 200.0           # optional: alpha_t = step_size / (t + t0) (schedules.inverse_time)
      warm_start: false   # optional: B_0 = B* (personalized and fedrep only)
      # readings (docs/algorithm.md; simulate.run's switches, same names and defaults):
      # update_order: heads_first, gain_update: td, head_radius: 2.0, retraction: polar,
      # representation_step_size: 1.0e-2 (beta, constant; with representation_t0: 50.0,
      # beta_t = representation_step_size / (t + representation_t0))
    seeds: 8              # simulation seeds 0..7 (or an explicit list)

Every combination of the axes and one simulation seed is a *cell*, run as one task by
`simulate.run` (one seed, so a cell's result does not depend on the other cells). A cell is
identified by the SHA-256 of its full parameters (every field, defaults filled in), the
package version and the SHA-256 of ptdlib's sources (a development install keeps its version
while its code changes). Its table (`simulate.Trace.to_frame` plus the cell's parameters) is
written to ``<out>/cells/<key>.parquet`` through a temporary name and an atomic rename, by the
client as results arrive. A re-run skips cells whose file exists, so a sweep killed at any
moment (kill -9 included) and started again loses nothing and duplicates nothing; the assembled
table ``<out>/table.parquet`` lists the cells in grid order and is bit-identical to an
uninterrupted run's.

Execution: by default a dask.distributed LocalCluster of spawned worker processes (numba's
OpenMP layer is not fork-safe; spawn is distributed's default) with one single-threaded worker
per core, scheduler and its HTTP endpoint bound to 127.0.0.1 and no dashboard; or an existing
cluster at ``scheduler`` (its workers must import the same ptdlib: a table whose key differs
from the client's is refused as a failure). One sweep per results folder at a time: a starting
sweep deletes the temporaries a killed one left there.

Notebooks use the same cells without the YAML: `parse_spec` on a dict builds each grid,
`run_cells` runs a list of cells (several grids at once) either in this process (one
vectorised run over the seeds of each grid point, no files) or on the cluster into a store, and
`records` turns a grid point's rows back into (seeds, records) arrays like a `simulate.Trace`.
Both ways give the same table bit for bit, because a seed's run does not depend on the seeds run
with it.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

import ptdlib
from ptdlib._validation import FloatArray, IntArray

if TYPE_CHECKING:
    from ptdlib.problems import Problem
    from ptdlib.simulate import Trace

__all__ = ["Cell", "Records", "SweepResult", "SweepSpec", "assemble", "build_problem",
           "load_spec", "parse_spec", "prepare_store", "records", "run_cell", "run_cells",
           "run_sweep", "spec_cells_summary", "store_path"]

#: Fields of each section: name -> (type, default, rule). Rules: "pos" >= 1, "nonneg" >= 0,
#: "gt0" > 0, "unit" in [0, 1], "lazy" in [0, 1), "" none. A default of ... means required.
PROBLEM_FIELDS: dict[str, tuple[type, Any, str]] = {
    "n_agents": (int, ..., "pos"), "n_states": (int, ..., "pos"), "dim": (int, ..., "pos"),
    "rank": (int, ..., "pos"), "heterogeneity": (float, 0.5, "unit"),
    "laziness": (float, 0.0, "lazy"), "reward_noise": (float, 0.0, "nonneg"),
    "misspecification": (float, 0.0, "nonneg"), "head_spread": (float, 1.0, "unit"),
    "balanced_heads": (bool, False, ""), "pool": (int, None, "pos"), "seed": (int, 0, "nonneg"),
    "signal_states": (int, None, "pos"), "coupling": (float, 0.0, "unit"),
}
#: Fields of the shared-subspace family that the product-chain family fixes (and their values).
PRODUCT_FIXED = {"laziness": 0.0, "misspecification": 0.0, "head_spread": 1.0,
                 "balanced_heads": True, "pool": None}
RUN_FIELDS: dict[str, tuple[type, Any, str]] = {
    "algorithm": (str, "personalized", ""), "steps": (int, ..., "pos"),
    "step_size": (float, ..., "gt0"), "record_every": (int, None, "pos"),
    "sampling": (str, "markov", ""), "communication_period": (int, 1, "pos"),
    "rebase_heads": (bool, False, ""), "c_eta": (float, 1.0, "gt0"),
    "c_B": (float, 1.0, "gt0"), "tau": (int, 1, "pos"), "t0": (float, None, "gt0"),
    "warm_start": (bool, False, ""), "update_order": (str, "simultaneous", ""),
    "gain_update": (str, "reward", ""), "head_radius": (float, None, "gt0"),
    "retraction": (str, "qr", ""), "representation_step_size": (float, None, "gt0"),
    "representation_t0": (float, None, "gt0"),
}
#: The algorithms that take an initial basis (simulate.run's init_subspace): warm_start's scope.
WARM_STARTABLE = ("personalized", "fedrep")
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
        """SHA-256 of the cell's parameters, the package version and its sources: its file name.

        The sources count because a development install keeps its version while the code
        changes: a store must never answer with results of other code.
        """
        text = json.dumps({"problem": dict(self.problem), "run": dict(self.run),
                           "seed": self.seed, "version": ptdlib.__version__,
                           "sources": _source_hash()}, sort_keys=True)
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


@dataclass(frozen=True, eq=False)
class Records:
    """The records of a group of cells that differ only in their seed, as arrays (seed first).

    The metrics follow `simulate.Trace`: None for a metric the method does not have (no such
    column, or only NaN in these rows: a table mixing methods fills the gaps with NaN), and a
    seed's records from its divergence on are NaN.
    """

    seeds: IntArray
    record_steps: IntArray
    diverged: np.ndarray
    subspace_distance: FloatArray | None
    subspace_distance_frobenius: FloatArray | None
    parameter_error: FloatArray
    relative_parameter_error: FloatArray
    head_error: FloatArray | None
    gain_error: FloatArray


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
    from ptdlib import simulate, steps

    for name, options in (("algorithm", simulate.ALGORITHMS), ("sampling", simulate.SAMPLINGS),
                          ("update_order", steps.UPDATE_ORDERS),
                          ("gain_update", steps.GAIN_UPDATES),
                          ("retraction", steps.RETRACTIONS)):
        for value in run[name]:
            if value not in options:
                raise ValueError(f"sweep spec: run.{name} must be one of {', '.join(options)}; "
                                 f"got {value!r}")
    scopes = {"warm_start": WARM_STARTABLE, **simulate.READING_SCOPE}
    for name, scope in scopes.items():
        default = RUN_FIELDS[name][1]
        given = [value for value in run[name] if value != default]
        for algorithm in run["algorithm"] if given else ():
            if algorithm not in scope:
                raise ValueError(f"sweep spec: run.{name} applies to {_listing(scope)} only; "
                                 f"got {name}={given[0]!r} with run.algorithm {algorithm!r}")
    _check_basis_schedule(run)


def _listing(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _check_basis_schedule(run: Mapping[str, tuple[Any, ...]]) -> None:
    """representation_t0 needs representation_step_size, which replaces c_B alpha (c_B = 1)."""
    if run["representation_step_size"] == (None,):
        if run["representation_t0"] != (None,):
            raise ValueError(f"sweep spec: run.representation_t0 needs "
                             f"run.representation_step_size; got representation_t0="
                             f"{run['representation_t0'][0]!r} without it")
        return
    for c_B in run["c_B"]:
        if c_B != 1.0:
            raise ValueError(f"sweep spec: run.c_B must be 1.0 with run.representation_step_size "
                             f"(beta_t replaces c_B alpha_t); got {c_B!r}")


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


def build_problem(problem: Mapping[str, Any]) -> Problem:
    """The problem of a cell's ``problem`` section.

    ``shared_subspace_problem(pool or n_agents, ..., rng=seed)``, replicated to ``n_agents`` by
    `Problem.from_pool` when ``pool`` is set (for ``n_agents <= pool`` that is the pool's first
    agents, i.e. `Problem.subset`). With ``signal_states`` set, ``product_chain_problem`` (the
    misalignment family: ``coupling`` sets chi; the fields of `PRODUCT_FIXED` must keep their
    values). Fields left out take their defaults (`PROBLEM_FIELDS`).
    """
    from ptdlib import problems

    p = {name: default for name, (_, default, _) in PROBLEM_FIELDS.items()
         if default is not ...} | dict(problem)
    signal_states, coupling = p.pop("signal_states"), p.pop("coupling")
    if signal_states is not None:
        fixed = {name: p[name] for name, value in PRODUCT_FIXED.items() if p[name] != value}
        if fixed:
            raise ValueError(f"sweep spec: the product-chain family (signal_states set) fixes "
                             f"{PRODUCT_FIXED}; got {fixed}")
        return problems.product_chain_problem(
            p["n_agents"], p["n_states"], p["dim"], p["rank"], signal_states=signal_states,
            coupling=coupling, heterogeneity=p["heterogeneity"],
            reward_noise=p["reward_noise"], rng=p["seed"])
    if coupling != 0.0:
        raise ValueError(f"sweep spec: problem.coupling needs problem.signal_states (the "
                         f"product-chain family); got coupling={coupling}")
    size, pool, seed = p.pop("n_agents"), p.pop("pool"), p.pop("seed")
    base = problems.shared_subspace_problem(pool or size, p.pop("n_states"), p.pop("dim"),
                                            p.pop("rank"), rng=seed, **p)
    return problems.Problem.from_pool(base, size) if pool else base


def _simulate(problem: Problem, run: Mapping[str, Any], seeds: Sequence[int]) -> Trace:
    """`simulate.run` with a cell's ``run`` section, for the given simulation seeds."""
    from ptdlib import schedules, simulate

    opts = dict(run)
    t0, warm = opts.pop("t0"), opts.pop("warm_start")
    if t0 is not None:
        opts["step_size"] = schedules.inverse_time(opts["step_size"], t0)
    beta_t0 = opts.pop("representation_t0")
    if beta_t0 is not None:
        opts["representation_step_size"] = schedules.inverse_time(
            opts["representation_step_size"], beta_t0)
    return simulate.run(problem, opts.pop("algorithm"), seeds=list(seeds),
                        init_subspace=problem.B_star if warm else None, **opts)


def _cell_tables(cells: Sequence[Cell], trace: Trace) -> list[bytes]:
    """Each cell's rows of ``trace`` with its parameters, as Parquet (cell i ran seed i).

    A seed's rows do not depend on the seeds run with it (`simulate.run`), so one run over the
    seeds of cells sharing problem and run gives the tables of one run per cell, bit for bit.
    """
    frame = trace.to_frame()
    tables = []
    for cell in cells:
        rows = frame[frame["seed"] == cell.seed].reset_index(drop=True)
        for name, value in {**cell.problem, **cell.run}.items():
            if name not in rows:
                rows[name] = value
        rows.insert(0, "cell", cell.key)
        buffer = io.BytesIO()
        rows.to_parquet(buffer, index=False)
        tables.append(buffer.getvalue())
    return tables


def run_cell(cell: Cell) -> bytes:
    """Run one cell and return its table as Parquet bytes (the task a worker executes)."""
    return _cell_tables([cell], _simulate(build_problem(cell.problem), cell.run, [cell.seed]))[0]


def _run_in_process(cells: Sequence[Cell], progress: bool) -> dict[str, bytes]:
    """Every cell's table by key: one vectorised run per group sharing problem and run."""
    from tqdm import tqdm

    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(_settings_key(cell), []).append(cell)
    problems_built: dict[str, Problem] = {}
    tables = {}
    for group in tqdm(groups.values(), unit="run", desc="runs", disable=not progress):
        problem_key = json.dumps(dict(group[0].problem), sort_keys=True)
        if problem_key not in problems_built:
            problems_built[problem_key] = build_problem(group[0].problem)
        trace = _simulate(problems_built[problem_key], group[0].run, [c.seed for c in group])
        tables |= dict(zip((c.key for c in group), _cell_tables(group, trace), strict=True))
    return tables


def _settings_key(cell: Cell) -> str:
    return json.dumps({"problem": dict(cell.problem), "run": dict(cell.run)}, sort_keys=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, flush to disk, rename into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would make a committed store private
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
    return _stored_table(spec.cells(), Path(out) / "cells")


def _stored_table(cells: Sequence[Cell], cells_dir: Path) -> pd.DataFrame:
    frames = [pd.read_parquet(cells_dir / f"{c.key}.parquet") for c in cells
              if (cells_dir / f"{c.key}.parquet").exists()]
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


def _check_workers(workers: int | None) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an int >= 1; got {workers!r}")


def _missing(cells: Sequence[Cell], cells_dir: Path) -> list[Cell]:
    """The cells without a file in the store, each key once, in order."""
    unique = {c.key: c for c in cells}
    return [c for key, c in unique.items() if not (cells_dir / f"{key}.parquet").exists()]


def _run_on_cluster(todo: Sequence[Cell], cells_dir: Path, scheduler: str | None,
                    workers: int | None, progress_total: int) -> list[str]:
    """Run ``todo`` as Dask tasks, writing each finished cell's file as it arrives.

    ``progress_total`` is the size of the whole grid for the progress bar (0: no bar); returns
    "<key>: <error>" for each cell that raised (no file is written for it).
    """
    from distributed import as_completed
    from tqdm import tqdm

    failures = []
    with _client(scheduler, workers) as client:
        futures = {client.submit(run_cell, c, key=f"ptd-cell-{c.key}", pure=False): c
                   for c in todo}
        bar = tqdm(total=progress_total, initial=progress_total - len(todo), unit="cell",
                   desc="cells", disable=not progress_total)
        for future in as_completed(futures):
            cell = futures[future]
            if future.status == "error":
                failures.append(f"{cell.key[:12]}: {future.exception()!r}")
            else:
                data = future.result()  # fetched once: each call gathers it from the worker
                keys = set(pd.read_parquet(io.BytesIO(data), columns=["cell"])["cell"])
                if keys == {cell.key}:
                    write_atomic(cells_dir / f"{cell.key}.parquet", data)
                else:
                    failures.append(f"{cell.key[:12]}: the worker runs another ptdlib version "
                                    "or other sources than this client (its cell key differs)")
            future.release()
            bar.update()
        bar.close()
    return failures


def run_cells(cells: Sequence[Cell], store: Path | None = None, *, scheduler: str | None = None,
              workers: int | None = None, progress: bool = True) -> pd.DataFrame:
    """The tables of ``cells``, in their order: in this process, or as Dask tasks into a store.

    Notebooks build their cells with `parse_spec` (one or more grids) and read the result with
    `records`; either way of running gives the same table, bit for bit.

    Parameters
    ----------
    cells : sequence of Cell
        What to run (a cell listed twice is run once and appears twice).
    store : path, optional
        None (default): run here, one vectorised `simulate.run` per group of cells sharing
        problem and run, nothing written. A folder: the results store of `run_sweep` (cells
        already there are read, the others run on the Dask cluster and are written as they
        finish), so a killed computation resumes where it stopped.
    scheduler, workers : optional
        As in `run_sweep` (used with ``store`` only).
    progress : bool, optional
        Show a tqdm bar (runs here, cells on the cluster).

    Returns
    -------
    pandas.DataFrame
        The cells' tables (`run_cell`) concatenated in the order of ``cells``.

    Raises
    ------
    RuntimeError
        If a cell raised on the cluster (the finished cells stay in the store).
    """
    _check_workers(workers)
    if store is None:
        tables = _run_in_process(list({c.key: c for c in cells}.values()), progress)
        frames = [pd.read_parquet(io.BytesIO(tables[c.key])) for c in cells]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    fresh = not Path(store).exists()
    cells_dir = prepare_store(Path(store))
    todo = _missing(cells, cells_dir)
    if todo:
        with _cleanup_if_unused(Path(store) if fresh else None):
            failures = _run_on_cluster(todo, cells_dir, scheduler, workers,
                                       len(todo) if progress else 0)
        if failures:
            raise RuntimeError(f"{len(failures)} of {len(todo)} cells failed; first: "
                               f"{failures[0]}")
    return _stored_table(cells, cells_dir)


def records(table: pd.DataFrame, cells: Sequence[Cell]) -> Records:
    """The rows of ``cells`` in ``table`` (from `run_cells`) as (seeds, records) arrays.

    ``cells`` must share problem and run (one grid point, one cell per seed); the record steps
    are those any of them reached, and seed s's row is ``cells[s]``.
    """
    from ptdlib import simulate

    settings = {_settings_key(c) for c in cells}
    if len(settings) != 1:
        raise ValueError("cells must be a non-empty group sharing problem and run (one seed "
                         f"each); got {len(cells)} cells over {len(settings)} settings")
    keys = [c.key for c in cells]
    rows = table[table["cell"].isin(keys)]
    missing = sorted(set(keys) - set(rows["cell"]))
    if missing:
        raise ValueError(f"cells: {len(missing)} of {len(keys)} are not in the table (first "
                         f"{missing[0][:12]})")
    seed_index = pd.Index(keys).get_indexer(rows["cell"])
    steps = np.unique(rows["step"].to_numpy())
    step_index = np.searchsorted(steps, rows["step"].to_numpy())

    def grid(column: str) -> FloatArray | None:
        if column not in rows or rows[column].isna().all():
            return None
        values = np.full((len(keys), steps.size), np.nan)
        values[seed_index, step_index] = rows[column].to_numpy()
        return values

    diverged = np.zeros(len(keys), dtype=bool)
    diverged[seed_index] = rows["diverged"].to_numpy()
    return Records(np.array([c.seed for c in cells]), steps, diverged,
                   **{name: grid(name) for name in simulate.METRICS})


def store_path(text: str) -> Path | None:
    """A notebook's ``sweep_store`` parameter as a folder; "" means run in this process (None).

    A relative path resolves against ``$PTD_ROOT`` (which `ptd run` sets to the project folder,
    since the notebook's working directory is its staging folder), else the working directory.
    """
    if not isinstance(text, str):
        raise ValueError(f"sweep_store must be a path string (\"\" to run in this process); "
                         f"got {text!r}")
    if not text:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() else Path(os.environ.get("PTD_ROOT") or ".") / path


@functools.cache
def _source_hash() -> str:
    """SHA-256 of ptdlib's sources, computed once per process."""
    from ptdlib import reports

    return reports.ptdlib_source_hash()


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
    _check_workers(workers)
    fresh = not Path(out).exists()
    cells_dir = prepare_store(out)
    cells = spec.cells()
    todo = _missing(cells, cells_dir)
    failures: list[str] = []
    if todo:
        with _cleanup_if_unused(Path(out) if fresh else None):
            failures = _run_on_cluster(todo, cells_dir, scheduler, workers,
                                       len(cells) if progress else 0)
    table = Path(out) / "table.parquet"
    buffer = io.BytesIO()
    assemble(spec, out).to_parquet(buffer, index=False)
    write_atomic(table, buffer.getvalue())
    return SweepResult(table, len(cells), len(todo), len(cells) - len(todo), tuple(failures))


def spec_cells_summary(spec: SweepSpec) -> str:
    """One line: number of cells and the axes."""
    return f"{len(spec.cells())} cells over {', '.join(spec.axes) or 'no axes'} x seeds"
