"""Tests for ptdlib.stability: the mean-path map against the engine and the exact symbolic
Jacobian, the quotient tangent space, the affine drift, the thresholds and the bisection."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdlib import problems, schedules, simulate, stability, subspace, symbolic, theory
from ptdlib import stats as ptd_stats


@pytest.fixture(scope="module")
def planted() -> problems.Problem:
    return problems.shared_subspace_problem(5, 10, 5, 2, heterogeneity=0.5, rng=3)


@pytest.fixture(scope="module")
def walkthrough() -> tuple[symbolic.PlantedInstance, problems.Problem]:
    """The symbolic d = 2, r = 1 instance as a Problem with the same B* and heads (not -B*)."""
    instance = symbolic.walkthrough_instance()
    arrays = instance.to_numpy()
    problem = problems.Problem.from_arrays(arrays["P"], arrays["rewards"], arrays["features"],
                                           rank=1)
    return instance, dataclasses.replace(problem, B_star=arrays["B_star"],
                                         heads_star=arrays["heads_star"])


# ------------------------------------------------------------------ the map

def test_mean_path_step_is_the_engines_expected_mode(planted) -> None:
    B0 = subspace.haar_orthonormal(planted.dim, 2, 7)
    for rebase in (False, True):
        trace = simulate.run(planted, steps=25, step_size=0.4, seeds=[0], sampling="expected",
                             init_subspace=B0, record_every=25, rebase_heads=rebase, c_eta=0.5,
                             c_B=2.0)
        x = stability.MeanPathState(B0, np.zeros((planted.n_agents, 2)),
                                    np.zeros(planted.n_agents))
        for _ in range(25):
            x = stability.mean_path_step(planted, x, 0.4, c_eta=0.5, c_B=2.0,
                                         rebase_heads=rebase)
        np.testing.assert_allclose(x.B, trace.B[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(x.W, trace.heads[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(x.eta, trace.eta[0], rtol=0, atol=1e-12)


def test_fixed_point_and_its_orbit_are_fixed(planted) -> None:
    x = stability.fixed_point(planted)
    Q = subspace.haar_orthonormal(2, 2, 1)  # any orthogonal Q: (B* Q, W* Q, J) is fixed too
    for point in (x, stability.MeanPathState(x.B @ Q, x.W @ Q, x.eta)):
        for rebase in (False, True):
            y = stability.mean_path_step(planted, point, 1.3, rebase_heads=rebase)
            np.testing.assert_allclose(y.B, point.B, atol=1e-12)
            np.testing.assert_allclose(y.W, point.W, atol=1e-12)
            np.testing.assert_allclose(y.eta, point.eta, atol=1e-12)
        assert stability.mean_path_error(planted, point) == pytest.approx(0.0, abs=1e-12)


def test_fixed_point_rejects_misspecified_and_subspace_free_problems() -> None:
    misspecified = problems.shared_subspace_problem(4, 8, 4, 2, heterogeneity=0.5,
                                                    misspecification=0.3, rng=0)
    with pytest.raises(ValueError, match="must be a fixed point"):
        stability.fixed_point(misspecified)
    no_rank = problems.Problem.from_arrays(misspecified.P, misspecified.rewards,
                                           misspecified.features)
    with pytest.raises(ValueError, match="B_star"):
        stability.fixed_point(no_rank)


# ------------------------------------------------------------------ tangent space and Jacobian

@pytest.mark.parametrize(("dim", "rank", "n_agents"), [(2, 1, 2), (5, 2, 4), (6, 3, 3)])
def test_quotient_basis_is_orthonormal_tangent_and_orthogonal_to_the_orbit(dim, rank,
                                                                           n_agents) -> None:
    rng = np.random.default_rng(dim + rank)
    B = subspace.haar_orthonormal(dim, rank, rng)
    W = rng.standard_normal((n_agents, rank))
    C = stability.quotient_basis(B, W)
    assert C.shape == (dim * rank + n_agents * (rank + 1),
                       rank * (dim - rank) + n_agents * rank + n_agents)
    np.testing.assert_allclose(C.T @ C, np.eye(C.shape[1]), atol=1e-12)
    for column in C.T:  # B part tangent to the Stiefel manifold: B^T dB is skew
        dB = column[:dim * rank].reshape(dim, rank)
        np.testing.assert_allclose(B.T @ dB + dB.T @ B, 0.0, atol=1e-12)
    for k in range(rank):
        for m in range(k + 1, rank):
            Omega = np.zeros((rank, rank))
            Omega[k, m], Omega[m, k] = 1.0, -1.0
            v = np.concatenate([(B @ Omega).ravel(), (W @ Omega).ravel(), np.zeros(n_agents)])
            np.testing.assert_allclose(C.T @ v, 0.0, atol=1e-12)


@pytest.mark.parametrize("rebase", [False, True])
@pytest.mark.parametrize("c_eta", [1.0, 0.25])
def test_jacobian_matches_the_exact_symbolic_jacobian(walkthrough, rebase, c_eta) -> None:
    instance, problem = walkthrough
    spectrum = symbolic.mean_path_spectrum(symbolic.mean_path_map(instance, c_eta=c_eta,
                                                                  rebase_heads=rebase))
    u_star = float(np.arctan2(problem.B_star[1, 0], problem.B_star[0, 0]))
    for alpha in (0.3, 1.7):
        jac = stability.mean_path_jacobian(problem, alpha, c_eta=c_eta, rebase_heads=rebase)
        # The chart's coordinates are (u, w, eta) with dB = (-sin u*, cos u*) du; our basis
        # columns are those unit directions up to sign: flip each to the chart's.
        reference = np.zeros_like(jac.basis)  # ambient (B (2), w (N), eta (N)) x chart
        reference[:2, 0] = [-np.sin(u_star), np.cos(u_star)]
        reference[2:, 1:] = np.eye(reference.shape[1] - 1)
        D = np.diag(np.sign(np.sum(jac.basis * reference, axis=0)))
        exact = np.array(spectrum.jacobian.subs(spectrum.alpha, alpha).evalf(17).tolist(),
                         dtype=float)
        # central differences, h = 1e-6: O(h^2) truncation + O(1e-16 / h) round-off
        np.testing.assert_allclose(D @ jac.jacobian @ D, exact, rtol=0, atol=1e-7)
    assert jac.critical_step_size == pytest.approx(spectrum.critical_step_size, rel=1e-7)
    assert jac.block_critical_step_size == pytest.approx(spectrum.critical_step_size_uw, rel=1e-7)
    assert jac.gain_critical_step_size == pytest.approx(2.0 / c_eta, rel=1e-9)


def test_jacobian_is_affine_in_alpha_with_a_decoupled_gain_block(planted) -> None:
    small, large = (stability.mean_path_jacobian(planted, a, c_eta=0.3) for a in (0.2, 5.0))
    np.testing.assert_allclose(small.drift, large.drift, rtol=0, atol=1e-7)
    N, nb = planted.n_agents, small.n_block
    np.testing.assert_allclose(small.drift[nb:, nb:], -0.3 * np.eye(N), atol=1e-8)
    np.testing.assert_allclose(small.drift[nb:, :nb], 0.0, atol=1e-8)
    assert nb == 2 * (planted.dim - 2) + 2 * N
    assert small.critical_step_size == pytest.approx(
        min(2 / 0.3, small.block_critical_step_size), rel=1e-9)


def test_thresholds_and_radius_follow_the_eigenvalues(planted) -> None:
    jac = stability.mean_path_jacobian(planted)
    lam = jac.eigenvalues
    assert np.all(lam.real < 0)
    crit = jac.critical_step_size
    assert crit == pytest.approx(float(np.min(-2 * lam.real / np.abs(lam) ** 2)), rel=1e-12)
    assert jac.spectral_radius(crit) == pytest.approx(1.0, abs=1e-9)
    assert jac.spectral_radius(0.9 * crit) < 1 < jac.spectral_radius(1.1 * crit)
    np.testing.assert_allclose(jac.spectral_radius(np.array([0.0, crit])), [1.0, 1.0], atol=1e-9)
    assert 0 < jac.sufficient_step_size <= crit
    assert 0 < jac.block_sufficient_step_size <= jac.block_critical_step_size
    # the sufficient step's promise: ||I + alpha M||_2 <= sqrt(1 - alpha omega)
    a, omega = jac.block_sufficient_step_size, theory.negative_definiteness_margin(jac.block_drift)
    M = jac.block_drift
    assert np.linalg.norm(np.eye(len(M)) + a * M, 2) <= np.sqrt(1 - a * omega) + 1e-12


# ------------------------------------------------------------------ readings

#: The readings that change the mean-path map (docs/algorithm.md, "Readings"); the gain reading
#: does not (test below), a two-timescale schedule has no constant-step Jacobian.
READINGS = {
    "polar": {"retraction": "polar"},
    "polar_rebased": {"retraction": "polar", "rebase_heads": True},
    "heads_first": {"update_order": "heads_first"},
    "fedrep_like": {"update_order": "heads_first", "retraction": "polar", "rebase_heads": True},
}


@pytest.mark.parametrize("reading", READINGS)
def test_every_reading_keeps_the_fixed_point_and_its_orbit(planted, reading) -> None:
    x = stability.fixed_point(planted)
    Q = subspace.haar_orthonormal(2, 2, 1)
    for point in (x, stability.MeanPathState(x.B @ Q, x.W @ Q, x.eta)):
        y = stability.mean_path_step(planted, point, 1.3, head_radius=2.0, gain_update="td",
                                     **READINGS[reading])
        np.testing.assert_allclose(y.B, point.B, atol=1e-12)
        np.testing.assert_allclose(y.W, point.W, atol=1e-12)
        np.testing.assert_allclose(y.eta, point.eta, atol=1e-12)


@pytest.mark.parametrize("reading", READINGS)
def test_the_jacobian_of_each_reading_is_quadratic_in_alpha_at_most(planted, reading) -> None:
    # X(alpha) = I + alpha M + alpha^2 M2 (M2 = 0 unless heads_first): the Jacobian evaluated
    # at another step is the polynomial's value there, to the central differences' accuracy.
    switches = READINGS[reading]
    jac = stability.mean_path_jacobian(planted, 0.8, **switches)
    assert (jac.second_order is None) == (switches.get("update_order") != "heads_first")
    k = jac.drift.shape[0]
    for alpha in (0.3, 2.5):
        other = stability.mean_path_jacobian(planted, alpha, **switches)
        second = 0.0 if jac.second_order is None else alpha**2 * jac.second_order
        np.testing.assert_allclose(other.jacobian, np.eye(k) + alpha * jac.drift + second,
                                   rtol=0, atol=1e-7)
    if jac.second_order is not None:
        assert np.max(np.abs(jac.second_order)) > 1e-3
        # the gains do not see B or W, whatever the order: the gain block stays -c_eta I
        np.testing.assert_allclose(jac.second_order[jac.n_block:], 0.0, atol=1e-7)


@pytest.mark.parametrize("reading", READINGS)
def test_each_readings_critical_step_is_the_mean_paths_threshold(planted, reading) -> None:
    switches = READINGS[reading]
    jac = stability.mean_path_jacobian(planted, **switches)
    crit = jac.block_critical_step_size
    assert jac.spectral_radius(crit, block=True) == pytest.approx(1.0, abs=1e-9)
    assert jac.spectral_radius(0.99 * crit, block=True) < 1 < jac.spectral_radius(
        1.01 * crit, block=True)

    def stable(a: float) -> bool:
        return stability.is_decaying(stability.mean_path_error_curve(
            planted, a, steps=800, perturbation=1e-7, rng=0, gains=False, **switches))

    # as in test_local_iteration_is_stable_exactly_below_the_block_threshold
    found = stability.bisect_threshold(stable, 0.25 * crit, rtol=1e-2)
    assert found.low <= crit <= found.high


def test_the_readings_move_the_threshold_and_the_gain_reading_does_not(planted) -> None:
    default = stability.mean_path_jacobian(planted, 0.7)
    td_gain = stability.mean_path_jacobian(planted, 0.7, gain_update="td")
    np.testing.assert_array_equal(td_gain.jacobian, default.jacobian)  # E[delta] = J - eta
    far = stability.mean_path_jacobian(planted, 0.7, head_radius=1e3)  # inactive near x*
    np.testing.assert_array_equal(far.jacobian, default.jacobian)
    thresholds = {name: stability.mean_path_jacobian(planted, **switches).block_critical_step_size
                  for name, switches in READINGS.items()}
    assert all(abs(t / default.block_critical_step_size - 1) > 1e-6 for t in thresholds.values())


def test_readings_that_no_fixed_point_survives_or_that_are_unknown_are_refused(planted) -> None:
    largest = float(np.max(np.linalg.norm(planted.heads_star, axis=1)))
    with pytest.raises(ValueError, match=r"head_radius must exceed max_i \|\|w_i\*\|\|"):
        stability.mean_path_jacobian(planted, head_radius=0.5 * largest)
    with pytest.raises(ValueError, match="head_radius must exceed"):
        stability.mean_path_error_curve(planted, 0.1, steps=5, perturbation=1e-6, rng=0,
                                        head_radius=largest)
    x = stability.fixed_point(planted)
    for kwargs, match in [({"update_order": "late"}, "update_order must be one of .*'late'"),
                          ({"gain_update": "q"}, "gain_update must be one of .*'q'"),
                          ({"retraction": "svd"}, "retraction must be one of .*'svd'"),
                          ({"head_radius": 0.0}, r"head_radius must lie in .*0\.0")]:
        with pytest.raises(ValueError, match=match):
            stability.mean_path_step(planted, x, 0.1, **kwargs)


def test_mean_path_limit_takes_the_readings() -> None:
    problem = problems.shared_subspace_problem(6, 12, 5, 2, heterogeneity=0.5, rng=0)
    limit = stability.mean_path_limit(problem, alpha=0.5, steps=20000, **READINGS["fedrep_like"])
    assert subspace.principal_angle_distance(limit.B, problem.B_star) < 1e-10
    assert limit.parameter_error < 1e-20
    # a radius below the planted heads moves the limit off B* W*: the error is then positive
    clipped = stability.mean_path_limit(problem, alpha=0.5, steps=20000, head_radius=0.5)
    assert np.all(np.linalg.norm(clipped.heads, axis=1) <= 0.5 * (1 + 1e-12))
    assert clipped.parameter_error > 1e-3


# ------------------------------------------------------------------ curves and bisection

def test_local_iteration_is_stable_exactly_below_the_block_threshold(planted) -> None:
    crit = stability.mean_path_jacobian(planted).block_critical_step_size

    def stable(a: float) -> bool:
        return stability.is_decaying(stability.mean_path_error_curve(
            planted, a, steps=800, perturbation=1e-7, rng=0, gains=False))

    found = stability.bisect_threshold(stable, 0.25 * crit, rtol=1e-2)
    # The bracket holds crit: 1% away from it the binding mode has |rho - 1| of order 1e-2 and
    # the windows of is_decaying are 400 steps apart, so rho^400 is far from 1 either way.
    assert found.low <= crit <= found.high
    assert found.high - found.low <= 1e-2 * found.low


def test_error_curve_stops_early_when_unstable_and_keeps_gains_at_J(planted) -> None:
    crit = stability.mean_path_jacobian(planted).critical_step_size  # gain-limited: 2
    errors = stability.mean_path_error_curve(planted, 1.2 * crit, steps=400, perturbation=1e-6,
                                             rng=1)
    assert np.isinf(errors[-1]) and np.isfinite(errors[0])
    assert not stability.is_decaying(errors)
    kept = stability.mean_path_error_curve(planted, 1.2 * crit, steps=400, perturbation=1e-6,
                                           rng=1, gains=False)
    assert stability.is_decaying(kept)  # below the (B, W) threshold the gains at J stay put


@given(rho=st.floats(0.5, 1.5), amplitude=st.floats(1e-3, 1e3))
@settings(max_examples=40, deadline=None)
def test_is_decaying_tells_geometric_decay_from_growth(rho, amplitude) -> None:
    t = np.arange(401)
    curve = amplitude * rho**t * (1.0 + 0.3 * np.cos(0.7 * t) ** 2)  # an oscillating envelope
    if abs(rho - 1) > 0.01:  # rho^(200) vs the oscillation factor 1.3
        assert stability.is_decaying(curve) == (rho < 1)


def test_is_decaying_edge_cases() -> None:
    assert stability.is_decaying(np.r_[1.0, np.full(30, 1e-12)])  # reached round-off
    assert not stability.is_decaying(np.r_[np.ones(25), np.inf])
    with pytest.raises(ValueError, match="at least 20"):
        stability.is_decaying(np.ones(5))


def test_linear_error_curve_is_the_power_of_one_plus_alpha_lambda() -> None:
    errors = stability.linear_error_curve([[-0.5]], 1.5, [2.0], 10)
    np.testing.assert_allclose(errors, 2.0 * 0.25 ** np.arange(11), rtol=1e-14)
    A = np.stack([np.diag([-1.0, -0.1]), np.diag([-2.0, -0.5])])
    assert np.isinf(stability.linear_error_curve(A, 1.1, np.ones((2, 2)), 4000)[-1])
    alpha_crit = float(np.min(theory.critical_step_size(A)))
    found = stability.bisect_threshold(
        lambda a: stability.is_decaying(stability.linear_error_curve(A, a, np.ones((2, 2)), 2000)),
        0.1, rtol=1e-3)
    assert found.low <= alpha_crit <= found.high


def test_bisection_brackets_a_known_switch_and_counts_evaluations() -> None:
    calls = []

    def stable(a: float) -> bool:
        calls.append(a)
        return a < 3.7

    found = stability.bisect_threshold(stable, 0.5, rtol=1e-4)
    assert found.low < 3.7 <= found.high and found.high - found.low <= 1e-4 * found.low
    assert found.evaluations == len(calls)
    assert found.threshold == pytest.approx(3.7, rel=1e-4)
    with pytest.raises(ValueError, match="low must be a stable"):
        stability.bisect_threshold(stable, 5.0, rtol=1e-3)
    with pytest.raises(ValueError, match="no unstable step size"):
        stability.bisect_threshold(lambda a: True, 1.0, rtol=1e-3, max_expansions=5)


@pytest.mark.parametrize(("call", "match"), [
    (lambda p, x: stability.mean_path_step(p, x, 0.0), "alpha"),
    (lambda p, x: stability.mean_path_step(p, x, 0.1, c_eta=0.0), "c_eta"),
    (lambda p, x: stability.mean_path_step(p, x, 0.1, c_B=-1.0), "c_B"),
    (lambda p, x: stability.mean_path_jacobian(p, fd_step=0.5), "fd_step"),
    (lambda p, x: stability.mean_path_jacobian(p, alpha=-1.0), "alpha"),
    (lambda p, x: stability.mean_path_error_curve(p, 1.0, steps=0, perturbation=1e-6, rng=0),
     "steps"),
    (lambda p, x: stability.mean_path_error_curve(p, 1.0, steps=5, perturbation=1.0, rng=0),
     "perturbation"),
    (lambda p, x: stability.linear_error_curve(p.A, 0.0, np.zeros(p.dim), 3), "alpha"),
    (lambda p, x: stability.bisect_threshold(lambda a: True, 1.0, rtol=0.0), "rtol"),
    (lambda p, x: stability.bisect_threshold(lambda a: True, 1.0, rtol=0.1, growth=1.0),
     "growth"),
])
def test_bad_arguments_raise_naming_the_argument(planted, call, match) -> None:
    x = stability.fixed_point(planted)
    with pytest.raises(ValueError, match=match):
        call(planted, x)


@pytest.mark.slow
@pytest.mark.parametrize("sampling", ["iid", "markov"])
def test_the_predicted_subspace_constant_matches_simulation(sampling: str) -> None:
    """T E dist_F^2(B_T, B*) -> C_B under alpha_t = alpha0 / (t + t0), from B*.

    32 seeds, the mean of (t + t0) dist_F^2 over the last half of a 1e5-step run (10 records):
    per seed dist_F^2 has (d - r) r = 4 Gaussian degrees of freedom (relative sd ~0.7), so the
    mean over 32 seeds has a relative sd of ~0.13 before the records' averaging; a factor 1.4
    band is ~3 sd, and leaves room for the O(t0 / T) transient.
    """
    problem = problems.shared_subspace_problem(8, 10, 4, 2, heterogeneity=0.5, rng=3)
    jacobian = stability.mean_path_jacobian(problem)
    alpha0 = 1.5 / float(np.min(-jacobian.eigenvalues.real))  # alpha0 M + I/2 stable
    t0 = int(np.ceil(3 * alpha0 / jacobian.critical_step_size))
    predicted = stability.subspace_error_constant(problem, alpha0, sampling=sampling)
    T = 100_000
    trace = simulate.run(problem, steps=T, step_size=schedules.inverse_time(alpha0, t0),
                         seeds=32, init_subspace=problem.B_star, sampling=sampling,
                         record_every=T // 20)
    late = trace.record_steps >= T // 2
    scaled = trace.subspace_distance_frobenius[:, late] ** 2 * (trace.record_steps[late] + t0)
    assert float(np.mean(scaled)) / predicted == pytest.approx(1.0, rel=0.4)


def test_noise_covariance_is_symmetric_positive_semidefinite_and_scales_with_noise() -> None:
    problem = problems.shared_subspace_problem(5, 8, 3, 2, rng=1)
    noisy = problems.shared_subspace_problem(5, 8, 3, 2, reward_noise=0.5, rng=1)
    quiet = stability.noise_covariance(problem)
    loud = stability.noise_covariance(noisy)
    for Gamma in (quiet, loud):
        np.testing.assert_allclose(Gamma, Gamma.T, atol=1e-12)
        assert np.min(np.linalg.eigvalsh(Gamma)) > -1e-12
    assert np.trace(loud) > np.trace(quiet)  # reward noise only adds white noise
    with pytest.raises(ValueError, match="sampling must be 'markov' or 'iid'"):
        stability.noise_covariance(problem, sampling="expected")


@pytest.mark.parametrize("seed", range(4))
def test_decay_rate_is_the_mean_paths_late_rate(seed: int) -> None:
    # The mean path (sampling="expected") from a random B_0 ends in the slowest mode of M: its
    # dist_F^2 decays per step like |1 + alpha lambda_slow|^2 = exp(-alpha kappa (1 + O(alpha))).
    # Measured over the window 1e-4..1e-20 (stats.geometric_decay_rate); 5% covers the other
    # modes' leftovers in the window and the O(alpha) term at alpha = 0.2.
    problem = problems.shared_subspace_problem(6, 10, 4, 2, heterogeneity=0.5, rng=seed)
    kappa = stability.mean_path_jacobian(problem).decay_rate
    alpha, every = 0.2, 10
    trace = simulate.run(problem, steps=30000, step_size=alpha, seeds=[0], sampling="expected",
                         record_every=every)
    decay = ptd_stats.geometric_decay_rate(trace.subspace_distance_frobenius[0] ** 2, high=1e-4,
                                       low=1e-20)
    assert -np.log(decay.rate) / (alpha * every) == pytest.approx(kappa, rel=0.05)


def test_subspace_error_floor_is_linear_in_alpha_to_first_order_and_takes_a_sequence() -> None:
    problem = problems.shared_subspace_problem(6, 10, 4, 2, reward_noise=0.3, rng=3)
    alphas = [1e-4, 1e-3, 0.05]
    floors = stability.subspace_error_floor(problem, alphas)
    assert floors.shape == (3,)
    assert [stability.subspace_error_floor(problem, a) for a in alphas] == floors.tolist()
    # floor = alpha F_1 + O(alpha^2): floor / alpha converges as alpha -> 0.
    assert floors[0] / alphas[0] == pytest.approx(floors[1] / alphas[1], rel=1e-2)
    with pytest.raises(ValueError, match="spectral radius"):
        stability.subspace_error_floor(problem, 50.0)


# ------------------------------------------------------------------ the limit on any problem

def test_mean_path_limit_of_a_planted_problem_is_b_star_at_the_jacobians_rate() -> None:
    problem = problems.shared_subspace_problem(6, 12, 5, 2, heterogeneity=0.5, rng=0)
    limit = stability.mean_path_limit(problem, alpha=0.5, steps=20000)
    assert subspace.principal_angle_distance(limit.B, problem.B_star) < 1e-10
    assert limit.parameter_error < 1e-20 and limit.residual < 1e-10
    assert limit.start_spread < 1e-10
    # The late movement decays at the slowest rate of the drift's (B, W) block (the gains,
    # at rate c_eta = 1, are faster); the fit over a finite window agrees to 2%.
    jacobian = stability.mean_path_jacobian(problem)
    block = jacobian.drift[:jacobian.n_block, :jacobian.n_block]
    slowest = -np.linalg.eigvals(block).real.max()
    assert abs(limit.rate / slowest - 1) < 0.02


def test_mean_path_limit_of_a_misspecified_problem_is_above_the_projection_floor() -> None:
    # Eckart-Young: no rank-2 basis and heads fit Theta* better than its top-2 SVD part.
    problem = problems.shared_subspace_problem(6, 12, 5, 2, heterogeneity=0.5,
                                               misspecification=0.5, rng=1)
    limit = stability.mean_path_limit(problem, alpha=0.5, steps=20000)
    sigma = np.linalg.svd(problem.theta_star, compute_uv=False)
    floor = np.sum(sigma[2:] ** 2) / problem.n_agents
    assert floor > 1e-3 and limit.parameter_error >= floor
    assert limit.residual < 1e-8


def test_mean_path_limit_stops_at_round_off() -> None:
    # A budget far beyond round-off costs nothing: the run stops once the basis no longer moves,
    # at the limit that the shorter run finds.
    problem = problems.shared_subspace_problem(6, 12, 5, 2, heterogeneity=0.5, rng=0)
    short = stability.mean_path_limit(problem, alpha=0.5, steps=20000)
    budget = stability.mean_path_limit(problem, alpha=0.5, steps=10**9)
    assert subspace.principal_angle_distance(budget.B, short.B) < 1e-12
    assert abs(budget.rate / short.rate - 1) < 1e-6


def test_mean_path_limit_refuses_a_diverging_step_and_too_short_a_run() -> None:
    problem = problems.shared_subspace_problem(6, 12, 5, 2, heterogeneity=0.5, rng=0)
    with pytest.raises(ValueError, match=r"diverged at iteration .* above its critical step"):
        stability.mean_path_limit(problem, alpha=50.0, steps=2000)
    with pytest.raises(ValueError, match="raise steps"):
        stability.mean_path_limit(problem, alpha=0.5, steps=50)
