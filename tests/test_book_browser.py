"""The book in a real headless Chromium, offline: built from the committed reports, opened from
disk with every network request routed to a closed port. The landing page and every chapter
load with no console error and only file:// requests inside the site; every image, link and script
resolves; equations are typeset; the check table fits 1280 pixels, sorts and filters; the search
page finds "principal angle". The design notes, glossary and teaching pages load the same
way. Screenshots go to test-artifacts/ at the repository root.

Chromium (Debian's ``chromium`` package, driven through Playwright's DevTools client) is
required when the CI environment variable is set; elsewhere the test skips without it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from ptdlib import book, reports

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
# As root in a container Chromium needs --no-sandbox; the proxy on a closed port makes any
# request that leaves the disk fail (and the request log below names it).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
WIDTH = 1280
CHAPTERS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
DOC_PAGES = sorted(p.stem for p in (REPO / "docs").glob("*.md"))
SCREENSHOT_CHAPTER = "05_principal_angle"
#: Chapters with exercises (two each, solutions folded behind a toggle).
WITH_EXERCISES = ("00_background", "02_mixing", "04_walkthrough", "05_principal_angle")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is required in CI (apt-get install chromium; .ci/run does it)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The book of the committed reports, built into a temporary folder."""
    target = tmp_path_factory.mktemp("book") / "site"
    result = book.build_book(REPO, reports_dir=REPO / "reports", site_dir=target)
    print(f"book: {result.pages} pages, {result.size_bytes / 2**20:.1f} MiB, "
          f"{result.seconds:.1f} s")
    return result.site


@dataclass
class Visit:
    """What a page asked for and said while it loaded."""

    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        yield launched
        launched.close()


def open_page(browser: object, url: str) -> tuple[object, Visit]:
    """``url`` loaded and its MathJax finished, with the requests and console errors it made."""
    page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
    visit = Visit()
    page.on("request", lambda request: visit.requests.append(request.url))
    page.on("requestfailed", lambda request: visit.failed.append(request.url))
    page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else 0)
    page.on("pageerror", lambda error: visit.console_errors.append(str(error)))
    page.goto(url, wait_until="load")
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("() => MathJax.startup.promise")
    return page, visit


def assert_loaded_offline(page: object, visit: Visit, site: Path) -> None:
    """No console error; every request a file inside the site that exists; every image decoded;
    every link to a file of the site resolves; no raw TeX in the visible text."""
    assert visit.console_errors == []
    assert visit.failed == []
    for url in visit.requests:
        parts = urlsplit(url)
        assert parts.scheme == "file", f"request outside the disk: {url}"
        path = Path(unquote(parts.path))
        assert path.is_relative_to(site) and path.is_file(), f"request for a missing file: {url}"
    broken = page.evaluate("() => Array.from(document.images).filter("
                           "i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert broken == []
    scripts = page.evaluate("() => Array.from(document.scripts).map(s => s.src).filter(Boolean)")
    links = page.evaluate("() => Array.from(document.links).map(a => a.href)")
    for url in scripts + links:
        parts = urlsplit(url)
        if parts.scheme == "file":
            assert Path(unquote(parts.path)).is_file(), f"{url} does not resolve"
        else:
            assert parts.scheme in ("http", "https", "mailto"), url  # outward links, not loaded
    # The prose and the outputs, not the code: a code cell may hold TeX in a string.
    text = page.evaluate("() => { const main = document.querySelector('main').cloneNode(true);"
                         " main.querySelectorAll('pre, code').forEach(e => e.remove());"
                         " return main.innerText; }")
    for raw in ("\\mathrm", "\\mathbb", "$$", "\\(", "\\frac"):
        assert raw not in text, f"untypeset TeX {raw!r} in the visible text"


def screenshot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_landing_page_offline(site: Path, browser: object) -> None:
    page, visit = open_page(browser, (site / "index.html").as_uri())
    assert_loaded_offline(page, visit, site)
    entries = reports.load_reports(REPO / "reports", REPO / "notebooks")
    assert page.locator(".claim-card").count() == len(entries)
    assert page.locator(".claim-card img").count() == len(entries)
    assert page.locator(".claim-card :text('Verdict:')").count() == len(entries)
    n_checks = sum(len(e.verdicts) for e in entries)
    assert page.locator("#checks tbody tr").count() == n_checks
    assert page.locator("#checks mjx-container").count() > 0  # math in the claim column
    assert page.evaluate("() => document.querySelector('#checks').getBoundingClientRect().right"
                         ) <= WIDTH
    assert page.evaluate("() => document.documentElement.scrollWidth") <= WIDTH
    screenshot(page, "book-landing.png")

    page.fill("#checks-filter", "principal")
    shown = page.locator("#checks tbody tr:not([hidden])")
    assert 0 < shown.count() < n_checks
    assert all("principal" in t.lower() for t in shown.all_inner_texts())
    page.fill("#checks-filter", "")
    page.select_option("#checks-verdict", "KNOWN FAIL")
    known = sum(v.known_failure is not None for e in entries for v in e.verdicts)
    assert page.locator("#checks tbody tr:not([hidden])").count() == known
    page.select_option("#checks-verdict", "")
    page.click("#checks thead th:has-text('measured')")
    keys = page.evaluate("() => Array.from(document.querySelectorAll("
                         "'#checks tbody td:nth-child(5)')).map(td => td.dataset.sort ?? null)")
    numbers = [float(k) for k in keys if k is not None]
    assert numbers == sorted(numbers) and len(numbers) > n_checks // 2
    assert keys[len(numbers):] == [None] * (len(keys) - len(numbers))  # text values last


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_offline(site: Path, browser: object, stem: str) -> None:
    page, visit = open_page(browser, (site / "notebooks" / f"{stem}.html").as_uri())
    assert_loaded_offline(page, visit, site)
    assert page.locator("main mjx-container").count() > 0
    assert page.locator("main img").count() > 0
    if stem in WITH_EXERCISES:
        assert page.locator(".exercise").count() == 2
        solutions = page.locator(".solution")
        assert solutions.count() == 2 and page.locator(".solution.toggle-hidden").count() == 2
        solutions.first.locator(".toggle-button").click()
        page.wait_for_selector(".solution:not(.toggle-hidden)")
    if stem == SCREENSHOT_CHAPTER:
        screenshot(page, "book-chapter.png")


@pytest.mark.parametrize("stem", DOC_PAGES)
def test_docs_page_offline(site: Path, browser: object, stem: str) -> None:
    page, visit = open_page(browser, (site / "docs" / f"{stem}.html").as_uri())
    assert_loaded_offline(page, visit, site)
    if stem != "bibliography":
        assert page.locator("main mjx-container").count() > 0


def test_search_finds_principal_angle(site: Path, browser: object) -> None:
    page, visit = open_page(browser, (site / "search.html").as_uri() + "?q=principal+angle")
    page.wait_for_selector("#search-results li", timeout=20_000)
    hits = page.locator("#search-results li a").all_inner_texts()
    assert any("Principal angle" in hit for hit in hits), hits
    assert all(urlsplit(url).scheme == "file" for url in visit.requests)
