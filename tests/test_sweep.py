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
from pathlib import Path

import pandas as pd
import pytest
import yaml

import ptdlib
from ptdlib import sweep

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


def test_an_existing_scheduler_gives_the_same_table_bit_for_bit(reference: Path,
                                                                tmp_path: Path) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": sweep.LOCAL_HTTP}) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        result = sweep.run_sweep(sweep.load_spec(SLOW), tmp_path, progress=False,
                                 scheduler=cluster.scheduler_address)
        raw = yaml.safe_load(TINY.read_text())
        raw["problem"].update(misspecification=0.5, rank=3)  # rank = dim: no room to push
        failing = sweep.run_sweep(sweep.parse_spec(raw), tmp_path / "failing", progress=False,
                                  scheduler=cluster.scheduler_address)
    assert result.n_ran == 16 and result.failures == ()
    assert (tmp_path / "table.parquet").read_bytes() == (reference / "table.parquet").read_bytes()
    assert len(failing.failures) == failing.n_cells and "misspecification" in failing.failures[0]
    assert _files(tmp_path / "failing") == []


def _cli(out: Path, **kwargs: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ptdlib.cli", "sweep", str(SLOW),
                             "--out", str(out), "--workers", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)


def test_kill_9_midway_then_rerun_loses_and_duplicates_nothing(reference: Path,
                                                               tmp_path: Path) -> None:
    process = _cli(tmp_path)
    cells = tmp_path / "cells"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if cells.exists() and len(list(cells.glob("*.parquet"))) >= 2:
            break
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # the client, the cluster and its workers at once
    process.communicate(timeout=30)
    done = len(list(cells.glob("*.parquet")))
    assert 2 <= done < 16, f"{done} cells finished before the kill: the test needs a partial run"
    assert not (tmp_path / "table.parquet").exists()
    rerun = _cli(tmp_path)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert f"{16 - done} cells run, {done} already done" in out
    assert _files(tmp_path) == _files(reference)  # every cell once, no temporaries left
    expected = pd.read_parquet(reference / "table.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "table.parquet"), expected,
                                  check_exact=True)
    assert (tmp_path / "table.parquet").read_bytes() == (reference / "table.parquet").read_bytes()


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
