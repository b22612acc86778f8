"""Sphinx configuration of the ptd book (``make book``; ``ptdlib.book`` stages the sources).

The book is built from the executed notebooks in ``reports/`` without re-running them, and it
requests nothing outside its own folder: MathJax ships inside the site (``_static/mathjax``,
copied from the files of the sphinx-mathjax-offline package), and so do the theme's assets.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from sphinx.application import Sphinx

project = "ptd"
author = "the ptd developers"
copyright = "2026, the ptd developers"
html_title = "ptd: the paper's claims, checked"

# sphinx-togglebutton folds the exercises' solutions (sphinx-exercise's `:class: dropdown`).
extensions = ["myst_nb", "sphinxcontrib.bibtex", "sphinx_exercise", "sphinx_togglebutton",
              "sphinx.ext.mathjax"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# The notebooks ran in `make reports`; the book shows their outputs as they are.
nb_execution_mode = "off"
# A reading cell's Markdown output is parsed like the notebook's own Markdown: $...$ is math.
nb_render_markdown_format = "myst"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
# $$...$$ inside a paragraph is display math, as Jupyter's MathJax reads it.
myst_dmath_double_inline = True
myst_heading_anchors = 3

bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "alpha"
bibtex_reference_style = "author_year"

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["ptd.css"]
html_js_files = ["checks-table.js"]
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "search_bar_text": "Search the book",
    # The landing page's check table takes the width of the page's table of contents.
    "secondary_sidebar_items": {"index": []},
}
# The theme reads the colour mode from the page; without a default it logs a console error.
html_context = {"default_mode": "light"}
html_last_updated_fmt = ""
html_show_sourcelink = False
html_copy_source = False

# MathJax from the site itself.
mathjax_path = "mathjax/tex-chtml.js"
#: The parts of MathJax that a page can load: the TeX-to-HTML component, its fonts, the TeX
#: extensions it loads on demand and the accessibility modules of its menu.
MATHJAX_PARTS = ["tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "a11y",
                 "ui", "adaptors"]


def mathjax_source() -> Path:
    """The MathJax files that the sphinx-mathjax-offline package ships."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("sphinx-mathjax-offline is not installed (pip install -e .)")
    return Path(spec.origin).parent / "static" / "mathjax"


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    """After a successful build, copy the MathJax parts into ``_static/mathjax``."""
    if exception is not None:
        return
    source, target = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        elif (source / part).exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def setup(app: Sphinx) -> None:
    # MathJax on every page: the landing page's check table is raw HTML, which Sphinx does not
    # scan for math.
    app.set_html_assets_policy("always")
    app.connect("build-finished", copy_mathjax)
