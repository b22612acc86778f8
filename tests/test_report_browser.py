"""The report index in a real headless Chromium: it loads, every image and link resolves, the
check table is there; a screenshot is kept in test-artifacts/ at the repository root.

Chromium (Debian's ``chromium`` package) is required when the CI environment variable is set;
elsewhere the test is skipped with a reason when the browser is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import matplotlib

matplotlib.use("Agg")

import pytest
from _notebook_factory import make_notebook
from matplotlib.figure import Figure

from ptdlib import checks, reports

# A real headless browser: out of the fast lane (pytest -m "not slow").
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is required in CI (apt-get install chromium; .ci/run does it)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")


class Dom(HTMLParser):
    """The parts of the dumped DOM the test looks at."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.body: dict[str, str | None] = {}
        self.rows: list[list[str]] = []
        self._in_checks = self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if attr.get("id"):
            self.ids.add(str(attr["id"]))
        if tag == "body":
            self.body = attr
        elif tag == "img":
            self.images.append(str(attr["src"]))
        elif tag == "a":
            self.links.append(str(attr["href"]))
        elif tag == "table":
            self._in_checks = attr.get("id") == "checks"
        elif tag == "tr" and self._in_checks:
            self.rows.append([])
        elif tag == "td" and self._in_checks:
            self.rows[-1].append("")
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_checks = False
        elif tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data


def build_report(root: Path) -> Path:
    """reports/ with one notebook report (summary, PNG via save_figure) and one not yet run."""
    reports_dir = root / "reports"
    out = reports.NotebookOutput(str(reports_dir / "05_principal_angle"), "05_principal_angle")
    fig = Figure(figsize=(4, 3))
    fig.add_subplot().plot([1, 2, 3], [1.0, 0.5, 0.33])
    out.save_figure(fig, "decay", caption="dist(B_t, B*) over t")
    table = checks.CheckTable()
    table.add(checks.check_close("slope", "E dist^2 ~ 1/t", -0.93, -1.0, atol=0.2, kind="claim"))
    table.add(checks.check_at_least("nonmonotone", "distance is not monotone", 0.0, 0.01,
                                    kind="precondition"))
    summary_path = out.write_summary(table, {"seed": 0, "steps": 1000})
    summary = json.loads(summary_path.read_text())
    summary["run"] = {"profile": "paper", "overrides": {}, "wall_time_s": 12.5,
                      "git_commit": "0123456789ab"}
    checks.write_json_atomic(summary_path, summary)
    for suffix in (".html", ".ipynb"):
        (reports_dir / "05_principal_angle" / f"05_principal_angle{suffix}").write_text("{}")
    make_notebook(root / "notebooks" / "06_linear_speedup.ipynb", ["x = 1"])
    reports.write_index(reports_dir, root / "notebooks")
    return reports_dir / "index.html"


def test_index_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = chromium()
    index = build_report(tmp_path)
    flags = [browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    # The virtual time budget lets the page's load handler run before the DOM is dumped.
    dumped = subprocess.run([*flags, "--virtual-time-budget=5000", "--dump-dom", index.as_uri()],
                            capture_output=True, text=True, timeout=120, check=True)
    dom = Dom()
    dom.feed(dumped.stdout)
    assert [row for row in dom.rows if row] == [  # the header row has th cells only
        ["05_principal_angle", "slope", "claim", "E dist^2 ~ 1/t", "-0.93", "-1 +/- 0.2", "PASS"],
        ["05_principal_angle", "nonmonotone", "precondition", "distance is not monotone", "0",
         ">= 0.01", "FAIL"],
        ["06_linear_speedup", "(no checks)", "", "notebook has no report yet", "", "", "NOT RUN"],
    ]
    assert dom.images == ["05_principal_angle/decay.png"]
    assert dom.body.get("data-images-loaded") == "1/1"  # the browser decoded every figure
    assert {"05_principal_angle/05_principal_angle.html", "05_principal_angle/summary.json",
            "#nb-06_linear_speedup"} <= set(dom.links)
    for target in dom.images + dom.links:
        parts = urlsplit(target)
        assert not parts.scheme and not parts.netloc, f"{target} is not a relative link"
        if parts.path:
            assert (index.parent / parts.path).is_file(), f"{target} does not resolve"
        else:
            assert parts.fragment in dom.ids, f"{target} points at no element"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report_index.png"
    shot.unlink(missing_ok=True)
    subprocess.run([*flags, "--window-size=1280,1200", f"--screenshot={shot}", index.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
