"""ptdlib: personalized multi-agent average-reward TD learning with a shared linear subspace.

Executable companion to Wang, Yang & Su (2026), *Personalized Multi-Agent Average-Reward
TD-Learning via Joint Linear Approximation*, arXiv:2603.02426. The algorithm is read from the
paper's abstract in the language of its sources; see the README and docs/algorithm.md.

Notation (paper symbol -> code name)
------------------------------------
==========================  =====================  ========================================
paper                       code                   shape / meaning
==========================  =====================  ========================================
N                           ``n_agents``           number of agents
n = |S|                     ``n_states``           common finite state space
d                           ``dim``                feature dimension
r                           ``rank``               dimension of the shared subspace
P_i                         ``P[i]``               (n, n) transition matrix of agent i
mu_i                        ``mu[i]``              (n,) stationary distribution
r_i                         ``rewards[i]``         (n,) expected reward per state
sigma                       ``reward_noise``       std of zero-mean reward noise
J_i                         ``average_reward[i]``  mu_i^T r_i, the gain
h_i                         ``poisson_solution``   bias, h = r - J 1 + P h, mu^T h = 0
Phi, phi(s)                 ``Phi``/``features``   (n, d), rows with ||phi(s)|| <= 1
A_i, b_i                    ``td_matrices``        Phi^T D_i (P_i - I) Phi, Phi^T D_i (r_i - J_i 1)
theta_i*                    ``theta_star[i]``      (d,) TD fixed point, A_i theta + b_i = 0
B*, B_t                     ``B_star``, ``B``      (d, r) orthonormal shared basis
w_i*, w_t^i                 ``heads_star[i]``, w   (r,) agent heads, theta_i* = B* w_i*
eta_t^i                     ``eta``                average-reward (gain) estimate
delta_t^i                   ``td_error``           TD error
alpha_t, c_eta, c_B         ``alpha``, ...         step size and single-timescale ratios
chi                         ``misalignment``       max_i ||(I - B*B*^T) A_i B*||_2
lambda_w                    ``head_diversity``     sigma_min(W*)^2 / N
dist(B, B*)                 ``principal_angle_distance``  ||(I - B*B*^T) B||_2 = sin(theta_max)
theta-bar_i                 ``averaged_theta[i]``  Polyak-Ruppert average of theta_t^i, t >= a
a                           ``average_from``       first averaged iterate (simulate.run)
q, k                        ``switch_probability``, ``n_clusters``  metastable chains
==========================  =====================  ========================================
"""

__version__ = "0.1.0"

# Submodules load on first use (``from ptdlib import simulate``), so ``import ptdlib`` stays light
# and does not pull in matplotlib, papermill or numba.
__all__ = [
    "checkpoint",
    "checks",
    "cli",
    "control",
    "evidence",
    "markov",
    "mdp",
    "notebook_params",
    "plots",
    "problems",
    "reports",
    "schedules",
    "simulate",
    "stability",
    "stats",
    "steps",
    "subspace",
    "sweep",
    "symbolic",
    "td",
    "theory",
]
