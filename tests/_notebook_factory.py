"""Throwaway notebooks for the runner, report and hygiene tests (written into tmp_path)."""

from __future__ import annotations

from pathlib import Path

import nbformat

PARAMETERS = (
    "seed = 0  # master seed\n"
    "alpha = 0.5  # a float parameter\n"
    "n_points = 3  # an int parameter [1, inf)\n"
    'label = "run"  # a string parameter\n'
    'output_dir = ""  # set by ptd run; "" writes nothing\n'
)


#: The kinds of the two checks of `protocol_cells`: alpha_echo, alpha_is_float.
KINDS = ("claim", "consistency")


def protocol_cells(stem: str, *, passing: bool = True, known_failure: str | None = None,
                   kinds: tuple[str, str] = KINDS) -> list[str]:
    """The cells of a minimal notebook following the protocol of ptdlib.cli.

    Two checks are pre-registered: ``alpha_echo`` (the parameter arrives, a claim) and
    ``alpha_is_float`` (its type, a consistency check); ``kinds`` sets their kinds.
    ``passing=False`` makes ``alpha_echo`` a check that the measurement cannot meet;
    ``known_failure`` registers that check as a known failure with this reason.
    """
    expected = "alpha" if passing else "alpha + 1.0"
    echo_kind, type_kind = kinds
    known = ("" if known_failure is None
             else f'table.expect_failure("alpha_echo", {known_failure!r})\n')
    return [
        "import matplotlib.pyplot as plt\n"
        "from ptdlib import checks, plots, reports\n"
        f'out = reports.NotebookOutput(output_dir, "{stem}")\n'
        "table = checks.CheckTable()\n"
        f'table.expect(checks.Expectation.close("alpha_echo", "alpha arrives as a float", '
        f'{expected}, atol=1e-12, kind="{echo_kind}"))\n'
        'table.expect(checks.Expectation.true("alpha_is_float", "alpha has type float", '
        f'kind="{type_kind}"))',
        "fig, ax = plt.subplots()\n"
        "ax.plot(list(range(n_points)), [alpha * k for k in range(n_points)])\n"
        'out.save_figure(fig, "line", caption="a straight line");',
        "table.measure(\"alpha_echo\", alpha)\n"
        "table.measure(\"alpha_is_float\", isinstance(alpha, float))\n"
        f"{known}"
        "print(table.format_table())\n"
        'out.write_summary(table, {"seed": seed, "alpha": alpha, "n_points": n_points, '
        '"label": label})\n'
        "table.assert_all()",
    ]


def make_notebook(path: Path, cells: list[str], *, parameters: str | None = PARAMETERS,
                  kernel: str = "python3", markdown: str = "# A test notebook") -> Path:
    """Write a notebook: a markdown title, the ``parameters`` cell, then the code ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(markdown))
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def make_project(root: Path, notebooks: dict[str, list[str]]) -> Path:
    """A project folder ``root`` with ``notebooks/<stem>.ipynb`` and a paper profile each."""
    for stem, cells in notebooks.items():
        make_notebook(root / "notebooks" / f"{stem}.ipynb", cells)
        profile = root / "notebooks" / "params" / f"{stem}.paper.yaml"
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text("n_points: 5\nalpha: 0.25\n", encoding="utf-8")
    return root
