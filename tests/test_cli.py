"""Tests of the `ptd` command on throwaway projects (tiny notebooks generated in tmp folders).

Real papermill executions are kept few (two in the module fixture, one crash, the project's
walkthrough twice for determinism, and four slow ones for known failures); the interruption and
export-failure cases replace the executor, which is the point being tested.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from _notebook_factory import make_notebook, make_project, protocol_cells
from papermill.exceptions import PapermillExecutionError

from ptdlib import checks, cli, notebook_params, reports


@dataclass(frozen=True)
class Outcome:
    root: Path
    code: int
    out: str
    err: str


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    root = make_project(tmp_path_factory.mktemp("project"), {
        "good": protocol_cells("good"), "bad": protocol_cells("bad", passing=False)})
    code, out, err = run_cli(["run", "--root", str(root), "--profile", "paper",
                              "-p", "alpha", "1e-3"])
    return Outcome(root, code, out, err)


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_a_failed_check_exits_1_and_names_the_check(project: Outcome) -> None:
    assert project.code == 1, project.err
    assert "good: PASSED" in project.out
    assert ("bad: FAILED in" in project.out and "check alpha_echo failed: measured 0.001, "
            "expected 1.001 +/- 1e-12" in project.out)
    assert "not passed: bad" in project.out


def test_success_writes_notebook_figure_and_summary(project: Outcome) -> None:
    folder = project.root / "reports" / "good"
    assert sorted(p.name for p in folder.iterdir()) == ["good.ipynb", "line.png", "slides",
                                                        "summary.json"]
    assert sorted(p.name for p in (folder / "slides").iterdir()) == ["line.png"]
    summary = json.loads((folder / "summary.json").read_text())
    # 1e-3 on the command line is a YAML string, coerced to the float default's kind.
    assert summary["parameters"] == {"alpha": 0.001, "label": "run", "n_points": 5, "seed": 0}
    assert [c["ok"] for c in summary["checks"]] == [True, True]
    # The factory's notebook registers one check of each of two kinds.
    assert summary["schema"] == checks.SUMMARY_SCHEMA
    assert [(c["name"], c["kind"]) for c in summary["checks"]] == [
        ("alpha_echo", "claim"), ("alpha_is_float", "consistency")]
    assert summary["counts"] == {
        "claim": {"checks": 1, "passed": 1, "known_failures": 0, "failed": 0},
        "consistency": {"checks": 1, "passed": 1, "known_failures": 0, "failed": 0},
        "precondition": {"checks": 0, "passed": 0, "known_failures": 0, "failed": 0}}
    run = summary["run"]
    assert (run["profile"], run["overrides"], run["status"]) == ("paper", {"alpha": 0.001},
                                                                 "passed")
    assert run["parameters"] == {"alpha": 0.001, "n_points": 5}
    # ptdlib may be edited while tests run, so its hash is checked for form only here; its
    # meaning is tested in test_reports.
    assert re.fullmatch("[0-9a-f]{64}", run["ptdlib_sha256"])
    notebook = project.root / "notebooks" / "good.ipynb"
    assert run["notebook_sha256"] == notebook_params.notebook_source_hash(
        notebook, reports.profile_path(notebook))
    assert run["wall_time_s"] > 0 and run["git_commit"] == "unknown"  # tmp root: no repository
    executed = json.loads((folder / "good.ipynb").read_text())
    assert executed["metadata"]["papermill"]["input_path"] == "notebooks/good.ipynb"
    # The first cell says which settings produced the outputs.
    title = "".join(executed["cells"][0]["source"])
    assert title.endswith("**Profile.** These outputs come from the *paper* profile "
                          "(`notebooks/params/good.paper.yaml`), which sets `n_points` = 5. "
                          "Set on the command line: `alpha` = 0.001.")
    assert str(project.root) not in (folder / "good.ipynb").read_text()


def test_the_index_marks_the_failed_notebook(project: Outcome) -> None:
    reports_dir = project.root / "reports"
    assert sorted(p.name for p in (reports_dir / "bad").iterdir()) == [
        "bad.ipynb", "line.png", "slides", "summary.json"]
    page = (reports_dir / "index.html").read_text()
    # alpha_echo (a claim) passes in good and fails in bad; alpha_is_float passes in both.
    totals = ("claim checks: 1 of 2 pass (0 known failures, 1 failed); consistency checks: 2 of 2 "
              "pass (0 known failures, 0 failed). Across 2 notebooks; 0 without a report.")
    assert f'<p id="totals">{totals}</p>' in page
    readme = (reports_dir / "README.md").read_text()
    assert "### bad: failed" in readme and "- `alpha_echo`: FAIL" in readme
    assert "| bad | alpha_echo | claim | alpha arrives as a float | 0.001 | 1.001 +/- 1e-12 | " \
        "FAIL |" in readme
    assert "| bad | alpha_is_float | consistency | alpha has type float | true | true | PASS |" \
        in readme
    assert readme.splitlines()[2] == totals
    manifest = json.loads((reports_dir / "manifest.json").read_text())
    assert {k: v["status"] for k, v in manifest["notebooks"].items()} == {"bad": "failed",
                                                                         "good": "passed"}
    assert [p.name for p in reports_dir.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(("args", "message"), [
    (["run", "nope"], "unknown notebook 'nope'; known: bad, good"),
    (["run", "good", "-p", "alpah", "0.1"], "unknown parameter 'alpah'; did you mean 'alpha'?"),
    (["run", "good", "-p", "n_points", "2.5"], "'n_points' expects int; got 2.5 (float)"),
    (["run", "good", "-p", "n_points", "0"], "'n_points' must lie in [1.0, inf); got 0"),
    (["run", "good", "-p", "alpha", "fast"], "'alpha' expects float; got 'fast' (str)"),
    (["run", "good", "-p", "alpha", "true"], "'alpha' expects float; got True (bool)"),
    (["run", "-p", "output_dir", "x"], "'output_dir' is set by the runner"),
    (["sweep", "spec.yaml"], "cannot read spec.yaml"),
])
def test_bad_input_exits_2_with_one_line(project: Outcome, args: list[str], message: str) -> None:
    before = _tree(project.root / "reports")
    code, out, err = run_cli([*args, "--root", str(project.root)])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("ptd: error: ") and message in err, err
    assert _tree(project.root / "reports") == before  # nothing ran


@pytest.mark.parametrize("args", [[], ["run", "--profile", "fast"], ["run", "-p", "alpha"]])
def test_malformed_command_lines_exit_2(args: list[str]) -> None:
    assert run_cli(args)[0] == 2


def test_paper_profile_must_exist_and_be_valid(tmp_path: Path) -> None:
    make_notebook(tmp_path / "notebooks" / "solo.ipynb", protocol_cells("solo"))
    code, _, err = run_cli(["run", "--root", str(tmp_path), "--profile", "paper"])
    assert code == 2 and "solo has no paper profile: expected" in err
    (tmp_path / "notebooks" / "params").mkdir()
    (tmp_path / "notebooks" / "params" / "solo.paper.yaml").write_text("n_point: 4\n")
    code, _, err = run_cli(["run", "--root", str(tmp_path), "--profile", "paper"])
    assert code == 2 and "unknown parameter 'n_point'; did you mean 'n_points'?" in err


def test_a_notebook_with_a_bad_parameters_cell_is_bad_input(tmp_path: Path) -> None:
    make_notebook(tmp_path / "notebooks" / "odd.ipynb", ["x = 1"], parameters="alpha = 1 / 3\n")
    code, _, err = run_cli(["run", "--root", str(tmp_path)])
    assert code == 2 and "odd: parameters cell line 1: alpha must be a literal" in err


def test_notebooks_resolve_by_stem_or_path(project: Outcome) -> None:
    notebooks_dir = project.root / "notebooks"
    path = notebooks_dir / "good.ipynb"
    assert cli.resolve_notebooks(["good", str(path)], notebooks_dir) == [path, path.resolve()]
    assert cli.resolve_notebooks([], notebooks_dir) == [notebooks_dir / "bad.ipynb", path]
    plan = cli.plan_run(path, "quick", [("alpha", "1e-3"), ("label", "02")])
    assert plan.parameters == {"alpha": 0.001, "label": "02"} == plan.overrides


@pytest.fixture
def copy(project: Outcome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the fixture project, whose good report is the 'previous' one.

    Executed notebooks of errored runs are kept under tmp_path/kept rather than the system
    temporary folder.
    """
    root = tmp_path / "copy"
    shutil.copytree(project.root, root)
    (tmp_path / "kept").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "kept"))
    return root


def test_a_crashing_notebook_leaves_the_previous_report(copy: Path) -> None:
    before = _tree(copy / "reports" / "good")
    make_notebook(copy / "notebooks" / "good.ipynb",
                  ['raise RuntimeError("boom")', *protocol_cells("good")])
    code, out, _ = run_cli(["run", "good", "--root", str(copy)])
    assert code == 1
    assert "good: ERROR" in out and "RuntimeError: boom; previous report kept" in out
    assert _tree(copy / "reports" / "good") == before
    [kept] = (copy.parent / "kept").glob("ptd-good-error-*/good.ipynb")
    assert f"executed notebook in {kept.parent}" in out
    assert "RuntimeError" in kept.read_text()
    assert [p.name for p in (copy / "reports").iterdir() if p.name.startswith(".")] == []


def _fake_execute(write_summary: bool):
    def execute(plan: cli.RunPlan, staging: Path) -> None:
        shutil.copy(plan.notebook, staging / f"{plan.stem}.ipynb")
        (staging / "line.png").write_bytes(b"partial")
        if write_summary:
            (staging / "summary.json").write_text(json.dumps(
                {"notebook": plan.stem, "status": "passed", "n_checks": 1, "checks": []}))
    return execute


def test_an_interrupted_run_leaves_the_previous_report(copy: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    before = _tree(copy / "reports")

    def interrupted(plan: cli.RunPlan, staging: Path) -> None:
        _fake_execute(write_summary=False)(plan, staging)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_execute", interrupted)
    code, _, err = run_cli(["run", "good", "--root", str(copy)])
    assert code == 130 and "interrupted" in err
    assert _tree(copy / "reports") == before


def test_a_failure_while_finishing_leaves_the_previous_report(
        copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _tree(copy / "reports")

    def disk_full(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(cli, "_execute", _fake_execute(write_summary=True))
    monkeypatch.setattr(cli, "_finish_notebook", disk_full)
    with pytest.raises(OSError, match="disk full"):
        run_cli(["run", "good", "--root", str(copy)])
    assert _tree(copy / "reports") == before


def test_a_notebook_without_summary_is_an_error(copy: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_execute", _fake_execute(write_summary=False))
    code, out, _ = run_cli(["run", "good", "--root", str(copy)])
    assert code == 1 and "the notebook wrote no summary.json" in out


def test_a_passing_run_exits_0_and_out_redirects_the_reports(
        copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_execute", _fake_execute(write_summary=True))
    out_dir = tmp_path / "elsewhere"
    code, out, _ = run_cli(["run", "good", "--root", str(copy), "--out", str(out_dir)])
    assert code == 0 and "1 notebooks in" in out and "1 passed;" in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["README.md", "good", "index.html",
                                                         "manifest.json"]
    assert (out_dir / "good" / "good.ipynb").exists()


def test_a_known_failure_alone_exits_0(copy: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def known_failure(plan: cli.RunPlan, staging: Path) -> None:
        shutil.copy(plan.notebook, staging / f"{plan.stem}.ipynb")
        table = checks.CheckTable()
        table.add(checks.check_true("flat", "the line is flat", False, kind="claim"))
        table.expect_failure("flat", "it slopes")
        checks.write_summary(staging / "summary.json", plan.stem, table, {}, {})

    monkeypatch.setattr(cli, "_execute", known_failure)
    code, out, _ = run_cli(["run", "good", "--root", str(copy), "--out", str(tmp_path / "k")])
    assert code == 0, out
    assert "good: KNOWN FAILURES in" in out and "0 checks passed, 1 known failure: flat (it " \
        "slopes)" in out
    assert "known failure good/flat: it slopes\n1 notebooks in" in out
    assert "1 passed (1 known failure); index:" in out


def test_a_summary_naming_another_notebook_is_an_error(copy: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    before = _tree(copy / "reports" / "bad")

    def copied_notebook(plan: cli.RunPlan, staging: Path) -> None:
        _fake_execute(write_summary=True)(plan, staging)
        summary = json.loads((staging / "summary.json").read_text())
        (staging / "summary.json").write_text(json.dumps({**summary, "notebook": "good"}))

    monkeypatch.setattr(cli, "_execute", copied_notebook)
    code, out, _ = run_cli(["run", "bad", "--root", str(copy)])
    assert code == 1 and "summary.json names notebook 'good': pass 'bad'" in out
    assert _tree(copy / "reports" / "bad") == before


@pytest.mark.parametrize("ename", ["ValueError", "AssertionError"])
def test_an_error_after_a_passing_summary_is_not_a_check_failure(
        copy: Path, monkeypatch: pytest.MonkeyPatch, ename: str) -> None:
    before = _tree(copy / "reports" / "good")

    def late_error(plan: cli.RunPlan, staging: Path) -> None:
        _fake_execute(write_summary=True)(plan, staging)
        raise PapermillExecutionError(3, 3, "", ename, "late", [])

    monkeypatch.setattr(cli, "_execute", late_error)
    code, out, _ = run_cli(["run", "good", "--root", str(copy)])
    assert code == 1 and "good: ERROR in" in out
    assert f"{ename} after the summary was written: late" in out
    assert _tree(copy / "reports" / "good") == before


def test_report_rebuilds_the_index_from_the_console_script(copy: Path) -> None:
    (copy / "reports" / "index.html").unlink()
    script = Path(sys.executable).parent / "ptd"
    result = subprocess.run([str(script), "report", "--root", str(copy)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr  # the bad report has a failed check
    assert "not passed: bad" in result.stdout and (copy / "reports" / "index.html").exists()
    module = subprocess.run([sys.executable, "-m", "ptdlib.cli", "sweep", "x.yaml"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert module.returncode == 2 and "cannot read x.yaml" in module.stderr


def test_git_commit_outside_a_repository_is_unknown(tmp_path: Path) -> None:
    assert cli.git_commit(tmp_path) == "unknown"


def _leftover(path: Path) -> Path:
    path.mkdir()
    (path / "partial.png").write_bytes(b"partial")
    return path


def test_remove_stale_folders_takes_only_the_runners_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reports_dir, outside = tmp_path / "reports", tmp_path / "outside"
    reports_dir.mkdir()
    staging = _leftover(reports_dir / ".staging-good-k3x9q1za")
    target = _leftover(reports_dir / "good")
    with monkeypatch.context() as patch:  # a swap_in killed before it removed its backup
        patch.setattr(shutil, "rmtree", lambda path: None)
        reports.swap_in(_leftover(reports_dir / ".staging-new"), target)
    [backup] = reports_dir.glob(".old-good-*")
    kept = [_leftover(reports_dir / name) for name in (".stagingfoo", ".git", "old-good", "bad")]
    (reports_dir / ".staging-note").write_text("a file, not a runner's folder")
    (reports_dir / ".old-link").symlink_to(_leftover(outside), target_is_directory=True)
    assert cli.remove_stale_folders(reports_dir) == [backup, staging]
    assert sorted(p.name for p in reports_dir.iterdir()) == sorted(
        [*(p.name for p in kept), "good", ".staging-note", ".old-link"])
    assert (outside / "partial.png").exists()
    assert cli.remove_stale_folders(tmp_path / "missing") == []


def test_run_removes_leftovers_of_a_killed_run_after_checking_its_input(
        copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reports_dir = copy / "reports"
    leftovers = [_leftover(reports_dir / ".staging-good-k3x9q1za"),
                 _leftover(reports_dir / f".old-bad-{'0' * 32}")]
    assert run_cli(["run", "nope", "--root", str(copy)])[0] == 2
    assert all(p.exists() for p in leftovers)  # bad input changes nothing
    monkeypatch.setattr(cli, "_execute", _fake_execute(write_summary=True))
    code, out, _ = run_cli(["run", "good", "--root", str(copy)])
    assert code == 0, out
    assert ("removed 2 folders left by an interrupted run: .old-bad-0000" in out
            and ".staging-good-k3x9q1za" in out)
    assert [p.name for p in reports_dir.iterdir() if p.name.startswith(".")] == []


def test_the_kernel_sees_the_project_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill

    seen = []
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda *args, **kwargs: seen.append(os.environ.get("PTD_ROOT")))
    monkeypatch.delenv("PTD_ROOT", raising=False)
    plan = cli.RunPlan(tmp_path / "x.ipynb", "quick", {}, {})
    with cli._project_root_for_kernels(tmp_path / "project"):
        cli._execute(plan, tmp_path)
    assert seen == [str(tmp_path / "project")]  # set while the kernel runs...
    assert "PTD_ROOT" not in os.environ  # ...and restored afterwards


def test_jobs_give_the_reports_of_a_run_one_at_a_time(project: Outcome, tmp_path: Path) -> None:
    # Real executions in two worker processes (each with its own working directory): every
    # file a notebook writes equals the sequential run's, except the runner's `run` block.
    out_dir = tmp_path / "parallel"
    code, out, _ = run_cli(["run", "--root", str(project.root), "--out", str(out_dir),
                            "--profile", "paper", "-p", "alpha", "1e-3", "--jobs", "2"])
    assert code == 1 and "good: PASSED" in out and "bad: FAILED" in out

    def written(folder: Path) -> dict[str, object]:
        files = {name: data for name, data in _tree(folder).items()
                 if name.endswith((".png", ".json"))}
        summary = json.loads(files.pop("summary.json"))
        summary.pop("run")
        return {**files, "summary.json": summary}

    for stem in ("good", "bad"):
        assert written(out_dir / stem) == written(project.root / "reports" / stem), stem


def test_job_workers_limit_the_kernels_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in cli.THREAD_VARIABLES:
        monkeypatch.setenv(name, "8")  # restored after the test
    cli._limit_threads("1")
    assert {name: os.environ[name] for name in cli.THREAD_VARIABLES} == dict.fromkeys(
        cli.THREAD_VARIABLES, "1")


def test_jobs_must_be_positive(copy: Path) -> None:
    code, _, err = run_cli(["run", "--root", str(copy), "--jobs", "0"])
    assert code == 2 and "--jobs must be >= 1; got 0" in err


@pytest.mark.slow
def test_the_same_notebook_and_seeds_give_the_same_summary_and_figures(tmp_path: Path) -> None:
    # A real notebook of the project (the walkthrough runs the simulator), executed twice:
    # everything the notebook writes must be bit-identical; only the runner's `run` block
    # (wall time, start time) may differ.
    outputs = []
    for name in ("first", "second"):
        code, out, _ = run_cli(["run", "04_walkthrough", "--out", str(tmp_path / name)])
        assert code == 0, out
        outputs.append(tmp_path / name / "04_walkthrough")
    first, second = (json.loads((o / reports.SUMMARY).read_text()) for o in outputs)
    assert first.pop("run")["parameters"] == second.pop("run")["parameters"]
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    figures = sorted(p.name for p in outputs[0].glob("*.png"))
    assert figures and figures == sorted(p.name for p in outputs[1].glob("*.png"))
    for name in figures:
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name


KNOWN_REASON = "alpha arrives shifted by one"


@pytest.fixture(scope="module")
def known_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Notebooks whose alpha_echo fails as a known failure (known), fails unexpectedly (bad), or
    is registered as a known failure but passes (fixed)."""
    return make_project(tmp_path_factory.mktemp("known"), {
        "known": protocol_cells("known", passing=False, known_failure=KNOWN_REASON),
        "bad": protocol_cells("bad", passing=False),
        "fixed": protocol_cells("fixed", known_failure=KNOWN_REASON)})


@pytest.mark.slow
def test_only_known_failures_exit_0_and_are_marked_known_fail(known_project: Path,
                                                              tmp_path: Path) -> None:
    out_dir = tmp_path / "reports"
    code, out, err = run_cli(["run", "known", "--root", str(known_project), "--out",
                              str(out_dir)])
    assert code == 0, out + err
    assert ("known: KNOWN FAILURES in" in out and f"1 check passed, 1 known failure: "
            f"alpha_echo ({KNOWN_REASON})" in out)
    assert f"known failure known/alpha_echo: {KNOWN_REASON}" in out
    assert "1 notebooks in" in out and "1 passed (1 known failure); index:" in out
    summary = json.loads((out_dir / "known" / "summary.json").read_text())
    assert (summary["schema"], summary["status"], summary["run"]["status"],
            summary["n_failed"], summary["n_known_failures"]) == (
        3, "known failures", "known failures", 0, 1)
    assert (summary["counts"]["claim"], summary["counts"]["consistency"]) == (
        {"checks": 1, "passed": 0, "known_failures": 1, "failed": 0},
        {"checks": 1, "passed": 1, "known_failures": 0, "failed": 0})
    assert [(c["name"], c["verdict_text"], c["known_failure"]) for c in summary["checks"]] == [
        ("alpha_echo", "KNOWN FAIL", KNOWN_REASON), ("alpha_is_float", "PASS", None)]
    page = (out_dir / "index.html").read_text()
    assert ("claim checks: 0 of 1 pass (1 known failure, 0 failed); consistency checks: 1 of 1 "
            "pass (0 known failures, 0 failed). Across 3 notebooks; 2 without a report.") in page
    readme = (out_dir / "README.md").read_text()
    assert "### known: known failure" in readme and f"- `alpha_echo`: {KNOWN_REASON}" in readme
    assert (f"| known | alpha_echo | claim | alpha arrives as a float | 0.5 | 1.5 +/- 1e-12 | "
            f"KNOWN FAIL ({KNOWN_REASON}) |") in readme
    assert "KNOWN FAIL" in (out_dir / "known" / "known.ipynb").read_text()  # the printed table
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["notebooks"]["known"]["status"] == "known failures"
    # `ptd report` accepts the known failure too; bad and fixed were never run (missing).
    code, out, _ = run_cli(["report", "--root", str(known_project), "--out", str(out_dir)])
    assert code == 0 and "with known failures: known, not passed: bad, fixed" in out


@pytest.mark.slow
def test_an_unexpected_failure_next_to_a_known_one_exits_1(known_project: Path,
                                                           tmp_path: Path) -> None:
    out_dir = tmp_path / "reports"
    code, out, err = run_cli(["run", "known", "bad", "--root", str(known_project), "--out",
                              str(out_dir)])
    assert code == 1, out + err
    assert "known: KNOWN FAILURES in" in out and "known failure known/alpha_echo" in out
    assert "bad: FAILED in" in out and "check alpha_echo failed: measured 0.5, expected " \
        "1.5 +/- 1e-12" in out
    assert "2 notebooks in" in out and "1 passed (1 known failure), not passed: bad;" in out
    readme = (out_dir / "README.md").read_text()
    assert "| bad | alpha_echo | claim | alpha arrives as a float | 0.5 | 1.5 +/- 1e-12 | FAIL |" \
        in readme
    assert readme.splitlines()[2] == (
        "claim checks: 0 of 2 pass (1 known failure, 1 failed); consistency checks: 2 of 2 pass "
        "(0 known failures, 0 failed). Across 3 notebooks; 1 without a report.")


@pytest.mark.slow
def test_a_known_failure_that_passes_exits_1_and_says_why(known_project: Path,
                                                          tmp_path: Path) -> None:
    out_dir = tmp_path / "reports"
    code, out, err = run_cli(["run", "fixed", "--root", str(known_project), "--out",
                              str(out_dir)])
    assert code == 1, out + err
    assert "fixed: FAILED in" in out
    assert (f"check alpha_echo passes but is registered as a known failure ({KNOWN_REASON}): "
            "remove its expect_failure call") in out
    assert "known failure fixed" not in out and "0 passed, not passed: fixed;" in out
    summary = json.loads((out_dir / "fixed" / "summary.json").read_text())
    assert (summary["status"], summary["n_failed"], summary["n_known_failures"]) == (
        "failed", 1, 0)
    # An UNEXPECTED PASS counts as failed in its kind's counts too.
    assert summary["counts"]["claim"] == {"checks": 1, "passed": 0, "known_failures": 0,
                                          "failed": 1}
    readme = (out_dir / "README.md").read_text()
    assert (f"| fixed | alpha_echo | claim | alpha arrives as a float | 0.5 | 0.5 +/- 1e-12 | "
            f"UNEXPECTED PASS ({KNOWN_REASON}) |") in readme


@pytest.mark.slow
def test_warm_compiles_every_kernel_into_the_cache() -> None:
    code, out, _ = run_cli(["warm"])
    assert code == 0 and out.startswith("simulator kernels compiled or loaded from the cache in")


def test_figures_gathers_every_reports_slides(project: Outcome, tmp_path: Path) -> None:
    reports_dir = tmp_path / "reports"
    shutil.copytree(project.root / "reports", reports_dir)
    code, out, _ = run_cli(["figures", "--root", str(project.root), "--out", str(reports_dir)])
    assert code == 0 and "2 slides" in out
    assert sorted(p.name for p in (reports_dir / "slides").iterdir()) == ["bad-line.png",
                                                                         "good-line.png"]
    shutil.rmtree(reports_dir / "good" / "slides")
    shutil.rmtree(reports_dir / "bad" / "slides")
    code, _, err = run_cli(["figures", "--root", str(project.root), "--out", str(reports_dir)])
    assert code == 2 and "no slides to gather" in err
    assert not (reports_dir / "slides").exists()  # no slide of a figure that is gone
