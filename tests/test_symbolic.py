"""ptdlib.symbolic: exact derivations, closed forms, agreement with the numeric library."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdlib import markov, problems, subspace, symbolic, td, theory

R = sp.Rational
ZERO_1 = sp.zeros(1, 1)


def is_zero(M: sp.Matrix | sp.Expr) -> bool:
    """Exact zero test: every entry simplifies to 0."""
    M = sp.Matrix([M]) if not isinstance(M, sp.MatrixBase) else M
    return all(sp.simplify(e) == 0 for e in M)


def check_defining_equations(m: symbolic.SymbolicMRP) -> None:
    n = m.P.rows
    ones = sp.ones(n, 1)
    assert is_zero(m.mu.T * (m.P - sp.eye(n)))
    assert is_zero(sp.Matrix([sum(m.mu) - 1]))
    assert is_zero(sp.Matrix([m.J - (m.mu.T * m.r)[0]]))
    assert is_zero(m.h - (m.r - m.J * ones + m.P * m.h))
    assert is_zero(m.mu.T * m.h)
    D = sp.diag(*m.mu)
    assert is_zero(m.A - m.Phi.T * D * (m.P - sp.eye(n)) * m.Phi)
    assert is_zero(m.b - m.Phi.T * D * (m.r - m.J * ones))
    assert is_zero(m.A * m.theta_star + m.b)


def check_against_library(m: symbolic.SymbolicMRP) -> None:
    x = m.to_numpy()
    P, r, Phi = x["P"], x["r"], x["Phi"]
    A, b = td.td_matrices(P, r, Phi)
    np.testing.assert_allclose(markov.stationary_distribution(P), x["mu"], rtol=0, atol=1e-12)
    assert abs(td.average_reward(P, r) - x["J"]) <= 1e-12
    np.testing.assert_allclose(td.poisson_solution(P, r), x["h"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(A, x["A"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(b, x["b"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(td.td_fixed_point(P, r, Phi), x["theta_star"], rtol=0, atol=1e-12)


# --- one MRP -------------------------------------------------------------------------------

GENERIC_MRP = (
    [[R(1, 5), R(3, 10), R(1, 2)], [R(2, 3), 0, R(1, 3)], [R(1, 4), R(1, 4), R(1, 2)]],
    [R(1, 3), -2, R(5, 7)],
    [[1, 0], [0, 1], [R(-1, 2), R(1, 3)]],
)


@pytest.mark.parametrize("agent", [0, 1])
def test_walkthrough_agents_satisfy_defining_equations(agent: int) -> None:
    check_defining_equations(symbolic.walkthrough_instance().agent(agent))


def test_generic_mrp_satisfies_defining_equations_and_matches_library() -> None:
    m = symbolic.derive_mrp(*GENERIC_MRP)
    check_defining_equations(m)
    check_against_library(m)


@pytest.mark.parametrize("agent", [0, 1])
def test_walkthrough_agents_match_library(agent: int) -> None:
    check_against_library(symbolic.walkthrough_instance().agent(agent))


def test_walkthrough_known_answers() -> None:
    inst = symbolic.walkthrough_instance()
    m0, m1 = inst.agent(0), inst.agent(1)
    assert m0.mu == sp.Matrix([R(1, 3)] * 3)
    assert m1.mu == sp.Matrix([R(4, 11), R(4, 11), R(3, 11)])
    assert m0.r == sp.Matrix([R(9, 10), R(7, 4), R(7, 20)])
    assert sp.Matrix([[R(-7, 24), R(1, 8)], [R(-5, 24), R(-7, 24)]]) == m0.A


def test_planted_instance_is_exactly_realised() -> None:
    inst = symbolic.walkthrough_instance()
    for i in range(inst.n_agents):
        m = inst.agent(i)
        assert m.theta_star == inst.B_star * inst.heads_star[i]
        assert inst.gains[i] == m.J
        # the bias is Phi theta* up to a constant vector
        shift = m.h - m.Phi * m.theta_star
        assert is_zero(shift - shift[0] * sp.ones(3, 1))
    for i in range(inst.n_agents):
        # A_i negative definite: the symmetric part has negative eigenvalues
        assert all(ev < 0 for ev in (inst.agent(i).A + inst.agent(i).A.T).eigenvals())


def test_planted_instance_matches_problem_from_arrays() -> None:
    inst = symbolic.walkthrough_instance()
    a = inst.to_numpy()
    problem = problems.Problem.from_arrays(a["P"], a["rewards"], a["features"], rank=1)
    np.testing.assert_allclose(problem.theta_star, a["heads_star"] @ a["B_star"].T, rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(problem.average_reward, a["average_reward"], rtol=0, atol=1e-12)
    assert subspace.principal_angle_distance(problem.B_star, a["B_star"]) < 1e-12
    for i in range(inst.n_agents):
        x = inst.agent(i).to_numpy()
        np.testing.assert_allclose(problem.A[i], x["A"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(problem.mu[i], x["mu"], rtol=0, atol=1e-12)


def test_floats_become_exact_rationals() -> None:
    m = symbolic.derive_mrp(np.array([[0.5, 0.5], [0.25, 0.75]]), [1.0, 0.0], [[1.0], [0.0]])
    assert m.mu == sp.Matrix([R(1, 3), R(2, 3)])
    assert R(1, 3) == m.J


def test_to_numpy_shapes() -> None:
    x = symbolic.walkthrough_instance().agent(1).to_numpy()
    assert x["P"].shape == (3, 3) and x["Phi"].shape == (3, 2)
    assert x["mu"].shape == x["r"].shape == x["h"].shape == (3,)
    assert x["A"].shape == (2, 2) and x["b"].shape == x["theta_star"].shape == (2,)
    assert isinstance(x["J"], float)
    y = symbolic.walkthrough_instance().to_numpy()
    assert y["P"].shape == (2, 3, 3) and y["rewards"].shape == (2, 3)
    assert y["features"].shape == (3, 2) and y["B_star"].shape == (2, 1)
    assert y["heads_star"].shape == (2, 1) and y["average_reward"].shape == (2,)
    assert all(v.dtype == np.float64 for v in y.values())


@settings(max_examples=30, deadline=None)
@given(weights=st.lists(st.integers(1, 12), min_size=9, max_size=9),
       rewards=st.lists(st.fractions(min_value=-3, max_value=3, max_denominator=9), min_size=3,
                        max_size=3))
def test_random_rational_mrps(weights: list, rewards: list) -> None:
    W = sp.Matrix(3, 3, weights)
    P = sp.Matrix(3, 3, lambda i, j: W[i, j] / sum(W.row(i)))  # positive rows: ergodic
    r = [sp.Rational(x.numerator, x.denominator) for x in rewards]
    m = symbolic.derive_mrp(P, r, GENERIC_MRP[2])
    check_defining_equations(m)
    check_against_library(m)


# --- two-state closed forms ----------------------------------------------------------------

def test_two_state_closed_forms() -> None:
    m = symbolic.two_state_mrp()
    p, q = sp.symbols("p q", positive=True)
    r_1, r_2, phi_1, phi_2 = sp.symbols("r_1 r_2 phi_1 phi_2", real=True)
    assert is_zero(m.mu - sp.Matrix([q, p]) / (p + q))
    assert is_zero(sp.Matrix([m.J - (q * r_1 + p * r_2) / (p + q)]))
    assert is_zero(m.h - (r_1 - r_2) * sp.Matrix([p, -q]) / (p + q) ** 2)
    assert is_zero(m.A + sp.Matrix([p * q * (phi_1 - phi_2) ** 2 / (p + q)]))
    assert is_zero(m.b - sp.Matrix([p * q * (phi_1 - phi_2) * (r_1 - r_2) / (p + q) ** 2]))
    assert is_zero(m.theta_star - sp.Matrix([(r_1 - r_2) / ((p + q) * (phi_1 - phi_2))]))
    check_defining_equations(m)


@pytest.mark.parametrize(("p", "q"), [(R(1, 10), R(3, 10)), (R(9, 10), R(1, 2)), (R(1, 3), 1)])
def test_two_state_matches_theory_and_library(p: sp.Rational, q: sp.Rational) -> None:
    m = symbolic.two_state_mrp()
    values = dict(zip(sp.symbols("p q", positive=True), (p, q), strict=True))
    values |= dict(zip(sp.symbols("r_1 r_2 phi_1 phi_2", real=True), (2, -1, 1, R(-1, 2)),
                       strict=True))
    numeric = symbolic.SymbolicMRP(*(getattr(m, f).subs(values) for f in m.__dataclass_fields__))
    np.testing.assert_allclose(theory.two_state_stationary(float(p), float(q)),
                               numeric.to_numpy()["mu"], rtol=0, atol=1e-12)
    check_against_library(numeric)


# --- bad input ------------------------------------------------------------------------------

PHI = [[1, 0], [0, 1], [R(-1, 2), R(-1, 2)]]
P_OK = [[R(1, 2), R(1, 2), 0], [0, R(1, 2), R(1, 2)], [R(1, 2), 0, R(1, 2)]]


@pytest.mark.parametrize(("P", "r", "Phi", "match"), [
    ([[R(1, 2), R(1, 2)]], [1], [[1]], "square"),
    ([[R(1, 2), R(1, 3), R(1, 6)]] * 2 + [[R(1, 2), R(1, 2), R(1, 10)]], [1, 2, 3], PHI,
     "row-stochastic"),
    ([[R(3, 2), R(-1, 2), 0], [0, 1, 0], [0, 0, 1]], [1, 2, 3], PHI, "non-negative"),
    (P_OK, [1, 2], PHI, "one per state"),
    (P_OK, [1, 2, 3], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "dim < n_states"),
    (P_OK, [1, 2, 3], [[1, 2], [2, 4], [3, 6]], "full column rank"),
    (P_OK, [1, 2, 3], [[1, 0], [0, 1], [R(1, 2), R(1, 2)]], "all-ones"),
    ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [1, 2, 3], PHI, "irreducible"),
])
def test_derive_mrp_rejects_bad_input(P: object, r: object, Phi: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        symbolic.derive_mrp(P, r, Phi)


def test_derive_mrp_rejects_non_numeric() -> None:
    with pytest.raises(ValueError, match="matrix of numbers"):
        symbolic.derive_mrp(object(), [1, 2, 3], PHI)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"B_star": [1, 1]}, "unit vector"),
    ({"heads_star": [1]}, "one entry per agent"),
    ({"Phi": [[1], [0], [0]]}, "dim = 2"),
    ({"P": [P_OK, [[R(1, 2), R(1, 2)], [R(1, 2), R(1, 2)]]]}, r"P\[1\]"),
])
def test_planted_instance_rejects_bad_input(kwargs: dict, match: str) -> None:
    args = {"P": [P_OK, P_OK], "Phi": PHI, "B_star": [R(3, 5), R(4, 5)],
            "heads_star": [1, 2], "gains": [0, 1]} | kwargs
    with pytest.raises(ValueError, match=match):
        symbolic.planted_instance(**args)


@pytest.mark.parametrize("name", ["c_eta", "c_B"])
def test_mean_path_map_rejects_bad_ratios(name: str) -> None:
    # one bad value per ratio; the other bad values of check_in_range: test_validation.py
    with pytest.raises(ValueError, match=rf"^{name} must lie in \(0\.0, inf\]; got 0$"):
        symbolic.mean_path_map(symbolic.walkthrough_instance(), **{name: 0})


# --- the mean-path map of the joint update ----------------------------------------------------

@pytest.fixture(scope="module")
def instance() -> symbolic.PlantedInstance:
    return symbolic.walkthrough_instance()


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "rebase"])
def path_map(request: pytest.FixtureRequest,
             instance: symbolic.PlantedInstance) -> symbolic.MeanPathMap:
    return symbolic.mean_path_map(instance, rebase_heads=request.param)


@pytest.fixture(scope="module")
def spectrum(path_map: symbolic.MeanPathMap) -> symbolic.MeanPathSpectrum:
    return symbolic.mean_path_spectrum(path_map)


def numeric_map(path_map: symbolic.MeanPathMap, alpha: float):
    arrays = path_map.instance.to_numpy()

    def f(x: np.ndarray) -> np.ndarray:
        return symbolic.numeric_mean_path_map(
            x, alpha, arrays["P"], arrays["rewards"], arrays["features"],
            c_eta=float(path_map.c_eta), c_B=float(path_map.c_B),
            rebase_heads=path_map.rebase_heads)
    return f


def float_fixed_point(path_map: symbolic.MeanPathMap) -> np.ndarray:
    return np.array([float(v) for v in path_map.fixed_point])


def test_fixed_point_is_exact(path_map: symbolic.MeanPathMap) -> None:
    # alpha stays a symbol: x* is fixed for every step size
    assert is_zero(path_map.at(path_map.fixed_point) - path_map.fixed_point)


def test_jacobian_is_affine_in_alpha(spectrum: symbolic.MeanPathSpectrum) -> None:
    assert spectrum.alpha not in spectrum.drift.free_symbols
    assert is_zero(spectrum.jacobian - sp.eye(5) - spectrum.alpha * spectrum.drift)


def test_gain_rows_decouple(instance: symbolic.PlantedInstance) -> None:
    c_eta = R(1, 4)
    s = symbolic.mean_path_spectrum(symbolic.mean_path_map(instance, c_eta=c_eta))
    assert s.drift[3:, :] == sp.Matrix([[0, 0, 0, -c_eta, 0], [0, 0, 0, 0, -c_eta]])
    assert list(s.drift_eigenvalues).count(-c_eta) == 2
    # the gain-limited threshold 2 / c_eta = 8 is above the (u, w) block's, which now decides
    assert s.critical_step_size == pytest.approx(s.critical_step_size_uw, abs=1e-12)
    assert s.critical_step_size_uw < 2 / float(c_eta)


def test_rebase_heads_moves_the_radial_step_into_the_heads(
        instance: symbolic.PlantedInstance) -> None:
    plain, rebased = (symbolic.mean_path_spectrum(symbolic.mean_path_map(instance,
                                                                         rebase_heads=flag))
                      for flag in (False, True))
    difference = rebased.jacobian - plain.jacobian
    assert is_zero(difference[0, :]) and is_zero(difference[3:, :])
    # head rows gain w_i* (c_B alpha / N) sum_j w_j* B*^T dg_j/dx, computed here from g_j directly
    pm = symbolic.mean_path_map(instance)
    u, w, eta = pm.state[0], pm.state[1:3], pm.state[3:]
    B = sp.Matrix([sp.cos(u), sp.sin(u)])
    radial = sp.zeros(1, 5)
    for j in range(2):
        m = instance.agent(j)
        g = m.A * B * w[j] + m.b + (m.J - eta[j]) * m.Phi.T * m.mu
        radial += instance.heads_star[j] * instance.B_star.T * g.jacobian(pm.state)
    radial = (pm.alpha * radial / 2).subs(dict(zip(pm.state, pm.fixed_point, strict=True)))
    for i in range(2):
        assert is_zero(difference[1 + i, :] - instance.heads_star[i] * radial)
    assert abs(plain.critical_step_size_uw - rebased.critical_step_size_uw) > 1.0


def _critical_from_eigenvalues(eigenvalues: np.ndarray) -> float:
    """Closed form: |1 + alpha lambda| < 1 iff 0 < alpha < -2 Re(lambda) / |lambda|^2."""
    assert np.all(eigenvalues.real < 0)
    return float(np.min(-2 * eigenvalues.real / np.abs(eigenvalues) ** 2))


def test_critical_steps_match_an_independent_numeric_derivation(
        spectrum: symbolic.MeanPathSpectrum, path_map: symbolic.MeanPathMap) -> None:
    # Independent of the symbolic Jacobian: central differences of the float map (its own code
    # path) at x*, by hand. The map is x + alpha g(x), so with alpha = 1 the drift is J - I.
    f, x_star = numeric_map(path_map, 1.0), float_fixed_point(path_map)
    h = 1e-6
    J = np.column_stack([(f(x_star + h * e) - f(x_star - h * e)) / (2 * h) for e in np.eye(5)])
    drift = J - np.eye(5)
    # The gain rows are -c_eta on the diagonal only, so the (u, w) block (the first
    # 1 + n_agents = 3 coordinates) and the gains' 2 / c_eta = 2 set the thresholds.
    np.testing.assert_allclose(drift[3:], [[0, 0, 0, -1, 0], [0, 0, 0, 0, -1]], rtol=0, atol=1e-8)
    alpha_uw = _critical_from_eigenvalues(np.linalg.eigvals(drift[:3, :3]))
    alpha = _critical_from_eigenvalues(np.linalg.eigvals(drift))
    assert alpha == pytest.approx(min(alpha_uw, 2.0), rel=1e-12)
    # Entries of the difference quotient are exact to ~1e-10 (h^2 truncation plus 1e-16 / h
    # round-off); the simple eigenvalues of this well-conditioned 3 x 3 block move by the same
    # order, so 1e-8 relative leaves a factor of ~100.
    assert spectrum.critical_step_size_uw == pytest.approx(alpha_uw, rel=1e-8)
    assert spectrum.critical_step_size == pytest.approx(alpha, rel=1e-8)


def test_critical_step_is_where_the_spectral_radius_reaches_one(
        path_map: symbolic.MeanPathMap) -> None:
    s = symbolic.mean_path_spectrum(symbolic.mean_path_map(
        path_map.instance, c_eta=R(1, 10), rebase_heads=path_map.rebase_heads))
    alpha_crit = s.critical_step_size
    assert s.spectral_radius(alpha_crit) == pytest.approx(1.0, abs=1e-12)
    assert s.spectral_radius(alpha_crit * (1 - 1e-6)) < 1
    assert s.spectral_radius(alpha_crit * (1 + 1e-6)) > 1
    # the characteristic polynomial has a root on the unit circle there (a simple root: np.roots
    # finds it to ~1e-14; only the double gain root 1 - alpha c_eta, well inside, is less exact)
    coefficients = [float(c.subs(s.alpha, alpha_crit))
                    for c in s.characteristic_polynomial.all_coeffs()]
    assert np.max(np.abs(np.roots(coefficients))) == pytest.approx(1.0, abs=1e-10)
    # and the numeric library's formula on the float drift agrees
    drift = np.array(s.drift.evalf(17).tolist(), dtype=np.float64)
    assert theory.critical_step_size(drift) == pytest.approx(alpha_crit, rel=1e-12)


def test_numeric_map_has_the_same_fixed_point(path_map: symbolic.MeanPathMap) -> None:
    x_star = float_fixed_point(path_map)
    np.testing.assert_allclose(numeric_map(path_map, 0.7)(x_star), x_star, rtol=0, atol=1e-14)


def test_numeric_map_equals_symbolic_map(path_map: symbolic.MeanPathMap) -> None:
    exact = sp.lambdify([*path_map.state, path_map.alpha], path_map.image, "numpy")
    gen = np.random.default_rng(20260302)
    for _ in range(5):
        x = float_fixed_point(path_map) + gen.normal(scale=0.5, size=5)
        alpha = float(gen.uniform(0.05, 2.0))
        expected = np.asarray(exact(*x, alpha), dtype=np.float64).ravel()
        np.testing.assert_allclose(numeric_map(path_map, alpha)(x), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.1, 1.5, 4.0])
def test_symbolic_jacobian_matches_finite_differences(path_map: symbolic.MeanPathMap,
                                                      spectrum: symbolic.MeanPathSpectrum,
                                                      alpha: float) -> None:
    exact = np.array(spectrum.jacobian.subs(spectrum.alpha, alpha).evalf(17).tolist(),
                     dtype=np.float64)
    numeric = symbolic.finite_difference_jacobian(numeric_map(path_map, alpha),
                                                  float_fixed_point(path_map))
    # central differences with h = 1e-6: O(h^2) truncation + O(1e-16 / h) round-off << 1e-7
    np.testing.assert_allclose(numeric, exact, rtol=0, atol=1e-7)
    by_value = lambda z: np.sort_complex(np.round(z, 9))  # noqa: E731
    np.testing.assert_allclose(by_value(np.linalg.eigvals(numeric)),
                               by_value(spectrum.eigenvalues_at(alpha)), rtol=0, atol=1e-6)


def test_mean_path_iteration_is_stable_exactly_below_the_critical_step(
        path_map: symbolic.MeanPathMap) -> None:
    s = symbolic.mean_path_spectrum(path_map)
    x_star = float_fixed_point(path_map)
    start = np.full(5, 1e-6)
    growth = {}
    for factor in (0.97, 1.03):
        f = numeric_map(path_map, factor * s.critical_step_size)
        x = x_star + start
        # the critical mode has |1 + alpha lambda| ~ 0.94 or ~ 1.06 (a real crossing at -1) or
        # 1 -/+ O(0.03): 300 steps shrink the perturbation far below 1e-2 or grow it past 1e3;
        # stop once it has grown 1e3-fold (still in the linear regime)
        for _ in range(300):
            x = f(x)
            if np.linalg.norm(x - x_star) > 1e3 * np.linalg.norm(start):
                break
        growth[factor] = np.linalg.norm(x - x_star) / np.linalg.norm(start)
    assert growth[0.97] < 1e-2 and growth[1.03] > 1e2


# --- numeric counterpart: bad input ---------------------------------------------------------

def test_numeric_map_rejects_bad_input(instance: symbolic.PlantedInstance) -> None:
    a = instance.to_numpy()
    args = (a["P"], a["rewards"], a["features"])
    with pytest.raises(ValueError, match="x"):
        symbolic.numeric_mean_path_map(np.zeros(4), 0.1, *args)
    with pytest.raises(ValueError, match="Phi"):
        symbolic.numeric_mean_path_map(np.zeros(5), 0.1, a["P"], a["rewards"], np.eye(3))
    with pytest.raises(ValueError, match="alpha"):
        symbolic.numeric_mean_path_map(np.zeros(5), 0.0, *args)
    with pytest.raises(ValueError, match="c_B"):
        symbolic.numeric_mean_path_map(np.zeros(5), 0.1, *args, c_B=-1.0)
    with pytest.raises(ValueError, match="P"):
        symbolic.numeric_mean_path_map(np.zeros(5), 0.1, 2 * a["P"], *args[1:])


def test_finite_difference_jacobian_known_answer_and_bad_input() -> None:
    f = lambda x: np.array([x[0] ** 2 * x[1], np.sin(x[1])])  # noqa: E731
    np.testing.assert_allclose(symbolic.finite_difference_jacobian(f, [1.0, 2.0]),
                               [[4.0, 1.0], [0.0, np.cos(2.0)]], rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="step"):
        symbolic.finite_difference_jacobian(f, [1.0, 2.0], step=0.0)
    with pytest.raises(ValueError, match="x"):
        symbolic.finite_difference_jacobian(f, [[1.0, 2.0]])
