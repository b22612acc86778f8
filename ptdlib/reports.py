"""Report folders: what a notebook writes, and the index, README and manifest built from them.

Primer
------
``reports/<stem>/`` holds one executed notebook: ``<stem>.ipynb``, its PNG figures and
``summary.json`` (schema in ``ptdlib.checks.write_summary``, plus a ``run`` block
added by ``ptd run``: profile, overrides, wall time, git commit and the source hashes below).
Inside a notebook, :class:`NotebookOutput` is the only writer: it saves figures and the summary
into the ``output_dir`` parameter, and writes nothing when ``output_dir == ""`` (interactive use,
nbval). A notebook's "Reading the results" cells are computed: :meth:`NotebookOutput.reading`
fills a Markdown template with the run's numbers and records them in the summary (``quoted``).
From the summaries, :func:`write_index` builds ``reports/README.md`` (claims first: per notebook
its headline claim, the verdict of its claim checks and its headline figure; then one row per
check with its verdict, PASS, FAIL, KNOWN FAIL with its reason or UNEXPECTED PASS; provenance),
``reports/index.html`` (which sends the reader to the book, ``ptdlib.book``) and
``reports/manifest.json``, which records for every report the SHA-256 of the notebook's source
(``notebook_params.notebook_source_hash``), of the ``ptdlib`` sources it ran against, of its
evidence store ``evidence/<stem>.parquet`` if it has one (``ptdlib.evidence``) and of its
summary. :func:`stale_report_sources` compares that manifest with the current sources.

Every file is written next to its target and renamed into place; a report folder is built in a
staging folder and swapped in whole by :func:`swap_in`.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptdlib import checks, notebook_params

if TYPE_CHECKING:
    from IPython.display import Markdown
    from matplotlib.figure import Figure

__all__ = [
    "NotebookOutput",
    "ReportEntry",
    "evidence_hash",
    "headline_figure",
    "load_reports",
    "ptdlib_source_hash",
    "quote_text",
    "render_reading",
    "stale_report_sources",
    "swap_in",
    "write_index",
]

SUMMARY = "summary.json"
#: swap_in keeps the report it replaces as ``.old-<stem>-<hex>`` until the swap is done.
BACKUP_PREFIX = ".old-"
INDEX = "index.html"
README = "README.md"
MANIFEST = "manifest.json"
MANIFEST_SCHEMA = 1
#: Folder of the committed evidence stores (`ptdlib.evidence`), relative to the project root.
EVIDENCE_FOLDER = "evidence"
FIGURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


#: ``{{name}}`` or ``{{name:spec}}`` in a reading template: a measured number, formatted with the
#: format spec (``format(value, spec)``; without one, four significant digits).
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*(?::([^{}]*))?\}\}")


def quote_text(value: Any, spec: str | None) -> str:
    """How a quoted value reads in prose: ``format(value, spec)``; without a spec a number gets
    four significant digits and a word (a verdict-dependent phrase) is itself."""
    if spec:
        return format(value, spec.strip())
    return value if isinstance(value, str) else checks.format_value(value)


def render_reading(template: str, values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Fill the ``{{name:spec}}`` placeholders of ``template`` with ``values``.

    Returns the text and, per name, what summary.json records: the value, the spec and the text
    it printed. Every placeholder needs a value and every value a placeholder, so a reading
    cannot quote a number it was not given nor silently drop one it was.
    """
    quoted: dict[str, Any] = {}

    def fill(match: re.Match[str]) -> str:
        name, spec = match.group(1), match.group(2)
        if name not in values:
            raise ValueError(f"reading quotes {{{{{name}}}}} but no value {name}= was given")
        text = quote_text(values[name], spec)
        if name in quoted and quoted[name]["text"] != text:
            raise ValueError(f"reading quotes {name} with two formats: {quoted[name]['text']!r} "
                             f"and {text!r}")
        quoted[name] = {"value": checks.json_value(values[name]), "spec": spec or "",
                        "text": text}
        return text

    text = PLACEHOLDER.sub(fill, template)
    unused = sorted(set(values) - set(quoted))
    if unused:
        raise ValueError(f"values given but not quoted in the reading: {', '.join(unused)}")
    return text, quoted


class NotebookOutput:
    """The notebook-side writer of ``<output_dir>/*.png`` and ``<output_dir>/summary.json``.

    ``claim`` is the notebook's headline claim, one sentence (Markdown with ``$...$`` math); the
    book's landing page shows it with the notebook's verdict and its headline figure.
    """

    def __init__(self, output_dir: str, notebook: str, *, claim: str = "") -> None:
        self.notebook = notebook
        self.claim = claim
        self.directory = Path(output_dir) if output_dir else None
        self.figures: list[dict[str, Any]] = []
        self.quoted: dict[str, Any] = {}
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def save_figure(self, fig: Figure, name: str, *, caption: str = "",
                    key: bool = True, headline: bool = False) -> Path | None:
        """Save ``fig`` as ``<name>.png`` (``key`` figures are shown in the index, the one
        ``headline`` figure next to the claim on the book's landing page). A key figure is also
        saved for slides, 16:9 with large fonts, as ``slides/<name>.png`` (`plots.save_slide`;
        ``ptd figures`` gathers them into ``reports/slides/``)."""
        taken = any(f["file"] == f"{name}.png" for f in self.figures)
        if taken or not FIGURE_NAME.fullmatch(name):
            raise ValueError(f"figure name must be new and match {FIGURE_NAME.pattern}; "
                             f"got {name!r}")
        if headline and any(f["headline"] for f in self.figures):
            raise ValueError(f"a notebook has one headline figure; {name!r} would be a second")
        self.figures.append({"file": f"{name}.png", "caption": caption, "key": key or headline,
                             "headline": headline})
        if self.directory is None:
            return None
        from ptdlib import plots  # deferred: `ptd report` builds indexes without matplotlib

        if key or headline:
            plots.save_slide(fig, self.directory / SLIDES / f"{name}.png")
        return plots.save_figure(fig, self.directory / f"{name}.png")

    def reading(self, template: str, **values: Any) -> Markdown:
        """The Markdown of a "Reading the results" cell, its measured numbers filled in.

        ``template`` is Markdown whose numbers are placeholders ``{{name}}`` or
        ``{{name:.2f}}`` (any format spec); ``values`` gives each one. The numbers and the text
        they printed go into summary.json (``quoted``), so the prose always matches the run.
        """
        from IPython.display import Markdown  # deferred: only notebooks display

        text, quoted = render_reading(template, values)
        clash = sorted(k for k in quoted if k in self.quoted and self.quoted[k] != quoted[k])
        if clash:
            raise ValueError(f"quoted names must be unique in a notebook: {', '.join(clash)}")
        self.quoted.update(quoted)
        return Markdown(text)

    def write_summary(self, table: checks.CheckTable, parameters: Any, *,
                      seeds: list[int] | None = None) -> Path | None:
        """Write ``summary.json``, after any ``table.expect_failure`` and before ``assert_all()``.

        ``parameters`` is the typed config (dataclass) or a mapping; ``seeds`` defaults to its
        ``seed``. Without an output folder the summary is only checked to be serialisable.
        """
        params = checks.json_value(parameters)
        if seeds is None:
            seeds = [params["seed"]] if "seed" in params else []
        provenance = checks.collect_provenance(seeds)
        if self.directory is None:
            return None
        return checks.write_summary(self.directory / SUMMARY, self.notebook, table, params,
                                    provenance, figures=self.figures, claim=self.claim,
                                    quoted=self.quoted)


def swap_in(staging: Path, target: Path) -> None:
    """Replace the folder ``target`` by the complete folder ``staging`` (same file system)."""
    backup = target.with_name(f"{BACKUP_PREFIX}{target.name}-{uuid.uuid4().hex}")
    had_target = target.exists()
    if had_target:
        os.rename(target, backup)
    try:
        os.rename(staging, target)
    except BaseException:
        if had_target:
            os.rename(backup, target)
        raise
    if had_target:
        shutil.rmtree(backup)


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ptdlib_source_hash(package_dir: Path | None = None) -> str:
    """SHA-256 over the ``*.py`` files of ``package_dir`` (default: this package), by path."""
    package_dir = Path(__file__).parent if package_dir is None else Path(package_dir)
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def project_root() -> Path:
    """``$PTD_ROOT`` if set (`ptd run` sets it for the kernels), else the folder holding the
    ``ptdlib`` package (the project)."""
    return Path(os.environ.get("PTD_ROOT") or Path(__file__).resolve().parents[1])


def evidence_store_path(root: Path, stem: str) -> Path:
    """``<root>/evidence/<stem>.parquet``: where a notebook's committed evidence store lives."""
    return root / EVIDENCE_FOLDER / f"{stem}.parquet"


def evidence_hash(root: Path, stem: str) -> str | None:
    """SHA-256 of the notebook's committed evidence store, if it has one."""
    store = evidence_store_path(root, stem)
    return file_hash(store) if store.exists() else None


def package_dir_for(root: Path) -> Path:
    """``root/ptdlib`` when the project sits there, else the installed package."""
    local = root / "ptdlib"
    return local if (local / "__init__.py").exists() else Path(__file__).parent


def profile_path(notebook: Path) -> Path:
    """``notebooks/params/<stem>.paper.yaml`` for ``notebooks/<stem>.ipynb``."""
    return notebook.parent / "params" / f"{notebook.stem}.paper.yaml"


#: A report's folder of slide versions of its key figures, and the folder that gathers them.
SLIDES = "slides"


def gather_slides(reports_dir: Path) -> list[Path]:
    """Copy every report's ``slides/<name>.png`` to ``reports_dir/slides/<stem>-<name>.png``.

    The folder is replaced as a whole, so it never holds a slide of a figure that is gone.
    Returns the gathered files, in notebook order.
    """
    target = reports_dir / SLIDES
    shutil.rmtree(target, ignore_errors=True)
    gathered = []
    for source in sorted(reports_dir.glob(f"*/{SLIDES}/*.png")):
        stem = source.parent.parent.name
        if stem == SLIDES or stem.startswith("."):
            continue
        target.mkdir(exist_ok=True)
        gathered.append(Path(shutil.copy2(source, target / f"{stem}-{source.name}")))
    return gathered


#: The paragraph of a notebook's title cell that says which settings produced its outputs.
PROFILE_MARK = "**Profile.**"


def profile_statement(stem: str, profile: str, parameters: Mapping[str, Any],
                      overrides: Mapping[str, Any]) -> str:
    """The title cell's ``**Profile.**`` paragraph for a run: its profile, the values the paper
    profile sets (``notebooks/params/<stem>.paper.yaml``) and the ``-p`` overrides."""
    def listed(values: Mapping[str, Any]) -> str:
        return ", ".join(f"`{name}` = {value!r}" for name, value in values.items()
                         if name != "output_dir")

    if profile == "paper":
        profile_values = {k: v for k, v in parameters.items() if k not in overrides}
        text = (f"{PROFILE_MARK} These outputs come from the *paper* profile "
                f"(`notebooks/params/{stem}.paper.yaml`), which sets "
                f"{listed(profile_values) or 'nothing'}.")
    else:
        text = (f"{PROFILE_MARK} These outputs come from the *{profile}* profile: the defaults "
                "of the parameters cell.")
    if overrides:
        text += f" Set on the command line: {listed(overrides)}."
    return text


def state_profile(title_cell: str, statement: str) -> str:
    """``title_cell`` with its ``**Profile.**`` paragraph replaced by ``statement`` (appended
    when it has none)."""
    paragraphs = title_cell.rstrip("\n").split("\n\n")
    kept = [p for p in paragraphs if not p.lstrip().startswith(PROFILE_MARK)]
    return "\n\n".join([*kept, statement])


@dataclass(frozen=True)
class ReportEntry:
    """One notebook in the index: its summary (None when it has no report yet)."""

    stem: str
    summary: Mapping[str, Any] | None

    @property
    def status(self) -> str:
        """passed, known failures, failed or missing."""
        return "missing" if self.summary is None else str(self.summary.get("status", "failed"))

    @property
    def verdicts(self) -> list[checks.Verdict]:
        """The checks of this report, rebuilt from the summary."""
        return [] if self.summary is None else [checks.Verdict.from_dict(c)
                                                for c in self.summary.get("checks", [])]


def load_reports(reports_dir: Path, notebooks_dir: Path | None = None) -> list[ReportEntry]:
    """Every report folder with a summary, plus a ``missing`` entry per notebook without one."""
    stems = {p.parent.name for p in reports_dir.glob(f"*/{SUMMARY}")
             if not p.parent.name.startswith(".")}
    if notebooks_dir is not None:
        stems |= {p.stem for p in notebooks_dir.glob("*.ipynb")}
    entries = []
    for stem in sorted(stems):
        path = reports_dir / stem / SUMMARY
        summary = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        entries.append(ReportEntry(stem, summary))
    return entries


def _run(entry: ReportEntry) -> Mapping[str, Any]:
    return (entry.summary or {}).get("run", {})


def _provenance_rows(entry: ReportEntry) -> list[tuple[str, str]]:
    summary, run = entry.summary or {}, _run(entry)
    provenance = summary.get("provenance", {})
    packages = ", ".join(f"{k} {v}" for k, v in sorted(provenance.get("packages", {}).items()))
    overrides = run.get("overrides") or {}
    return [
        ("profile", str(run.get("profile", "unknown"))
         + (f" with overrides {json.dumps(overrides, sort_keys=True)}" if overrides else "")),
        ("seeds", ", ".join(map(str, provenance.get("seeds", [])))),
        ("wall time", f"{run['wall_time_s']:.1f} s" if "wall_time_s" in run else "unknown"),
        ("git commit", str(run.get("git_commit", "unknown"))),
        ("python", str(provenance.get("python", "unknown"))),
        ("kernel arithmetic", str(provenance.get("kernel_arithmetic", "unknown"))),
        ("packages", packages),
        ("parameters", json.dumps(summary.get("parameters", {}), sort_keys=True)),
    ]


def _artifact_links(entry: ReportEntry) -> list[tuple[str, str]]:
    return [(f"{entry.stem}/{entry.stem}.ipynb", "executed notebook"),
            (f"{entry.stem}/{SUMMARY}", SUMMARY)]


def headline_figure(entry: ReportEntry) -> Mapping[str, Any] | None:
    """The figure a notebook marked ``headline=True``, else its first key figure, else None."""
    figures = (entry.summary or {}).get("figures", [])
    marked = [f for f in figures if f.get("headline")] or [f for f in figures if f.get("key")]
    return marked[0] if marked else None


def _check_rows(entry: ReportEntry) -> list[tuple[str, str, str, str, str, str, str]]:
    """(check, kind, claim, measured, expected, verdict, reason) rows; a placeholder row when the
    notebook has no checks. ``reason`` is a registered known failure's reason, else empty."""
    rows = [(v.name, v.kind or "unknown", v.claim, checks.measured_text(v),
             checks.expected_text(v), checks.verdict_text(v), v.known_failure or "")
            for v in entry.verdicts]
    if rows:
        return rows
    if entry.status == "missing":
        return [("(no checks)", "", "notebook has no report yet", "", "", "NOT RUN", "")]
    return [("(no checks)", "", "notebook recorded no checks", "", "", entry.status.upper(), "")]


#: How each kind of check is counted in the totals (singular, plural), claims first.
KIND_NOUNS = {"claim": ("claim check", "claim checks"),
              "consistency": ("consistency check", "consistency checks"),
              "precondition": ("precondition", "preconditions"),
              "None": ("check of unknown kind", "checks of unknown kind")}


def _totals(entries: list[ReportEntry]) -> str:
    """Claims first: "claim checks: 12 of 19 pass (1 known failure, 0 failed); ..."."""
    counts = checks.kind_counts(v for e in entries for v in e.verdicts)
    parts = [f"{KIND_NOUNS[kind][1]}: {row['passed']} of {row['checks']} pass "
             f"({checks.count_text(row['known_failures'], 'known failure')}, "
             f"{row['failed']} failed)" for kind, row in counts.items() if row["checks"]]
    missing = sum(e.status == "missing" for e in entries)
    return (f"{'; '.join(parts) or 'no checks'}. Across {len(entries)} notebooks; {missing} "
            "without a report.")


def render_html(entries: list[ReportEntry], reports_dir: Path) -> str:
    """``index.html``: sends the reader to the book (``site/index.html``, ``ptdlib.book``), with
    the totals and a link to README.md for when the book has not been built."""
    e = html.escape
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta http-equiv="refresh" content="0; url=site/index.html">',
        "<title>ptd reports</title>", "</head>", "<body>",
        "<h1>ptd: the paper's claims, checked</h1>",
        f'<p id="totals">{e(_totals(entries))}</p>',
        '<p>The reports are a book: <a href="site/index.html">site/index.html</a> (built by '
        "<code>make book</code> or at the end of <code>make reports</code>); the same claims in "
        'plain Markdown: <a href="README.md">README.md</a>.</p>', "</body>", "</html>", ""])


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _claim_lines(entry: ReportEntry) -> list[str]:
    """A notebook's headline claim for README.md: sentence, verdict with reasons, figure, links."""
    verdict = checks.claim_verdict(entry.verdicts)
    lines = [f"### {entry.stem}: {verdict.status}", ""]
    if entry.summary is None:
        return [*lines, "No report yet: run `ptd run " + entry.stem + "`.", ""]
    claim = entry.summary.get("claim") or "(this notebook states no headline claim)"
    lines += [claim, "", f"**Verdict: {verdict.status}** ({verdict.passed} of {verdict.total} "
              "checks pass)" + ("" if not verdict.reasons else ":"), ""]
    lines += [f"- `{name}`: {_md(reason)}" for name, reason in verdict.reasons.items()]
    figure = headline_figure(entry)
    if figure is not None:
        lines += ["", f"![{_md(figure.get('caption') or figure['file'])}]"
                      f"({entry.stem}/{figure['file']})"]
    return [*lines, "", " | ".join(f"[{t}]({h})" for h, t in _artifact_links(entry)), ""]


def render_markdown(entries: list[ReportEntry], reports_dir: Path) -> str:
    """README.md, claims first like the book: each notebook's claim, verdict and headline
    figure; then every check; then the provenance of each report."""
    lines = ["# ptd: the paper's claims, checked", "", _totals(entries), "",
             "The book (`site/index.html`, built by `make book`) shows the same with rendered "
             "math and every chapter.", "", "## The claims", ""]
    for entry in entries:
        lines += _claim_lines(entry)
    lines += ["## Every check", "",
              "| notebook | check | kind | claim | measured | expected | verdict |",
              "|---|---|---|---|---|---|---|"]
    for entry in entries:
        lines += [f"| {entry.stem} | {' | '.join(_md(c) for c in row)}"
                  f"{f' ({_md(reason)})' if reason else ''} |"
                  for *row, reason in _check_rows(entry)]
    lines += ["", "## Provenance"]
    for entry in entries:
        if entry.summary is not None:
            lines += ["", f"### {entry.stem}", "", "| provenance | |", "|---|---|"]
            lines += [f"| {k} | {_md(v)} |" for k, v in _provenance_rows(entry)]
    return "\n".join(lines) + "\n"


def build_manifest(entries: list[ReportEntry], reports_dir: Path) -> dict[str, Any]:
    """Per report: status, profile, overrides and the hashes it was run against."""
    notebooks = {}
    for entry in entries:
        if entry.summary is None:
            continue
        run = _run(entry)
        notebooks[entry.stem] = {
            "status": entry.status,
            "profile": run.get("profile"),
            "overrides": run.get("overrides", {}),
            "notebook_sha256": run.get("notebook_sha256"),
            "ptdlib_sha256": run.get("ptdlib_sha256"),
            "evidence_sha256": run.get("evidence_sha256"),
            "summary_sha256": file_hash(reports_dir / entry.stem / SUMMARY),
        }
    return {"schema": MANIFEST_SCHEMA, "notebooks": notebooks}


def write_index(reports_dir: Path, notebooks_dir: Path | None = None) -> list[ReportEntry]:
    """(Re)write ``index.html``, ``README.md`` and ``manifest.json`` from the summaries."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    entries = load_reports(reports_dir, notebooks_dir)
    checks.write_text_atomic(reports_dir / INDEX, render_html(entries, reports_dir))
    checks.write_text_atomic(reports_dir / README, render_markdown(entries, reports_dir))
    checks.write_json_atomic(reports_dir / MANIFEST, build_manifest(entries, reports_dir))
    return entries


def _entry_staleness(stem: str, recorded: Mapping[str, Any], notebook: Path, ptdlib_hash: str,
                     reports_dir: Path, profile: str) -> list[str]:
    reasons = []
    if recorded.get("evidence_sha256") != evidence_hash(notebook.parents[1], stem):
        reasons.append(f"{stem}: its evidence store changed since its report")
    if recorded.get("notebook_sha256") != notebook_params.notebook_source_hash(
            notebook, profile_path(notebook)):
        reasons.append(f"{stem}: the notebook or its paper profile changed since its report")
    if recorded.get("ptdlib_sha256") != ptdlib_hash:
        reasons.append(f"{stem}: ptdlib changed since the report was made")
    if recorded.get("profile") != profile or recorded.get("overrides"):
        reasons.append(f"{stem}: report made with profile {recorded.get('profile')!r} and "
                       f"overrides {recorded.get('overrides')}, not the plain {profile!r} profile")
    summary = reports_dir / stem / SUMMARY
    if not summary.exists() or file_hash(summary) != recorded.get("summary_sha256"):
        reasons.append(f"{stem}: summary.json differs from the manifest (run `ptd report`)")
    return reasons


def stale_report_sources(root: Path, reports_dir: Path | None = None, *,
                         profile: str = "paper") -> list[str]:
    """Why ``reports/`` does not reflect the current notebooks and ptdlib (empty = up to date)."""
    reports_dir = root / "reports" if reports_dir is None else reports_dir
    manifest_path = reports_dir / MANIFEST
    if not manifest_path.exists():
        return [f"{manifest_path.name} is missing: run `make reports`"]
    recorded = json.loads(manifest_path.read_text(encoding="utf-8")).get("notebooks", {})
    notebooks = {p.stem: p for p in sorted((root / "notebooks").glob("*.ipynb"))}
    ptdlib_hash = ptdlib_source_hash(package_dir_for(root))
    reasons = [f"{name} is missing: run `ptd report`" for name in (INDEX, README)
               if not (reports_dir / name).exists()]
    for stem, notebook in notebooks.items():
        if stem not in recorded:
            reasons.append(f"{stem}: no report")
        else:
            reasons += _entry_staleness(stem, recorded[stem], notebook, ptdlib_hash, reports_dir,
                                        profile)
    reasons += [f"{stem}: report of a notebook that no longer exists"
                for stem in sorted(set(recorded) - set(notebooks))]
    return reasons
