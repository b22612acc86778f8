"""Tests of ptdlib.book: the claim verdicts, the check table, and a real Sphinx build of a small
project that fails, naming the file, on a missing summary, a missing figure or a broken
cross-reference."""

from __future__ import annotations

import json
import re
import runpy
import shutil
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import pytest
from _notebook_factory import make_notebook
from matplotlib.figure import Figure

from ptdlib import book, checks, reports

REPO = Path(__file__).resolve().parents[1]
#: TeX left in plain text: a command such as \frac, or a dollar sign.
TEX = re.compile(r"\\[A-Za-z]+|\$")


def _verdicts(*specs: tuple[str, str, bool, str | None]) -> list[checks.Verdict]:
    """(name, kind, ok, known failure reason) -> verdicts, known failures marked."""
    table = checks.CheckTable()
    for name, kind, ok, _ in specs:
        table.add(checks.check_true(name, f"claim {name}", ok, kind=kind))
    for name, _, _, reason in specs:
        if reason is not None:
            table.expect_failure(name, reason)
    return list(table.verdicts)


@pytest.mark.parametrize(("specs", "status", "passed", "total", "reasons"), [
    ([("a", "claim", True, None), ("b", "consistency", False, None)], "passed", 1, 1, {}),
    ([("a", "claim", True, None), ("b", "claim", False, "bias")], "known failure", 1, 2,
     {"b": "bias"}),
    ([("a", "claim", False, None), ("b", "claim", False, "bias")], "failed", 0, 2,
     {"a": "FAIL"}),
    ([("a", "claim", True, "was biased")], "failed", 0, 1, {"a": "UNEXPECTED PASS"}),
    ([("a", "precondition", True, None), ("b", "consistency", True, None)], "passed", 2, 2, {}),
])
def test_claim_verdict_judges_the_claim_checks(specs: list, status: str, passed: int,
                                                total: int, reasons: dict) -> None:
    verdict = checks.claim_verdict(_verdicts(*specs))
    assert (verdict.status, verdict.passed, verdict.total, verdict.reasons) == (
        status, passed, total, reasons)


def test_math_html_escapes_text_and_marks_inline_math() -> None:
    assert book.math_html(r"a <b> $\sigma_{r+1} < 1$ and \$5") == (
        r'a &lt;b&gt; <span class="math notranslate nohighlight">\(\sigma_{r+1} &lt; 1\)</span>'
        r" and \$5")


def test_check_table_has_a_row_per_check_with_sort_keys_and_reasons() -> None:
    table = checks.CheckTable()
    table.add(checks.check_close("slope", r"$\mathbb E\,d^2 \sim 1/t$", -0.5, -1.0, atol=0.2,
                                 kind="claim"))
    table.add(checks.check_true("ergodic", "every P_i is ergodic", True, kind="precondition"))
    table.expect_failure("slope", "bias <squared>")
    entry = reports.ReportEntry("05_x", {"checks": [v.to_dict() for v in table.verdicts]})
    page = book.check_table_html([entry])
    assert page.count("<tr data-kind=") == 2
    assert ('<tr data-kind="claim" data-verdict="KNOWN FAIL"><td><a href="notebooks/05_x.html">'
            "05_x</a></td><td><code>slope</code></td><td>claim</td>") in page
    assert r'<span class="math notranslate nohighlight">\(\mathbb E\,d^2 \sim 1/t\)</span>' in page
    assert '<td class="value" data-sort="-0.5">-0.5</td>' in page
    assert ('<td class="verdict verdict-known">KNOWN FAIL <span class="reason">'
            "(bias &lt;squared&gt;)</span></td>") in page
    assert '<td class="value">true</td>' in page  # booleans carry no numeric sort key


def test_navigation_puts_start_pages_chapters_in_reading_order_appendices_and_reference() -> None:
    stems = ["01_environments", "04_walkthrough", "00_background", "10_new", "02_mixing"]
    entries = [reports.ReportEntry(stem, {}) for stem in stems]
    lines = book.navigation(entries, ["glossary", "start-here", "extra", "setting"])
    tocs = "\n".join(lines).split("```{toctree}")[1:]
    captions = [re.search(r":caption: (.+)", t).group(1) for t in tocs]
    documents = [[line for line in t.split("\n\n", 1)[1].splitlines() if line and line != "```"]
                 for t in tocs]
    assert captions == ["Start", "Chapters", "Appendices", "Reference"]
    assert documents == [["docs/start-here", "docs/setting"],
                         ["notebooks/00_background", "notebooks/04_walkthrough",
                          "notebooks/10_new"],
                         ["notebooks/01_environments", "notebooks/02_mixing"],
                         ["docs/glossary", "docs/extra"]]


def _figure() -> Figure:
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def small_project(root: Path) -> Path:
    """A project with the book's configuration, one notebook and its report."""
    docs = root / "docs"
    docs.mkdir(parents=True)
    for name in ("conf.py", "references.bib", "bibliography.md"):
        shutil.copy2(REPO / "docs" / name, docs / name)
    shutil.copytree(REPO / "docs" / "_static", docs / "_static")
    (docs / "teaching.md").write_text("# Teaching\n\nStart with {doc}`../notebooks/01_a`.\n")
    notebook = make_notebook(root / "notebooks" / "01_a.ipynb", ["x = 1"],
                             markdown=r"# 01 · A chapter with $\sqrt{2}$")
    out = reports.NotebookOutput(str(root / "reports" / "01_a"), "01_a",
                                 claim=r"The answer is $\sqrt{2}$.")
    out.save_figure(_figure(), "answer", caption="the answer", headline=True)
    table = checks.CheckTable()
    table.add(checks.check_close("root", r"$x^2 = 2$", 1.4142, 2 ** 0.5, atol=1e-3,
                                 kind="claim"))
    out.write_summary(table, {"seed": 0})
    shutil.copy2(notebook, root / "reports" / "01_a" / "01_a.ipynb")
    reports.write_index(root / "reports", root / "notebooks")
    return root


@pytest.mark.slow
def test_build_book_makes_a_site_with_the_claim_first(tmp_path: Path) -> None:
    root = small_project(tmp_path)
    result = book.build_book(root)
    assert result.site == root / "reports" / "site" and result.pages >= 4
    page = (result.site / "index.html").read_text()
    assert (page.index('id="the-claims"') < page.index("The answer is")
            < page.index('id="every-check"') < page.index('id="checks"')
            < page.index('id="provenance"'))
    assert "Verdict: passed" in page and '<img alt="the answer"' in page
    assert (result.site / "_images" / "answer.png").is_file()
    assert (result.site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (result.site / "notebooks" / "01_a.html").is_file()
    assert not list((root / "reports").glob(".book-*"))  # the work folder is gone


def _broken(root: Path, how: str) -> str:
    """Break the small project one way; return what the error must name."""
    if how == "summary":
        (root / "reports" / "01_a" / "summary.json").unlink()
        return str(root / "reports" / "01_a" / "summary.json")
    if how == "figure":
        (root / "reports" / "01_a" / "answer.png").unlink()
        return str(root / "reports" / "01_a" / "answer.png")
    if how == "headline":
        path = root / "reports" / "01_a" / "summary.json"
        summary = json.loads(path.read_text())
        summary["figures"] = []
        path.write_text(json.dumps(summary))
        return "saved no figure for the landing page"
    (root / "docs" / "teaching.md").write_text(
        "# Teaching\n\nSee {doc}`../notebooks/99_missing`.\n")
    return "sphinx-build failed"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["summary", "figure", "headline", "reference"])
def test_build_book_fails_naming_what_is_broken(tmp_path: Path, how: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = small_project(tmp_path)
    book.build_book(root)
    before = (root / "reports" / "site" / "index.html").read_bytes()
    named = _broken(root, how)
    with pytest.raises(book.BookError) as error:
        book.build_book(root)
    assert named in str(error.value)
    if how == "reference":  # Sphinx's own message names the page and the target
        message = capsys.readouterr().err
        assert "teaching.md" in message and "99_missing" in message
    # The previous site stays in place, whole.
    assert (root / "reports" / "site" / "index.html").read_bytes() == before
    assert not list((root / "reports").glob(".book-*"))


def _myst_parser() -> Any:
    """The Markdown parser of the book, configured as docs/conf.py configures MyST."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    conf = runpy.run_path(str(REPO / "docs" / "conf.py"))
    config = MdParserConfig(enable_extensions=set(conf["myst_enable_extensions"]),
                            dmath_double_inline=conf["myst_dmath_double_inline"])
    return create_md_parser(config, RendererHTML)


def _text_outside_math(parser: Any, markdown: str) -> list[str]:
    """The text tokens that still hold TeX (a command or a dollar) after MyST's parse."""
    found = []
    stack = list(parser.parse(markdown))
    while stack:
        token = stack.pop()
        if token.type.startswith(("math", "amsmath", "code", "fence")):
            continue
        if token.children:
            stack += token.children
        elif token.type == "text" and TEX.search(token.content):
            found.append(token.content)
    return found


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.stem)
def test_the_book_reads_every_formula_of_a_notebook_as_math(path: Path) -> None:
    """A formula that MyST does not see as math (a line starting with "+", a "$$" it pairs
    wrongly) shows as raw TeX in the book, though Jupyter's MathJax renders it."""
    parser = _myst_parser()
    notebook = json.loads(path.read_text())
    stray = []
    for index, cell in enumerate(notebook["cells"]):
        sources = ["".join(cell["source"])] if cell["cell_type"] == "markdown" else []
        sources += ["".join(output["data"]["text/markdown"]) for output in cell.get("outputs", [])
                    if "text/markdown" in output.get("data", {})]
        stray += [f"cell {index}: {text[:80]!r}" for source in sources
                  for text in _text_outside_math(parser, source)]
    assert stray == []
