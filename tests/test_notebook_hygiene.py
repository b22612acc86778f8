"""Hygiene of every notebooks/*.ipynb, and of the checker itself on synthetic notebooks.

Rules (ptdlib.notebook_params.notebook_problems): exactly one ``parameters`` cell of flat
literals with ``seed`` and ``output_dir = ""``, each recognised by papermill's parser (no ``=``
in a help comment); kernelspec python3; no IPython magics, shell escapes or ``get_ipython``; no
absolute paths in code, prose, outputs or metadata; no error outputs; a valid
``params/<stem>.paper.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from _notebook_factory import PARAMETERS, make_notebook, protocol_cells

from ptdlib.notebook_params import notebook_problems

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_repository_notebook_is_clean(path: Path) -> None:
    profile = path.parent / "params" / f"{path.stem}.paper.yaml"
    assert profile.exists(), f"{path.stem} has no paper profile {profile.name}"
    assert notebook_problems(path, profile=profile) == []


def test_every_paper_profile_belongs_to_a_notebook() -> None:
    stems = {p.stem for p in NOTEBOOKS}
    orphans = [p.name for p in sorted((NOTEBOOKS_DIR / "params").glob("*.paper.yaml"))
               if p.name.removesuffix(".paper.yaml") not in stems]
    assert orphans == []


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = make_notebook(tmp_path / "good.ipynb", protocol_cells("good"),
                         markdown="# Claim\nSee [the reports](../reports/index.html).")
    (tmp_path / "good.paper.yaml").write_text("alpha: 1.0e-3\n", encoding="utf-8")
    return path


def test_a_protocol_notebook_is_clean(good: Path) -> None:
    assert notebook_problems(good, profile=good.with_suffix(".paper.yaml")) == []


def _edit(path: Path, change: Callable[[nbformat.NotebookNode], None]) -> Path:
    nb = nbformat.read(str(path), as_version=4)
    change(nb)
    nbformat.write(nb, str(path))
    return path


def _append_code(source: str) -> Callable[[nbformat.NotebookNode], None]:
    return lambda nb: nb.cells.append(nbformat.v4.new_code_cell(source))


def _set_parameters(source: str) -> Callable[[nbformat.NotebookNode], None]:
    def change(nb: nbformat.NotebookNode) -> None:
        nb.cells[1].source = source
    return change


def _untag(nb: nbformat.NotebookNode) -> None:
    nb.cells[1].metadata["tags"] = []


def _second_parameters_cell(nb: nbformat.NotebookNode) -> None:
    cell = nbformat.v4.new_code_cell("extra = 1")
    cell.metadata["tags"] = ["parameters"]
    nb.cells.append(cell)


def _kernel(nb: nbformat.NotebookNode) -> None:
    nb.metadata["kernelspec"]["name"] = "julia-1.10"


def _output(output: nbformat.NotebookNode) -> Callable[[nbformat.NotebookNode], None]:
    def change(nb: nbformat.NotebookNode) -> None:
        nb.cells[2].outputs = [output]
    return change


BAD = {
    "no parameters tag": (_untag, "found 0"),
    "two parameters cells": (_second_parameters_cell, "found 2"),
    "expression parameter": (_set_parameters(PARAMETERS + "steps = 10 * 1000\n"),
                             "must be a literal"),
    "annotated parameter": (_set_parameters(PARAMETERS + "rank: int = 2\n"), "only `name ="),
    "equals sign in a help comment": (_set_parameters(PARAMETERS + "rank = 2  # r = 2\n"),
                                      "papermill does not recognise parameter 'rank'"),
    "missing seed": (_set_parameters(PARAMETERS.replace("seed = 0", "seeds = 0")),
                     "must define seed"),
    "float seed": (_set_parameters(PARAMETERS.replace("seed = 0", "seed = 0.0")),
                   "must define seed"),
    "missing output_dir": (_set_parameters("seed = 0\n"), "must define output_dir"),
    "output_dir default": (_set_parameters(PARAMETERS.replace('output_dir = ""',
                                                              'output_dir = "out"')),
                           'output_dir must default to ""'),
    "line magic": (_append_code("%matplotlib inline"), "IPython magic"),
    "cell magic": (_append_code("%%time\nx = 1"), "IPython magic"),
    "pip escape": (_append_code("!pip install numpy"), "shell escape '!pip install numpy'"),
    "get_ipython": (_append_code("get_ipython().system('ls')"), "IPython magic"),
    "absolute path in code": (_append_code("open('/home/me/data.csv')"),
                              "absolute path '/home/me/data.csv'"),
    "windows path in code": (_append_code("p = 'C:\\\\data\\\\x.csv'"), "absolute path"),
    "home path in code": (_append_code("p = '~/x.csv'"), "absolute path"),
    "absolute path in output": (_output(nbformat.v4.new_output(
        "stream", text="warning in\n/work/main/.venv/lib/x.py:3\n")), "cell 2 output"),
    "error output": (_output(nbformat.v4.new_output("error", ename="ValueError", evalue="x",
                                                    traceback=[])), "error output"),
    "absolute path in markdown": (lambda nb: nb.cells.append(nbformat.v4.new_markdown_cell(
        "data in /tmp/run1/")), "(markdown): absolute path"),
    "absolute path in metadata": (lambda nb: nb.metadata.update(
        {"papermill": {"input_path": "/work/main/notebooks/x.ipynb"}}), "notebook metadata"),
    "wrong kernel": (_kernel, "kernelspec must be"),
    "not python": (_append_code("def f(:\n    pass"), "not valid Python"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_the_checker_finds_each_violation(good: Path, case: str) -> None:
    change, message = BAD[case]
    problems = notebook_problems(_edit(good, change))
    assert len(problems) == 1 and message in problems[0], problems


def test_the_checker_reports_bad_profiles_and_files(good: Path, tmp_path: Path) -> None:
    profile = tmp_path / "bad.paper.yaml"
    profile.write_text("alpah: 0.1\n", encoding="utf-8")
    [problem] = notebook_problems(good, profile=profile)
    assert "bad.paper.yaml" in problem and "did you mean 'alpha'" in problem
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json", encoding="utf-8")
    assert notebook_problems(broken)[0].startswith("not a valid notebook")


def test_relative_paths_and_slashes_in_text_are_fine(good: Path) -> None:
    cell = ("from pathlib import Path\nratio = 'dist / N'\nlabel = f'{1}/{2}'\n"
            "Path('figures') / 'a.png'")
    assert notebook_problems(_edit(good, _append_code(cell))) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_title_cell_says_which_profile_produced_the_outputs(path: Path) -> None:
    title = "".join(nbformat.read(str(path), as_version=4).cells[0].source)
    profile = [p for p in title.split("\n\n") if p.startswith("**Profile.**")]
    assert len(profile) == 1 and "*quick* profile" in profile[0]
    assert f"notebooks/params/{path.stem}.paper.yaml" in profile[0]
