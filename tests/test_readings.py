"""Numbers in the prose come from the run. A notebook re-run with another seed renders readings
whose every quoted number is the value stored in its new summary.json, printed as the reading's
format says, and no other decimal number than those and the pre-registered constants."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from ptdlib import reports

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
#: The notebook re-run here (a quick one whose readings quote seed-dependent numbers).
NOTEBOOK = "08_markov_vs_iid"
OTHER_SEED = 7
DECIMAL = re.compile(r"\d+\.\d+(?:e[-+]?\d+)?")


def reading_outputs(notebook: Any) -> list[str]:
    """The Markdown that the cells tagged ``reading`` displayed."""
    return ["".join(output["data"]["text/markdown"])
            for cell in notebook.cells if "reading" in cell.metadata.get("tags", [])
            for output in cell.get("outputs", []) if "text/markdown" in output.get("data", {})]


def test_every_notebook_reads_its_results_through_out_reading() -> None:
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        readings = [c for c in notebook.cells if "reading" in c.metadata.get("tags", [])]
        assert readings, f"{path.name}: no cell tagged 'reading'"
        for cell in readings:
            assert cell.cell_type == "code" and "out.reading(" in cell.source, path.name
            assert "remove-input" in cell.metadata["tags"], path.name  # the book shows the text
        assert len(reading_outputs(notebook)) == len(readings), f"{path.name}: run it"


def test_a_rerun_with_another_seed_quotes_its_own_summary(tmp_path: Path) -> None:
    import papermill

    out_dir = tmp_path / "report"
    executed = tmp_path / f"{NOTEBOOK}.ipynb"
    papermill.execute_notebook(
        str(REPO / "notebooks" / f"{NOTEBOOK}.ipynb"), str(executed),
        parameters={"seed": OTHER_SEED, "output_dir": str(out_dir)}, cwd=str(tmp_path),
        kernel_name="python3", progress_bar=False)
    summary = json.loads((out_dir / "summary.json").read_text())
    rendered = reading_outputs(nbformat.read(executed, as_version=4))
    text = "\n".join(rendered)
    quoted = summary["quoted"]
    assert quoted, "the readings quote no number"
    for name, entry in quoted.items():
        assert entry["text"] == reports.quote_text(entry["value"], entry["spec"]), name
        assert entry["text"] in text, f"{name} = {entry['text']} is not in the reading"
    allowed = {token for source in (
        *(entry["text"] for entry in quoted.values()),
        *(check["expected_text"] for check in summary["checks"]),
        json.dumps(summary["parameters"])) for token in DECIMAL.findall(source)}
    stray = sorted(set(DECIMAL.findall(text)) - allowed)
    assert stray == [], f"numbers in the reading that the run did not produce: {stray}"
    committed = reading_outputs(nbformat.read(REPO / "notebooks" / f"{NOTEBOOK}.ipynb",
                                              as_version=4))
    assert committed != rendered, "the reading did not change with the seed"
