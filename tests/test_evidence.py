"""The committed evidence store: read what is stored, compute what is missing, spot-check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from ptdlib import cli, evidence, sweep

ROOT = Path(__file__).resolve().parents[1]


def _cells(n_agents: tuple[int, ...] = (3, 5), seeds: tuple[int, ...] = (0, 1, 2)) -> list:
    spec = sweep.parse_spec({"problem": {"n_agents": list(n_agents), "n_states": 6, "dim": 3,
                                         "rank": 2, "reward_noise": 0.2, "seed": 4},
                             "run": {"steps": 60, "step_size": 0.05, "record_every": 20},
                             "seeds": list(seeds)})
    return spec.cells()


def _tamper(path: Path, column: str = "subspace_distance") -> None:
    """Change one stored value by one unit in the last place, keeping the metadata."""
    table = pq.read_table(path)
    frame = table.to_pandas()
    frame.loc[len(frame) - 1, column] = frame.loc[len(frame) - 1, column] * (1 + 2**-52)
    import pyarrow as pa

    tampered = pa.Table.from_pandas(frame, preserve_index=False)
    tampered = tampered.replace_schema_metadata(table.schema.metadata)
    pq.write_table(tampered, path)


def test_gather_computes_then_reads_the_same_numbers(tmp_path: Path) -> None:
    cells = _cells()
    first = evidence.gather(cells, "demo", root=tmp_path, progress=False)
    assert (first.read, first.computed, first.spot_checked) == (0, len(cells), ())
    assert evidence.store_path("demo", tmp_path).exists()
    second = evidence.gather(cells, "demo", root=tmp_path, progress=False)
    assert (second.read, second.computed) == (len(cells), 0)
    assert len(second.spot_checked) == 1  # ceil(3% of 6)
    pd.testing.assert_frame_equal(first.table, second.table)
    # The same numbers as the sweep engine's own table, and the same cell keys for records().
    direct = sweep.run_cells(cells, progress=False)
    for column in ("cell", "seed", "step", "subspace_distance", "parameter_error"):
        assert first.table[column].tolist() == direct[column].tolist()
    assert sweep.records(second.table, cells[:3]).subspace_distance.shape[0] == 3


def test_a_cell_asked_for_twice_is_stored_once_and_returned_twice(tmp_path: Path) -> None:
    cells = _cells((3,), (0, 1))
    gathered = evidence.gather([*cells, cells[0]], "demo", root=tmp_path, progress=False)
    assert gathered.computed == 2
    assert gathered.table["cell"].value_counts()[cells[0].key] == 2 * 4  # 4 records each
    assert len(evidence.read_store(evidence.store_path("demo", tmp_path))[1]) == 2


def test_a_changed_number_fails_the_spot_check_and_writes_nothing(tmp_path: Path) -> None:
    cells = _cells()
    evidence.gather(cells[:4], "demo", root=tmp_path, progress=False)
    path = evidence.store_path("demo", tmp_path)
    _tamper(path)
    before = path.read_bytes()
    with pytest.raises(evidence.EvidenceMismatch, match=r"cell [0-9a-f]{12} differs .*"
                       r"subspace_distance.*\"n_agents\": 5"):
        evidence.gather(cells, "demo", root=tmp_path, spot_fraction=1.0, progress=False)
    assert path.read_bytes() == before  # the two missing cells were not added


def test_recompute_store_lists_changed_cells_and_repairs_them(tmp_path: Path) -> None:
    cells = _cells()
    evidence.gather(cells, "demo", root=tmp_path, progress=False)
    path = evidence.store_path("demo", tmp_path)
    before = path.read_bytes()
    assert evidence.recompute_store("demo", root=tmp_path, progress=False).changed == ()
    assert path.read_bytes() == before  # nothing changed, nothing rewritten
    _tamper(path)
    result = evidence.recompute_store("demo", root=tmp_path, progress=False)
    assert result.cells == len(cells) and len(result.changed) == 1
    evidence.gather(cells, "demo", root=tmp_path, spot_fraction=1.0, progress=False)


def test_recompute_store_rewrites_a_store_of_another_format(tmp_path: Path) -> None:
    cells = _cells((3,), (0, 1))
    evidence.gather(cells, "demo", root=tmp_path, progress=False)
    path = evidence.store_path("demo", tmp_path)
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[evidence.METADATA_KEY])
    meta["format"] = 0
    pq.write_table(table.replace_schema_metadata(
        {**table.schema.metadata, evidence.METADATA_KEY: json.dumps(meta)}), path)
    with pytest.raises(ValueError, match="format 0"):
        evidence.gather(cells, "demo", root=tmp_path, progress=False)
    assert len(evidence.recompute_store("demo", root=tmp_path, progress=False).changed) == 2
    assert evidence.gather(cells, "demo", root=tmp_path, progress=False).read == 2


def test_gather_never_drops_cells_and_keeps_their_parameters_in_order(tmp_path: Path) -> None:
    cells = _cells()
    evidence.gather(cells[:2], "demo", root=tmp_path, progress=False)
    gathered = evidence.gather(cells[4:], "demo", root=tmp_path, progress=False)
    assert (gathered.read, gathered.computed) == (0, 2)
    stored, parameters = evidence.read_store(evidence.store_path("demo", tmp_path))
    assert len(stored) == 4
    assert [(p["problem"]["n_agents"], p["seed"]) for p in parameters] == [
        (c.problem["n_agents"], c.seed) for c in [*cells[:2], *cells[4:]]]
    meta = json.loads(pq.read_table(evidence.store_path("demo", tmp_path)).schema
                      .metadata[evidence.METADATA_KEY])
    assert meta["provenance"]["kernel_arithmetic"] == "exact IEEE"


def test_fastmath_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ptdlib import _kernels

    monkeypatch.setattr(_kernels, "FASTMATH", True)
    with pytest.raises(RuntimeError, match="PTD_FASTMATH"):
        evidence.gather(_cells(), "demo", root=tmp_path, progress=False)


def test_the_evidence_id_ignores_the_sources_but_the_cell_key_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cell = _cells()[0]
    key, identity = cell.key, evidence.evidence_id(cell)
    monkeypatch.setattr(sweep, "_source_hash", lambda: "edited sources")
    assert cell.key != key
    assert evidence.evidence_id(cell) == identity


def test_the_evidence_id_ignores_fields_at_their_default() -> None:
    cell = _cells()[0]
    explicit = sweep.Cell({**cell.problem, "laziness": 0.0}, {**cell.run, "c_B": 1.0}, cell.seed)
    bare = sweep.Cell({k: v for k, v in cell.problem.items() if k != "laziness"},
                      {k: v for k, v in cell.run.items() if k != "c_B"}, cell.seed)
    assert evidence.evidence_id(explicit) == evidence.evidence_id(bare)
    other = sweep.Cell({**cell.problem, "laziness": 0.5}, cell.run, cell.seed)
    assert evidence.evidence_id(other) != evidence.evidence_id(cell)


def test_the_spot_sample_is_seeded_and_sized_by_the_fraction() -> None:
    ids = [f"{k:064x}" for k in range(100)]
    sample = evidence._spot_sample(ids, 0.03, 0)
    assert len(sample) == 3 and sample == evidence._spot_sample(list(reversed(ids)), 0.03, 0)
    assert sample != evidence._spot_sample(ids, 0.03, 1)
    assert evidence._spot_sample(ids, 0.0, 0) == [] and evidence._spot_sample([], 0.5, 0) == []


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "with space", 3])
def test_bad_store_names_are_rejected(name) -> None:
    with pytest.raises(ValueError, match="name must be"):
        evidence.store_path(name)


def test_bad_spot_fraction_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="spot_fraction"):
        evidence.gather(_cells(), "demo", root=tmp_path, spot_fraction=1.5)


def test_ptd_evidence_recomputes_every_store(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    evidence.gather(_cells((3,), (0, 1)), "demo", root=tmp_path, progress=False)
    assert cli.main(["evidence", "--root", str(tmp_path)]) == cli.EXIT_OK
    assert "demo: 2 cells recomputed" in capsys.readouterr().out
    assert cli.main(["evidence", "missing", "--root", str(tmp_path)]) == cli.EXIT_BAD_INPUT
    assert "unknown evidence store 'missing'" in capsys.readouterr().err
    assert cli.main(["evidence", "--workers", "0", "--root", str(tmp_path)]) == cli.EXIT_BAD_INPUT
    assert "workers" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", evidence.store_names(ROOT))
def test_the_committed_stores_reproduce(name: str, tmp_path: Path) -> None:
    """Another seeded sample of every committed store's cells than the notebooks', bit for bit
    (on a copy: a failure must not touch the repository's store)."""
    copy = evidence.store_path(name, tmp_path)
    copy.parent.mkdir()
    shutil.copy2(evidence.store_path(name, ROOT), copy)
    _, parameters = evidence.read_store(copy)
    cells = [evidence._cell_from(p) for p in parameters]
    gathered = evidence.gather(cells, name, root=tmp_path, spot_seed=12345, progress=False)
    assert gathered.computed == 0 and gathered.read == len(cells) and gathered.spot_checked
