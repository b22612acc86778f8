"""Tests of ptdlib.checks: pass rules, pre-registration, rendering and summary.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdlib import checks
from ptdlib.checks import Expectation, Verdict
from ptdlib.stats import SlopeFit

# (verdict, ok) known answers; boundaries are inclusive.
CASES = [
    (checks.check_close("c", "", 1.25, 1.0, atol=0.25), True),  # binary-exact boundary
    (checks.check_close("c", "", 1.25, 1.0, atol=0.125), False),
    (checks.check_close("c", "", 105.0, 100.0, rtol=0.05), True),
    (checks.check_close("c", "", 106.0, 100.0, rtol=0.05), False),
    (checks.check_close("c", "", 3, 3), True),
    (checks.check_at_most("c", "", 0.5, 0.5), True),
    (checks.check_at_most("c", "", 0.6, 0.5), False),
    (checks.check_at_most("c", "", 0.6, 0.5, tol=0.1), True),
    (checks.check_at_least("c", "", 0.4, 0.5), False),
    (checks.check_at_least("c", "", 0.45, 0.5, tol=0.05), True),
    (checks.check_in_interval("c", "", -0.85, -1.0, 0.2), True),
    (checks.check_in_interval("c", "", -0.7, -1.0, 0.2), False),
    (checks.check_in_interval("c", "", -1.0, -1.0, 0.2, ci=(-1.1, -0.9), use_ci="inside"), True),
    (checks.check_in_interval("c", "", -1.0, -1.0, 0.2, ci=(-1.3, -0.9), use_ci="inside"), False),
    (checks.check_in_interval("c", "", -0.6, -1.0, 0.2, ci=(-0.9, -0.3), use_ci="overlap"), True),
    (checks.check_in_interval("c", "", -0.5, -1.0, 0.2, ci=(-0.7, -0.3), use_ci="overlap"),
     False),
    (checks.check_ratio("c", "", 3.0, 2.0, expected=1.0, factor=2.0), True),
    (checks.check_ratio("c", "", 0.4, 1.0, expected=1.0, factor=2.0), False),
    (checks.check_ratio("c", "", 0.1, 1.0, expected=1.0, factor=2.0, side="upper"), True),
    (checks.check_ratio("c", "", 2.5, 1.0, expected=1.0, factor=2.0, side="upper"), False),
    (checks.check_ratio("c", "", 9.0, 1.0, expected=1.0, factor=2.0, side="lower"), True),
    (checks.check_ratio("c", "", 1.0, 0.0), False),
    (Expectation.ratio("c", "", 1.0, 1.5, use_ci="inside").judge(1.0, ci=(0.7, 1.4)), True),
    (Expectation.ratio("c", "", 1.0, 1.5, use_ci="inside").judge(1.0, ci=(0.6, 1.4)), False),
    (Expectation.ratio("c", "", 1.0, 1.5, use_ci="inside").judge(1.2, ci=(0.9, 1.6)), False),
    (Expectation.ratio("c", "", 1.0, 1.5, use_ci="inside").judge(float("nan"), ci=(0.9, 1.1)),
     False),
    (checks.check_in_interval("c", "", float("nan"), -1.0, 0.2, ci=(-1.1, -0.9),
                              use_ci="inside"), False),
    (checks.check_true("c", "", True), True),
    (checks.check_true("c", "", np.bool_(False)), False),
]


@pytest.mark.parametrize(("verdict", "ok"), CASES)
def test_pass_rules_known_answers(verdict: Verdict, ok: bool) -> None:
    assert verdict.ok is ok


@pytest.mark.parametrize("relation", ["close", "at_most", "at_least"])
def test_nan_measurement_fails(relation: str) -> None:
    expectation = {"close": Expectation.close("n", "", 0.0, atol=1.0),
                   "at_most": Expectation.at_most("n", "", 1.0),
                   "at_least": Expectation.at_least("n", "", 0.0)}[relation]
    assert not expectation.judge(float("nan")).ok


def test_verdict_stores_the_registered_tolerance_and_plain_floats() -> None:
    verdict = checks.check_close("rate", "decay matches rho", np.float64(0.52), 0.5, rtol=0.05)
    assert verdict.tol == pytest.approx(0.025)
    assert type(verdict.measured) is float
    assert (verdict.expected, verdict.relation, verdict.detail) == (0.5, "close",
                                                                   "atol=0, rtol=0.05")


def test_check_slope_reports_the_ci() -> None:
    fit = SlopeFit(slope=-0.95, intercept=0.0, ci_low=-1.1, ci_high=-0.8, level=0.95, n_boot=100)
    verdict = checks.check_slope("slope", "E dist^2 ~ 1/t", fit, -1.0, 0.2, use_ci="inside")
    assert verdict.ok and verdict.ci == (-1.1, -0.8) and verdict.relation == "ci_inside"
    assert checks.measured_text(verdict) == "-0.95 [-1.1, -0.8]"


@pytest.mark.parametrize(("make", "match"), [
    (lambda: checks.check_close("", "", 1.0, 1.0), "name"),
    (lambda: checks.check_close("c", "", 1.0, 1.0, atol=-1.0), "atol"),
    (lambda: checks.check_close("c", "", 1.0, 1.0, atol=float("nan")), "atol"),
    (lambda: checks.check_close("c", "", 1.0, float("inf")), "expected"),
    (lambda: checks.check_close("c", "", [1.0, 2.0], 1.0), "real scalar"),
    (lambda: checks.check_close("c", "", True, 1.0), "real scalar"),
    (lambda: checks.check_close("c", "", "1.0", 1.0), "real scalar"),
    (lambda: checks.check_close("c", "", 1j, 1.0), "real"),
    (lambda: checks.check_in_interval("c", "", 1.0, 1.0, 0.1, use_ci="inside"), "needs a ci"),
    (lambda: checks.check_in_interval("c", "", 1.0, 1.0, 0.1, ci=(2.0, 1.0)), "low <= high"),
    (lambda: checks.check_in_interval("c", "", 1.0, 1.0, 0.1, use_ci="both"), "use_ci"),
    (lambda: checks.check_ratio("c", "", 1.0, 1.0, factor=0.5), "factor >= 1"),
    (lambda: checks.check_ratio("c", "", 1.0, 1.0, expected=0.0), "expected > 0"),
    (lambda: checks.check_ratio("c", "", 1.0, 1.0, side="up"), "side"),
    (lambda: Expectation.ratio("c", "", 1.0, 2.0, side="upper", use_ci="inside"), "use_ci"),
    (lambda: Expectation.ratio("c", "", 1.0, 2.0, use_ci="yes"), "use_ci"),
    (lambda: Expectation.ratio("c", "", 1.0, 2.0, use_ci="inside").judge(1.0), "needs a ci"),
    (lambda: checks.check_true("c", "", 1), "bool"),
    (lambda: Expectation("c", "", "equal", 1.0, 0.0), "relation"),
])
def test_bad_input_is_rejected(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_pre_registered_expectations_are_measured_later() -> None:
    table = checks.CheckTable()
    table.expect(Expectation.at_most("err", "round-off only", 1e-12, kind="consistency"))
    table.expect(Expectation.true("ergodic", "P is ergodic", kind="precondition"))
    assert not table.ok  # nothing measured yet
    table.measure("err", 3e-16)
    assert [v.ok for v in table] == [True, False]  # registration order; ergodic not measured
    assert table.verdicts[1].detail == "never measured" and math.isnan(table.verdicts[1].measured)
    assert [v.kind for v in table] == ["consistency", "precondition"]  # unmeasured keeps its kind
    table.measure("ergodic", True)
    assert table.ok and len(table) == 2
    table.assert_all()


def test_check_table_rejects_misuse() -> None:
    table = checks.CheckTable()
    table.add(checks.check_true("a", "", True, kind="consistency"))
    with pytest.raises(ValueError, match="unique"):
        table.add(checks.check_true("a", "", True, kind="consistency"))
    with pytest.raises(ValueError, match="never registered"):
        table.measure("b", 1.0)
    with pytest.raises(ValueError, match="already measured"):
        table.measure("a", True)
    with pytest.raises(ValueError, match="Verdict"):
        table.add("a")  # type: ignore[arg-type]


def test_assert_all_lists_every_failed_check() -> None:
    table = checks.CheckTable()
    table.add(checks.check_close("good", "fine", 1.0, 1.0, atol=0.1, kind="consistency"))
    table.add(checks.check_close("slope", "E dist^2 ~ 1/t", -0.5, -1.0, atol=0.2, kind="claim"))
    table.expect(Expectation.at_most("floor", "floor ~ alpha", 0.1, kind="claim"))
    with pytest.raises(AssertionError) as info:
        table.assert_all()
    message = str(info.value)
    assert message.splitlines()[0] == "2 of 3 checks failed:"
    assert "slope: measured -0.5, expected -1 +/- 0.2" in message
    assert "floor: measured nan, expected <= 0.1 (never measured)" in message
    assert "good" not in message


def test_assert_all_on_an_empty_table_fails() -> None:
    with pytest.raises(AssertionError, match="no checks"):
        checks.CheckTable().assert_all()


def test_format_table_known_answer() -> None:
    verdicts = [checks.check_at_most("tv_exact", "two-state TV", np.float64(2.220446e-16), 1e-12,
                                     kind="consistency"),
                checks.check_close("rho", "late decay rate", np.float64(0.81234567), 0.8,
                                   rtol=0.05, kind="claim")]
    # Rounded to a hundredth of each band: round-off under a 1e-12 bound prints as 0. The kind
    # column follows the check's name and is as wide as its longest entry ("consistency").
    assert checks.format_table(verdicts) == (
        "check     kind         measured  expected      verdict  claim\n"
        "tv_exact  consistency  0         <= 1e-12      PASS     two-state TV\n"
        "rho       claim        0.8123    0.8 +/- 0.04  PASS     late decay rate")
    assert checks.format_table(verdicts, values=False).splitlines() == [
        "check     kind         expected      verdict  claim",
        "tv_exact  consistency  <= 1e-12      PASS     two-state TV",
        "rho       claim        0.8 +/- 0.04  PASS     late decay rate"]


def test_format_table_leaves_the_kind_of_a_verdict_outside_a_table_blank() -> None:
    verdicts = [checks.check_true("a", "one", True), checks.check_true("bb", "two", False,
                                                                       kind="precondition")]
    assert checks.format_table(verdicts).splitlines() == [
        "check  kind          measured  expected  verdict  claim",
        "a                    true      true      PASS     one",
        "bb     precondition  false     true      FAIL     two"]


@pytest.mark.parametrize(("verdict", "step", "text"), [
    (checks.check_close("a", "", 1.388e-17, 0.0, atol=1e-12), 1e-14, "0"),
    (checks.check_at_most("b", "", 0.001351, 0.005), 5e-5, "0.00135"),
    (checks.check_at_least("c", "", 12345.67, 100.0, tol=1000.0), 10.0, "1.235e+04"),
    (checks.check_in_interval("d", "", -0.98912, -1.0, 0.2, ci=(-1.0712, -0.90349)), 2e-3,
     "-0.989 [-1.071, -0.903]"),
    (checks.check_ratio("e", "", 1.1544, 1.0, factor=2.0), 1e-2, "1.15"),
    (checks.check_true("f", "", True), 0.0, "true"),
    (checks.check_close("g", "", float("nan"), 1.0, atol=0.1), 1e-3, "nan"),
])
def test_stable_measured_text_rounds_to_a_hundredth_of_the_band(
        verdict: checks.Verdict, step: float, text: str) -> None:
    assert checks.resolution(verdict) == pytest.approx(step, rel=1e-12)
    assert checks.measured_text(verdict, stable=True) == text


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6), st.floats(min_value=1e-15, max_value=1e3))
def test_stable_value_rounds_to_the_coarser_of_resolution_and_digits(value: float,
                                                                     step: float) -> None:
    """Off by at most half the power of ten below step, or half a unit in the 4th digit."""
    quantum = 10.0 ** np.floor(np.log10(step))
    printed = float(checks.stable_value(value, step))
    fourth_digit = 10.0 ** (np.floor(np.log10(abs(value))) - 3) if value else 0.0
    assert abs(printed - value) <= 0.5 * max(quantum, fourth_digit) * (1 + 1e-9)


def test_stable_value_never_prints_more_than_the_digits() -> None:
    assert checks.stable_value(0.0123456789, 1e-12) == "0.01235"


@pytest.mark.parametrize(("value", "text"), [
    (0.123456, "0.1235"), (-0.0, "0"), (1e-16, "1e-16"), (float("nan"), "nan"),
    (float("inf"), "inf"), (np.int64(3), "3"), (True, "true"), (np.float32(0.5), "0.5"),
    (123456.0, "1.235e+05")])
def test_format_value(value: object, text: str) -> None:
    assert checks.format_value(value) == text


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, width=64),
       st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
       st.floats(min_value=0.0, max_value=1e3))
def test_close_is_the_absolute_error_rule(measured: float, expected: float, atol: float) -> None:
    verdict = checks.check_close("c", "", np.float64(measured), expected, atol=atol)
    assert verdict.ok == (abs(measured - expected) <= atol)
    assert "np." not in checks.format_table([verdict])


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_json_floats_keep_twelve_digits(x: float) -> None:
    stored = checks.json_value(np.float64(x))
    assert type(stored) is float
    assert stored == pytest.approx(x, rel=1e-11, abs=0.0)


def test_json_value_conversions() -> None:
    data = {"a": np.arange(2), "b": (np.float64(0.1) + 0.2, float("nan")), "c": np.bool_(True),
            "d": Path("x/y.png"), 3: None}
    assert checks.json_value(data) == {"a": [0, 1], "b": [0.3, "nan"], "c": True,
                                       "d": "x/y.png", "3": None}
    with pytest.raises(TypeError, match="object"):
        checks.json_value({"x": object()})


def test_write_summary_is_stable_and_round_trips(tmp_path: Path) -> None:
    verdicts = [checks.check_close("a", "claim a", 0.1 + 0.2, 0.3, atol=1e-9),
                checks.check_at_most("b", "claim b", float("nan"), 1.0)]
    provenance = {"seeds": [0], "packages": {"numpy": "2"}}
    first = checks.write_summary(tmp_path / "s1.json", "01_x", verdicts, {"seed": 0}, provenance)
    second = checks.write_summary(tmp_path / "s2.json", "01_x", verdicts, {"seed": 0}, provenance)
    assert first.read_bytes() == second.read_bytes()
    summary = json.loads(first.read_text())
    assert list(summary) == sorted(summary)
    assert (summary["status"], summary["n_checks"], summary["n_failed"],
            summary["n_known_failures"]) == ("failed", 2, 1, 0)
    assert summary["checks"][0]["measured"] == 0.3
    assert summary["checks"][1]["measured_text"] == "nan"
    restored = [Verdict.from_dict(c) for c in summary["checks"]]
    assert restored[0] == Verdict("a", "claim a", 0.3, 0.3, 1e-9, True)  # 12 digits kept
    assert math.isnan(restored[1].measured) and not restored[1].ok
    assert sorted(tmp_path.iterdir()) == [first, second]  # no temporary files left behind


def test_to_frame_has_one_row_per_check() -> None:
    table = checks.CheckTable()
    table.add(checks.check_close("a", "claim", 1.0, 1.0, kind="consistency"))
    table.add(checks.check_true("b", "claim", False, kind="claim"))
    frame = table.to_frame()
    assert list(frame["name"]) == ["a", "b"]
    assert list(frame["ok"]) == [True, False]
    assert list(frame["kind"]) == ["consistency", "claim"]
    assert {"measured", "expected", "tol", "relation", "expected_text"} <= set(frame.columns)


def test_collect_provenance_lists_versions() -> None:
    provenance = checks.collect_provenance([np.int64(3), 4])
    assert provenance["seeds"] == [3, 4]
    assert provenance["packages"]["numpy"] == np.__version__
    assert set(checks.PROVENANCE_PACKAGES) == set(provenance["packages"])


def _table_with_one_failure() -> checks.CheckTable:
    table = checks.CheckTable()
    table.add(checks.check_close("good", "fine", 1.0, 1.0, atol=0.1, kind="consistency"))
    table.add(checks.check_close("slope", "excess ~ tau", 1.9, 1.0, atol=0.5, kind="claim"))
    return table


def test_expected_failure_stays_failed_but_does_not_raise() -> None:
    table = _table_with_one_failure()
    table.assert_all(expected_failures={"slope": "squared gain bias on lazy chains"})
    assert [v.name for v in table.failed()] == ["slope"]
    assert "FAIL" in table.format_table()


def test_expected_failure_that_passes_raises_like_strict_xfail() -> None:
    table = _table_with_one_failure()
    with pytest.raises(AssertionError, match=r"good: expected to fail .* but now passes"):
        table.assert_all(expected_failures={"good": "reason", "slope": "reason"})


def test_expected_failure_must_name_a_recorded_check() -> None:
    table = _table_with_one_failure()
    with pytest.raises(AssertionError, match="typo: listed as an expected failure but not"):
        table.assert_all(expected_failures={"slope": "reason", "typo": "reason"})


def test_expected_failures_do_not_excuse_other_failures() -> None:
    table = _table_with_one_failure()
    table.add(checks.check_at_most("floor", "floor ~ alpha", 0.5, 0.1, kind="claim"))
    with pytest.raises(AssertionError, match=r"floor: measured 0\.5") as info:
        table.assert_all(expected_failures={"slope": "reason"})
    assert "slope" not in str(info.value)


def _table_with_a_known_failure() -> checks.CheckTable:
    table = _table_with_one_failure()
    table.expect_failure("slope", "squared gain bias on lazy chains")
    return table


def test_a_registered_known_failure_is_marked_everywhere_and_does_not_raise() -> None:
    table = _table_with_a_known_failure()
    table.assert_all()
    slope = table.verdicts[1]
    assert (slope.ok, slope.known_failure) == (False, "squared gain bias on lazy chains")
    assert table.verdicts[0].known_failure is None
    assert [checks.verdict_text(v) for v in table] == ["PASS", "KNOWN FAIL"]
    assert table.format_table(values=False).splitlines()[2] == \
        "slope  claim        1 +/- 0.5  KNOWN FAIL  excess ~ tau"
    assert checks.notebook_status(table) == "known failures"


def test_a_registered_known_failure_that_passes_fails_the_notebook() -> None:
    table = _table_with_one_failure()
    table.expect_failure("good", "thought to be off")
    table.expect_failure("slope", "squared gain bias on lazy chains")
    assert [checks.verdict_text(v) for v in table] == ["UNEXPECTED PASS", "KNOWN FAIL"]
    assert checks.notebook_status(table) == "failed"
    with pytest.raises(AssertionError, match=r"good: expected to fail \(thought to be off\) but "
                       "now passes") as info:
        table.assert_all()
    assert "slope" not in str(info.value)


def test_a_known_failure_does_not_excuse_other_failures() -> None:
    table = _table_with_a_known_failure()
    table.expect(Expectation.at_most("floor", "floor ~ alpha", 0.1, kind="claim"))
    assert checks.notebook_status(table) == "failed"
    with pytest.raises(AssertionError, match=r"floor: measured nan") as info:
        table.assert_all()
    assert "slope" not in str(info.value)


@pytest.mark.parametrize(("name", "reason", "match"), [
    ("typo", "reason", "name must be a recorded check; 'typo'"),
    ("slope", "", "reason must be a non-empty single line"),
    ("slope", "two\nlines", "reason must be a non-empty single line"),
    ("slope", None, "reason must be"),
])
def test_expect_failure_rejects_bad_input(name: str, reason: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _table_with_one_failure().expect_failure(name, reason)


def test_expect_failure_once_per_check() -> None:
    table = _table_with_a_known_failure()
    with pytest.raises(ValueError, match="already registered as a known failure"):
        table.expect_failure("slope", "again")


@pytest.mark.parametrize(("ok", "known", "text", "fails"), [
    (True, None, "PASS", False), (False, None, "FAIL", True),
    (False, "why", "KNOWN FAIL", False), (True, "why", "UNEXPECTED PASS", True)])
def test_verdict_text_and_fails_notebook(ok: bool, known: str | None, text: str,
                                         fails: bool) -> None:
    verdict = Verdict("c", "", 1.0, 1.0, 0.0, ok, known_failure=known)
    assert (checks.verdict_text(verdict), checks.fails_notebook(verdict)) == (text, fails)


def test_notebook_status() -> None:
    passing = checks.check_true("a", "", True)
    assert checks.notebook_status([]) == "failed"
    assert checks.notebook_status([passing]) == "passed"
    assert checks.notebook_status([passing, checks.check_true("b", "", False)]) == "failed"


def test_write_summary_counts_known_failures_apart(tmp_path: Path) -> None:
    table = _table_with_a_known_failure()
    path = checks.write_summary(tmp_path / "s.json", "08_x", table, {"seed": 0}, {"seeds": [0]})
    summary = json.loads(path.read_text())
    assert (summary["schema"], summary["status"], summary["n_checks"], summary["n_failed"],
            summary["n_known_failures"]) == (3, "known failures", 2, 0, 1)
    assert [(c["verdict_text"], c["known_failure"]) for c in summary["checks"]] == [
        ("PASS", None), ("KNOWN FAIL", "squared gain bias on lazy chains")]
    assert summary["counts"]["claim"] == {"checks": 1, "passed": 0, "known_failures": 1,
                                          "failed": 0}
    assert [Verdict.from_dict(c) for c in summary["checks"]] == list(table.verdicts)


def test_schema_1_checks_still_read() -> None:
    record = {"name": "a", "claim": "c", "measured": 1.0, "expected": 2.0, "tol": 0.5,
              "ok": False, "relation": "close", "detail": "", "ci": None,
              "measured_text": "1", "expected_text": "2 +/- 0.5"}
    verdict = Verdict.from_dict(record)
    assert verdict.known_failure is None and checks.verdict_text(verdict) == "FAIL"
    assert verdict.kind is None


# Kinds of check: every check in a table says whether it is a claim, a consistency check or a
# precondition.

KIND_MESSAGE = "kind must be one of 'claim', 'consistency', 'precondition'"


def _verdict(name: str, kind: str | None, ok: bool = True, known: str | None = None) -> Verdict:
    """A verdict built directly (a Verdict does not check its kind; a table does)."""
    return Verdict(name, "", 1.0, 1.0, 0.0, ok, known_failure=known,
                   kind=kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(("register", "got"), [
    (lambda table: table.expect(Expectation.close("rate", "", 1.0, atol=0.1)), "None"),
    (lambda table: table.add(checks.check_true("rate", "", True)), "None"),
    (lambda table: table.add(_verdict("rate", "theorem")), "'theorem'"),
    (lambda table: table.add(_verdict("rate", "Claim")), "'Claim'"),
])
def test_check_table_refuses_a_check_without_a_known_kind(register, got: str) -> None:
    table = checks.CheckTable()
    with pytest.raises(ValueError) as info:
        register(table)
    assert str(info.value) == f"check 'rate': {KIND_MESSAGE}; got {got}"
    assert len(table) == 0  # nothing half-registered: the name is still free
    table.add(_verdict("rate", "claim"))
    assert [v.kind for v in table] == ["claim"]


def test_every_kind_is_accepted_by_expect_and_add() -> None:
    table = checks.CheckTable()
    for kind in checks.KINDS:
        table.expect(Expectation.true(f"e_{kind}", "", kind=kind))
        table.add(checks.check_true(f"a_{kind}", "", True, kind=kind))
    assert checks.KINDS == ("claim", "consistency", "precondition")
    assert [v.kind for v in table] == [k for k in checks.KINDS for _ in range(2)]


@pytest.mark.parametrize("make", [
    lambda kind: Expectation.close("c", "", 1.0, atol=0.1, kind=kind),
    lambda kind: Expectation.at_most("c", "", 1.0, kind=kind),
    lambda kind: Expectation.at_least("c", "", 1.0, kind=kind),
    lambda kind: Expectation.interval("c", "", 1.0, 0.1, use_ci="inside", kind=kind),
    lambda kind: Expectation.ratio("c", "", 1.0, 2.0, side="upper", kind=kind),
    lambda kind: Expectation.true("c", "", kind=kind),
    lambda kind: Expectation("c", "", "close", 1.0, 0.1, "", kind),
    lambda kind: checks.check_close("c", "", 1.0, 1.0, kind=kind),
])
@pytest.mark.parametrize("kind", ["theorem", "", "claims", 1])
def test_an_expectation_with_an_unknown_kind_is_refused_when_built(make, kind: object) -> None:
    with pytest.raises(ValueError) as info:
        make(kind)
    assert str(info.value) == f"check 'c': {KIND_MESSAGE}; got {kind!r}"


def test_an_expectation_may_leave_its_kind_open_until_a_table_needs_it() -> None:
    expectation = Expectation.close("c", "", 1.0)
    assert expectation.kind is None and expectation.judge(1.0).kind is None


@pytest.mark.parametrize("make", [
    lambda kind: checks.check_close("c", "", 1.0, 1.0, kind=kind),
    lambda kind: checks.check_at_most("c", "", 1.0, 1.0, kind=kind),
    lambda kind: checks.check_at_least("c", "", 1.0, 1.0, kind=kind),
    lambda kind: checks.check_in_interval("c", "", 1.0, 1.0, 0.1, ci=(0.9, 1.1), use_ci="inside",
                                          kind=kind),
    lambda kind: checks.check_slope("c", "", SlopeFit(-1.0, 0.0, -1.1, -0.9, 0.95, 10), -1.0,
                                    0.2, use_ci="overlap", kind=kind),
    lambda kind: checks.check_ratio("c", "", 2.0, 1.0, kind=kind),
    lambda kind: checks.check_true("c", "", True, kind=kind),
    lambda kind: Expectation.interval("c", "", 1.0, 0.1, kind=kind).judge(1.05),
    lambda kind: Expectation.ratio("c", "", 1.0, 2.0, side="lower", kind=kind).judge(1.5),
])
@pytest.mark.parametrize("kind", ["claim", "consistency", "precondition"])
def test_every_constructor_carries_the_kind_to_the_verdict(make, kind: str) -> None:
    verdict = make(kind)
    assert verdict.ok and verdict.kind == kind
    assert verdict.to_dict()["kind"] == kind


def test_kind_counts_known_answer() -> None:
    verdicts = [_verdict("i", "consistency"),
                _verdict("s", "precondition", ok=False),
                _verdict("a", "claim"),
                _verdict("b", "claim", ok=False),
                _verdict("c", "claim", ok=False, known="biased"),  # KNOWN FAIL
                _verdict("d", "claim", ok=True, known="stale"),  # UNEXPECTED PASS: failed
                _verdict("j", "consistency"),
                _verdict("e", "claim")]
    counts = checks.kind_counts(verdicts)
    assert counts == {
        "claim": {"checks": 5, "passed": 2, "known_failures": 1, "failed": 2},
        "consistency": {"checks": 2, "passed": 2, "known_failures": 0, "failed": 0},
        "precondition": {"checks": 1, "passed": 0, "known_failures": 0, "failed": 1},
    }
    assert list(counts) == ["claim", "consistency", "precondition"]  # claims first
    assert sum(row["failed"] for row in counts.values()) == sum(map(checks.fails_notebook,
                                                                    verdicts))


def test_kind_counts_keeps_every_kind_and_lists_unknown_kinds_last() -> None:
    zero = {"checks": 0, "passed": 0, "known_failures": 0, "failed": 0}
    assert checks.kind_counts([]) == dict.fromkeys(checks.KINDS, zero)
    counts = checks.kind_counts([_verdict("old", None, ok=False), _verdict("p", "precondition")])
    assert list(counts) == ["claim", "consistency", "precondition", "None"]
    assert (counts["claim"], counts["consistency"]) == (zero, zero)
    assert counts["precondition"] == {"checks": 1, "passed": 1, "known_failures": 0, "failed": 0}
    assert counts["None"] == {"checks": 1, "passed": 0, "known_failures": 0, "failed": 1}


def test_write_summary_writes_the_kind_of_every_check_and_the_counts(tmp_path: Path) -> None:
    table = checks.CheckTable()
    table.add(checks.check_true("well_posed", "A is Hurwitz", True, kind="precondition"))
    table.expect(Expectation.close("identity", "P 1 = 1", 1.0, atol=1e-12, kind="consistency"))
    table.add(checks.check_close("rate", "rate ~ 1/t", -0.5, -1.0, atol=0.2, kind="claim"))
    table.add(checks.check_close("floor", "floor ~ alpha", 0.1, 0.1, atol=0.01, kind="claim"))
    table.measure("identity", 1.0)
    table.expect_failure("rate", "burn-in too short")
    path = checks.write_summary(tmp_path / "s.json", "01_x", table, {"seed": 0}, {"seeds": [0]})
    summary = json.loads(path.read_text())
    assert summary["schema"] == checks.SUMMARY_SCHEMA == 3
    assert [(c["name"], c["kind"]) for c in summary["checks"]] == [
        ("well_posed", "precondition"), ("identity", "consistency"), ("rate", "claim"),
        ("floor", "claim")]
    assert summary["counts"] == {
        "claim": {"checks": 2, "passed": 1, "known_failures": 1, "failed": 0},
        "consistency": {"checks": 1, "passed": 1, "known_failures": 0, "failed": 0},
        "precondition": {"checks": 1, "passed": 1, "known_failures": 0, "failed": 0},
    }
    assert (summary["status"], summary["n_checks"], summary["n_failed"],
            summary["n_known_failures"]) == ("known failures", 4, 0, 1)
    restored = [Verdict.from_dict(c) for c in summary["checks"]]
    assert restored == list(table.verdicts)
    assert [v.kind for v in restored] == ["precondition", "consistency", "claim", "claim"]


def test_schema_2_checks_still_read_with_no_kind() -> None:
    record = {"name": "a", "claim": "c", "measured": 1.0, "expected": 1.0, "tol": 0.5,
              "ok": True, "relation": "close", "detail": "", "ci": None,
              "known_failure": "was off", "measured_text": "1", "expected_text": "1 +/- 0.5",
              "verdict_text": "UNEXPECTED PASS"}
    verdict = Verdict.from_dict(record)
    assert verdict.kind is None and checks.verdict_text(verdict) == "UNEXPECTED PASS"
    assert checks.kind_counts([verdict])["None"] == {"checks": 1, "passed": 0,
                                                     "known_failures": 0, "failed": 1}


def test_preregistration_lists_the_pending_expectations_as_markdown_and_text() -> None:
    table = checks.CheckTable()
    table.expect(Expectation.close("slope", r"slope of $\|x\|$ in $N$", -1.0, atol=0.2,
                                   kind="claim"))
    table.expect(Expectation.at_most("gap", "a | b", 1e-12, kind="consistency"))
    table.expect(Expectation.true("done", "measured already", kind="precondition"))
    table.measure("done", True)
    shown = table.preregistration()
    markdown = shown._repr_markdown_().splitlines()
    assert markdown[0] == "**2 checks pre-registered**"
    assert markdown[4] == r"| `slope` | claim | -1 +/- 0.2 | slope of $\Vert x\Vert $ in $N$ |"
    assert markdown[5] == r"| `gap` | consistency | <= 1e-12 | a \| b |"  # the prose pipe
    assert len(markdown) == 6  # the measured check is no longer pending
    text = repr(shown).splitlines()
    assert text[0] == "2 checks pre-registered"
    assert text[1].split() == ["check", "kind", "expected", "claim"]
    assert text[2].startswith("slope  claim        -1 +/- 0.2  slope of")
