"""The book: a static Sphinx site under ``reports/site/``, built from the executed notebooks.

Primer
------
``make reports`` runs every notebook into ``reports/<stem>/`` (``ptd run``); ``make book`` (and
the end of ``make reports``) turns those folders into a site without re-executing anything:

1. :func:`stage_sources` copies the hand-written pages of ``docs/`` (``conf.py``, the start
   page, the design notes, teaching notes, glossary, bibliography, ``references.bib``, the check
   table's script and style) into ``docs/`` of a staging folder, each executed notebook into
   ``notebooks/<stem>.ipynb`` and each report's figures into ``figures/<stem>/``: the layout of
   the repository, so a link such as ``../docs/setting.md`` from a notebook works on GitHub, in
   Jupyter and in the book alike. It writes the landing page ``index.md``
   (:func:`landing_page`): the paper's claims first, one card per notebook with its headline
   sentence, its verdict (:func:`claim_verdict`) and its headline figure, then every check
   (:func:`check_table_html`) and the provenance of the runs (:func:`provenance_table`).
2. :func:`build_book` runs Sphinx (MyST-NB, sphinx-book-theme) on it with warnings as errors,
   so a broken cross-reference, a missing figure or an unreadable notebook fails the build with
   Sphinx's message naming the file, and swaps the result into ``reports/site/``.

Every file of the site is local: MathJax ships inside it (``docs/conf.py``), and ``index.html``
works opened from disk.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptdlib import checks, reports

__all__ = [
    "BookError",
    "BookResult",
    "build_book",
    "check_table_html",
    "landing_page",
    "stage_sources",
]

#: The book's hand-written sources, relative to the project root (and to the staging folder).
DOCS_FOLDER = "docs"
#: The site, relative to the reports folder.
SITE_FOLDER = "site"
CHAPTERS = "notebooks"
FIGURES = "figures"
#: The navigation: pages of docs/ first, then the notebooks in reading order, the appendices
#: and the reference pages. A page or notebook missing here is left out of its part; one that
#: no part names goes at the end of its kind (a new notebook after the chapters, a new page
#: among the references), so nothing is ever dropped from the book.
START_PAGES = ("start-here", "teaching", "setting", "algorithm")
READING_ORDER = ("00_background", "04_walkthrough", "05_principal_angle", "06_linear_speedup",
                 "07_heterogeneity", "08_markov_vs_iid", "09_control")
APPENDICES = ("01_environments", "02_mixing", "03_step_size")
REFERENCE_PAGES = ("checks", "glossary", "bibliography")
INLINE_MATH = re.compile(r"(?<!\\)\$([^$]+)(?<!\\)\$")


class BookError(RuntimeError):
    """The book cannot be built from what is in ``reports/`` and ``docs/``."""


@dataclass(frozen=True)
class BookResult:
    """A built site: where, how long it took, how large it is."""

    site: Path
    seconds: float
    size_bytes: int
    pages: int


def _verdict_class(status: str) -> str:
    return {"passed": "verdict-pass", "known failure": "verdict-known"}.get(status, "verdict-fail")


def math_html(text: str) -> str:
    """``text`` escaped for HTML, its ``$...$`` spans as MathJax inline math."""
    parts, last = [], 0
    for match in INLINE_MATH.finditer(text):
        parts.append(html.escape(text[last:match.start()]))
        parts.append(f'<span class="math notranslate nohighlight">'
                     f"\\({html.escape(match.group(1))}\\)</span>")
        last = match.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)


def chapter_title(notebook: Path) -> str:
    """The first ``# `` heading of a notebook's Markdown cells."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        for line in "".join(cell.get("source", [])).splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    raise BookError(f"{notebook}: no '# ' title in its Markdown cells")


def _claim_card(entry: reports.ReportEntry, figure: Mapping[str, Any]) -> list[str]:
    summary = entry.summary or {}
    verdict = checks.claim_verdict(entry.verdicts)
    kind = "claim checks" if any(v.kind == "claim" for v in entry.verdicts) else "checks"
    line = f"**Verdict: {verdict.status}** ({verdict.passed} of {verdict.total} {kind} pass)"
    reasons = [f"- `{name}`: {reason}" for name, reason in verdict.reasons.items()]
    claim = summary.get("claim") or "(this notebook states no headline claim)"
    caption = figure.get("caption") or figure["file"]
    return [f"::::{{container}} claim-card {_verdict_class(verdict.status)}",
            f"**{{doc}}`{CHAPTERS}/{entry.stem}`** — {claim}", "", line, "", *reasons, "",
            f":::{{figure}} {FIGURES}/{entry.stem}/{figure['file']}", f":alt: {caption}", "",
            caption, ":::", "::::", ""]


def check_table_html(entries: Iterable[reports.ReportEntry]) -> str:
    """Every check in one table, with a text filter and kind and verdict selectors."""
    rows = []
    for entry in entries:
        for v in entry.verdicts:
            verdict = checks.verdict_text(v)
            status = ("passed" if verdict == "PASS" else "known failure"
                      if verdict == "KNOWN FAIL" else "failed")
            reason = (f' <span class="reason">({html.escape(v.known_failure)})</span>'
                      if v.known_failure else "")
            rows.append(
                f'<tr data-kind="{html.escape(v.kind or "unknown")}" '
                f'data-verdict="{html.escape(verdict)}">'
                f'<td><a href="{CHAPTERS}/{entry.stem}.html">{entry.stem}</a></td>'
                f"<td><code>{html.escape(v.name)}</code></td><td>{html.escape(v.kind or '')}</td>"
                f"<td>{math_html(v.claim)}</td>"
                f'<td class="value"{_sort_key(v.measured)}>'
                f"{html.escape(checks.measured_text(v))}</td>"
                f'<td class="value">{html.escape(checks.expected_text(v))}</td>'
                f'<td class="verdict {_verdict_class(status)}">{html.escape(verdict)}'
                f"{reason}</td></tr>")
    columns = ["notebook", "check", "kind", "claim", "measured", "expected", "verdict"]
    options = "".join(f'<option value="{k}">{k}</option>'
                      for k in ("claim", "consistency", "precondition"))
    verdicts = "".join(f'<option value="{k}">{k}</option>'
                       for k in ("PASS", "KNOWN FAIL", "FAIL", "UNEXPECTED PASS"))
    return "\n".join([
        '<div class="check-controls">',
        '<input id="checks-filter" type="search" placeholder="Filter: a word, a check, a notebook"'
        ' aria-label="Filter the checks">',
        f'<select id="checks-kind" aria-label="Kind"><option value="">every kind</option>'
        f"{options}</select>",
        f'<select id="checks-verdict" aria-label="Verdict"><option value="">every verdict'
        f"</option>{verdicts}</select>",
        '<span id="checks-count"></span>', "</div>",
        '<table id="checks" class="table">',
        "<colgroup>" + "".join(f'<col class="{c}">' for c in columns) + "</colgroup>",
        "<thead><tr>" + "".join(f'<th scope="col">{c}</th>' for c in columns) + "</tr></thead>",
        "<tbody>", *rows, "</tbody>", "</table>"])


def _sort_key(measured: Any) -> str:
    """A ``data-sort`` attribute holding a real measured value, so the column sorts numerically."""
    if isinstance(measured, bool) or not isinstance(measured, int | float):
        return ""
    return f' data-sort="{float(measured)!r}"' if math.isfinite(measured) else ""


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def provenance_table(entries: Iterable[reports.ReportEntry]) -> list[str]:
    """One row per report (profile, seeds, wall time, commit, start), then the versions."""
    lines = ["| notebook | profile | seeds | wall time | git commit | started (UTC) |",
             "|---|---|---|---|---|---|"]
    versions: set[str] = set()
    for entry in entries:
        summary = entry.summary or {}
        run, provenance = summary.get("run", {}), summary.get("provenance", {})
        overrides = run.get("overrides") or {}
        profile = str(run.get("profile", "unknown")) + (
            f" with {json.dumps(overrides, sort_keys=True)}" if overrides else "")
        seeds = provenance.get("seeds", [])
        seed_text = (f"{seeds[0]}-{seeds[-1]} ({len(seeds)})"
                     if len(seeds) > 3 and seeds == list(range(seeds[0], seeds[-1] + 1))
                     else ", ".join(map(str, seeds)))
        wall = f"{run['wall_time_s']:.0f} s" if "wall_time_s" in run else "unknown"
        commit, started = run.get("git_commit", "unknown"), run.get("started_utc", "unknown")
        lines.append(f"| {entry.stem} | {_markdown_cell(profile)} | {seed_text} | {wall} | "
                     f"`{commit}` | {started} |")
        packages = ", ".join(f"{k} {v}" for k, v in sorted(provenance.get("packages", {}).items()))
        versions.add(f"Python {provenance.get('python', '?')} on {provenance.get('machine', '?')}"
                     f", {provenance.get('kernel_arithmetic', '?')} kernels; {packages}")
    return [*lines, "", *(f"Versions: {v}." for v in sorted(versions))]


def landing_page(entries: list[reports.ReportEntry], reports_dir: Path,
                 pages: Iterable[str] = ()) -> str:
    """``index.md``: the claims with verdicts and figures, then every check, then provenance;
    ``pages`` (stems of ``docs/*.md``) go into the navigation with the chapters."""
    pages = set(pages)
    cards = []
    for entry in entries:
        figure = reports.headline_figure(entry)
        if figure is None:
            raise BookError(f"{reports_dir / entry.stem / reports.SUMMARY}: the notebook saved no "
                            "figure for the landing page (out.save_figure(..., headline=True))")
        cards += _claim_card(entry, figure)
    return "\n".join([
        "# ptd: the paper's claims, checked", "",
        "This book runs every claim of *Personalized Multi-Agent Average-Reward TD-Learning via "
        "Joint Linear Approximation* {cite:p}`personalized_td_2026` as code. Each notebook below "
        "pre-registers what the theory predicts, measures it and gives a verdict; a *known "
        "failure* is a pre-registered expectation that the data refute, reported with its "
        "reason, never hidden or re-tuned." + (
            f" New here? Read {{doc}}`{DOCS_FOLDER}/start-here` first." if "start-here" in pages
            else ""), "",
        f"**Totals.** {reports._totals(entries)}", "",
        "## The claims", "", *cards,
        "## Every check", "",
        "Click a column header to sort; type to filter. *Claim* checks test the paper; "
        "*consistency* checks test the code against exact answers; *preconditions* check that "
        "a problem satisfies the theory's assumptions.", "",
        "```{raw} html", check_table_html(entries), "```", "",
        "## Provenance", "", *provenance_table(entries), "",
        *navigation(entries, pages)])


def _toctree(caption: str, documents: Iterable[str]) -> list[str]:
    documents = list(documents)
    if not documents:
        return []
    return ["```{toctree}", ":hidden:", ":maxdepth: 2", f":caption: {caption}", "",
            *documents, "```", ""]


def navigation(entries: Iterable[reports.ReportEntry], pages: Iterable[str]) -> list[str]:
    """The book's hidden tables of contents: start, chapters, appendices, reference.

    ``pages`` are the stems of ``docs/*.md``; see :data:`START_PAGES` for the order.
    """
    stems, pages = [e.stem for e in entries], set(pages)
    appendices = [s for s in APPENDICES if s in stems]
    chapters = [s for s in READING_ORDER if s in stems] + sorted(
        s for s in stems if s not in READING_ORDER and s not in APPENDICES)
    start = [p for p in START_PAGES if p in pages]
    reference = [p for p in REFERENCE_PAGES if p in pages] + sorted(
        pages - set(START_PAGES) - set(REFERENCE_PAGES))
    return [*_toctree("Start", (f"{DOCS_FOLDER}/{p}" for p in start)),
            *_toctree("Chapters", (f"{CHAPTERS}/{s}" for s in chapters)),
            *_toctree("Appendices", (f"{CHAPTERS}/{s}" for s in appendices)),
            *_toctree("Reference", (f"{DOCS_FOLDER}/{p}" for p in reference))]


def stage_sources(root: Path, reports_dir: Path, staging: Path) -> list[reports.ReportEntry]:
    """Copy ``docs/``, the executed notebooks and their figures into ``staging``; write the
    landing page. Raises :class:`BookError` naming the file when a report is incomplete."""
    docs = root / DOCS_FOLDER
    if not (docs / "conf.py").exists():
        raise BookError(f"{docs / 'conf.py'} is missing: the book's sources are not here")
    entries = reports.load_reports(reports_dir, root / "notebooks")
    if not entries:
        raise BookError(f"{reports_dir}: no reports to build a book from (run `make reports`)")
    shutil.copytree(docs, staging / DOCS_FOLDER)
    for entry in entries:
        notebook = reports_dir / entry.stem / f"{entry.stem}.ipynb"
        if entry.summary is None:
            raise BookError(f"{reports_dir / entry.stem / reports.SUMMARY} is missing: "
                            f"run `ptd run {entry.stem}` (or `make reports`)")
        if not notebook.exists():
            raise BookError(f"{notebook} is missing: run `ptd run {entry.stem}`")
        (staging / CHAPTERS).mkdir(exist_ok=True)
        shutil.copy2(notebook, staging / CHAPTERS / notebook.name)
        figures = staging / FIGURES / entry.stem
        figures.mkdir(parents=True)
        for figure in entry.summary.get("figures", []):
            source = reports_dir / entry.stem / figure["file"]
            if not source.exists():
                raise BookError(f"{source}: figure listed in {entry.stem}/summary.json is missing")
            shutil.copy2(source, figures / figure["file"])
        chapter_title(notebook)  # the chapter's link text: fail here, naming the notebook
    pages = [p.stem for p in docs.glob("*.md")]
    checks.write_text_atomic(staging / "index.md", landing_page(entries, reports_dir, pages))
    return entries


def _size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), sum(p.suffix == ".html" for p in files)


def build_book(root: Path | None = None, *, reports_dir: Path | None = None,
               site_dir: Path | None = None, quiet: bool = True) -> BookResult:
    """Build the site from ``reports_dir`` (default ``<root>/reports``) into ``site_dir``
    (default ``<reports_dir>/site``), replacing it only when the build succeeds.

    Sphinx runs with ``-W --keep-going``: every warning (a broken reference, a missing image, a
    notebook it cannot read) is printed with its file and fails the build.
    """
    from sphinx.cmd.build import build_main  # deferred: only the book needs Sphinx

    root = reports.project_root() if root is None else Path(root)
    reports_dir = root / "reports" if reports_dir is None else Path(reports_dir)
    site_dir = reports_dir / SITE_FOLDER if site_dir is None else Path(site_dir)
    start = time.perf_counter()
    work = site_dir.with_name(f".book-{uuid.uuid4().hex}")
    try:
        stage_sources(root, reports_dir, work / "source")
        args = ["-b", "html", "-W", "--keep-going", "-n", "-d", str(work / "doctrees"),
                "-c", str(work / "source" / DOCS_FOLDER), str(work / "source"),
                str(work / "html")]
        if build_main(["-q", *args] if quiet else args) != 0:
            raise BookError("sphinx-build failed: the messages above name each file")
        site_dir.parent.mkdir(parents=True, exist_ok=True)
        reports.swap_in(work / "html", site_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size, pages = _size(site_dir)
    return BookResult(site_dir, time.perf_counter() - start, size, pages)
