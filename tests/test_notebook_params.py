"""Tests of ptdlib.notebook_params: parameters cells, coercion rules, profiles, typed configs."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import nbformat
import papermill
import pytest
from _notebook_factory import PARAMETERS, make_notebook, protocol_cells
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdlib import notebook_params as npar
from ptdlib.notebook_params import Parameter


def test_parse_parameters_known_answer() -> None:
    source = ('seed = 0  # master seed\nalpha = 1e-3\n\n# a comment line\n'
              'grid = [4, 8.0]  # N values # with a hash\nname = "x"\nflag = True\nneg = -2\n')
    assert npar.parse_parameters(source) == {
        "seed": Parameter("seed", 0, "int", "master seed"),
        "alpha": Parameter("alpha", 1e-3, "float", ""),
        "grid": Parameter("grid", [4, 8.0], "list[float]", "N values # with a hash"),
        "name": Parameter("name", "x", "str", ""),
        "flag": Parameter("flag", True, "bool", ""),
        "neg": Parameter("neg", -2, "int", ""),
    }


@pytest.mark.parametrize(("source", "match"), [
    ("alpha: float = 0.1", "only `name = literal`"),
    ("alpha = 1 / 3", "must be a literal"),
    ("rank = None", "must be an int, float"),
    ("spec = {'a': 1}", "must be an int, float"),
    ("pair = (1, 2)", "must be an int, float"),
    ("grid = [[1], [2]]", "must be an int, float"),
    ("grid = [1, 'a']", "must be an int, float"),
    ("grid = []", "empty list"),
    ("a = 1\na = 2", "assigned twice"),
    ("a = b = 1", "only `name = literal`"),
    ("import numpy", "only `name = literal`"),
    ("n = int('3')", "must be a literal"),
    ("n = = 3", "not valid Python"),
    ("%matplotlib inline", "not valid Python"),
])
def test_parse_parameters_rejects_anything_but_flat_literals(source: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        npar.parse_parameters(source)


@pytest.mark.parametrize(("value", "kind", "expected"), [
    (3, "int", 3), (3, "float", 3.0), (2.5, "float", 2.5), ("1e-3", "float", 1e-3),
    (" 1.5E+2 ", "float", 150.0), ("-.5", "float", -0.5), (True, "bool", True),
    ("x", "str", "x"), ([1, "1e-3"], "list[float]", [1.0, 1e-3]), ((4, 8), "list[int]", [4, 8]),
])
def test_coerce_value_accepts(value: object, kind: str, expected: object) -> None:
    result = npar.coerce_value("p", value, kind)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(("value", "kind", "match"), [
    (3.0, "int", "expects int; got 3.0 \\(float\\)"), ("3", "int", "expects int"),
    (True, "int", "expects int"), (True, "float", "expects float"),
    ("abc", "float", "write floats as 1.0e-3"), ("1e-3x", "float", "expects float"),
    (float("inf"), "float", "finite"), (1, "bool", "expects bool"), (3, "str", "expects str"),
    (5, "list[int]", "expects a list\\[int\\]"), ([1, 2.5], "list[int]", "'p\\[1\\]' expects int"),
])
def test_coerce_value_rejects_with_name_value_and_kind(value: object, kind: str,
                                                       match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        npar.coerce_value("p", value, kind)
    assert "'p" in str(info.value)


@pytest.mark.parametrize(("text", "kind", "expected"), [
    ("16", "int", 16), ("1e-3", "float", 1e-3), ("0.25", "float", 0.25), ("[4, 8]", "list[int]",
                                                                             [4, 8]),
    ("true", "bool", True), ("02", "str", "02"), ("a: b", "str", "a: b"),
])
def test_parse_cli_value(text: str, kind: str, expected: object) -> None:
    assert npar.parse_cli_value("p", text, kind) == expected


def test_parse_cli_value_reports_unreadable_yaml() -> None:
    with pytest.raises(ValueError, match="cannot read"):
        npar.parse_cli_value("grid", "[1,", "list[int]")


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_written_by_python_reads_back(x: float) -> None:
    # repr(1e-05) is '1e-05', which YAML 1.1 reads as a string: the coercion rule restores it.
    assert npar.parse_cli_value("alpha", repr(x), "float") == x


def _profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.paper.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_profile_coerces_values(tmp_path: Path) -> None:
    declared = npar.parse_parameters(PARAMETERS)
    values = npar.load_profile(_profile(tmp_path, "alpha: 1e-3\nn_points: 10\n"), declared)
    assert values == {"alpha": 1e-3, "n_points": 10}


@pytest.mark.parametrize(("text", "match"), [
    ("alpah: 0.1\n", "unknown parameter 'alpah'; did you mean 'alpha'"),
    ("output_dir: x\n", "set by the runner"),
    ("- 1\n- 2\n", "must map parameter names"),
    ("a: [1,\n", "not valid YAML"),
    ("n_points: 2.5\n", "expects int"),
])
def test_load_profile_rejects(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        npar.load_profile(_profile(tmp_path, text), npar.parse_parameters(PARAMETERS))


BOUNDED = """seed = 0  # master seed [0, inf)
alpha = 0.5  # step size (0, 1]
label = "run"  # what to do {run, test}
grid = [2, 4]  # values of N [1, inf)
flag = False  # a switch
output_dir = ""  # set by ptd run
"""


def test_config_types_and_validates_from_the_parameters_cell() -> None:
    namespace = {"seed": 1, "alpha": 1, "label": "run", "grid": [2, 4], "flag": True,
                 "output_dir": "x", "other": object()}
    config = npar.config(namespace, source=BOUNDED)
    assert (config.seed, config.alpha, config.label, config.grid, config.flag) == (
        1, 1.0, "run", [2, 4], True)
    assert type(config.alpha) is float and not hasattr(config, "output_dir")
    assert repr(config).startswith("Config(seed=1, alpha=1.0, label='run'")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 2


@pytest.mark.parametrize("injected", [
    '# Parameters\nseed = 3\noutput_dir = "."\n',  # papermill's cell: a comment, no help
    '# Parameters\noutput_dir = "."\n',  # the quick profile: no seed
])
def test_config_finds_the_parameters_cell_in_the_kernel_history(injected: str) -> None:
    namespace = {"seed": 3, "alpha": 0.5, "label": "test", "grid": [1], "flag": False,
                 "In": ["", "import numpy", BOUNDED, injected, "config = ..."]}
    config = npar.config(namespace)
    assert (config.seed, config.label) == (3, "test")


def test_config_without_history_reads_the_saved_notebook(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_notebook(tmp_path / "notebooks" / "solo.ipynb", ["x = 1"], parameters=BOUNDED)
    monkeypatch.setenv("PTD_ROOT", str(tmp_path))
    namespace = {"seed": 1, "alpha": 0.5, "label": "run", "grid": [2], "flag": False}
    assert npar.config(namespace, "solo").grid == [2]  # nbval stores no history
    with pytest.raises(ValueError, match="no parameters cell in this kernel's history"):
        npar.config(namespace)


@pytest.mark.parametrize(("changes", "match"), [
    ({"alpha": 0.0}, "'alpha' must lie in \\(0.0, 1.0\\]; got 0.0"),
    ({"seed": -1}, "'seed' must lie in"),
    ({"label": "other"}, "'label' must be one of"),
    ({"grid": [2, 0]}, "'grid\\[1\\]' must lie in"),
    ({"alpha": "fast"}, "'alpha' expects float"),
])
def test_config_rejects(changes: dict, match: str) -> None:
    namespace = {"seed": 1, "alpha": 0.5, "label": "run", "grid": [2], "flag": False, **changes}
    with pytest.raises(ValueError, match=match):
        npar.config(namespace, source=BOUNDED)


def test_config_needs_every_declared_parameter() -> None:
    with pytest.raises(ValueError, match="'grid' is declared but not defined"):
        npar.config({"seed": 1, "alpha": 0.5, "label": "run", "flag": False}, source=BOUNDED)


@pytest.mark.parametrize(("line", "match"), [
    ("x = 5  # too big [0, 2]", "'x' must lie in"),
    ("x = 1  # empty (2, 1)", "empty interval"),
    ("x = 'a'  # an interval on a string [0, 1]", "needs a numeric kind"),
])
def test_parse_parameters_reads_and_checks_the_admitted_values(line: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        npar.parse_parameters(line + "\n")
    rules = npar.parse_parameters(BOUNDED)
    assert rules["alpha"].rules == npar.Rules(0.0, 1.0, low_open=True)
    assert rules["label"].rules.choices == ("run", "test")
    assert rules["flag"].rules == npar.Rules()
    prose = npar.parse_parameters("x = [0.1]  # levels of dist^2(B_t, B*)\n")
    assert prose["x"].rules == npar.Rules()  # not numbers: no interval


def test_a_long_line_takes_its_help_from_the_comment_line_above() -> None:
    declared = npar.parse_parameters("seed = 0  # seed\n# values of N [1, inf)\ngrid = [2, 4]\n"
                                     "# a lone comment\n\nflag = True\n")
    assert declared["grid"].help == "values of N [1, inf)"
    assert declared["grid"].rules == npar.Rules(1.0, float("inf"), high_open=True)
    assert declared["flag"].help == ""  # a blank line separates it from the comment


def test_load_profile_checks_the_admitted_values(tmp_path: Path) -> None:
    declared = npar.parse_parameters(BOUNDED)
    assert npar.load_profile(_profile(tmp_path, "alpha: 0.25\n"), declared) == {"alpha": 0.25}
    with pytest.raises(ValueError, match="'alpha' must lie in"):
        npar.load_profile(_profile(tmp_path, "alpha: 2\n"), declared)


def test_read_parameters_needs_exactly_one_parameters_cell(tmp_path: Path) -> None:
    path = make_notebook(tmp_path / "a.ipynb", ["x = 1"])
    assert list(npar.read_parameters(path)) == ["seed", "alpha", "n_points", "label",
                                                "output_dir"]
    none = make_notebook(tmp_path / "b.ipynb", ["x = 1"], parameters=None)
    with pytest.raises(ValueError, match=r"exactly one .* found 0"):
        npar.read_parameters(none)


EQUALS_IN_COMMENT = PARAMETERS.replace("n_points = 3  # an int parameter",
                                      "n_points = 3  # an int parameter (N = 4r)")
GENERIC = "papermill reads one `name = value  # help` per line with no other '='"


@pytest.mark.parametrize(("source", "expected"), [
    (EQUALS_IN_COMMENT, ["parameters cell line 3: papermill does not recognise parameter "
                         "'n_points' (its comment contains '='; reword the comment)"]),
    # Other lines that Python reads but papermill's one-'='-per-line parser skips.
    (PARAMETERS + 'sep = "a=b"  # a string holding an equals sign\n',
     [f"parameters cell line 6: papermill does not recognise parameter 'sep' ({GENERIC})"]),
    (PARAMETERS + "low = 1; high = 2\n",
     [f"parameters cell line 6: papermill does not recognise parameter {name!r} ({GENERIC})"
      for name in ("low", "high")]),
    (PARAMETERS, []),
    # papermill skips comment lines, so an '=' there is harmless.
    ("# N = 4r below\n" + PARAMETERS, []),
])
def test_notebook_problems_names_parameters_papermill_cannot_read(
        tmp_path: Path, source: str, expected: list[str]) -> None:
    path = make_notebook(tmp_path / "a.ipynb", ["x = 1"], parameters=source)
    assert npar.notebook_problems(path) == expected


@pytest.mark.parametrize(("source", "expected"), [
    (EQUALS_IN_COMMENT, {"n_points"}), (PARAMETERS + "low = 1; high = 2\n", {"low", "high"}),
    (PARAMETERS, set()),
])
def test_the_papermill_rule_agrees_with_papermill_inspect_notebook(
        tmp_path: Path, source: str, expected: set[str]) -> None:
    path = make_notebook(tmp_path / "a.ipynb", ["x = 1"], parameters=source)
    missed = set(npar.read_parameters(path)) - set(papermill.inspect_notebook(path))
    flagged = {re.search(r"parameter '(\w+)'", p)[1] for p in npar.notebook_problems(path)}
    assert flagged == missed == expected


def test_source_hash_follows_sources_and_profile_not_outputs(tmp_path: Path) -> None:
    path = make_notebook(tmp_path / "a.ipynb", protocol_cells("a"))
    profile = _profile(tmp_path, "alpha: 0.1\n")
    before = npar.notebook_source_hash(path, profile)
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    nb.cells[2].execution_count = 7
    nb.metadata["papermill"] = {"duration": 1.0}
    nbformat.write(nb, str(path))
    assert npar.notebook_source_hash(path, profile) == before
    profile.write_text("alpha: 0.2\n", encoding="utf-8")
    assert npar.notebook_source_hash(path, profile) != before
    nb.cells[2].source += "\n"
    nbformat.write(nb, str(path))
    assert npar.notebook_source_hash(path, profile) != npar.notebook_source_hash(path, None) != \
        before
