"""Every document that the notebooks, the library and the docs point a reader to exists.

A reader follows three kinds of pointer: Markdown links (``[the setting](../docs/setting.md)``,
with an optional ``#section``), file names in prose and docstrings (``docs/algorithm.md``), and
code names in the docs (`` `theory.misalignment` ``). Each must resolve in this repository; the
design brief the project was built from is not part of it, so no text may cite it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
DOC_PAGES = sorted((REPO / "docs").glob("*.md"))
LIBRARY = sorted((REPO / "ptdlib").glob("*.py"))
LINK = re.compile(r"\]\(([^()\s]+)\)")
DOC_FILE = re.compile(r"\bdocs/[\w-]+\.md\b")
CODE_NAME = re.compile(r"`([a-z_]+)\.([A-Za-z_]\w*)`")
#: A document outside the repository: the brief the project was built from.
MISSING_DOCUMENT = re.compile(r"\bDESIGN\b")


def notebook_texts(path: Path) -> list[str]:
    """The Markdown cells and the code cells (templates of readings, comments) of a notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells]


def heading_slug(heading: str) -> str:
    """The anchor MyST (``myst_heading_anchors``) and GitHub give a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {heading_slug(line.lstrip("#")) for line in page.read_text().splitlines()
            if re.match(r"#{1,3} ", line)}


def sources() -> list[tuple[Path, str]]:
    texts = [(p, t) for p in NOTEBOOKS for t in notebook_texts(p)]
    texts += [(p, p.read_text()) for p in [*DOC_PAGES, *LIBRARY, REPO / "README.md"]]
    return texts


def broken_link(source: Path, target: str) -> str | None:
    """Why ``target``, linked from ``source``, does not resolve (None when it does)."""
    if re.match(r"[a-z]+:", target):  # https://, mailto:
        return None
    path, _, anchor = target.partition("#")
    page = (source.parent / path).resolve() if path else source
    if not page.exists():
        return f"{source.name}: link to missing {target}"
    if anchor and page.suffix == ".md" and anchor not in anchors(page):
        return f"{source.name}: no section #{anchor} in {page.name}"
    return None


def test_no_text_cites_a_document_the_repository_lacks() -> None:
    cited = sorted({f"{p.relative_to(REPO)}" for p, text in sources()
                    if MISSING_DOCUMENT.search(text)})
    assert cited == []


def test_every_markdown_link_resolves_to_a_file_and_section() -> None:
    problems = [why for source, text in sources() if source.suffix in (".ipynb", ".md")
                for target in LINK.findall(text) if (why := broken_link(source, target))]
    assert problems == []


def test_every_docs_file_named_in_prose_or_docstrings_exists() -> None:
    missing = sorted({f"{p.name}: {name}" for p, text in sources()
                      for name in DOC_FILE.findall(text) if not (REPO / name).exists()})
    assert missing == []


@pytest.mark.parametrize("page", DOC_PAGES, ids=[p.stem for p in DOC_PAGES])
def test_code_names_in_the_docs_exist(page: Path) -> None:
    missing = []
    for module, name in set(CODE_NAME.findall(page.read_text())):
        try:
            found = hasattr(importlib.import_module(f"ptdlib.{module}"), name)
        except ModuleNotFoundError:
            found = module == "ptdlib" and importlib.util.find_spec(f"ptdlib.{name}") is not None
        if not found:
            missing.append(f"{module}.{name}")
    assert sorted(missing) == []


def test_the_link_checker_catches_a_missing_file_and_a_missing_section(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## The part\n")
    assert broken_link(page, "page.md#the-part") is None
    assert broken_link(page, "#title") is None
    assert "missing other.md" in broken_link(page, "other.md")
    assert "no section #nowhere" in broken_link(page, "page.md#nowhere")
    assert heading_slug(" How the claims are checked") == "how-the-claims-are-checked"
    assert heading_slug("Same seed, same numbers") == "same-seed-same-numbers"


def test_the_bibliography_has_no_repeated_key() -> None:
    """A repeated BibTeX key makes sphinxcontrib-bibtex drop the file's later entries."""
    text = (REPO / "docs" / "references.bib").read_text()
    keys = re.findall(r"^@\w+\{([^,\s]+),", text, flags=re.MULTILINE)
    assert keys and len(keys) == len(set(keys)), sorted(k for k in set(keys) if keys.count(k) > 1)
