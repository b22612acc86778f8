"""The ``ptd`` command: run the notebooks headless into ``reports/`` and build the report index.

Usage (exit 0 on success, 1 when a check fails or a notebook errors, 2 on bad input)::

    ptd run [NOTEBOOK ...] [--profile quick|paper] [-p NAME VALUE ...] [--jobs N] [--out DIR]
    ptd report [--out DIR]
    ptd sweep SPEC.yaml [--out DIR] [--scheduler ADDRESS] [--workers N]
    ptd evidence [NAME ...] [--scheduler ADDRESS] [--workers N]
    ptd figures [--out DIR]
    ptd warm

``ptd figures`` gathers the slide version of every key figure (16:9, large fonts, saved by
the notebooks next to the figure as ``slides/<name>.png``) into
``reports/slides/<stem>-<name>.png``.
``ptd warm`` compiles the simulator's kernels into numba's on-disk cache, so that a notebook
opened afterwards (in class) runs its first simulation without the compile pause.

``ptd evidence`` recomputes every cell of the committed evidence stores
(``evidence/<NAME>.parquet``; none named = all, see ``ptdlib.evidence``), rewrites them and lists
the cells whose numbers changed (exit 0 either way; the notebooks then read the new numbers).
``NOTEBOOK`` is a stem of ``notebooks/`` (``02_mixing``) or a path to an ``.ipynb``; none means
all. A check registered as a known failure (``CheckTable.expect_failure``, see ``ptdlib.checks``)
that fails is listed with its reason but does not fail the run; one that passes does. Profile
``quick`` runs the notebook's own defaults, ``paper`` the values of
``notebooks/params/<stem>.paper.yaml``; ``-p`` overrides one parameter (read as YAML, then
type-checked against the default's kind, see ``ptdlib.notebook_params``). Names and values are
all checked before anything runs. ``--out`` replaces ``reports/``; the hidden ``--root`` (or the
``PTD_ROOT`` environment variable) points at another project folder holding ``notebooks/``.

The notebook protocol
---------------------
1. One ``parameters`` cell of flat literals with ``seed`` (int) and ``output_dir = ""``.
2. The runner executes the notebook with papermill (kernel ``python3``, progress bar over
   notebooks) in a fresh staging folder ``reports/.staging-<stem>-*/``, which is also the
   kernel's working directory, and injects ``output_dir = "."``.
3. The notebook writes through ``reports.NotebookOutput(output_dir, "<stem>")``: figures with
   ``out.save_figure(fig, "name", caption=...)`` and, in its last cell, first any
   ``table.expect_failure(name, reason)``, then ``out.write_summary(table, config)`` and then
   ``table.assert_all()``. With ``output_dir = ""`` (interactive use, nbval) nothing is written.
4. The runner then adds a ``run`` block (profile, overrides, parameters, wall time,
   git commit, source hashes) to ``summary.json`` and swaps the folder in as ``reports/<stem>/``.
   A notebook whose checks fail (AssertionError with a written summary) is swapped in and marked
   failed, one whose only failures are known failures is marked ``known failures`` and counts as
   passed; a notebook that errors otherwise, or a run interrupted midway, leaves the previous
   report untouched. Finally ``index.html``, ``README.md`` and ``manifest.json`` are rebuilt;
   ``ptd book`` (``ptdlib.book``) then builds the site ``reports/site/`` from the reports.
5. A run killed outright (SIGKILL) cannot clean up, so the next ``ptd run`` first removes the
   staging folders ``.staging-*`` and ``swap_in``'s backups ``.old-*`` left in the reports folder.
   Not supported: two ``ptd run`` on one reports folder at once (each removes the other's staging).
6. ``--jobs N`` executes up to N notebooks at once, each in its own kernel, longest first (by the
   wall time of its last report); the results and the index are the same as one at a time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
from tqdm import tqdm

from ptdlib import checks, notebook_params, reports

__all__ = ["RunPlan", "RunResult", "main", "plan_run", "remove_stale_folders",
           "resolve_notebooks", "run_notebook"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
KERNEL_NAME = "python3"
# The kernel's own log (e.g. ipykernel's TCP-transport notice) is noise in a batch run;
# errors still show.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
STAGING_PREFIX = ".staging-"


#: Thread-count variables of the kernels' numerical libraries, limited under ``--jobs``.
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS")


class BadInput(Exception):
    """A one-line message about the command line; the command exits 2."""


@dataclass(frozen=True)
class RunPlan:
    """One notebook to execute: its source, the profile and the values to inject."""

    notebook: Path
    profile: str
    parameters: dict[str, Any]
    overrides: dict[str, Any]

    @property
    def stem(self) -> str:
        """The notebook's name without ``.ipynb``; its report folder."""
        return self.notebook.stem


@dataclass(frozen=True)
class RunResult:
    """Outcome of one notebook: its status, a one-line message and its known failures.

    ``status`` is passed, known failures, failed (a check) or error; ``known_failures`` holds
    the (check, reason) pairs of its KNOWN FAIL checks.
    """

    stem: str
    status: str
    message: str
    wall_time_s: float
    known_failures: tuple[tuple[str, str], ...] = ()


def resolve_notebooks(names: Sequence[str], notebooks_dir: Path) -> list[Path]:
    """Notebooks by stem (``02_mixing``) or path; all of ``notebooks_dir`` when none named."""
    known = {p.stem: p for p in sorted(notebooks_dir.glob("*.ipynb"))}
    if not names:
        if not known:
            raise BadInput(f"no notebooks in {notebooks_dir}")
        return list(known.values())
    resolved = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            resolved.append(path.resolve())
        elif name in known:
            resolved.append(known[name])
        else:
            raise BadInput(f"unknown notebook {name!r}; known: {', '.join(known) or '(none)'}")
    return resolved


def plan_run(notebook: Path, profile: str, overrides: Sequence[tuple[str, str]]) -> RunPlan:
    """Check the profile and every ``-p NAME VALUE`` against the notebook; BadInput if wrong."""
    try:
        declared = notebook_params.read_parameters(notebook)
        values = {}
        if profile == "paper":
            path = reports.profile_path(notebook)
            if not path.exists():
                raise BadInput(f"{notebook.stem} has no paper profile: expected {path}")
            values = notebook_params.load_profile(path, declared)
        given = {}
        for name, text in overrides:
            if name not in declared or name in notebook_params.RUNNER_PARAMETERS:
                raise BadInput(f"{notebook.stem}: "
                               f"{notebook_params.unknown_parameter_message(name, declared)}")
            given[name] = notebook_params.parse_cli_value(name, text, declared[name].kind)
            declared[name].rules.check(name, given[name])
    except ValueError as exc:
        raise BadInput(f"{notebook.stem}: {exc}") from exc
    return RunPlan(notebook, profile, {**values, **given}, given)


@contextmanager
def _project_root_for_kernels(root: Path) -> Iterator[None]:
    """Set ``PTD_ROOT`` for the kernels started inside, and restore it after.

    The kernel inherits this environment: PTD_ROOT lets a notebook resolve project-relative
    parameters (`sweep.store_path`, the evidence stores) although it runs inside a staging
    folder. Set once per run, before any worker process of ``--jobs`` starts (they inherit it).
    """
    previous = os.environ.get("PTD_ROOT")
    os.environ["PTD_ROOT"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PTD_ROOT"]
        else:
            os.environ["PTD_ROOT"] = previous


def _execute(plan: RunPlan, staging: Path) -> None:
    """Run the notebook with papermill inside ``staging``, writing ``<stem>.ipynb`` there."""
    import papermill  # deferred: a slow import that only `ptd run` needs

    papermill.execute_notebook(
        str(plan.notebook), str(staging / f"{plan.stem}.ipynb"),
        parameters={**plan.parameters, "output_dir": "."}, kernel_name=KERNEL_NAME,
        cwd=str(staging), progress_bar=False, log_output=False, extra_arguments=KERNEL_ARGUMENTS)


def _finish_notebook(executed: Path, plan: RunPlan, root: Path) -> None:
    """State the run's profile in the title cell; make papermill's paths project-relative."""
    nb = nbformat.read(str(executed), as_version=4)
    title = nb.cells[0]
    if title.cell_type == "markdown":
        title.source = reports.state_profile(title.source, reports.profile_statement(
            plan.stem, plan.profile, plan.parameters, plan.overrides))
    meta = nb.metadata.get("papermill", {})
    source = plan.notebook.resolve()
    meta["input_path"] = (source.relative_to(root.resolve()).as_posix()
                          if source.is_relative_to(root.resolve()) else source.name)
    meta["output_path"] = executed.name
    nbformat.write(nb, str(executed))


def _verdicts(summary: dict[str, Any]) -> list[checks.Verdict]:
    return [checks.Verdict.from_dict(c) for c in summary.get("checks", [])]


def _known_failures(summary: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """(check, reason) of the summary's KNOWN FAIL checks."""
    return tuple((v.name, str(v.known_failure)) for v in _verdicts(summary)
                 if checks.verdict_text(v) == "KNOWN FAIL")


def _failure_text(verdict: checks.Verdict) -> str:
    if verdict.ok:  # an UNEXPECTED PASS: strict, so the notebook's documentation is stale
        return (f"check {verdict.name} passes but is registered as a known failure "
                f"({verdict.known_failure}): remove its expect_failure call")
    return (f"check {verdict.name} failed: measured {checks.measured_text(verdict)}, expected "
            f"{checks.expected_text(verdict)}")


def _failed_message(summary: dict[str, Any]) -> str:
    return "; ".join(_failure_text(v) for v in _verdicts(summary)
                     if checks.fails_notebook(v)) or "no checks recorded"


def _known_message(summary: dict[str, Any]) -> str:
    known = _known_failures(summary)
    return (f"{checks.count_text(summary['n_checks'] - len(known), 'check')} passed, "
            f"{checks.count_text(len(known), 'known failure')}: "
            + "; ".join(f"{name} ({reason})" for name, reason in known))


def _classify(stem: str, error: Exception | None,
              summary: dict[str, Any] | None) -> tuple[str, str]:
    """(status, message) from the execution error (if any) and the summary the notebook wrote."""
    ename = getattr(error, "ename", type(error).__name__)
    if summary is None and error is None:
        return "error", "the notebook wrote no summary.json (call NotebookOutput.write_summary)"
    if summary is None:
        return "error", f"{ename}: {getattr(error, 'evalue', error)}"
    if summary.get("notebook") != stem:
        return "error", (f"summary.json names notebook {summary.get('notebook')!r}: pass "
                         f"{stem!r} to NotebookOutput")
    if summary.get("status") == "failed" and (error is None or ename == "AssertionError"):
        return "failed", _failed_message(summary)
    if error is not None:
        return "error", f"{ename} after the summary was written: {getattr(error, 'evalue', '')}"
    if summary.get("status") == checks.KNOWN_FAILURES:
        return checks.KNOWN_FAILURES, _known_message(summary)
    return "passed", f"{summary['n_checks']} checks passed ({_kinds_text(summary)})"


def _kinds_text(summary: dict[str, Any]) -> str:
    """How many checks of each kind, claims first: "3 claim checks, 8 consistency checks"."""
    counts = checks.kind_counts(_verdicts(summary))
    return ", ".join(checks.count_text(row["checks"], *reports.KIND_NOUNS[kind])
                     for kind, row in counts.items() if row["checks"]) or "no checks"


def run_notebook(plan: RunPlan, reports_dir: Path, root: Path,
                 provenance: dict[str, str]) -> RunResult:
    """Execute one notebook in a staging folder and swap it in as ``reports_dir/<stem>``.

    ``provenance`` holds ``git_commit`` and ``ptdlib_sha256``, computed once per run.
    """
    reports_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=reports_dir, prefix=f"{STAGING_PREFIX}{plan.stem}-"))
    started = datetime.now(UTC).isoformat(timespec="seconds")
    start = time.perf_counter()
    try:
        error: Exception | None = None
        executed = staging / f"{plan.stem}.ipynb"
        try:
            _execute(plan, staging)
        except Exception as exc:  # papermill's cell errors, a dead kernel, a missing kernel...
            error = exc
        wall = time.perf_counter() - start
        summary_path = staging / reports.SUMMARY
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
        status, message = _classify(plan.stem, error, summary)
        if status == "error":
            kept = Path(tempfile.mkdtemp(prefix=f"ptd-{plan.stem}-error-"))
            if executed.exists():
                shutil.copy2(executed, kept)
            return RunResult(plan.stem, status, f"{message}; previous report kept; executed "
                             f"notebook in {kept}", wall)
        _finish_notebook(executed, plan, root)
        summary["run"] = {
            "profile": plan.profile, "overrides": plan.overrides, "parameters": plan.parameters,
            "wall_time_s": wall, "started_utc": started, "status": status,
            "notebook_sha256": notebook_params.notebook_source_hash(
                plan.notebook, reports.profile_path(plan.notebook)),
            # After the run: the notebook may have added cells to its store.
            "evidence_sha256": reports.evidence_hash(root, plan.stem),
            **provenance}
        checks.write_json_atomic(summary_path, summary)
        reports.swap_in(staging, reports_dir / plan.stem)
        return RunResult(plan.stem, status, message, wall, _known_failures(summary))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run_notebooks(plans: Sequence[RunPlan], jobs: int, reports_dir: Path, root: Path,
                   provenance: dict[str, str]) -> Iterator[RunResult]:
    """`run_notebook` for every plan, ``jobs`` at a time; results in the order they finish."""
    if jobs == 1:
        yield from (run_notebook(plan, reports_dir, root, provenance) for plan in plans)
        return
    # Processes, not threads: papermill changes the process's working directory to the
    # notebook's staging folder while it runs. Each kernel gets its share of the cores for its
    # BLAS and numba threads: oversubscribed, two notebooks at once ran slower than in turn.
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_limit_threads, initargs=(threads,)) as pool:
        running = [pool.submit(run_notebook, plan, reports_dir, root, provenance)
                   for plan in plans]
        yield from (future.result() for future in as_completed(running))


def _limit_threads(threads: str) -> None:
    """Set the thread counts that the kernels this worker starts will inherit."""
    for name in THREAD_VARIABLES:
        os.environ[name] = threads


def _last_wall_time(reports_dir: Path, stem: str) -> float:
    """The wall time of the notebook's last run from its summary.json (0.0 when unknown)."""
    try:
        return float(json.loads((reports_dir / stem / reports.SUMMARY).read_text())
                     ["run"]["wall_time_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def remove_stale_folders(reports_dir: Path) -> list[Path]:
    """Remove the staging and backup folders that a killed ``ptd run`` left in ``reports_dir``.

    Only folders named with the runner's prefixes (``.staging-``, ``.old-``) are removed; files,
    symbolic links and every other name are left alone. Returns the removed folders, sorted.
    """
    stale = sorted(path for prefix in (STAGING_PREFIX, reports.BACKUP_PREFIX)
                   for path in reports_dir.glob(f"{prefix}*")
                   if path.is_dir() and not path.is_symlink())
    for path in stale:
        shutil.rmtree(path)
    return stale


def git_commit(root: Path) -> str:
    """Short commit of ``root``'s repository, ``-dirty`` if ptdlib/ or notebooks/ have changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--", "ptdlib", "notebooks")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def _check_kernel() -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel as exc:
        raise BadInput(f"no '{KERNEL_NAME}' Jupyter kernel in this environment: install "
                       f"ipykernel into it") from exc


def command_run(args: argparse.Namespace, root: Path) -> int:
    """``ptd run``: plan every notebook first (bad input exits 2), then execute them in turn."""
    reports_dir = (args.out or root / "reports").resolve()
    if args.jobs < 1:
        raise BadInput(f"--jobs must be >= 1; got {args.jobs}")
    notebooks = resolve_notebooks(args.notebooks, root / "notebooks")
    plans = [plan_run(nb, args.profile, args.parameter) for nb in notebooks]
    _check_kernel()
    provenance = {"git_commit": git_commit(root),
                  "ptdlib_sha256": reports.ptdlib_source_hash(reports.package_dir_for(root))}
    # Only after every check, so that bad input leaves the reports folder as it was.
    stale = remove_stale_folders(reports_dir)
    if stale:
        print(f"removed {len(stale)} folders left by an interrupted run: "
              f"{', '.join(p.name for p in stale)}")
    start = time.perf_counter()
    results: dict[str, RunResult] = {}
    # Longest first (by the last recorded time), so that parallel jobs end together.
    order = sorted(plans, key=lambda plan: -_last_wall_time(reports_dir, plan.stem))
    with (_project_root_for_kernels(root),
          tqdm(total=len(plans), desc="notebooks", unit="nb", disable=None) as bar):
        for result in _run_notebooks(order, args.jobs, reports_dir, root, provenance):
            results[result.stem] = result
            bar.update()
            tqdm.write(f"{result.stem}: {result.status.upper()} in {result.wall_time_s:.1f} s: "
                       f"{result.message}")
    results = [results[plan.stem] for plan in plans]
    reports.write_index(reports_dir, root / "notebooks")
    bad = [r.stem for r in results if r.status not in checks.ACCEPTED_STATUSES]
    known = [(r.stem, name, reason) for r in results for name, reason in r.known_failures]
    # Repeated after the per-notebook lines so that a run of every notebook ends with them.
    for stem, name, reason in known:
        print(f"known failure {stem}/{name}: {reason}")
    known_text = f" ({checks.count_text(len(known), 'known failure')})" if known else ""
    print(f"{len(results)} notebooks in {time.perf_counter() - start:.1f} s, "
          f"{len(results) - len(bad)} passed{known_text}"
          f"{', not passed: ' + ', '.join(bad) if bad else ''}; "
          f"index: {reports_dir / reports.INDEX}")
    return EXIT_FAILED if bad else EXIT_OK


def command_report(args: argparse.Namespace, root: Path) -> int:
    """``ptd report``: rebuild the index, README and manifest; exit 1 if a report failed."""
    reports_dir = (args.out or root / "reports").resolve()
    entries = reports.write_index(reports_dir, root / "notebooks")
    known = [e.stem for e in entries if e.status == checks.KNOWN_FAILURES]
    not_passed = [e.stem for e in entries if e.status not in checks.ACCEPTED_STATUSES]
    print(f"{reports_dir / reports.INDEX}: {len(entries)} notebooks"
          f"{', with known failures: ' + ', '.join(known) if known else ''}"
          f"{', not passed: ' + ', '.join(not_passed) if not_passed else ''}")
    return EXIT_FAILED if any(e.status == "failed" for e in entries) else EXIT_OK


def command_book(args: argparse.Namespace, root: Path) -> int:
    """``ptd book``: build the site ``reports/site/`` from the reports (`ptdlib.book`)."""
    from ptdlib import book  # deferred: Sphinx is a slow import that only the book needs

    reports_dir = (args.out or root / "reports").resolve()
    try:
        result = book.build_book(root, reports_dir=reports_dir, quiet=not args.verbose)
    except book.BookError as exc:
        raise BadInput(str(exc)) from exc
    print(f"{result.site / 'index.html'}: {result.pages} pages, "
          f"{result.size_bytes / 2**20:.1f} MiB, built in {result.seconds:.1f} s")
    return EXIT_OK


def command_sweep(args: argparse.Namespace, root: Path) -> int:
    """``ptd sweep``: run a spec's missing cells (`ptdlib.sweep`); exit 1 if a cell failed."""
    from ptdlib import sweep  # deferred: dask is a slow import that only `ptd sweep` needs

    out = (args.out or root / "sweeps" / "results" / args.spec.stem).resolve()
    try:
        spec = sweep.load_spec(args.spec)
        print(f"{args.spec}: {sweep.spec_cells_summary(spec)}; results in {out}")
        result = sweep.run_sweep(spec, out, scheduler=args.scheduler, workers=args.workers)
    except ValueError as exc:
        raise BadInput(str(exc)) from exc
    print(f"{result.n_ran} cells run, {result.n_skipped} already done; table: {result.table}")
    for failure in result.failures:
        print(f"cell failed: {failure}", file=sys.stderr)
    return EXIT_FAILED if result.failures else EXIT_OK


def command_evidence(args: argparse.Namespace, root: Path) -> int:
    """``ptd evidence``: recompute every cell of the named (or all) evidence stores."""
    from ptdlib import evidence  # deferred: pyarrow and the simulator load only here

    names = args.names or evidence.store_names(root)
    known = set(evidence.store_names(root))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BadInput(f"unknown evidence store {unknown[0]!r}; known: "
                       f"{', '.join(sorted(known)) or '(none)'}")
    for name in names:
        start = time.perf_counter()
        try:
            result = evidence.recompute_store(name, root=root, scheduler=args.scheduler,
                                              workers=args.workers)
        except ValueError as exc:
            raise BadInput(str(exc)) from exc
        changed = ", ".join(i[:12] for i in result.changed[:5])
        print(f"{name}: {result.cells} cells recomputed in {time.perf_counter() - start:.0f} s, "
              f"{len(result.changed)} changed{': ' + changed if changed else ''}"
              f"{' ...' if len(result.changed) > 5 else ''}")
    return EXIT_OK


def command_figures(args: argparse.Namespace, root: Path) -> int:
    """``ptd figures``: gather the key figures' slide versions into ``reports/slides/``."""
    reports_dir = (args.out or root / "reports").resolve()
    slides = reports.gather_slides(reports_dir)
    if not slides:
        raise BadInput(f"{reports_dir}: no slides to gather; `make reports` (or `ptd run`) "
                       "saves one per key figure")
    print(f"{reports_dir / reports.SLIDES}: {len(slides)} slides (16:9, 1920 x 1080)")
    return EXIT_OK


def compile_kernels() -> float:
    """Compile every simulator kernel, or load it from numba's on-disk cache; seconds taken.

    Numba compiles a kernel at its first call and caches the machine code beside the sources
    (``ptdlib/__pycache__``), keyed on the CPU, so a later process on this machine (a notebook
    opened in class) skips the compile pause. Every algorithm runs under every sampling mode,
    with and without local steps and re-basing, on a tiny planted problem.
    """
    from ptdlib import problems, simulate  # deferred: numba loads only here

    start = time.perf_counter()
    problem = problems.shared_subspace_problem(4, 6, 3, 2, reward_noise=0.1, rng=0)
    for algorithm in simulate.ALGORITHMS:
        for sampling in simulate.SAMPLINGS:
            for period, rebase in ((1, False), (2, True)):
                simulate.run(problem, algorithm, steps=4, step_size=0.1, seeds=[0],
                             sampling=sampling, communication_period=period,
                             rebase_heads=rebase)
    return time.perf_counter() - start


def command_warm(args: argparse.Namespace, root: Path) -> int:
    """``ptd warm``: leave the compiled kernels in numba's cache (`compile_kernels`)."""
    print(f"simulator kernels compiled or loaded from the cache in {compile_kernels():.1f} s")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ptd``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", type=Path, default=None, help=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="ptd", description="Run the ptd notebooks and build "
                                     "their reports.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", parents=[common], help="execute notebooks into reports/")
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="stem or path; none = all")
    run.add_argument("--profile", choices=["quick", "paper"], default="quick",
                     help="quick: the notebook's defaults; paper: params/<stem>.paper.yaml")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="override one parameter (YAML value)")
    run.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                     help="notebooks executed at once, each in its own kernel (default 1)")
    run.add_argument("--out", type=Path, default=None, help="reports folder (default reports/)")
    run.set_defaults(handler=command_run)
    report = commands.add_parser("report", parents=[common],
                                 help="rebuild reports/README.md, index.html and manifest.json")
    report.add_argument("--out", type=Path, default=None, help="reports folder")
    report.set_defaults(handler=command_report)
    book = commands.add_parser("book", parents=[common],
                               help="build the book reports/site/ from the reports")
    book.add_argument("--out", type=Path, default=None, help="reports folder (default reports/)")
    book.add_argument("-v", "--verbose", action="store_true", help="show Sphinx's progress")
    book.set_defaults(handler=command_book)
    sweep = commands.add_parser("sweep", parents=[common], help="run a parameter sweep")
    sweep.add_argument("spec", type=Path, metavar="SPEC.yaml", help="sweep spec (ptdlib.sweep)")
    sweep.add_argument("--out", type=Path, default=None,
                       help="results folder (default sweeps/results/<spec stem>)")
    sweep.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="existing Dask scheduler (default: a local cluster)")
    sweep.add_argument("--workers", type=int, default=None, metavar="N",
                       help="local workers (default one per core)")
    sweep.set_defaults(handler=command_sweep)
    store = commands.add_parser("evidence", parents=[common],
                                help="recompute the committed evidence stores")
    store.add_argument("names", nargs="*", metavar="NAME", help="store (evidence/NAME.parquet); "
                       "none = all")
    store.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="existing Dask scheduler (default: this process)")
    store.add_argument("--workers", type=int, default=None, metavar="N",
                       help="run on a local Dask cluster of N workers")
    store.set_defaults(handler=command_evidence)
    figures = commands.add_parser("figures", parents=[common],
                                  help="gather the key figures for slides into reports/slides/")
    figures.add_argument("--out", type=Path, default=None,
                         help="reports folder (default reports/)")
    figures.set_defaults(handler=command_figures)
    warm = commands.add_parser("warm", parents=[common],
                               help="compile the simulator's kernels into numba's cache")
    warm.set_defaults(handler=command_warm)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ptd`` console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage and its message
        return int(exc.code or 0)
    root = (args.root or reports.project_root()).resolve()
    try:
        return args.handler(args, root)
    except BadInput as exc:
        print(f"ptd: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("ptd: interrupted; reports of finished notebooks are in place, the rest untouched",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
