"""Every symbol in the notebooks' prose and the docs is defined in ``docs/glossary.md``.

The scan reads the math (``$...$``, ``$$...$$``) of every Markdown cell and of every reading
template, and of the docs pages; it collects the symbols a reader must know: Greek letters and
single Latin letters, with their subscripts and superscripts ignored (``\\alpha_{\\rm crit}``
counts as alpha, ``B_t^\\star`` as B). Text inside ``\\mathrm``, ``\\text`` and friends is a word,
not a symbol. The glossary defines a symbol by listing it in the first column of one of its tables.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GLOSSARY = REPO / "docs" / "glossary.md"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
DOC_PAGES = sorted(p for p in (REPO / "docs").glob("*.md") if p != GLOSSARY)
GREEK = frozenset({
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
    "iota", "kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "varrho", "sigma", "tau", "upsilon",
    "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi",
    "Sigma", "Phi", "Psi", "Omega"})
#: Dummy indices and variables that every chapter binds where it uses them, and big-O.
ALLOWED = frozenset({"i", "j", "k", "x", "y", "O"})
MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$]+)\$", re.DOTALL)
WORDS = re.compile(r"\\(?:mathrm|text|operatorname|mathbf|textbf|texttt|textit|rm)\s*"
                   r"(?:\{[^{}]*\}|[A-Za-z]+)")
FONTS = re.compile(r"\\(?:mathbb|mathcal)\s*\{?([A-Za-z])\}?")
PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")


def symbols(math: str) -> set[str]:
    """Greek letters (by name) and single Latin letters of a TeX formula, font letters as
    ``mathbb E`` / ``mathcal N``."""
    math = PLACEHOLDER.sub(" ", WORDS.sub(" ", math))
    found = {f"font {m}" for m in FONTS.findall(math)}
    math = FONTS.sub(" ", math)
    found |= {name for name in re.findall(r"\\([A-Za-z]+)", math) if name in GREEK}
    bare = re.sub(r"\\[A-Za-z]+", " ", math)
    found |= set(re.findall(r"(?<![A-Za-z])([A-Za-z])(?![A-Za-z])", bare))
    return found


def math_spans(text: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in MATH.finditer(text)]


def prose(path: Path) -> list[str]:
    """Markdown cells, and the templates of reading cells, of a notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    texts = []
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            texts.append(source)
        elif "out.reading(" in source:
            texts += re.findall(r'r"""(.*?)"""', source, re.DOTALL)
    return texts


def defined() -> set[str]:
    """Symbols in the first column of the glossary's tables."""
    found: set[str] = set()
    for line in GLOSSARY.read_text().splitlines():
        if line.startswith("| $"):
            first = line.split("|")[1]
            for span in math_spans(first):
                found |= symbols(span)
    return found


def undefined_in(texts: list[str]) -> set[str]:
    used = {s for text in texts for span in math_spans(text) for s in symbols(span)}
    return used - defined() - ALLOWED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_prose_uses_only_glossary_symbols(path: Path) -> None:
    assert sorted(undefined_in(prose(path))) == []


@pytest.mark.parametrize("page", DOC_PAGES, ids=[p.stem for p in DOC_PAGES])
def test_docs_use_only_glossary_symbols(page: Path) -> None:
    assert sorted(undefined_in([page.read_text()])) == []


def test_the_scanner_sees_symbols_and_skips_words() -> None:
    assert symbols(r"\alpha_{\rm crit} \le \mathrm{dist}(B_t, B^\star)") == {"alpha", "B", "t"}
    assert symbols(r"\mathbb E\,\tau_{\text{mix}} + {{slope:.2f}}") == {"font E", "tau"}
    assert math_spans("a $x$ and $$\\beta$$") == ["x", "\\beta"]
    assert "varkappa" not in defined() and "nu" not in defined()
