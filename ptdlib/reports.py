"""Report folders: what a notebook writes, and the index, README and manifest built from them.

Primer
------
``reports/<stem>/`` holds one executed notebook: ``<stem>.ipynb``, ``<stem>.html``, its PNG
figures and ``summary.json`` (schema in ``ptdlib.checks.write_summary``, plus a ``run`` block
added by ``ptd run``: profile, overrides, wall time, git commit and the source hashes below).
Inside a notebook, :class:`NotebookOutput` is the only writer: it saves figures and the summary
into the ``output_dir`` parameter, and writes nothing when ``output_dir == ""`` (interactive use,
nbval). From the summaries, :func:`write_index` builds ``reports/index.html`` (one row per check
with its verdict, PASS, FAIL, KNOWN FAIL with its reason or UNEXPECTED PASS; key figures,
provenance), ``reports/README.md`` (the same in Markdown) and ``reports/manifest.json``, which
records for every report the SHA-256 of the notebook's source
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
    from matplotlib.figure import Figure

__all__ = [
    "NotebookOutput",
    "ReportEntry",
    "evidence_hash",
    "load_reports",
    "ptdlib_source_hash",
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


class NotebookOutput:
    """The notebook-side writer of ``<output_dir>/*.png`` and ``<output_dir>/summary.json``."""

    def __init__(self, output_dir: str, notebook: str) -> None:
        self.notebook = notebook
        self.directory = Path(output_dir) if output_dir else None
        self.figures: list[dict[str, Any]] = []
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def save_figure(self, fig: Figure, name: str, *, caption: str = "",
                    key: bool = True) -> Path | None:
        """Save ``fig`` as ``<name>.png`` (``key`` figures are shown in the index)."""
        taken = any(f["file"] == f"{name}.png" for f in self.figures)
        if taken or not FIGURE_NAME.fullmatch(name):
            raise ValueError(f"figure name must be new and match {FIGURE_NAME.pattern}; "
                             f"got {name!r}")
        self.figures.append({"file": f"{name}.png", "caption": caption, "key": key})
        if self.directory is None:
            return None
        from ptdlib import plots  # deferred: `ptd report` builds indexes without matplotlib

        return plots.save_figure(fig, self.directory / f"{name}.png")

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
                                    provenance, figures=self.figures)


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


def _artifact_links(entry: ReportEntry, reports_dir: Path) -> list[tuple[str, str]]:
    candidates = [(f"{entry.stem}/{entry.stem}.html", "executed notebook (HTML)"),
                  (f"{entry.stem}/{entry.stem}.ipynb", "notebook (.ipynb)"),
                  (f"{entry.stem}/{SUMMARY}", SUMMARY)]
    return [(href, text) for href, text in candidates if (reports_dir / href).exists()]


def _key_figures(entry: ReportEntry) -> list[Mapping[str, Any]]:
    figures = (entry.summary or {}).get("figures", [])
    return [f for f in figures if f.get("key", True)]


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


HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.pass td.verdict { color: #17692d; font-weight: bold; }
tr.fail td.verdict { color: #b00020; font-weight: bold; }
tr.known td.verdict { color: #8a5300; font-weight: bold; }
td.verdict .reason { font-weight: normal; }
figure { display: inline-block; margin: 0.5rem; max-width: 34rem; }
figure img { max-width: 100%; border: 1px solid #ddd; }
td.value { font-family: ui-monospace, monospace; white-space: nowrap; }
"""
# Lets a browser test (and a reader) see whether every figure decoded.
HTML_IMAGE_PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute("data-images-loaded", loaded.length + "/" + images.length);
});
</script>"""


#: Row style per verdict text; every other verdict (FAIL, UNEXPECTED PASS, NOT RUN) is "fail".
ROW_CLASSES = {"PASS": "pass", "KNOWN FAIL": "known"}


def _html_section(entry: ReportEntry, reports_dir: Path) -> list[str]:
    e = html.escape
    out = [f'<h2 id="nb-{e(entry.stem)}">{e(entry.stem)}: {e(entry.status)}</h2>']
    links = _artifact_links(entry, reports_dir)
    if links:
        out.append("<p>" + " | ".join(f'<a href="{e(h)}">{e(t)}</a>' for h, t in links) + "</p>")
    for fig in _key_figures(entry):
        src = f"{entry.stem}/{fig['file']}"
        caption = fig.get("caption") or fig["file"]
        if (reports_dir / src).exists():
            out.append(f'<figure><img src="{e(src)}" alt="{e(caption)}">'
                       f"<figcaption>{e(caption)}</figcaption></figure>")
        else:
            out.append(f"<p>missing figure: {e(src)}</p>")
    if entry.summary is not None:
        out.append('<table class="provenance">')
        out += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _provenance_rows(entry)]
        out.append("</table>")
    return out


def render_html(entries: list[ReportEntry], reports_dir: Path) -> str:
    """The index page: totals, one table row per check, then figures and provenance per notebook."""
    e = html.escape
    rows = []
    for entry in entries:
        for name, kind, claim, measured, expected, verdict, reason in _check_rows(entry):
            css = ROW_CLASSES.get(verdict, "fail")
            note = f' <span class="reason">({e(reason)})</span>' if reason else ""
            rows.append(f'<tr class="{css}"><td><a href="#nb-{e(entry.stem)}">{e(entry.stem)}</a>'
                        f"</td><td>{e(name)}</td><td>{e(kind)}</td><td>{e(claim)}</td>"
                        f'<td class="value">{e(measured)}</td><td class="value">{e(expected)}</td>'
                        f'<td class="verdict">{e(verdict)}{note}</td></tr>')
    sections = [line for entry in entries for line in _html_section(entry, reports_dir)]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        "<title>ptd reports</title>", f"<style>{HTML_STYLE}</style>", "</head>",
        '<body data-images-loaded="pending">', "<h1>ptd: theory checks</h1>",
        f'<p id="totals">{e(_totals(entries))}</p>',
        '<table id="checks">', "<thead><tr><th>notebook</th><th>check</th><th>kind</th>"
        "<th>claim</th>"
        "<th>measured</th><th>expected</th><th>verdict</th></tr></thead>", "<tbody>", *rows,
        "</tbody>", "</table>", *sections, HTML_IMAGE_PROBE, "</body>", "</html>", ""])


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(entries: list[ReportEntry], reports_dir: Path) -> str:
    """README.md: the same content as the index page, in Markdown."""
    lines = ["# ptd: theory checks", "", _totals(entries), "",
             "| notebook | check | kind | claim | measured | expected | verdict |",
             "|---|---|---|---|---|---|---|"]
    for entry in entries:
        lines += [f"| {entry.stem} | {' | '.join(_md(c) for c in row)}"
                  f"{f' ({_md(reason)})' if reason else ''} |"
                  for *row, reason in _check_rows(entry)]
    for entry in entries:
        lines += ["", f"## {entry.stem}: {entry.status}", ""]
        links = _artifact_links(entry, reports_dir)
        if links:
            lines += [" | ".join(f"[{t}]({h})" for h, t in links), ""]
        lines += [f"![{_md(f.get('caption') or f['file'])}]({entry.stem}/{f['file']})"
                  for f in _key_figures(entry)]
        if entry.summary is not None:
            lines += ["", "| provenance | |", "|---|---|"]
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
