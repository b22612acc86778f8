"""Tests of ptdlib.sweep: spec grid and keys, a real LocalCluster, kill -9 and resume.

The sweeps run on real dask.distributed clusters of 2 workers (the point being tested); the
specs in tests/data have tiny cells so the module stays well under a minute and a half.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import ptdlib
from ptdlib import sweep

# Real clusters, subprocesses and a kill -9: out of the fast lane (pytest -m "not slow").
pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"
SLOW = DATA / "slow_sweep.yaml"
TINY = DATA / "tiny_sweep.yaml"


def _files(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "cells").iterdir())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted in-process run of the slow spec on a 2-worker LocalCluster."""
    out = tmp_path_factory.mktemp("reference")
    result = sweep.run_sweep(sweep.load_spec(SLOW), out, workers=2, progress=False)
    assert (result.n_ran, result.n_skipped, result.failures) == (16, 0, ())
    return out


def test_cells_cover_the_grid_in_order() -> None:
    spec = sweep.load_spec(TINY)
    cells = spec.cells()
    assert len(cells) == 2 * 2 * 3 and spec.axes == ["n_agents", "algorithm"]
    assert [(c.problem["n_agents"], c.run["algorithm"], c.seed) for c in cells[:4]] == [
        (2, "personalized", 0), (2, "personalized", 1), (2, "personalized", 2), (2, "local", 0)]
    assert cells[0].run["sampling"] == "markov" and cells[0].problem["reward_noise"] == 0.0
    assert len({c.key for c in cells}) == len(cells)


def test_the_key_covers_every_field_and_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    cell = sweep.load_spec(TINY).cells()[0]
    changed = sweep.Cell(cell.problem, {**cell.run, "c_B": 0.5}, cell.seed)
    assert changed.key != cell.key
    assert sweep.Cell(dict(cell.problem), dict(cell.run), cell.seed).key == cell.key
    before = cell.key
    monkeypatch.setattr(ptdlib, "__version__", "999.0")
    assert cell.key != before


def test_a_cell_is_reproducible_and_carries_its_parameters() -> None:
    cell = sweep.load_spec(TINY).cells()[5]
    data = sweep.run_cell(cell)
    assert data == sweep.run_cell(cell)  # bit-identical Parquet bytes
    frame = pd.read_parquet(io.BytesIO(data))
    assert set(frame["cell"]) == {cell.key} and set(frame["seed"]) == {cell.seed}
    assert set(frame["n_agents"]) == {cell.problem["n_agents"]}
    assert frame["step"].tolist() == [0, 100, 200, 300, 400]


def test_a_rerun_skips_every_finished_cell(reference: Path) -> None:
    table = (reference / "table.parquet").read_bytes()
    result = sweep.run_sweep(sweep.load_spec(SLOW), reference, progress=False)
    assert (result.n_ran, result.n_skipped) == (0, 16)  # no cluster needed
    assert (reference / "table.parquet").read_bytes() == table


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The address of a running 2-worker LocalCluster on 127.0.0.1."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": sweep.LOCAL_HTTP}) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        yield cluster.scheduler_address


def test_an_existing_scheduler_gives_the_same_table_bit_for_bit(reference: Path, scheduler: str,
                                                                tmp_path: Path) -> None:
    result = sweep.run_sweep(sweep.load_spec(SLOW), tmp_path, progress=False,
                             scheduler=scheduler)
    raw = yaml.safe_load(TINY.read_text())
    raw["problem"].update(misspecification=0.5, rank=3)  # rank = dim: no room to push
    failing = sweep.run_sweep(sweep.parse_spec(raw), tmp_path / "failing", progress=False,
                              scheduler=scheduler)
    assert result.n_ran == 16 and result.failures == ()
    assert (tmp_path / "table.parquet").read_bytes() == (reference / "table.parquet").read_bytes()
    assert len(failing.failures) == failing.n_cells and "misspecification" in failing.failures[0]
    assert _files(tmp_path / "failing") == []


def _cli(out: Path, **kwargs: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ptdlib.cli", "sweep", str(SLOW),
                             "--out", str(out), "--workers", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)


# `ptd sweep` as a child that stops for good once it has stored STALL_AFTER cells: the client
# writes every cell file (sweep.write_atomic), so wrapping that function in the child (not in
# the library) freezes the store at exactly STALL_AFTER cells. The child then writes a marker
# file and sleeps until it is killed; the test waits for the marker, not for a fixed time.
STALL_AFTER = 2
STALLING_SWEEP = """
import sys
import time
from pathlib import Path

from ptdlib import cli, sweep

marker, stall_after, argv = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
write = sweep.write_atomic


def write_then_stall(path, data):
    write(path, data)
    if path.parent.name == "cells" and len(list(path.parent.glob("*.parquet"))) >= stall_after:
        marker.write_text("stored")
        time.sleep(3600)  # until the test kills the whole process group


sweep.write_atomic = write_then_stall
sys.exit(cli.main(argv))
"""


def test_kill_9_midway_then_rerun_loses_and_duplicates_nothing(reference: Path,
                                                               tmp_path: Path) -> None:
    out, marker = tmp_path / "out", tmp_path / "stalled"
    process = subprocess.Popen(
        [sys.executable, "-c", STALLING_SWEEP, str(marker), str(STALL_AFTER), "sweep", str(SLOW),
         "--out", str(out), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300  # generous: a cluster start on a loaded 2-core machine
    while not marker.exists():
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"the sweep ended before it stored {STALL_AFTER} cells:\n{err}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=30)
            pytest.fail(f"no marker after 300 s: the sweep never stored {STALL_AFTER} cells")
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the client, the cluster and its workers at once
    process.communicate(timeout=30)
    cells = out / "cells"
    assert len(list(cells.glob("*.parquet"))) == STALL_AFTER
    assert not (out / "table.parquet").exists()
    rerun = _cli(out)
    stdout, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"{16 - STALL_AFTER} cells run, {STALL_AFTER} already done" in stdout
    assert _files(out) == _files(reference)  # every cell once, no temporaries left
    expected = pd.read_parquet(reference / "table.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out / "table.parquet"), expected,
                                  check_exact=True)
    assert (out / "table.parquet").read_bytes() == (reference / "table.parquet").read_bytes()


def test_t0_gives_the_inverse_time_schedule() -> None:
    from ptdlib import problems, schedules, simulate

    raw = yaml.safe_load(TINY.read_text())
    raw["run"].update(t0=50.0, step_size=2.0)
    cell = sweep.parse_spec(raw).cells()[0]
    frame = pd.read_parquet(io.BytesIO(sweep.run_cell(cell)))
    pool = problems.shared_subspace_problem(4, 6, 3, 2, heterogeneity=0.3, laziness=0.2, rng=0)
    trace = simulate.run(problems.Problem.from_pool(pool, 2), steps=400, seeds=[0],
                         step_size=schedules.inverse_time(2.0, 50.0), record_every=100)
    assert frame["parameter_error"].to_numpy().tobytes() == trace.parameter_error[0].tobytes()
    assert set(frame["t0"]) == {50.0}


def test_the_readings_flow_to_simulate_run() -> None:
    from ptdlib import problems, schedules, simulate

    readings = {"update_order": "heads_first", "gain_update": "td", "head_radius": 2.0,
                "retraction": "polar", "representation_step_size": 1.0,
                "representation_t0": 50.0}
    raw = yaml.safe_load(TINY.read_text())
    raw["run"].update(algorithm="personalized", rebase_heads=True, **readings)
    cell = sweep.parse_spec(raw).cells()[0]
    frame = pd.read_parquet(io.BytesIO(sweep.run_cell(cell)))
    pool = problems.shared_subspace_problem(4, 6, 3, 2, heterogeneity=0.3, laziness=0.2, rng=0)
    trace = simulate.run(problems.Problem.from_pool(pool, 2), steps=400, seeds=[0],
                         step_size=0.05, record_every=100, rebase_heads=True,
                         update_order="heads_first", gain_update="td", head_radius=2.0,
                         retraction="polar",
                         representation_step_size=schedules.inverse_time(1.0, 50.0))
    assert frame["parameter_error"].to_numpy().tobytes() == trace.parameter_error[0].tobytes()
    for name, value in readings.items():
        assert set(frame[name]) == {value}


def test_the_local_cluster_listens_on_localhost_only() -> None:
    with sweep._client(None, 1) as client:
        info = client.scheduler_info()
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        assert all(w.startswith("tcp://127.0.0.1:") for w in info["workers"])
        hosts = client.run_on_scheduler(lambda dask_scheduler: sorted(
            {s.getsockname()[0] for s in dask_scheduler.http_server._sockets.values()}))
        assert hosts == ["127.0.0.1"]
        assert client.run(lambda: os.environ["NUMBA_NUM_THREADS"]) == dict.fromkeys(
            info["workers"], "1")


def _mixed_cells() -> list[sweep.Cell]:
    """Two grids in one list (warm-started personalized, local), one cell repeated."""
    raw = yaml.safe_load(TINY.read_text())
    warm = sweep.parse_spec({**raw, "run": {**raw["run"], "algorithm": "personalized",
                                            "warm_start": True}}).cells()
    local = sweep.parse_spec({**raw, "run": {**raw["run"], "algorithm": "local"}}).cells()
    return [*warm, *local, warm[0]]


def test_run_cells_in_process_and_on_a_cluster_give_the_same_table(scheduler: str,
                                                                   tmp_path: Path) -> None:
    cells = _mixed_cells()
    here = sweep.run_cells(cells, progress=False)
    stored = sweep.run_cells(cells, tmp_path, scheduler=scheduler, progress=False)
    pd.testing.assert_frame_equal(stored, here, check_exact=True)
    assert len(_files(tmp_path)) == len(cells) - 1  # the repeated cell ran once
    assert list(here.drop_duplicates("cell")["cell"]) == [c.key for c in cells[:-1]]
    # A second call reads every cell from the store; no cluster is asked for.
    again = sweep.run_cells(cells, tmp_path, scheduler="tcp://127.0.0.1:9", progress=False)
    pd.testing.assert_frame_equal(again, here, check_exact=True)


def test_in_process_groups_equal_one_run_per_cell_on_the_agent_parallel_path() -> None:
    from ptdlib import simulate

    # One seed per run and >= AGENT_PARALLEL_MIN agents take the agent-block kernel; three
    # seeds together take the seed-parallel one. The tables must still agree bit for bit.
    spec = sweep.parse_spec({
        "problem": {"n_agents": simulate.AGENT_PARALLEL_MIN, "n_states": 8, "dim": 3,
                    "rank": 2, "pool": 8},
        "run": {"steps": 200, "step_size": 0.05, "record_every": 100}, "seeds": 3})
    cells = spec.cells()
    per_cell = pd.concat([pd.read_parquet(io.BytesIO(sweep.run_cell(c))) for c in cells],
                         ignore_index=True)
    pd.testing.assert_frame_equal(sweep.run_cells(cells, progress=False), per_cell,
                                  check_exact=True)


def test_warm_start_begins_at_b_star() -> None:
    from ptdlib import simulate

    raw = yaml.safe_load(TINY.read_text())
    raw["run"].update(algorithm="personalized", warm_start=True)
    cell = sweep.parse_spec(raw).cells()[0]
    problem = sweep.build_problem(cell.problem)
    trace = simulate.run(problem, steps=400, step_size=0.05, seeds=[cell.seed],
                         record_every=100, init_subspace=problem.B_star)
    frame = pd.read_parquet(io.BytesIO(sweep.run_cell(cell)))
    assert frame["subspace_distance"].iloc[0] < 1e-12
    assert frame["parameter_error"].to_numpy().tobytes() == trace.parameter_error[0].tobytes()


def test_records_are_the_trace_arrays_of_a_group() -> None:
    from ptdlib import schedules, simulate

    cells = _mixed_cells()
    table = sweep.run_cells(cells, progress=False)
    warm = [c for c in cells[:6] if c.problem["n_agents"] == 8]
    got = sweep.records(table, warm[::-1])  # seeds in the order of the cells given
    trace = simulate.run(sweep.build_problem(warm[0].problem), steps=400, step_size=0.05,
                         seeds=[2, 1, 0], record_every=100,
                         init_subspace=sweep.build_problem(warm[0].problem).B_star)
    assert got.seeds.tolist() == [2, 1, 0] and got.record_steps.tolist() == [0, 100, 200, 300, 400]
    for name in simulate.METRICS:
        assert np.array_equal(getattr(got, name), getattr(trace, name), equal_nan=True), name
    assert not got.diverged.any()
    assert sweep.records(table, cells[6:9]).head_error is None  # local has no heads
    # A diverging seed: NaN from its divergence on, flagged, like Trace.
    raw = yaml.safe_load(TINY.read_text())
    raw["run"].update(algorithm="local", step_size=60.0)
    blowup = sweep.parse_spec(raw).cells()[:3]
    runs = sweep.records(sweep.run_cells(blowup, progress=False), blowup)
    direct = simulate.run(sweep.build_problem(blowup[0].problem), "local", steps=400,
                          step_size=schedules.constant(60.0), seeds=[0, 1, 2], record_every=100)
    assert runs.diverged.tolist() == (direct.diverged >= 0).tolist() and runs.diverged.any()
    assert np.array_equal(runs.parameter_error, direct.parameter_error[:, :runs.record_steps.size],
                          equal_nan=True)


def test_records_refuse_a_mixed_or_missing_group() -> None:
    cells = _mixed_cells()
    table = sweep.run_cells(cells[:6], progress=False)
    with pytest.raises(ValueError, match="sharing problem and run"):
        sweep.records(table, cells[:6])
    with pytest.raises(ValueError, match="not in the table"):
        sweep.records(table, cells[6:9])


def test_the_key_covers_the_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    cell = sweep.load_spec(TINY).cells()[0]
    before = cell.key
    monkeypatch.setattr(sweep, "_source_hash", lambda: "edited")
    assert cell.key != before


def test_store_path_resolves_against_the_project_root(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("PTD_ROOT", str(tmp_path))
    assert sweep.store_path("") is None
    assert sweep.store_path("sweeps/results/x") == tmp_path / "sweeps" / "results" / "x"
    assert sweep.store_path(str(tmp_path / "abs")) == tmp_path / "abs"
    with pytest.raises(ValueError, match="sweep_store"):
        sweep.store_path(3)  # type: ignore[arg-type]


def test_a_worker_running_other_sources_is_refused(scheduler: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The workers hash their own sources into each table's cell column; a client whose
    # sources differ must not file those tables under its keys.
    monkeypatch.setattr(sweep, "_source_hash", lambda: "edited since the workers started")
    with pytest.raises(RuntimeError, match="another ptdlib version or other sources"):
        sweep.run_cells(sweep.load_spec(TINY).cells()[:2], tmp_path, scheduler=scheduler,
                        progress=False)
    assert _files(tmp_path) == []


@pytest.mark.parametrize("stem", ["06_linear_speedup", "07_heterogeneity"])
def test_the_paper_profiles_of_the_sweep_notebooks_use_a_store(stem: str) -> None:
    from ptdlib import notebook_params

    notebooks = Path(__file__).parents[1] / "notebooks"
    declared = notebook_params.read_parameters(notebooks / f"{stem}.ipynb")
    assert declared["sweep_store"].default == ""  # quick profile and nbval: in this process
    paper = notebook_params.load_profile(notebooks / "params" / f"{stem}.paper.yaml", declared)
    assert paper["sweep_store"] == f"sweeps/results/{stem}"  # relative: under $PTD_ROOT


def test_signal_states_builds_the_product_chain_family() -> None:
    from ptdlib import problems

    fields = {"n_agents": 5, "n_states": 24, "dim": 6, "rank": 2, "signal_states": 4,
              "coupling": 0.5, "heterogeneity": 0.25, "reward_noise": 0.1,
              "balanced_heads": True, "seed": 3}
    cell = sweep.parse_spec({"problem": fields, "run": {"steps": 10, "step_size": 0.1},
                             "seeds": 1}).cells()[0]
    built = sweep.build_problem(cell.problem)
    direct = problems.product_chain_problem(5, 24, 6, 2, signal_states=4, coupling=0.5,
                                            heterogeneity=0.25, reward_noise=0.1, rng=3)
    for name in ("P", "rewards", "features", "B_star", "heads_star"):
        assert np.array_equal(getattr(built, name), getattr(direct, name)), name


@pytest.mark.parametrize(("extra", "match"), [
    ({"coupling": 0.5}, "coupling needs problem.signal_states"),
    ({"signal_states": 4, "laziness": 0.5, "balanced_heads": True}, "fixes"),
    ({"signal_states": 4}, "fixes"),  # the family's heads are balanced: say so in the spec
])
def test_problem_family_fields_are_checked(extra: dict, match: str) -> None:
    fields = {"n_agents": 5, "n_states": 24, "dim": 6, "rank": 2} | extra
    with pytest.raises(ValueError, match=match):
        sweep.build_problem(fields)

