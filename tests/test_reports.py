"""Tests of ptdlib.reports: the notebook-side writer, the index/README/manifest and staleness."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest
from _notebook_factory import make_notebook, protocol_cells
from matplotlib.figure import Figure

from ptdlib import checks, notebook_params, reports

REPO = Path(__file__).resolve().parents[1]


def _figure() -> Figure:
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def _table(ok: bool = True, known_failure: str | None = None) -> checks.CheckTable:
    """Checks slope, a claim (fails unless ``ok``; registered as ``known_failure`` if given),
    and ergodic, a precondition."""
    table = checks.CheckTable()
    table.add(checks.check_close("slope", "E dist^2 ~ 1/t", -0.97 if ok else -0.5, -1.0,
                                 atol=0.2, kind="claim"))
    table.add(checks.check_true("ergodic", "every P_i is ergodic", True, kind="precondition"))
    if known_failure is not None:
        table.expect_failure("slope", known_failure)
    return table


def test_notebook_output_writes_figures_and_summary(tmp_path: Path) -> None:
    out = reports.NotebookOutput(str(tmp_path / "rep"), "02_mixing", claim="Chains mix: $d(t)$.")
    path = out.save_figure(_figure(), "tv_decay", caption="TV decay")
    out.save_figure(_figure(), "extra", key=False)
    out.save_figure(_figure(), "main", key=False, headline=True)
    out.reading("slope {{slope:.2f}} [{{lo:.1f}}, {{hi}}]", slope=-0.987, lo=-1.04, hi=-0.9)
    summary_path = out.write_summary(_table(), {"seed": 4, "alpha": 0.5})
    assert path == tmp_path / "rep" / "tv_decay.png" and path.exists()
    summary = json.loads(summary_path.read_text())
    assert summary["notebook"] == "02_mixing" and summary["status"] == "passed"
    assert summary["provenance"]["seeds"] == [4]
    assert summary["figures"] == [
        {"caption": "TV decay", "file": "tv_decay.png", "key": True, "headline": False},
        {"caption": "", "file": "extra.png", "key": False, "headline": False},
        {"caption": "", "file": "main.png", "key": True, "headline": True}]
    assert summary["claim"] == "Chains mix: $d(t)$."
    assert summary["quoted"] == {"slope": {"value": -0.987, "spec": ".2f", "text": "-0.99"},
                                 "lo": {"value": -1.04, "spec": ".1f", "text": "-1.0"},
                                 "hi": {"value": -0.9, "spec": "", "text": "-0.9"}}


def test_reading_fills_placeholders_and_keeps_tex_braces() -> None:
    out = reports.NotebookOutput("", "x")
    shown = out.reading(r"$\mathrm{dist}^2$ falls by {{ratio:.0%}} in {{n}} steps; $x_{1}$",
                        ratio=0.4567, n=1000)
    assert shown.data == r"$\mathrm{dist}^2$ falls by 46% in 1000 steps; $x_{1}$"
    assert out.quoted["n"] == {"value": 1000, "spec": "", "text": "1000"}


@pytest.mark.parametrize(("template", "values", "message"), [
    ("a {{a}} b {{b}}", {"a": 1.0}, "no value b= was given"),
    ("a {{a}}", {"a": 1.0, "b": 2.0}, "given but not quoted in the reading: b"),
    ("a {{a:.1f}} and {{a:.3f}}", {"a": 1.0}, "two formats"),
    ("a {{a:q}}", {"a": 1.0}, "Unknown format code"),
])
def test_reading_refuses_what_would_print_a_wrong_or_missing_number(
        template: str, values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reports.NotebookOutput("", "x").reading(template, **values)


def test_reading_refuses_one_name_quoted_two_ways_in_a_notebook() -> None:
    out = reports.NotebookOutput("", "x")
    out.reading("{{a:.1f}}", a=1.0)
    out.reading("again {{a:.1f}}", a=1.0)  # the same text is fine
    with pytest.raises(ValueError, match="quoted names must be unique"):
        out.reading("{{a:.2f}}", a=1.0)


def test_a_notebook_has_one_headline_figure() -> None:
    out = reports.NotebookOutput("", "x")
    out.save_figure(_figure(), "a", headline=True)
    with pytest.raises(ValueError, match="one headline figure"):
        out.save_figure(_figure(), "b", headline=True)


def test_notebook_output_without_folder_writes_nothing_but_still_validates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = reports.NotebookOutput("", "x")
    assert out.save_figure(_figure(), "a") is None
    assert out.write_summary(_table(), {"seed": 0}) is None
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match="cannot store"):
        out.write_summary(_table(), {"seed": 0, "rng": object()})


@pytest.mark.parametrize("name", ["a.png", "../up", "", "a b"])
def test_notebook_output_rejects_bad_figure_names(name: str) -> None:
    with pytest.raises(ValueError, match="figure name"):
        reports.NotebookOutput("", "x").save_figure(_figure(), name)


def test_notebook_output_rejects_a_repeated_figure_name() -> None:
    out = reports.NotebookOutput("", "x")
    out.save_figure(_figure(), "a")
    with pytest.raises(ValueError, match="figure name must be new"):
        out.save_figure(_figure(), "a")


def make_report(reports_dir: Path, stem: str, *, ok: bool = True, run: dict | None = None,
                known_failure: str | None = None, table: checks.CheckTable | None = None) -> Path:
    """A report folder as `ptd run` leaves it (summary with a run block, figure, ipynb);
    its checks are ``table``, by default ``_table(ok, known_failure)``."""
    out = reports.NotebookOutput(str(reports_dir / stem), stem)
    out.save_figure(_figure(), "curve", caption=f"{stem} curve")
    path = out.write_summary(table or _table(ok, known_failure), {"seed": 0})
    summary = json.loads(path.read_text())
    summary["run"] = {"profile": "paper", "overrides": {}, "wall_time_s": 1.5,
                      "git_commit": "abc123", **(run or {})}
    checks.write_json_atomic(path, summary)
    (reports_dir / stem / f"{stem}.ipynb").write_text("{}", encoding="utf-8")
    return path


def test_index_has_a_row_per_check_and_marks_failures(tmp_path: Path) -> None:
    reports_dir, notebooks_dir = tmp_path / "reports", tmp_path / "notebooks"
    make_report(reports_dir, "01_good")
    make_report(reports_dir, "02_bad", ok=False)
    make_notebook(notebooks_dir / "03_new.ipynb", ["x = 1"])
    entries = reports.write_index(reports_dir, notebooks_dir)
    assert [(e.stem, e.status) for e in entries] == [("01_good", "passed"), ("02_bad", "failed"),
                                                      ("03_new", "missing")]
    page = (reports_dir / "index.html").read_text()
    assert '<meta http-equiv="refresh" content="0; url=site/index.html">' in page
    # Per kind, claims first: slope passes in 01_good and fails in 02_bad; ergodic passes twice.
    totals = ("claim checks: 1 of 2 pass (0 known failures, 1 failed); preconditions: 2 of 2 pass "
              "(0 known failures, 0 failed). Across 3 notebooks; 1 without a report.")
    assert f'<p id="totals">{totals}</p>' in page
    readme = (reports_dir / "README.md").read_text()
    assert readme.splitlines()[2] == totals
    # Claims first: each notebook's verdict, then the check table.
    assert readme.index("### 01_good: passed") < readme.index("### 02_bad: failed") \
        < readme.index("### 03_new: passed") < readme.index("## Every check")
    assert "- `slope`: FAIL" in readme
    assert ("| notebook | check | kind | claim | measured | expected | verdict |\n"
            "|---|---|---|---|---|---|---|\n") in readme
    assert "| 02_bad | slope | claim | E dist^2 ~ 1/t | -0.5 | -1 +/- 0.2 | FAIL |" in readme
    assert "| 02_bad | ergodic | precondition | every P_i is ergodic | true | true | PASS |" \
        in readme
    assert "| 03_new | (no checks) |  | notebook has no report yet |  |  | NOT RUN |" in readme
    assert "![01_good curve](01_good/curve.png)" in readme
    assert "| git commit | abc123 |" in readme and "| wall time | 1.5 s |" in readme
    manifest = json.loads((reports_dir / "manifest.json").read_text())
    assert sorted(manifest["notebooks"]) == ["01_good", "02_bad"]
    assert manifest["notebooks"]["02_bad"]["status"] == "failed"


def test_index_marks_known_failures_and_unexpected_passes_with_their_reason(
        tmp_path: Path) -> None:
    reports_dir = tmp_path / "reports"
    make_report(reports_dir, "01_good")
    make_report(reports_dir, "02_known", ok=False, known_failure="bias <squared>")
    make_report(reports_dir, "03_fixed", known_failure="was biased")
    entries = reports.write_index(reports_dir)
    assert [e.status for e in entries] == ["passed", "known failures", "failed"]
    page = (reports_dir / "index.html").read_text()
    # slope: PASS in 01_good, KNOWN FAIL in 02_known, UNEXPECTED PASS (failed) in 03_fixed.
    totals = ("claim checks: 1 of 3 pass (1 known failure, 1 failed); preconditions: 3 of 3 pass "
              "(0 known failures, 0 failed). Across 3 notebooks; 0 without a report.")
    assert f'<p id="totals">{totals}</p>' in page
    readme = (reports_dir / "README.md").read_text()
    assert readme.splitlines()[2] == totals and "### 02_known: known failure" in readme
    assert "- `slope`: bias <squared>" in readme and "### 03_fixed: failed" in readme
    assert ("| 02_known | slope | claim | E dist^2 ~ 1/t | -0.5 | -1 +/- 0.2 | KNOWN FAIL "
            "(bias <squared>) |") in readme
    assert "| 03_fixed | slope | claim | E dist^2 ~ 1/t | -0.97 | -1 +/- 0.2 | UNEXPECTED PASS " \
        "(was biased) |" in readme
    assert "| 01_good | slope | claim | E dist^2 ~ 1/t | -0.97 | -1 +/- 0.2 | PASS |" in readme
    manifest = json.loads((reports_dir / "manifest.json").read_text())
    assert manifest["notebooks"]["02_known"]["status"] == "known failures"


def test_index_reads_schema_1_summaries(tmp_path: Path) -> None:
    reports_dir = tmp_path / "reports"
    path = make_report(reports_dir, "01_old", ok=False)
    summary = json.loads(path.read_text())
    for check in summary["checks"]:
        del check["known_failure"], check["verdict_text"], check["kind"]
    del summary["n_known_failures"], summary["counts"]
    checks.write_json_atomic(path, {**summary, "schema": 1})
    reports.write_index(reports_dir)
    readme = (reports_dir / "README.md").read_text()
    assert "| 01_old | slope | unknown | E dist^2 ~ 1/t | -0.5 | -1 +/- 0.2 | FAIL |" in readme
    assert readme.splitlines()[2] == ("checks of unknown kind: 1 of 2 pass (0 known failures, "
                                      "1 failed). Across 1 notebooks; 0 without a report.")


def test_index_reads_schema_2_summaries_without_kinds_next_to_new_ones(tmp_path: Path) -> None:
    reports_dir = tmp_path / "reports"
    make_report(reports_dir, "01_new")
    path = make_report(reports_dir, "02_old", ok=False, known_failure="lazy chains")
    summary = json.loads(path.read_text())
    for check in summary["checks"]:
        del check["kind"]
    del summary["counts"]
    checks.write_json_atomic(path, {**summary, "schema": 2})
    entries = reports.write_index(reports_dir)
    assert [v.kind for v in entries[0].verdicts] == ["claim", "precondition"]
    assert [v.kind for v in entries[1].verdicts] == [None, None]
    assert entries[1].status == "known failures"
    readme = (reports_dir / "README.md").read_text()
    assert ("| 02_old | slope | unknown | E dist^2 ~ 1/t | -0.5 | -1 +/- 0.2 | KNOWN FAIL "
            "(lazy chains) |") in readme
    assert "| 01_new | slope | claim | E dist^2 ~ 1/t | -0.97 | -1 +/- 0.2 | PASS |" in readme
    # Checks of unknown kind are counted apart, after the declared kinds.
    assert readme.splitlines()[2] == (
        "claim checks: 1 of 1 pass (0 known failures, 0 failed); preconditions: 1 of 1 pass "
        "(0 known failures, 0 failed); checks of unknown kind: 1 of 2 pass (1 known failure, "
        "0 failed). Across 2 notebooks; 0 without a report.")


def _mixed_table(*, claim_ok: bool, known: bool) -> checks.CheckTable:
    """Registered out of order: a consistency check, a claim, a precondition, a claim."""
    table = checks.CheckTable()
    table.add(checks.check_close("identity", "P 1 = 1", 1.0, 1.0, atol=1e-12, kind="consistency"))
    table.add(checks.check_close("rate", "rate ~ 1/t", -1.0 if claim_ok else -0.4, -1.0,
                                 atol=0.2, kind="claim"))
    table.add(checks.check_true("step", "step sizes in range", True, kind="precondition"))
    table.add(checks.check_at_most("floor", "floor ~ alpha", 0.3, 0.1, kind="claim"))
    if known:
        table.expect_failure("floor", "floor dominated by bias")
    return table


def test_index_totals_count_claims_first(tmp_path: Path) -> None:
    reports_dir, notebooks_dir = tmp_path / "reports", tmp_path / "notebooks"
    make_report(reports_dir, "01_a", table=_mixed_table(claim_ok=True, known=True))
    make_report(reports_dir, "02_b", table=_mixed_table(claim_ok=False, known=False))
    make_notebook(notebooks_dir / "03_c.ipynb", ["x = 1"])
    reports.write_index(reports_dir, notebooks_dir)
    # claims: rate PASS and floor KNOWN FAIL in 01_a, rate FAIL and floor FAIL in 02_b.
    totals = ("claim checks: 1 of 4 pass (1 known failure, 2 failed); consistency checks: 2 of 2 "
              "pass (0 known failures, 0 failed); preconditions: 2 of 2 pass (0 known failures, "
              "0 failed). Across 3 notebooks; 1 without a report.")
    assert f'<p id="totals">{totals}</p>' in (reports_dir / "index.html").read_text()
    readme = (reports_dir / "README.md").read_text()
    assert readme.splitlines()[2] == totals
    # Rows keep the order the notebook registered its checks in.
    assert [line.split(" | ")[1:3] for line in readme.splitlines()
            if line.startswith("| 01_a |")] == [
        ["identity", "consistency"], ["rate", "claim"], ["step", "precondition"],
        ["floor", "claim"]]


def _entry(stem: str, *verdicts: checks.Verdict) -> reports.ReportEntry:
    return reports.ReportEntry(stem, {"status": checks.notebook_status(verdicts),
                                      "checks": [v.to_dict() for v in verdicts]})


@pytest.mark.parametrize(("entries", "totals"), [
    ([_entry("a", checks.check_true("x", "", True, kind="consistency"),
             checks.check_true("y", "", True, kind="consistency"))],
     "consistency checks: 2 of 2 pass (0 known failures, 0 failed). Across 1 notebooks; "
     "0 without a report."),
    ([_entry("a", checks.check_true("x", "", False, kind="precondition")),
      _entry("b", checks.check_true("y", "", True, kind="claim")),
      reports.ReportEntry("c", None)],
     "claim checks: 1 of 1 pass (0 known failures, 0 failed); preconditions: 0 of 1 pass "
     "(0 known failures, 1 failed). Across 3 notebooks; 1 without a report."),
    ([reports.ReportEntry("a", None), _entry("b")],
     "no checks. Across 2 notebooks; 1 without a report."),
])
def test_totals_leave_out_kinds_without_checks(entries: list[reports.ReportEntry],
                                               totals: str) -> None:
    assert reports._totals(entries) == totals


def test_index_is_deterministic_and_escapes_text(tmp_path: Path) -> None:
    reports_dir = tmp_path / "reports"
    path = make_report(reports_dir, "01_x")
    summary = json.loads(path.read_text())
    summary["checks"][0]["claim"] = "a <b> | c"
    checks.write_json_atomic(path, summary)
    reports.write_index(reports_dir)
    first = {p.name: p.read_bytes() for p in reports_dir.iterdir() if p.is_file()}
    reports.write_index(reports_dir)
    assert first == {p.name: p.read_bytes() for p in reports_dir.iterdir() if p.is_file()}
    assert "a <b> \\| c" in first["README.md"].decode()
    assert sorted(first) == ["README.md", "index.html", "manifest.json"]  # no temp files left


def test_swap_in_replaces_a_folder_whole(tmp_path: Path) -> None:
    target, staging = tmp_path / "rep", tmp_path / ".staging"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staging.mkdir()
    (staging / "new.txt").write_text("new")
    reports.swap_in(staging, target)
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]
    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_swap_in_restores_the_old_folder_when_the_swap_fails(tmp_path: Path) -> None:
    target = tmp_path / "rep"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(FileNotFoundError):
        reports.swap_in(tmp_path / "missing", target)
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]
    assert (target / "old.txt").read_text() == "old"


def _project(root: Path) -> Path:
    """A tmp project: two notebooks with profiles, a fake ptdlib, fresh reports and index."""
    (root / "ptdlib").mkdir(parents=True)
    (root / "ptdlib" / "__init__.py").write_text('"""fake"""\n')
    for stem in ("01_a", "02_b"):
        notebook = make_notebook(root / "notebooks" / f"{stem}.ipynb", protocol_cells(stem))
        (root / "notebooks" / "params").mkdir(exist_ok=True)
        reports.profile_path(notebook).write_text("alpha: 0.25\n")
        make_report(root / "reports", stem, run={
            "notebook_sha256": notebook_params.notebook_source_hash(
                notebook, reports.profile_path(notebook)),
            "ptdlib_sha256": reports.ptdlib_source_hash(root / "ptdlib")})
    reports.write_index(root / "reports", root / "notebooks")
    return root


def test_staleness_mechanism_on_a_tmp_tree(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert reports.stale_report_sources(root) == []
    # Re-executing a notebook in place changes outputs only: still fresh.
    nb_path = root / "notebooks" / "01_a.ipynb"
    notebook = json.loads(nb_path.read_text())
    notebook["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout",
                                        "text": ["hi\n"]}]
    nb_path.write_text(json.dumps(notebook))
    assert reports.stale_report_sources(root) == []
    (root / "notebooks" / "params" / "02_b.paper.yaml").write_text("alpha: 0.5\n")
    (root / "ptdlib" / "new.py").write_text("x = 1\n")
    make_notebook(root / "notebooks" / "03_c.ipynb", ["x = 1"])
    (root / "evidence").mkdir()
    (root / "evidence" / "01_a.parquet").write_bytes(b"cells")  # a store appears or changes
    assert reports.stale_report_sources(root) == [
        "01_a: its evidence store changed since its report",
        "01_a: ptdlib changed since the report was made",
        "02_b: the notebook or its paper profile changed since its report",
        "02_b: ptdlib changed since the report was made",
        "03_c: no report",
    ]


def test_staleness_catches_quick_runs_unindexed_summaries_and_removed_notebooks(
        tmp_path: Path) -> None:
    root = _project(tmp_path)
    summary_path = root / "reports" / "01_a" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["run"]["profile"] = "quick"
    checks.write_json_atomic(summary_path, summary)
    assert reports.stale_report_sources(root) == [
        "01_a: summary.json differs from the manifest (run `ptd report`)"]
    reports.write_index(root / "reports", root / "notebooks")
    assert reports.stale_report_sources(root) == [
        "01_a: report made with profile 'quick' and overrides {}, not the plain 'paper' profile"]
    (root / "notebooks" / "02_b.ipynb").unlink()
    os.remove(root / "reports" / "index.html")
    reasons = reports.stale_report_sources(root)
    assert "index.html is missing: run `ptd report`" in reasons
    assert "02_b: report of a notebook that no longer exists" in reasons
    shutil.rmtree(root / "reports")
    assert reports.stale_report_sources(root) == [
        "manifest.json is missing: run `make reports`"]


def test_repository_reports_are_up_to_date() -> None:
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    if not notebooks or not (REPO / "reports" / "manifest.json").exists():
        pytest.skip("no notebooks or no reports/manifest.json yet: staleness is checked once "
                    "`make reports` has run (the mechanism is tested on a tmp tree above)")
    reasons = reports.stale_report_sources(REPO)
    assert reasons == [], "reports/ is stale, run `make reports`:\n" + "\n".join(reasons)


def test_state_profile_replaces_the_profile_paragraph_or_appends_one() -> None:
    quick = "# Title\n\nThe claim.\n\n**Profile.** quick, from the\nparameters cell.\n\nMore."
    paper = reports.profile_statement("x", "paper", {"n": 4, "seed": 1}, {"seed": 1})
    assert paper == ("**Profile.** These outputs come from the *paper* profile "
                     "(`notebooks/params/x.paper.yaml`), which sets `n` = 4. Set on the command "
                     "line: `seed` = 1.")
    assert reports.state_profile(quick, paper) == f"# Title\n\nThe claim.\n\nMore.\n\n{paper}"
    assert reports.state_profile("# Title\n", "S") == "# Title\n\nS"
    assert reports.profile_statement("x", "quick", {}, {}).endswith(
        "*quick* profile: the defaults of the parameters cell.")
