"""Verdicts: named claims with a measured value, a pre-registered expectation and pass/fail.

Primer
------
A notebook tests a theoretical claim by comparing a measured number with an expectation that is
written down *before* the run, together with its tolerance. That record is a :class:`Verdict`
``(name, claim, measured, expected, tol, ok)``; how ``expected`` and ``tol`` combine is its
``relation``:

==============  ===============================================  ========================
relation        passes when                                      made by
==============  ===============================================  ========================
close           abs(measured - expected) <= tol                  check_close, check_in_interval
at_most         measured <= expected + tol                       check_at_most
at_least        measured >= expected - tol                       check_at_least
ci_inside       the CI lies inside [expected - tol, expected + tol]  check_in_interval, check_slope
ci_overlap      the CI meets [expected - tol, expected + tol]    check_in_interval, check_slope
ratio           expected / tol <= measured <= expected * tol     check_ratio (tol = factor)
ratio_ci_inside the CI lies inside [expected / tol, expected * tol]  Expectation.ratio(use_ci=True)
ratio_at_most   measured <= expected * tol                       check_ratio(side="upper")
ratio_at_least  measured >= expected / tol                       check_ratio(side="lower")
true            measured is True                                 check_true
==============  ===============================================  ========================

Pre-registration can be made explicit: ``table.expect(Expectation.close(...))`` in a cell above
the experiment and ``table.measure(name, value)`` after it; an expectation never measured fails.
``table.preregistration()`` shows the expectations still waiting for their measurement as a
table (Markdown in Jupyter and the book, fixed-width text elsewhere).
A :class:`CheckTable` prints the verdicts with values rounded to a stable precision (nbval
compares that text), writes them to ``summary.json`` and ``assert_all()`` fails the notebook.

Kinds of check
--------------
Every check in a table declares what it is evidence of (``kind=`` when it is registered):

==============  ==========================================================================
kind            what passing it shows
==============  ==========================================================================
claim           a statement of the paper, or of the theory it rests on, holds on learning
                dynamics (a simulation of the algorithm, measured against a prediction)
consistency     the code agrees with the mathematics: known answers, identities, facts true by
                construction (never a claim, however it reads)
precondition    the experiment is in the regime its claims need (well-posed problem, step
                schedule in range)
==============  ==========================================================================

A check that only tests a sign of a learning quantity (a > 0, "fraction > 0") is recorded as a
precondition until it becomes quantitative. Reports count claims first: "claim checks: K of N
pass".

Known failures
--------------
A pre-registered expectation that the data refute is not widened after the fact: the notebook
registers it with ``table.expect_failure(name, reason)`` before writing the summary. Its verdict
text is then ``KNOWN FAIL`` (table, summary, index) and the notebook's status ``known failures``,
which ``ptd run`` accepts. Like pytest's strict xfail, a known failure that passes is an
``UNEXPECTED PASS`` and fails the notebook, so the documented reason cannot go stale:

===================  ==================  ===========================
verdict_text         measurement passes  registered as known failure
===================  ==================  ===========================
PASS                 yes                 no
FAIL                 no                  no
KNOWN FAIL           no                  yes
UNEXPECTED PASS      yes                 yes
===================  ==================  ===========================
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import os
import platform
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from ptdlib.stats import SlopeFit

__all__ = [
    "CheckTable",
    "Expectation",
    "Preregistration",
    "Verdict",
    "check_at_least",
    "check_at_most",
    "check_close",
    "check_in_interval",
    "check_ratio",
    "check_slope",
    "check_true",
    "claim_verdict",
    "collect_provenance",
    "format_table",
    "format_value",
    "json_value",
    "kind_counts",
    "notebook_status",
    "verdict_text",
    "write_summary",
]

Kind = Literal["claim", "consistency", "precondition"]
KINDS: tuple[str, ...] = get_args(Kind)
Relation = Literal["close", "at_most", "at_least", "ci_inside", "ci_overlap", "ratio",
                   "ratio_ci_inside", "ratio_at_most", "ratio_at_least", "true"]
RELATIONS: tuple[str, ...] = get_args(Relation)
#: 2 added the per-check ``known_failure`` and ``verdict_text``, ``n_known_failures`` and the
#: status ``known failures``; 3 the per-check ``kind`` and the per-kind ``counts``. Older
#: summaries read with no known failures and kind None.
SUMMARY_SCHEMA = 3
PASSED, KNOWN_FAILURES, FAILED = "passed", "known failures", "failed"
#: The notebook statuses that let ``ptd run`` exit 0.
ACCEPTED_STATUSES = (PASSED, KNOWN_FAILURES)
#: Significant digits kept for floats in summary.json: far above any check's tolerance, far
#: below the last bits that change with the BLAS or the machine.
JSON_DIGITS = 12
PROVENANCE_PACKAGES = ("numpy", "scipy", "numba", "sympy", "matplotlib", "seaborn", "pandas",
                       "ptdlib")


@dataclass(frozen=True)
class Verdict:
    """One checked claim; ``tol`` is the tolerance fixed before the run (see the module table).

    ``known_failure`` is the one-line reason of a registered known failure, else None;
    ``kind`` is one of `KINDS` (None only for a verdict outside a table, or an old summary).
    """

    name: str
    claim: str
    measured: float | bool
    expected: float | bool
    tol: float
    ok: bool
    relation: Relation = "close"
    detail: str = ""
    ci: tuple[float, float] | None = None
    known_failure: str | None = None
    kind: Kind | None = None

    def __post_init__(self) -> None:
        _check_kind(self.kind, self.name, required=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus the rendered measured, expected and verdict text."""
        record = json_value(dataclasses.asdict(self))
        record["measured_text"] = measured_text(self)
        record["expected_text"] = expected_text(self)
        record["verdict_text"] = verdict_text(self)
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Verdict:
        """Rebuild a verdict from :meth:`to_dict` output (non-finite floats were stored as text)."""
        fields = {f.name: record[f.name] for f in dataclasses.fields(cls) if f.name in record}
        for key in ("measured", "expected", "tol"):
            if isinstance(fields.get(key), str):
                fields[key] = float(fields[key])
        if fields.get("ci") is not None:
            fields["ci"] = (float(fields["ci"][0]), float(fields["ci"][1]))
        return cls(**fields)


def _real(value: Any, name: str) -> float:
    """``value`` as a Python float: real scalars and size-1 arrays only, NaN allowed (it fails)."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be a real scalar; got {value!r}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real; got {value!r}")
    return float(arr.reshape(()))


def _tolerance(value: Any, name: str) -> float:
    tol = _real(value, name)
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"{name} must be finite and >= 0; got {value!r}")
    return tol


def _finite(value: Any, name: str) -> float:
    x = _real(value, name)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite; got {value!r}")
    return x


def _ci(ci: tuple[float, float] | None) -> tuple[float, float] | None:
    if ci is None:
        return None
    low, high = (_real(c, "ci") for c in ci)
    if not low <= high:
        raise ValueError(f"ci must be (low, high) with low <= high; got {ci!r}")
    return (low, high)


def _passes(relation: str, measured: Any, expected: Any, tol: float,
            ci: tuple[float, float] | None) -> bool:
    """The pass rule of each relation (module table); NaN measurements fail every rule."""
    match relation:
        case "close":
            return abs(measured - expected) <= tol
        case "at_most":
            return measured <= expected + tol
        case "at_least":
            return measured >= expected - tol
        case "ci_inside":
            return (bool(np.isfinite(measured)) and expected - tol <= ci[0]
                    and ci[1] <= expected + tol)
        case "ci_overlap":
            return (bool(np.isfinite(measured)) and ci[0] <= expected + tol
                    and ci[1] >= expected - tol)
        case "ratio":
            return expected / tol <= measured <= expected * tol
        case "ratio_ci_inside":
            return (bool(np.isfinite(measured)) and expected / tol <= ci[0]
                    and ci[1] <= expected * tol)
        case "ratio_at_most":
            return measured <= expected * tol
        case "ratio_at_least":
            return measured >= expected / tol
        case _:
            return measured is True


def _check_kind(kind: Any, name: str, *, required: bool) -> None:
    """ValueError unless ``kind`` is one of `KINDS` (or None where not ``required``)."""
    if kind in KINDS or (kind is None and not required):
        return
    raise ValueError(f"check {name!r}: kind must be one of {', '.join(map(repr, KINDS))}; "
                     f"got {kind!r}")


@dataclass(frozen=True)
class Expectation:
    """A pre-registered expectation: everything of a verdict except the measurement."""

    name: str
    claim: str
    relation: Relation
    expected: float | bool
    tol: float
    detail: str = ""
    kind: Kind | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name must be a non-empty string; got {self.name!r}")
        if self.relation not in RELATIONS:
            raise ValueError(f"relation must be one of {RELATIONS}; got {self.relation!r}")
        _check_kind(self.kind, self.name, required=False)

    @classmethod
    def close(cls, name: str, claim: str, expected: float, *, atol: float = 0.0,
              rtol: float = 0.0, kind: Kind | None = None) -> Expectation:
        """``abs(measured - expected) <= atol + rtol * abs(expected)``; tol stores that bound."""
        expected = _finite(expected, "expected")
        atol, rtol = _tolerance(atol, "atol"), _tolerance(rtol, "rtol")
        detail = f"atol={atol:g}, rtol={rtol:g}" if rtol else ""
        return cls(name, claim, "close", expected, atol + rtol * abs(expected), detail, kind)

    @classmethod
    def at_most(cls, name: str, claim: str, bound: float, *, tol: float = 0.0,
                kind: Kind | None = None) -> Expectation:
        """``measured <= bound + tol``."""
        return cls(name, claim, "at_most", _finite(bound, "bound"), _tolerance(tol, "tol"),
                   kind=kind)

    @classmethod
    def at_least(cls, name: str, claim: str, bound: float, *, tol: float = 0.0,
                 kind: Kind | None = None) -> Expectation:
        """``measured >= bound - tol``."""
        return cls(name, claim, "at_least", _finite(bound, "bound"), _tolerance(tol, "tol"),
                   kind=kind)

    @classmethod
    def interval(cls, name: str, claim: str, expected: float, tol: float, *,
                 use_ci: Literal["inside", "overlap"] | None = None,
                 kind: Kind | None = None) -> Expectation:
        """Within ``tol`` of ``expected``: the estimate (default), or its CI inside/overlapping."""
        relations: dict[str | None, Relation] = {None: "close", "inside": "ci_inside",
                                                 "overlap": "ci_overlap"}
        if use_ci not in relations:
            raise ValueError(f"use_ci must be None, 'inside' or 'overlap'; got {use_ci!r}")
        return cls(name, claim, relations[use_ci], _finite(expected, "expected"),
                   _tolerance(tol, "tol"), kind=kind)

    @classmethod
    def ratio(cls, name: str, claim: str, expected: float, factor: float, *,
              side: Literal["both", "upper", "lower"] = "both",
              use_ci: Literal["inside"] | None = None,
              kind: Kind | None = None) -> Expectation:
        """The ratio lies within a multiplicative ``factor`` >= 1 of ``expected`` > 0.

        ``use_ci="inside"``: its CI must lie inside the band (``side="both"`` only).
        """
        expected, factor = _finite(expected, "expected"), _finite(factor, "factor")
        if expected <= 0 or factor < 1:
            raise ValueError(f"ratio needs expected > 0 and factor >= 1; got expected={expected}, "
                             f"factor={factor}")
        relations: dict[str, Relation] = {"both": "ratio", "upper": "ratio_at_most",
                                          "lower": "ratio_at_least"}
        if side not in relations:
            raise ValueError(f"side must be 'both', 'upper' or 'lower'; got {side!r}")
        if use_ci not in (None, "inside") or (use_ci and side != "both"):
            raise ValueError(f"use_ci must be None or 'inside' (with side='both'); got "
                             f"use_ci={use_ci!r}, side={side!r}")
        relation = "ratio_ci_inside" if use_ci else relations[side]
        return cls(name, claim, relation, expected, factor, kind=kind)

    @classmethod
    def true(cls, name: str, claim: str, *, kind: Kind | None = None) -> Expectation:
        """The measured condition holds."""
        return cls(name, claim, "true", True, 0.0, kind=kind)

    def judge(self, measured: Any, *, ci: tuple[float, float] | None = None,
              detail: str = "") -> Verdict:
        """The verdict of this expectation for ``measured`` (and ``ci`` for the CI relations)."""
        if self.relation == "true":
            if not isinstance(measured, bool | np.bool_):
                raise ValueError(f"{self.name}: measured must be a bool; got {measured!r}")
            value: float | bool = bool(measured)
        else:
            value = _real(measured, f"{self.name}: measured")
        ci = _ci(ci)
        if self.relation in ("ci_inside", "ci_overlap", "ratio_ci_inside") and ci is None:
            raise ValueError(f"{self.name}: relation {self.relation} needs a ci; got None")
        ok = _passes(self.relation, value, self.expected, self.tol, ci)
        note = "; ".join(part for part in (self.detail, detail) if part)
        return Verdict(self.name, self.claim, value, self.expected, self.tol, ok, self.relation,
                       note, ci, kind=self.kind)


def check_close(name: str, claim: str, measured: Any, expected: float, *, atol: float = 0.0,
                rtol: float = 0.0, kind: Kind | None = None) -> Verdict:
    """Pass when ``abs(measured - expected) <= atol + rtol * abs(expected)``."""
    return Expectation.close(name, claim, expected, atol=atol, rtol=rtol,
                             kind=kind).judge(measured)


def check_at_most(name: str, claim: str, measured: Any, bound: float, *,
                  tol: float = 0.0, kind: Kind | None = None) -> Verdict:
    """Pass when ``measured <= bound + tol``."""
    return Expectation.at_most(name, claim, bound, tol=tol, kind=kind).judge(measured)


def check_at_least(name: str, claim: str, measured: Any, bound: float, *,
                   tol: float = 0.0, kind: Kind | None = None) -> Verdict:
    """Pass when ``measured >= bound - tol``."""
    return Expectation.at_least(name, claim, bound, tol=tol, kind=kind).judge(measured)


def check_in_interval(name: str, claim: str, measured: Any, expected: float, tol: float, *,
                      ci: tuple[float, float] | None = None,
                      use_ci: Literal["inside", "overlap"] | None = None,
                      kind: Kind | None = None) -> Verdict:
    """Pass when the estimate (or with ``use_ci`` its CI) is within ``tol`` of ``expected``."""
    return Expectation.interval(name, claim, expected, tol, use_ci=use_ci,
                                kind=kind).judge(measured, ci=ci)


def check_slope(name: str, claim: str, fit: SlopeFit, expected: float, tol: float, *,
                use_ci: Literal["inside", "overlap"] | None = None,
                kind: Kind | None = None) -> Verdict:
    """:func:`check_in_interval` on a fitted log-log slope, reporting its bootstrap CI."""
    return check_in_interval(name, claim, fit.slope, expected, tol, ci=fit.ci, use_ci=use_ci,
                             kind=kind)


def check_ratio(name: str, claim: str, numerator: Any, denominator: Any, *,
                expected: float = 1.0, factor: float = 2.0,
                side: Literal["both", "upper", "lower"] = "both",
                kind: Kind | None = None) -> Verdict:
    """Pass when ``numerator / denominator`` is within ``factor`` of ``expected`` (see ``side``)."""
    num, den = _real(numerator, "numerator"), _real(denominator, "denominator")
    ratio = num / den if den != 0 else math.nan
    detail = f"{format_value(num)} / {format_value(den)}"
    return Expectation.ratio(name, claim, expected, factor, side=side,
                             kind=kind).judge(ratio, detail=detail)


def check_true(name: str, claim: str, holds: bool, *, detail: str = "",
               kind: Kind | None = None) -> Verdict:
    """Pass when the condition ``holds``; say in ``detail`` what was checked."""
    return Expectation.true(name, claim, kind=kind).judge(holds, detail=detail)


class CheckTable:
    """The checks of one notebook, in the order they were registered or added."""

    def __init__(self) -> None:
        self._entries: dict[str, Expectation | Verdict] = {}
        self._known_failures: dict[str, str] = {}

    def _register(self, entry: Expectation | Verdict) -> None:
        _check_kind(entry.kind, entry.name, required=True)  # every check says what it shows
        if entry.name in self._entries:
            raise ValueError(f"check names must be unique; {entry.name!r} is already registered")
        self._entries[entry.name] = entry

    def expect(self, expectation: Expectation) -> Expectation:
        """Pre-register ``expectation``; :meth:`measure` judges it later."""
        self._register(expectation)
        return expectation

    def measure(self, name: str, measured: Any, *, ci: tuple[float, float] | None = None,
                detail: str = "") -> Verdict:
        """Judge the pre-registered expectation ``name`` on ``measured``."""
        entry = self._entries.get(name)
        if not isinstance(entry, Expectation):
            state = "was already measured" if entry else "was never registered with expect()"
            raise ValueError(f"cannot measure check {name!r}: it {state}")
        verdict = entry.judge(measured, ci=ci, detail=detail)
        self._entries[name] = verdict
        return verdict

    def add(self, verdict: Verdict) -> Verdict:
        """Record a verdict made by one of the ``check_*`` constructors."""
        if not isinstance(verdict, Verdict):
            raise ValueError(f"add() takes a Verdict; got {type(verdict).__name__}")
        self._register(verdict)
        return verdict

    def expect_failure(self, name: str, reason: str) -> None:
        """Register the recorded check ``name`` as a known failure, for the documented ``reason``.

        Call it before ``write_summary`` so that the summary and the index show ``KNOWN FAIL``
        and ``ptd run`` accepts the notebook; :meth:`assert_all` then fails the notebook if the
        check passes (strict, like pytest's xfail).

        Parameters
        ----------
        name : str
            A check already registered with :meth:`expect` or :meth:`add`.
        reason : str
            One line saying why the data refute the expectation; shown next to the verdict.
        """
        if name not in self._entries:
            raise ValueError(f"name must be a recorded check; {name!r} is not in the table")
        if name in self._known_failures:
            raise ValueError(f"name {name!r} is already registered as a known failure")
        if not isinstance(reason, str) or not reason.strip() or "\n" in reason:
            raise ValueError(f"reason must be a non-empty single line; got {reason!r}")
        self._known_failures[name] = reason.strip()

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        """All verdicts, known failures marked; an expectation never measured fails (NaN)."""
        verdicts = (
            entry if isinstance(entry, Verdict) else Verdict(
                entry.name, entry.claim, math.nan, entry.expected, entry.tol, False,
                entry.relation, "never measured", kind=entry.kind)
            for entry in self._entries.values())
        return tuple(dataclasses.replace(v, known_failure=self._known_failures[v.name])
                     if v.name in self._known_failures else v for v in verdicts)

    def __iter__(self) -> Iterator[Verdict]:
        return iter(self.verdicts)

    def __len__(self) -> int:
        return len(self._entries)

    def failed(self) -> tuple[Verdict, ...]:
        """The verdicts that did not pass, known failures included."""
        return tuple(v for v in self.verdicts if not v.ok)

    @property
    def ok(self) -> bool:
        """True when every check passed (and there is at least one)."""
        return len(self) > 0 and not self.failed()

    def preregistration(self) -> Preregistration:
        """The expectations registered and not yet measured, in order, as a displayable table."""
        pending = [e for e in self._entries.values() if isinstance(e, Expectation)]
        return Preregistration(tuple((e.name, e.kind or "", expected_text(e), e.claim)
                                     for e in pending))

    def to_frame(self) -> pd.DataFrame:
        """One row per verdict: the fields plus the rendered measured/expected text."""
        import pandas as pd  # deferred: only tables need pandas, notebooks start faster

        return pd.DataFrame([v.to_dict() for v in self.verdicts])

    def format_table(self, digits: int = 4, *, values: bool = True) -> str:
        """See :func:`format_table`."""
        return format_table(self.verdicts, digits, values=values)

    def assert_all(self, expected_failures: Mapping[str, str] | None = None) -> None:
        """Raise AssertionError naming every failed check with its measured and expected value.

        Known failures registered with :meth:`expect_failure` do not raise; like pytest's strict
        xfail, this call raises if one of them passes, so the documentation cannot go stale.
        ``expected_failures`` (name to reason) is the older way to list them here only: this
        call treats them the same (and raises for a name not in the table), but the summary,
        written before, still counts them as FAIL.
        """
        if not self._entries:
            raise AssertionError("no checks were recorded")
        known = {**self._known_failures, **(expected_failures or {})}
        names = {v.name for v in self.verdicts}
        problems = [f"  {name}: listed as an expected failure but not in the table"
                    for name in known if name not in names]
        problems += [f"  {v.name}: expected to fail ({known[v.name]}) but now passes; update "
                     "the notebook and remove it from the known failures"
                     for v in self.verdicts if v.ok and v.name in known]
        failed = [v for v in self.failed() if v.name not in known]
        problems += [f"  {v.name}: measured {measured_text(v)}, expected {expected_text(v)}"
                     f"{f' ({v.detail})' if v.detail else ''} -- {v.claim}" for v in failed]
        if problems:
            raise AssertionError("\n".join([f"{len(problems)} of {len(self)} checks failed:",
                                             *problems]))


def _markdown_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell: a pipe would end the cell, so pipes in math
    ($...$) become \\vert / \\Vert and pipes in prose are escaped."""
    pieces = text.split("$")
    for k, piece in enumerate(pieces):
        if k % 2:
            pieces[k] = piece.replace(r"\|", r"\Vert ").replace("|", r"\vert ")
        else:
            pieces[k] = piece.replace("|", r"\|")
    return "$".join(pieces)


@dataclass(frozen=True)
class Preregistration:
    """Pre-registered checks (name, kind, expectation, claim), shown as a table.

    Jupyter and the book render the Markdown form (claims keep their math); ``str`` gives a
    fixed-width text table, the same on every machine.
    """

    rows: tuple[tuple[str, str, str, str], ...]

    def _repr_markdown_(self) -> str:
        lines = ["| check | kind | expected | claim |", "|---|---|---|---|"]
        lines += ["| " + " | ".join(_markdown_cell(cell) for cell in
                                    (f"`{name}`", kind, expected, claim)) + " |"
                  for name, kind, expected, claim in self.rows]
        return "\n".join([f"**{count_text(len(self.rows), 'check')} pre-registered**", "",
                          *lines])

    def __repr__(self) -> str:
        return (f"{count_text(len(self.rows), 'check')} pre-registered\n"
                + _fixed_width(("check", "kind", "expected", "claim"), self.rows))


def format_value(value: Any, digits: int = 4) -> str:
    """``value`` rounded to ``digits`` significant digits, as plain text (no numpy reprs)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    x = float(value)
    if math.isnan(x):
        return "nan"
    text = f"{x:.{digits}g}"
    return "0" if text == "-0" else text


def resolution(verdict: Verdict | Expectation) -> float:
    """The finest change of the measured value that the verdict's band can tell apart.

    A hundredth of the band the verdict is judged on: the tolerance of a ``close`` or interval
    check, the bound (or its slack, if larger) of ``at_most`` / ``at_least``, the expected
    value times the relative width of a ratio band; 0 where there is no band (``true``, or a
    zero band), and the value is then printed to ``digits`` significant digits.
    """
    e, t = abs(float(verdict.expected)), abs(float(verdict.tol))
    band = {
        "close": t, "ci_inside": t, "ci_overlap": t,
        "at_most": max(e, t), "at_least": max(e, t),
        "ratio": e * abs(t - 1.0), "ratio_ci_inside": e * abs(t - 1.0),
        "ratio_at_most": e * abs(t - 1.0),
        "ratio_at_least": e * abs(1.0 - 1.0 / t) if t else 0.0,
    }.get(verdict.relation, 0.0)
    return band / 100.0


def stable_value(value: Any, resolution: float, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits, or coarser: to the power of ten at or below
    ``resolution`` when that keeps fewer digits (`format_value` when resolution is 0).

    Digits below the resolution are round-off or noise that the check cannot see; they may
    differ between machines, so a compared notebook cell does not print them (3e-16 against a
    1e-12 tolerance prints ``0``; 0.001351 against a bound of 0.005 prints ``0.00135``).
    """
    if (isinstance(value, bool | np.bool_) or not resolution > 0
            or not math.isfinite(float(value))):
        return format_value(value, digits)
    exponent = math.floor(math.log10(resolution))
    rounded = round(float(value), -exponent)
    if rounded == 0:
        return "0"
    kept = math.floor(math.log10(abs(rounded))) - exponent + 1
    return format_value(rounded, kept) if kept < digits else format_value(value, digits)


def measured_text(verdict: Verdict, digits: int = 4, *, stable: bool = False) -> str:
    """The measured value, followed by its CI when there is one.

    ``stable=True`` rounds them to the verdict's `resolution` (what nbval-compared cells
    print); otherwise to ``digits`` significant digits (summary.json, the report index).
    """
    step = resolution(verdict) if stable else 0.0
    text = stable_value(verdict.measured, step, digits)
    if verdict.ci is not None:
        low, high = (stable_value(c, step, digits) for c in verdict.ci)
        text += f" [{low}, {high}]"
    return text


def expected_text(verdict: Verdict | Expectation, digits: int = 4) -> str:
    """The expectation in words, e.g. ``-1 +/- 0.2`` or ``<= 1e-12``."""
    e, t = (format_value(x, digits) for x in (verdict.expected, verdict.tol))
    slack = f" (tol {t})" if verdict.tol else ""
    return {
        "close": f"{e} +/- {t}",
        "at_most": f"<= {e}{slack}",
        "at_least": f">= {e}{slack}",
        "ci_inside": f"CI inside {e} +/- {t}",
        "ci_overlap": f"CI meets {e} +/- {t}",
        "ratio": f"{e} within x{t}",
        "ratio_ci_inside": f"CI within x{t} of {e}",
        "ratio_at_most": f"<= {e} x {t}",
        "ratio_at_least": f">= {e} / {t}",
        "true": "true",
    }[verdict.relation]


def verdict_text(verdict: Verdict) -> str:
    """PASS, FAIL, KNOWN FAIL or UNEXPECTED PASS (see "Known failures" in the module docs)."""
    if verdict.known_failure is None:
        return "PASS" if verdict.ok else "FAIL"
    return "UNEXPECTED PASS" if verdict.ok else "KNOWN FAIL"


def fails_notebook(verdict: Verdict) -> bool:
    """Whether ``verdict`` fails its notebook: a FAIL or an UNEXPECTED PASS (strict xfail)."""
    return verdict_text(verdict) in ("FAIL", "UNEXPECTED PASS")


def notebook_status(verdicts: Iterable[Verdict]) -> str:
    """``failed`` (no checks, or one fails the notebook), else ``known failures`` or ``passed``."""
    verdicts = list(verdicts)
    if not verdicts or any(fails_notebook(v) for v in verdicts):
        return FAILED
    return KNOWN_FAILURES if any(v.known_failure is not None for v in verdicts) else PASSED


@dataclass(frozen=True)
class ClaimVerdict:
    """The verdict of a notebook's headline claim, from its claim checks.

    ``status`` is ``passed``, ``known failure`` or ``failed``; ``reasons`` maps each known
    failure (or failing check) to its one-line reason.
    """

    status: str
    passed: int
    total: int
    reasons: dict[str, str]


def claim_verdict(verdicts: Iterable[Verdict]) -> ClaimVerdict:
    """Judge a headline claim by the notebook's ``claim`` checks (all its checks if it has none).

    Failed if any of them fails the notebook (FAIL or UNEXPECTED PASS), a known failure if any is
    a registered known failure, passed otherwise.
    """
    verdicts = list(verdicts)
    judged = [v for v in verdicts if v.kind == "claim"] or verdicts
    failing = {v.name: verdict_text(v) for v in judged if fails_notebook(v)}
    known = {v.name: str(v.known_failure) for v in judged
             if verdict_text(v) == "KNOWN FAIL"}
    status = "failed" if failing else "known failure" if known else "passed"
    passed = sum(verdict_text(v) == "PASS" for v in judged)
    return ClaimVerdict(status, passed, len(judged), failing or known)


def kind_counts(verdicts: Iterable[Verdict]) -> dict[str, dict[str, int]]:
    """Per kind (claims first): checks, passed, known failures, failed (as in `verdict_text`)."""
    counts = {kind: {"checks": 0, "passed": 0, "known_failures": 0, "failed": 0}
              for kind in (*KINDS, None)}
    for v in verdicts:
        row = counts[v.kind]
        row["checks"] += 1
        text = verdict_text(v)
        row["passed" if text == "PASS" else "known_failures" if text == "KNOWN FAIL"
            else "failed"] += 1
    return {str(kind): row for kind, row in counts.items() if kind is not None or row["checks"]}


def count_text(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, plural unless ``n == 1``: ``1 known failure``, ``2 known failures``.

    ``plural`` replaces the default ``noun + "s"`` (``checks of unknown kind``).
    """
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def format_table(verdicts: Iterable[Verdict], digits: int = 4, *, values: bool = True) -> str:
    """Fixed-width text table of verdicts, the same text on every machine (nbval compares it).

    Measured values are rounded to each verdict's `resolution` (``measured_text(stable=True)``),
    so round-off and noise below what the tolerance can see never reach the text; ``values=False``
    leaves the measured column out altogether.
    """
    header = ["check", "kind", *(["measured"] if values else []), "expected", "verdict", "claim"]
    rows = [[v.name, v.kind or "", *([measured_text(v, digits, stable=True)] if values else []),
             expected_text(v, digits), verdict_text(v), v.claim] for v in verdicts]
    return _fixed_width(header, rows)


def _fixed_width(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart; the last column is left ragged."""
    table = [header, *rows]
    widths = [max(len(row[k]) for row in table) for k in range(len(header) - 1)]
    return "\n".join("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)),
                                row[-1]]).rstrip() for row in table)


def json_value(value: Any) -> Any:
    """``value`` made JSON-ready: numpy to Python, floats to 12 significant digits, NaN as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_value(v) for v in value]
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        x = float(value)
        return float(f"{x:.{JSON_DIGITS}g}") if math.isfinite(x) else str(x)
    if isinstance(value, Path):
        return value.as_posix()
    raise TypeError(f"cannot store a {type(value).__name__} in summary.json: {value!r}")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as sorted, indented JSON (see :func:`json_value`), atomically."""
    write_text_atomic(path, json.dumps(json_value(data), sort_keys=True, indent=2,
                                       allow_nan=False) + "\n")


def collect_provenance(seeds: Iterable[int]) -> dict[str, Any]:
    """Seeds, Python and package versions of the running process (the notebook's kernel)."""
    packages = {}
    for name in PROVENANCE_PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = "not installed"
    from ptdlib._kernels import FASTMATH  # numba is loaded by then: the notebook simulated

    return {"seeds": [int(s) for s in seeds], "python": platform.python_version(),
            "machine": platform.machine(), "packages": packages,
            "kernel_arithmetic": "fastmath (PTD_FASTMATH=1)" if FASTMATH else "exact IEEE"}


def write_summary(path: str | Path, notebook: str, verdicts: Iterable[Verdict],
                  parameters: Mapping[str, Any] | Any, provenance: Mapping[str, Any], *,
                  figures: Iterable[Mapping[str, Any]] = (), claim: str = "",
                  quoted: Mapping[str, Any] | None = None) -> Path:
    """Write ``summary.json``: the verdicts, parameters, provenance and figures of one notebook.

    Keys are sorted and floats kept to 12 significant digits, so equal results give equal files.
    ``parameters`` is a mapping or a dataclass (the notebook's typed config). ``status`` is
    :func:`notebook_status`; ``n_failed`` counts the checks that fail the notebook (FAIL and
    UNEXPECTED PASS), ``n_known_failures`` the KNOWN FAIL ones, ``counts`` the same per kind
    (`kind_counts`); each check carries its ``kind``, its ``known_failure`` reason (or null) and
    its ``verdict_text``. ``claim`` is the notebook's headline claim and ``quoted`` the numbers
    its reading cells quote (``reports.NotebookOutput.reading``).
    """
    verdicts = list(verdicts)
    summary = {
        "schema": SUMMARY_SCHEMA,
        "notebook": notebook,
        "status": notebook_status(verdicts),
        "n_checks": len(verdicts),
        "n_failed": sum(fails_notebook(v) for v in verdicts),
        "n_known_failures": sum(verdict_text(v) == "KNOWN FAIL" for v in verdicts),
        "counts": kind_counts(verdicts),
        "checks": [v.to_dict() for v in verdicts],
        "parameters": parameters,
        "provenance": provenance,
        "figures": list(figures),
        "claim": claim,
        "quoted": dict(quoted or {}),
    }
    target = Path(path)
    write_json_atomic(target, summary)
    return target
