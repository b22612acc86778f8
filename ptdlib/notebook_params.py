"""The notebooks' parameters: the ``parameters`` cell, typed values, profiles and hygiene.

Primer
------
Every notebook in ``notebooks/`` has exactly one code cell tagged ``parameters`` made of flat
literal assignments, one per line, with the help text as a trailing comment::

    seed = 0  # master seed of every random draw
    n_agents = 8  # number of agents N
    alpha = 0.05  # constant step size
    grid = [4, 8, 16]  # values of N to sweep
    output_dir = ""  # set by `ptd run`; "" writes no files

Each default fixes the parameter's *kind*: ``int``, ``float``, ``bool``, ``str`` or a list of one
of them (``list[int]``); ``None``, dicts, tuples, annotations and expressions are not allowed
(papermill cannot inject them faithfully and the runner could not type-check them). ``seed``
(int) and ``output_dir`` (str, default ``""``) are required. Papermill reads the cell with its own
line parser, which skips any line holding a second ``=`` (as in a help comment ``# N = 4r``), so
the hygiene check :func:`notebook_problems` asks that parser to recognise every parameter. The
paper profile ``notebooks/params/<stem>.paper.yaml`` maps names to values.

A value is accepted for a kind by :func:`coerce_value`: ``bool`` takes only true/false; ``int``
takes integers only (not 3.0, not true); ``float`` takes integers and floats (finite), and a
string written as a decimal/scientific literal such as ``"1e-3"`` (YAML 1.1, hence PyYAML, reads
``1e-3`` without a dot as a string) is converted; ``str`` takes strings; lists are checked element
by element. Anything else is rejected with a message naming the parameter, value and kind.

A help comment may end with the values the parameter admits, so that each parameter is declared
once, in its line: an interval ``[0, 1)``, ``(0, inf)``, ``[1, inf)`` (closed or open at each end;
``inf`` for no bound; lists are checked element by element) or a set of choices
``{markov, iid}``. No ``>=``: papermill's parser skips a line with a second ``=``::

    seed = 0  # master seed of every random draw [0, inf)
    alpha = 0.05  # constant step size (0, inf)
    sampling = "markov"  # how the agents sample {markov, iid}
    # values of N: a line too long for its help takes it from the comment line above [1, inf)
    grid = [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]

Inside the notebook, the cell after the parameters turns them into a typed, validated, frozen
record with :func:`config`; the runner checks the same bounds on a profile or ``-p`` value
before anything runs::

    from ptdlib import notebook_params

    config = notebook_params.config(globals(), "02_mixing")

The stem names the notebook whose parameters cell to read when the kernel keeps no history of
its cells (nbval, some front ends); in Jupyter and under papermill the history is used.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import yaml

from ptdlib._validation import check_in_range

__all__ = [
    "REQUIRED_PARAMETERS",
    "Parameter",
    "coerce_value",
    "config",
    "load_profile",
    "notebook_problems",
    "notebook_source_hash",
    "parse_cli_value",
    "parse_parameters",
    "read_parameters",
]

PARAMETERS_TAG = "parameters"
#: Parameters every notebook declares, with their kinds; ``output_dir`` belongs to the runner.
REQUIRED_PARAMETERS = {"seed": "int", "output_dir": "str"}
RUNNER_PARAMETERS = frozenset({"output_dir"})
SCALAR_KINDS = {bool: "bool", int: "int", float: "float", str: "str"}
FLOAT_LITERAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
#: A string literal in code that names an absolute location.
ABSOLUTE_LITERAL = re.compile(r"^(?:/[^/\s]|~[/\\]|[A-Za-z]:[\\/]|file:)")
#: An absolute path leaking into prose, outputs or metadata (user, temp and system roots).
ABSOLUTE_IN_TEXT = re.compile(
    r"(?<![\w.~/-])(?:/(?:home|Users|root|tmp|work|mnt|opt|srv|var|private)/|~/|[A-Za-z]:\\)")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: The admitted values at the end of a help comment: an interval or a set of choices.
_END = r"[+-]?(?:inf|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
INTERVAL = re.compile(rf"([\[(])\s*({_END})\s*,\s*({_END})\s*([\])])$")
CHOICES = re.compile(r"\{([^{}]+)\}$")
PYTHON_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


@dataclass(frozen=True)
class Rules:
    """The values a parameter admits: ``low``/``high`` (open or closed) or ``choices``."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None

    def check(self, name: str, value: Any) -> None:
        """Raise ValueError naming ``name`` unless ``value`` (each list element) is admitted."""
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            label = f"{name}[{i}]" if isinstance(value, list) else name
            if self.choices is not None and item not in self.choices:
                raise ValueError(f"parameter {label!r} must be one of {set(self.choices)}; "
                                 f"got {item!r}")
            if self.choices is None and (self.low, self.high) != (-math.inf, math.inf):
                check_in_range(item, f"parameter {label!r}", self.low, self.high,
                               low_open=self.low_open, high_open=self.high_open)


@dataclass(frozen=True)
class Parameter:
    """One line of a parameters cell: name, default, kind (e.g. ``"float"``), help text and the
    values it admits (from the end of the help text)."""

    name: str
    default: Any
    kind: str
    help: str
    rules: Rules = Rules()


def parse_rules(name: str, help_text: str, kind: str) -> Rules:
    """The admitted values written at the end of a help comment (none: every value).

    Only numbers and ``inf`` make an interval, so prose such as ``(B_t, B*)`` is left alone.
    """
    text = help_text.rstrip()
    if match := INTERVAL.search(text):
        opening, low, high, closing = match.groups()
        if kind in ("str", "bool", "list[str]", "list[bool]"):
            raise ValueError(f"parameter {name!r}: an interval needs a numeric kind, not {kind}")
        rules = Rules(float(low), float(high), opening == "(", closing == ")")
        if not rules.low <= rules.high:
            raise ValueError(f"parameter {name!r}: empty interval {match.group(0)}")
        return rules
    if match := CHOICES.search(text):
        element = kind[5:-1] if kind.startswith("list[") else kind
        words = [w.strip() for w in match.group(1).split(",")]
        return Rules(choices=tuple(coerce_value(name, w, element) if element != "str" else w
                                   for w in words))
    return Rules()


def _kind_of_value(name: str, value: Any) -> str:
    """The kind of a literal default; ValueError for None, dicts, tuples, nested or mixed lists."""
    if type(value) in SCALAR_KINDS:
        return SCALAR_KINDS[type(value)]
    if isinstance(value, list) and not value:
        raise ValueError(f"parameter {name!r}: an empty list has no element kind; give one "
                         f"example element")
    if isinstance(value, list):
        kinds = {SCALAR_KINDS.get(type(v)) for v in value}
        if kinds == {"int", "float"}:
            return "list[float]"
        if len(kinds) == 1 and None not in kinds:
            return f"list[{kinds.pop()}]"
    raise ValueError(f"parameter {name!r} must be an int, float, bool, str or a flat list of one "
                     f"of them; got {value!r}")


def coerce_value(name: str, value: Any, kind: str) -> Any:
    """Return ``value`` converted to ``kind`` by the rules of the module primer, or raise."""
    if kind.startswith("list["):
        if not isinstance(value, list | tuple):
            raise ValueError(f"parameter {name!r} expects a {kind}; got {value!r} "
                             f"({type(value).__name__})")
        return [coerce_value(f"{name}[{i}]", v, kind[5:-1]) for i, v in enumerate(value)]
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
    }[kind]
    if kind == "float" and isinstance(value, str) and FLOAT_LITERAL.fullmatch(value.strip()):
        value, ok = float(value), True
    if not ok:
        hint = " (write floats as 1.0e-3 or 0.001)" if kind == "float" else ""
        raise ValueError(f"parameter {name!r} expects {kind}; got {value!r} "
                         f"({type(value).__name__}){hint}")
    if kind == "float":
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"parameter {name!r} expects a finite float; got {value!r}")
    return value


def parse_cli_value(name: str, text: str, kind: str) -> Any:
    """A ``-p NAME VALUE`` value: read as YAML (``3``, ``0.5``, ``[4, 8]``, ``true``) and coerced.

    For ``str`` parameters the text is taken verbatim, so ``-p label 02`` stays ``"02"``.
    """
    if kind == "str":
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"parameter {name!r}: cannot read {text!r} as a value ({exc})") from exc
    return coerce_value(name, value, kind)


def _help_comment(lines: list[str], node: ast.Assign) -> str:
    """The comment after the assignment or, for a line too long to hold it, on the line above."""
    tail = lines[node.end_lineno - 1][node.end_col_offset:].strip()
    if tail.startswith("#"):
        return tail[1:].strip()
    above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
    return above[1:].strip() if above.startswith("#") else ""


def parse_parameters(source: str) -> dict[str, Parameter]:
    """Parse the source of a parameters cell into :class:`Parameter` records, in order.

    Raises ValueError naming the line for anything but ``name = literal  # help`` lines.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"parameters cell is not valid Python (line {exc.lineno}): "
                         f"{exc.msg}") from exc
    lines = source.splitlines()
    parameters: dict[str, Parameter] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            raise ValueError(f"parameters cell line {node.lineno}: only `name = literal` lines are "
                             f"allowed; got {ast.get_source_segment(source, node)!r}")
        name = node.targets[0].id
        try:
            default = ast.literal_eval(node.value)
        except ValueError as exc:
            raise ValueError(f"parameters cell line {node.lineno}: {name} must be a literal, not "
                             f"{ast.get_source_segment(source, node.value)!r}") from exc
        if name in parameters:
            raise ValueError(f"parameters cell line {node.lineno}: {name} is assigned twice")
        kind, help_text = _kind_of_value(name, default), _help_comment(lines, node)
        rules = parse_rules(name, help_text, kind)
        rules.check(name, default)
        parameters[name] = Parameter(name, default, kind, help_text, rules)
    return parameters


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _parameters_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code" and PARAMETERS_TAG in _tags(cell)]


def read_parameters(path: str | Path) -> dict[str, Parameter]:
    """The parameters of the notebook at ``path`` (exactly one ``parameters`` cell required)."""
    nb = nbformat.read(str(path), as_version=4)
    cells = _parameters_cells(nb)
    if len(cells) != 1:
        raise ValueError(f"{Path(path).name} must have exactly one code cell tagged "
                         f"'{PARAMETERS_TAG}'; found {len(cells)}")
    return parse_parameters(cells[0].source)


def load_profile(path: str | Path, parameters: Mapping[str, Parameter]) -> dict[str, Any]:
    """Read a ``<stem>.paper.yaml`` profile, checking every name and coercing every value."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{Path(path).name} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{Path(path).name} must map parameter names to values; got "
                         f"{type(data).__name__}")
    values = {}
    for name, value in data.items():
        if name not in parameters or name in RUNNER_PARAMETERS:
            raise ValueError(f"{Path(path).name}: {unknown_parameter_message(name, parameters)}")
        values[name] = coerce_value(name, value, parameters[name].kind)
        parameters[name].rules.check(name, values[name])
    return values


def unknown_parameter_message(name: str, parameters: Mapping[str, Parameter]) -> str:
    """``unknown parameter 'x'`` with the closest known names as a suggestion."""
    known = [p for p in parameters if p not in RUNNER_PARAMETERS]
    if name in RUNNER_PARAMETERS:
        return f"parameter {name!r} is set by the runner and cannot be overridden"
    close = difflib.get_close_matches(str(name), known, n=3)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    return f"unknown parameter {name!r}{hint} (known: {', '.join(known)})"


def _parameters_source(namespace: Mapping[str, Any]) -> str | None:
    """The notebook's parameters cell from the kernel's input history ``In``: the last executed
    cell of ``name = literal  # help`` lines only that defines ``seed`` (papermill's injected
    cell has neither help nor, by default, a seed). None when the history holds none (nbval
    executes cells without storing them)."""
    for source in reversed(list(namespace.get("In", []))):
        try:
            parameters = parse_parameters(source)
        except ValueError:
            continue
        if (set(REQUIRED_PARAMETERS) <= set(parameters)
                and all(p.help for p in parameters.values())):
            return source
    return None


def _declared(namespace: Mapping[str, Any], notebook: str | None,
              source: str | None) -> dict[str, Parameter]:
    if source is None:
        source = _parameters_source(namespace)
    if source is not None:
        return parse_parameters(source)
    if notebook is None:
        raise ValueError("no parameters cell in this kernel's history: pass the notebook's stem "
                         "(config(globals(), \"02_mixing\")) or its parameters as source=")
    from ptdlib.reports import project_root  # deferred: reports imports this module

    return read_parameters(project_root() / "notebooks" / f"{notebook}.ipynb")


def config(namespace: Mapping[str, Any], notebook: str | None = None, *,
           source: str | None = None) -> Any:
    """The notebook's parameters as a frozen record, typed and checked; ``output_dir`` left out.

    ``namespace`` holds the values (pass ``globals()``: the defaults, or what papermill
    injected). The parameters cell that declares them gives each one's kind (from its default)
    and admitted values (from the end of its help comment): ``source`` if given, else the cell
    found in the kernel's history (as last run, edits included), else the saved cell of
    ``notebooks/<notebook>.ipynb`` in the project. Raises ValueError naming the parameter and
    the rule it breaks.
    """
    declared = _declared(namespace, notebook, source)
    fields, values = [], {}
    for name, parameter in declared.items():
        if name in RUNNER_PARAMETERS:
            continue
        if name not in namespace:
            raise ValueError(f"parameter {name!r} is declared but not defined: run the "
                             f"parameters cell")
        values[name] = coerce_value(name, namespace[name], parameter.kind)
        parameter.rules.check(name, values[name])
        kind = parameter.kind
        python_type = (list[PYTHON_TYPES[kind[5:-1]]] if kind.startswith("list[")
                       else PYTHON_TYPES[kind])
        fields.append((name, python_type))
    return dataclasses.make_dataclass("Config", fields, frozen=True)(**values)


def _code_problems(index: int, source: str) -> list[str]:
    problems = []
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")) or "get_ipython(" in stripped:
            what = "shell escape" if stripped.startswith("!") else "IPython magic"
            problems.append(f"cell {index} line {number}: {what} {stripped!r}")
    if problems:
        return problems
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"cell {index} line {exc.lineno}: not valid Python ({exc.msg})"]
    return [f"cell {index} line {node.lineno}: absolute path {node.value!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and ABSOLUTE_LITERAL.match(node.value)]


def _strings(obj: Any) -> list[str]:
    """Every string inside a JSON-like object, skipping base64 image payloads."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, Mapping):
        return [s for key, value in obj.items() if not str(key).startswith("image/")
                for s in _strings(value)]
    if isinstance(obj, list):
        return [s for item in obj for s in _strings(item)]
    return []


def _text_problems(where: str, obj: Any) -> list[str]:
    for text in _strings(obj):
        text = ANSI_ESCAPE.sub("", text)
        match = ABSOLUTE_IN_TEXT.search(text)
        if match:
            return [f"{where}: absolute path near {text[match.start():match.end() + 30]!r}"]
    return []


def _assignment_lines(source: str) -> dict[str, int]:
    """The line of each ``name = literal`` of a cell that :func:`parse_parameters` accepted."""
    return {node.targets[0].id: node.lineno for node in ast.parse(source).body}


def _papermill_problems(source: str, parameters: Mapping[str, Parameter]) -> list[str]:
    """Parameters that papermill's own parser does not recognise in the cell ``source``.

    Papermill still injects them, but warns "Passed unknown parameter" and leaves them out of
    ``papermill --help-notebook``.
    """
    # Deferred: papermill is a slow import that notebooks using NotebookOutput do not need.
    from papermill.translators import PythonTranslator

    recognised = {p.name for p in PythonTranslator.inspect({"source": source})}
    lines = _assignment_lines(source)
    problems = []
    for name, parameter in parameters.items():
        if name in recognised:
            continue
        why = ("its comment contains '='; reword the comment" if "=" in parameter.help else
               "papermill reads one `name = value  # help` per line with no other '='")
        problems.append(f"parameters cell line {lines[name]}: papermill does not recognise "
                        f"parameter {name!r} ({why})")
    return problems


def _parameters_problems(nb: nbformat.NotebookNode) -> list[str]:
    cells = _parameters_cells(nb)
    if len(cells) != 1:
        return [f"needs exactly one code cell tagged '{PARAMETERS_TAG}'; found {len(cells)}"]
    try:
        parameters = parse_parameters(cells[0].source)
    except ValueError as exc:
        return [str(exc)]
    problems = [f"parameters cell must define {name} ({kind})"
                for name, kind in REQUIRED_PARAMETERS.items()
                if name not in parameters or parameters[name].kind != kind]
    if "output_dir" in parameters and parameters["output_dir"].default != "":
        problems.append("output_dir must default to \"\" (the runner sets it)")
    return problems + _papermill_problems(cells[0].source, parameters)


def notebook_problems(path: str | Path, *, profile: str | Path | None = None) -> list[str]:
    """Everything that breaks the notebook conventions (empty list = clean).

    One ``parameters`` cell of flat literals with ``seed`` and ``output_dir``, each recognised
    by papermill's parser (no ``=`` in help comments); kernelspec python3; no magics, shell
    escapes (``!pip``) or ``get_ipython``; no absolute paths in code, prose, outputs or metadata;
    no error outputs; and, when given, a valid ``profile`` YAML.
    """
    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several unrelated types for bad files
        return [f"not a valid notebook: {exc}".splitlines()[0]]
    kernelspec = dict(nb.metadata.get("kernelspec", {}))
    problems = []
    if (kernelspec.get("name"), kernelspec.get("language")) != ("python3", "python"):
        problems.append(f"kernelspec must be name python3, language python; got {kernelspec!r}")
    problems += _parameters_problems(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            problems += _code_problems(index, cell.source)
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    problems.append(f"cell {index}: has an error output ({output.ename})")
                problems += _text_problems(f"cell {index} output", output)
        else:
            problems += _text_problems(f"cell {index} ({cell.cell_type})", cell.source)
    problems += _text_problems("notebook metadata", nb.metadata)
    if profile is not None and not problems:
        try:
            load_profile(profile, read_parameters(path))
        except (OSError, ValueError) as exc:
            problems.append(f"profile {Path(profile).name}: {exc}")
    return problems


def notebook_source_hash(path: str | Path, profile: str | Path | None = None) -> str:
    """SHA-256 of what a notebook computes: cell types, sources and tags, plus its profile.

    Outputs, execution counts and metadata are left out, so re-executing a notebook in place
    does not change the hash while editing any cell or the profile does.
    """
    nb = nbformat.read(str(path), as_version=4)
    cells = [[cell.cell_type, cell.source, sorted(_tags(cell))] for cell in nb.cells]
    digest = hashlib.sha256(json.dumps(cells, sort_keys=True).encode())
    if profile is not None and Path(profile).exists():
        digest.update(Path(profile).read_bytes())
    return digest.hexdigest()
