"""Compiled (numba) kernels of the simulator: the steps of `ptdlib.steps`, per agent, in loops.

Random numbers are drawn beforehand in bulk (`ptdlib.simulate`); these kernels are
deterministic consumers of them (QuantEcon style). Each kernel advances every seed of a batch
by one chunk of iterations, in place, seeds in parallel (``prange``); agents are an inner loop
so that an iteration costs O(rank) per agent instead of O(dim rank).

How each kernel line maps to `ptdlib.steps` (DESIGN section 2)
--------------------------------------------------------------
=====================  =============================================  ===========================
kernel line            equation                                       steps.py function
=====================  =============================================  ===========================
``_sample_all``        one uniform -> s' (rule of markov.sample_next_states)     (sampling)
``delta = ...``        delta = r - eta + (phi(s') - phi(s))^T B w      `td_error`
``eta[i] += ...``      eta <- eta + c_eta alpha (r - eta)             `gain_step`
``w[i, k] += ...``     w <- w + alpha delta B^T phi(s)                `head_step`
``M[s0, k] += ...``    sum_i G^i = Phi^T M, M[s] = sum_{i: s_i=s}     `representation_gradient`
                       delta_i w_i^T, since G^i = delta_i phi(s_i) w_i^T
``_server_step``       B~ = B + c_B alpha (1/N) Phi^T M               `server_average`
``BL[i, k, a] += ..``  B^i <- B^i + c_B alpha delta phi(s) w^T        `local_representation_step`
``_average_copies``    B~ = (1/N) sum_i B^i                           `average_local_copies`
``_retract``           B~ = Q R, diag R > 0; then w <- R w if rebase  `retraction_step`
``theta[i, a] += ..``  theta <- theta + alpha delta phi(s)            `local_td_step`
``_average_thetas``    theta^i <- (1/N) sum_j theta^j                 `fedtd_average`
``_project_thetas``    Theta <- U_r U_r^T Theta (truncated SVD)       `lowrank_projection`
``_is_repr..._step``   t mod (tau + 1) = tau                          `fedrep_updates_repr...`
=====================  =============================================  ===========================

Layout. Inside a chunk the basis is held transposed, ``BT`` = B^T (rank x dim), so that every
inner product runs over contiguous memory; rows C[s] = phi(s)^T B (rank each) are computed at
most once per iteration for the states visited (``stamp``); the averaged gradient
(1/N) sum_i delta_i phi(s_i) w_i^T is accumulated by state in M (n_states x rank) and multiplied
by Phi^T over the touched states only: per agent O(rank), per iteration O(min(N, n) dim rank).
Uniforms are (agents, steps, draws per step), as each agent's Generator fills them (a
time-major copy would cost more than the strided reads); the alias tables are packed as
(chain, state, column, [prob, alias]) so a draw touches one cache line, prefetched ahead.
Floating point may be reassociated (``fastmath`` without the no-NaN/no-inf flags, which the
divergence test needs), except in `alias_draw`, which reproduces the sampling rule bit for bit.

Divergence: after every iteration the updated w, eta (or theta, eta) and the averaged basis
must be finite with absolute entries <= ``threshold``; otherwise the seed stops and the kernel
returns the number of completed iterations (its divergence step). A numerically rank-deficient
B~ (R_kk <= dim eps max_j R_jj, the test of `subspace.qr_retraction`) counts as divergence.

Record layout: ``records[s, g]`` = (parameter error, relative parameter error, head error, gain
error) at global record g (NaN where not applicable); ``snapshots[s, g - offset]`` holds what
the subspace distances are computed from (the basis B, the Gram matrix Theta Theta^T, or the
mean parameter, by family).
"""

from __future__ import annotations

import types

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba import types as nbtypes
from numba.core import cgutils
from numba.extending import intrinsic

#: Sampling modes and algorithm codes shared with ptdlib.simulate.
MARKOV, IID = 0, 1
PERSONALIZED, FEDREP, ORACLE = 0, 1, 2
LOCAL, FEDTD, LOWRANK = 0, 1, 2
#: Metric columns of ``records``.
PARAM, RELATIVE, HEAD, GAIN = 0, 1, 2, 3
N_METRICS = 4
#: Agents per block of the K = 1 kernel (fixed: it fixes the summation order of M).
AGENT_BLOCK = 256
_EPS = float(np.finfo(np.float64).eps)
#: Reassociation and contraction let LLVM vectorise the inner products; no 'nnan'/'ninf'.
_FAST = {"reassoc", "contract", "arcp", "nsz"}
_jit = njit(cache=True, fastmath=_FAST)
#: Small helpers inlined into the caller's IR (numba inline="always"): factoring costs no call.
_inline = njit(cache=True, fastmath=_FAST, inline="always")


@njit(cache=True)  # exact IEEE arithmetic: the draw must match markov.sample_next_states
def alias_draw(table: np.ndarray, c: int, s: int, u: float) -> int:
    """One draw from row s of chain c with one uniform u in [0, 1) (markov.sample_next_states).

    x = u n; j = min(floor(x), n - 1); next = j if x - j < prob[j] else alias[j], with
    table[c, s, j] = (prob[j], alias[j]).
    """
    n = table.shape[2]
    x = u * n
    j = min(int(x), n - 1)
    if x - j < table[c, s, j, 0]:
        return j
    return int(table[c, s, j, 1])


@intrinsic
def _prefetch(typingctx, table, c, s, j):
    """Hint the CPU to fetch table[c, s, j] into cache (llvm.prefetch; no effect on results)."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        zero = context.get_constant(nbtypes.intp, 0)
        pointer = cgutils.get_item_pointer(context, builder, array_type, array,
                                           [*args[1:], zero], wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            "llvm.prefetch.p0i8")
        # read access, high temporal locality, data cache
        builder.call(function, [builder.bitcast(pointer, byte_pointer), ir.Constant(i32, 0),
                                ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return nbtypes.void(table, c, s, j), codegen


#: Agents ahead whose table entry is prefetched while sampling (hides DRAM latency at large N).
PREFETCH_DISTANCE = 16


@_jit
def _sample_all(P_table, mu_table, chain, sampling, state, uniforms, j, lo, hi, s0, s1) -> None:
    """(s_t^i, s_{t+1}^i) of agents lo..hi-1 at chunk step j into s0, s1; advances ``state``.

    Agent i samples from the tables of its chain, ``chain[i]`` (agents with equal P_i share one).
    Markov: s_t = state (the agent's trajectory), s_{t+1} ~ P_i(s_t, .); i.i.d.: s_t ~ mu_i, then
    s_{t+1} ~ P_i(s_t, .). A separate pass so that the table lookups of different agents (random
    accesses into M n^2 entries) overlap in the memory system instead of waiting one by one; the
    entry of the agent PREFETCH_DISTANCE ahead is prefetched (its row and column are known).
    """
    n = P_table.shape[2]
    for i in range(lo, hi):
        ahead = i + PREFETCH_DISTANCE
        if ahead < hi:
            column = min(int(uniforms[ahead, j, 0] * n), n - 1)
            if sampling == MARKOV:
                _prefetch(P_table, chain[ahead], state[ahead], column)
            else:
                _prefetch(mu_table, chain[ahead], 0, column)
        c = chain[i]
        if sampling == MARKOV:
            s0[i] = state[i]
            s1[i] = alias_draw(P_table, c, state[i], uniforms[i, j, 0])
            state[i] = s1[i]
        else:
            s0[i] = alias_draw(mu_table, c, 0, uniforms[i, j, 0])
            s1[i] = alias_draw(P_table, c, s0[i], uniforms[i, j, 1])


@_jit
def _dot(x, y) -> float:
    acc = 0.0
    for a in range(x.shape[0]):
        acc += x[a] * y[a]
    return acc


@_jit
def qr_retract(BT: np.ndarray, R: np.ndarray) -> bool:
    """In place B^T <- Q^T with B~ = Q R, diag(R) > 0 (subspace.qr_retraction); False if deficient.

    Modified Gram-Schmidt on the rows of BT = B~^T, repeated once for a column whose norm fell
    below 1/sqrt(2) of its norm before the pass ("twice is enough": Giraud et al. 2005; Daniel,
    Gragg, Kaufman & Stewart 1976): Q is orthonormal to round-off for any numerically full-rank
    B~, and the factors are the unique ones with diag(R) > 0, hence equal to Householder QR up
    to round-off. Near an orthonormal B (the usual small step) one pass suffices.
    """
    rank, dim = BT.shape
    R[:] = 0.0
    for k in range(rank):
        norm = np.sqrt(_dot(BT[k], BT[k]))
        for _ in range(2):
            if k == 0:
                break
            before = norm
            for m in range(k):
                c = _dot(BT[m], BT[k])
                R[m, k] += c
                for a in range(dim):
                    BT[k, a] -= c * BT[m, a]
            norm = np.sqrt(_dot(BT[k], BT[k]))
            if norm > 0.7071067811865476 * before:
                break
        R[k, k] = norm
        if not norm > 0.0:
            return False
        inv = 1.0 / norm
        for a in range(dim):
            BT[k, a] *= inv
    largest = smallest = R[0, 0]
    for k in range(1, rank):
        largest = max(largest, R[k, k])
        smallest = min(smallest, R[k, k])
    return smallest > dim * _EPS * largest


@_jit
def _rebase(w: np.ndarray, R: np.ndarray, threshold: float) -> bool:
    """w_i <- R w_i for every agent (retraction_step with rebase_heads); False if out of range."""
    n_agents, rank = w.shape
    ok = True
    for i in range(n_agents):
        for k in range(rank):
            acc = 0.0
            for m in range(k, rank):
                acc += R[k, m] * w[i, m]
            w[i, k] = acc
            ok &= abs(acc) <= threshold
    return ok


@_inline
def _retract(BT, R, w, rebase, threshold) -> bool:
    """Step 7 in place: B^T <- Q^T of B~ = Q R, then w_i <- R w_i if rebase (retraction_step).

    False if B~ is numerically rank-deficient or a re-based head leaves [-threshold, threshold].
    """
    ok = qr_retract(BT, R)
    if rebase:
        ok &= _rebase(w, R, threshold)
    return ok


@_jit
def record_shared(BT, w, eta, theta_star, J, rel_weight, out, snapshot) -> None:
    """Metrics of a shared-representation state, theta_i = B w_i, from BT = B^T (rank x dim).

    snapshot (dim x rank) receives B, what the subspace distances are computed from.
    """
    n_agents, rank = w.shape
    dim = BT.shape[1]
    param = relative = head = gain = 0.0
    for i in range(n_agents):
        err = 0.0
        for a in range(dim):
            x = -theta_star[i, a]
            for k in range(rank):
                x += BT[k, a] * w[i, k]
            err += x * x
        head_err = 0.0
        for k in range(rank):
            x = w[i, k] - _dot(BT[k], theta_star[i])
            head_err += x * x
        param += err
        relative += rel_weight[i] * err
        head += head_err
        gain += (eta[i] - J[i]) ** 2
    out[PARAM] = param / n_agents
    out[RELATIVE] = relative
    out[HEAD] = head / n_agents
    out[GAIN] = gain / n_agents
    snapshot[:, :] = BT.T


@_jit
def record_theta(theta, eta, theta_star, J, rel_weight, family, out, snapshot) -> None:
    """Metrics of a full-parameter state; snapshot = Theta Theta^T (local, lowrank) or the mean."""
    n_agents, dim = theta.shape
    param = relative = gain = 0.0
    snapshot[:] = 0.0
    for i in range(n_agents):
        err = 0.0
        for a in range(dim):
            err += (theta[i, a] - theta_star[i, a]) ** 2
        param += err
        relative += rel_weight[i] * err
        gain += (eta[i] - J[i]) ** 2
        if family == FEDTD:
            for a in range(dim):
                snapshot[a, 0] += theta[i, a] / n_agents
        else:
            for a in range(dim):
                for b in range(dim):
                    snapshot[a, b] += theta[i, a] * theta[i, b]
    out[PARAM] = param / n_agents
    out[RELATIVE] = relative
    out[HEAD] = np.nan
    out[GAIN] = gain / n_agents


@_jit
def _row(C, stamp, j, Phi, BT, s) -> None:
    """C[s] = phi(s)^T B, computed once per iteration j (stamp)."""
    if stamp[s] == j:
        return
    stamp[s] = j
    for k in range(BT.shape[0]):
        C[s, k] = _dot(Phi[s], BT[k])


@_jit
def _server_step(BT, Phi, M, touched, n_touched, coef) -> None:
    """B~^T = B^T + coef M^T Phi over the touched states, in place (server_average); clears M."""
    rank, dim = BT.shape
    for q in range(n_touched):
        s = touched[q]
        for k in range(rank):
            x = coef * M[s, k]
            for a in range(dim):
                BT[k, a] += x * Phi[s, a]
            M[s, k] = 0.0


@_jit
def _is_representation_step(t, algorithm, tau) -> bool:
    """Whether iteration t changes the basis: always (personalized) or t mod (tau+1) = tau."""
    return algorithm == PERSONALIZED or (algorithm == FEDREP and t % (tau + 1) == tau)


@_jit
def _communicates(t, total_steps, period, algorithm, tau) -> bool:
    """Round after iteration t: every K-th iteration and after the last, if a basis changed."""
    if (t + 1) % period != 0 and t + 1 != total_steps:
        return False
    for u in range((t // period) * period, t + 1):
        if _is_representation_step(u, algorithm, tau):
            return True
    return False


@_jit
def _agent_block(lo, hi, j, alpha, rep, heads, dense, BT, C, stamp, w, eta, state, cur, nxt, Phi,
                 rewards, P_table, mu_table, chain, sampling, uniforms, normals, sigma, c_eta,
                 threshold, M, touched, touched_at):
    """DESIGN steps 1-5 for agents lo..hi-1 of one iteration; returns (ok, rows of M touched).

    The block's own M (n_states x rank) accumulates delta_i w_i^T by state s_t^i and its
    ``touched`` list the states it visited; rows C[s] are read (dense) or computed on demand.
    """
    _sample_all(P_table, mu_table, chain, sampling, state, uniforms, j, lo, hi, cur, nxt)
    rank = w.shape[1]
    ok = True
    n_touched = 0
    for i in range(lo, hi):
        s0, s1 = cur[i], nxt[i]
        reward = rewards[i, s0]
        if sigma > 0.0:
            reward += sigma * normals[i, j]
        if not dense:
            _row(C, stamp, j, Phi, BT, s0)
            _row(C, stamp, j, Phi, BT, s1)
        delta = reward - eta[i]
        for k in range(rank):
            delta += (C[s1, k] - C[s0, k]) * w[i, k]
        eta[i] += c_eta * alpha * (reward - eta[i])
        ok &= abs(eta[i]) <= threshold
        if rep:
            if touched_at[s0] != j:  # first agent of the block in s0: register the row
                touched_at[s0] = j
                touched[n_touched] = s0
                n_touched += 1
            for k in range(rank):
                M[s0, k] += delta * w[i, k]
        if heads:
            for k in range(rank):
                w[i, k] += alpha * delta * C[s0, k]
                ok &= abs(w[i, k]) <= threshold
    return ok, n_touched


@_jit
def _merge_blocks(M_blocks, touched_blocks, counts, M, touched, touched_at, j) -> int:
    """M = sum over blocks (in block order) of the blocks' M, on the union of touched states."""
    n_touched = 0
    for b in range(M_blocks.shape[0]):
        for q in range(counts[b]):
            s = touched_blocks[b, q]
            if touched_at[s] != j:
                touched_at[s] = j
                touched[n_touched] = s
                n_touched += 1
            for k in range(M.shape[1]):
                M[s, k] += M_blocks[b, s, k]
                M_blocks[b, s, k] = 0.0
    return n_touched


@_jit
def _dense_rows(C, stamp, j, Phi, BT) -> None:
    for s in range(Phi.shape[0]):
        _row(C, stamp, j, Phi, BT, s)


@_jit
def _finish_step(j, t, alpha, rep, BT, w, eta, Phi, M_blocks, touched_blocks, counts, M,
                 touched, touched_at, R, rebase, c_B, threshold, record_at, rec_offset,
                 theta_star, J, rel_weight, records, snapshots, ok) -> int:
    """Steps 6-7 after the agents' blocks, then the divergence test and the record.

    Returns the divergence step t + 1, or -1.
    """
    if rep:
        n_touched = _merge_blocks(M_blocks, touched_blocks, counts, M, touched, touched_at, j)
        _server_step(BT, Phi, M, touched, n_touched, c_B * alpha / w.shape[0])
        ok &= _retract(BT, R, w, rebase, threshold)
    if not ok:
        return t + 1
    if record_at[j] >= 0:
        g = record_at[j]
        record_shared(BT, w, eta, theta_star, J, rel_weight, records[g],
                      snapshots[g - rec_offset])
    return -1


def _shared_seed_body(BT, w, eta, state, Phi, rewards, P_table, mu_table, chain, sampling, uniforms,
                      normals, sigma, alphas, t_start, algorithm, tau, rebase, c_eta, c_B,
                      threshold, record_at, rec_offset, theta_star, J, rel_weight, records,
                      snapshots):
    """Period K = 1: one shared basis, averaged and retracted after every representation step.

    Agents are processed in fixed blocks of AGENT_BLOCK (each with its own M), summed in block
    order, so the arithmetic is the same whether the blocks run one after the other
    (`_shared_seed`) or in parallel (`_shared_seed_parallel`). With N >= n_states every row
    C[s] is computed up front (dense); with fewer agents only the visited rows are, on demand,
    so one agent costs O(dim rank) per iteration, not O(n_states dim rank).
    """
    n_states = Phi.shape[0]
    n_agents, rank = w.shape
    dense = n_agents >= n_states
    n_blocks = -(-n_agents // AGENT_BLOCK)
    C = np.empty((n_states, rank))
    stamp = np.full(n_states, -1, dtype=np.int64)
    M = np.zeros((n_states, rank))
    touched = np.empty(n_states, dtype=np.int64)
    touched_at = np.full(n_states, -1, dtype=np.int64)
    M_blocks = np.zeros((n_blocks, n_states, rank))
    touched_blocks = np.empty((n_blocks, n_states), dtype=np.int64)
    touched_at_blocks = np.full((n_blocks, n_states), -1, dtype=np.int64)
    counts = np.zeros(n_blocks, dtype=np.int64)
    oks = np.ones(n_blocks, dtype=np.bool_)
    R = np.empty((rank, rank))
    cur = np.empty(n_agents, dtype=np.int64)
    nxt = np.empty(n_agents, dtype=np.int64)
    for j in range(alphas.shape[0]):
        t = t_start + j
        alpha = alphas[j]
        rep = _is_representation_step(t, algorithm, tau)
        heads = not (algorithm == FEDREP and rep)
        if dense:
            _dense_rows(C, stamp, j, Phi, BT)
        for b in prange(n_blocks):  # a plain range in the serial compilation
            oks[b], counts[b] = _agent_block(
                b * AGENT_BLOCK, min(n_agents, (b + 1) * AGENT_BLOCK), j, alpha, rep, heads,
                dense, BT, C, stamp, w, eta, state, cur, nxt, Phi, rewards, P_table, mu_table,
                chain, sampling, uniforms, normals, sigma, c_eta, threshold, M_blocks[b],
                touched_blocks[b], touched_at_blocks[b])
        diverged = _finish_step(j, t, alpha, rep, BT, w, eta, Phi, M_blocks, touched_blocks,
                                counts, M, touched, touched_at, R, rebase, c_B, threshold,
                                record_at, rec_offset, theta_star, J, rel_weight, records,
                                snapshots, oks.all())
        if diverged >= 0:
            return diverged
    return -1


def _compiled(body, name: str, parallel: bool):
    """Compile ``body`` under its own name (numba caches by name: one cache entry per variant)."""
    clone = types.FunctionType(body.__code__, body.__globals__, name)
    clone.__qualname__ = name
    return njit(cache=True, fastmath=_FAST, parallel=parallel)(clone)


_shared_seed = _compiled(_shared_seed_body, "_shared_seed", parallel=False)
_shared_seed_parallel = _compiled(_shared_seed_body, "_shared_seed_parallel", parallel=True)


@_jit
def _average_copies(BL, BT) -> None:
    """B~^T = (1/N) sum_i (B^i)^T (average_local_copies)."""
    n_agents = BL.shape[0]
    BT[:] = 0.0
    for i in range(n_agents):
        BT += BL[i]
    BT /= n_agents


@_jit
def _shared_copies_seed(BT, BL, w, eta, state, Phi, rewards, P_table, mu_table, chain, sampling,
                        uniforms, normals, sigma, alphas, t_start, total_steps, period,
                        algorithm, tau, rebase, c_eta, c_B, threshold, record_at, rec_offset,
                        theta_star, J, rel_weight, records, snapshots):
    """Period K > 1: each agent steps its own copy BL[i] = (B^i)^T; rounds every K iterations."""
    dim = Phi.shape[1]
    n_agents, rank = w.shape
    c0 = np.empty(rank)
    c1 = np.empty(rank)
    R = np.empty((rank, rank))
    cur = np.empty(n_agents, dtype=np.int64)
    nxt = np.empty(n_agents, dtype=np.int64)
    for j in range(alphas.shape[0]):
        t = t_start + j
        alpha = alphas[j]
        rep = _is_representation_step(t, algorithm, tau)
        heads = not (algorithm == FEDREP and rep)
        ok = True
        _sample_all(P_table, mu_table, chain, sampling, state, uniforms, j, 0, n_agents, cur, nxt)
        for i in range(n_agents):
            s0, s1 = cur[i], nxt[i]
            reward = rewards[i, s0]
            if sigma > 0.0:
                reward += sigma * normals[i, j]
            for k in range(rank):
                c0[k] = _dot(Phi[s0], BL[i, k])
                c1[k] = _dot(Phi[s1], BL[i, k])
            delta = reward - eta[i]
            for k in range(rank):
                delta += (c1[k] - c0[k]) * w[i, k]
            eta[i] += c_eta * alpha * (reward - eta[i])
            ok &= abs(eta[i]) <= threshold
            if rep:
                for k in range(rank):
                    x = c_B * alpha * delta * w[i, k]
                    for a in range(dim):
                        BL[i, k, a] += x * Phi[s0, a]
            if heads:
                for k in range(rank):
                    w[i, k] += alpha * delta * c0[k]
                    ok &= abs(w[i, k]) <= threshold
        if _communicates(t, total_steps, period, algorithm, tau):
            _average_copies(BL, BT)
            ok &= _retract(BT, R, w, rebase, threshold)
            for i in range(n_agents):
                BL[i] = BT
        if not ok:
            return t + 1
        if record_at[j] >= 0:
            g = record_at[j]
            record_shared(BT, w, eta, theta_star, J, rel_weight, records[g],
                          snapshots[g - rec_offset])
    return -1


@_jit
def _average_thetas(theta) -> None:
    """theta^i <- (1/N) sum_j theta^j for every i (fedtd_average)."""
    n_agents, dim = theta.shape
    for a in range(dim):
        mean = 0.0
        for i in range(n_agents):
            mean += theta[i, a]
        mean /= n_agents
        for i in range(n_agents):
            theta[i, a] = mean


@_jit
def _project_thetas(theta, rank) -> None:
    """Theta <- U_r U_r^T Theta by truncated SVD of theta (N x d) (lowrank_projection)."""
    n_agents, dim = theta.shape
    Vt = np.linalg.svd(theta, full_matrices=n_agents < dim)[2]
    h = np.zeros(rank)
    for i in range(n_agents):
        for k in range(rank):
            h[k] = _dot(theta[i], Vt[k])
        for a in range(dim):
            acc = 0.0
            for k in range(rank):
                acc += h[k] * Vt[k, a]
            theta[i, a] = acc


@_jit
def _theta_seed(theta, eta, state, Phi, rewards, P_table, mu_table, chain, sampling, uniforms,
                normals, sigma, alphas, t_start, total_steps, period, algorithm, rank, c_eta,
                threshold, record_at, rec_offset, theta_star, J, rel_weight, records, snapshots):
    """Full-parameter baselines: local TD, plus averaging (fedtd) or projection (lowrank_svd)."""
    dim = Phi.shape[1]
    n_agents = theta.shape[0]
    cur = np.empty(n_agents, dtype=np.int64)
    nxt = np.empty(n_agents, dtype=np.int64)
    for j in range(alphas.shape[0]):
        t = t_start + j
        alpha = alphas[j]
        ok = True
        _sample_all(P_table, mu_table, chain, sampling, state, uniforms, j, 0, n_agents, cur, nxt)
        for i in range(n_agents):
            s0, s1 = cur[i], nxt[i]
            reward = rewards[i, s0]
            if sigma > 0.0:
                reward += sigma * normals[i, j]
            delta = reward - eta[i]
            for a in range(dim):
                delta += (Phi[s1, a] - Phi[s0, a]) * theta[i, a]
            eta[i] += c_eta * alpha * (reward - eta[i])
            ok &= abs(eta[i]) <= threshold
            for a in range(dim):
                theta[i, a] += alpha * delta * Phi[s0, a]
                ok &= abs(theta[i, a]) <= threshold
        if not ok:
            return t + 1
        if algorithm != LOCAL and ((t + 1) % period == 0 or t + 1 == total_steps):
            if algorithm == FEDTD:
                _average_thetas(theta)
            else:
                _project_thetas(theta, rank)
        if record_at[j] >= 0:
            g = record_at[j]
            record_theta(theta, eta, theta_star, J, rel_weight, algorithm, records[g],
                         snapshots[g - rec_offset])
    return -1


@njit(cache=True, parallel=True)
def shared_chunk(B, B_local, w, eta, state, diverged, Phi, rewards, P_table, mu_table,
                 chain, sampling, uniforms, normals, sigma, alphas, t_start, total_steps, period,
                 algorithm, tau, rebase, c_eta, c_B, threshold, record_at, rec_offset,
                 theta_star, J, rel_weight, records, snapshots) -> None:
    """Advance every live seed of a shared-representation run by one chunk, seeds in parallel.

    ``B`` (seeds, dim, rank) and, when period > 1, the agents' copies ``B_local`` (seeds, N,
    dim, rank; empty when period = 1) are updated in place. ``diverged[s]`` < 0 marks a live
    seed and receives the divergence step. ``uniforms`` is (seeds, N, steps, draws per step),
    ``normals`` (seeds, N, steps) or (seeds, N, 0) without reward noise.
    """
    for s in prange(B.shape[0]):
        if diverged[s] >= 0:
            continue
        BT = np.ascontiguousarray(B[s].T)
        if period == 1:
            diverged[s] = _shared_seed(
                BT, w[s], eta[s], state[s], Phi, rewards, P_table, mu_table, chain, sampling,
                uniforms[s], normals[s], sigma, alphas, t_start, algorithm, tau, rebase, c_eta,
                c_B, threshold, record_at, rec_offset, theta_star, J, rel_weight, records[s],
                snapshots[s])
        else:
            BL = np.ascontiguousarray(B_local[s].transpose(0, 2, 1))
            diverged[s] = _shared_copies_seed(
                BT, BL, w[s], eta[s], state[s], Phi, rewards, P_table, mu_table, chain, sampling,
                uniforms[s], normals[s], sigma, alphas, t_start, total_steps, period, algorithm,
                tau, rebase, c_eta, c_B, threshold, record_at, rec_offset, theta_star, J,
                rel_weight, records[s], snapshots[s])
            B_local[s] = BL.transpose(0, 2, 1)
        B[s] = BT.T


@njit(cache=True, parallel=True)
def theta_chunk(theta, eta, state, diverged, Phi, rewards, P_table, mu_table, chain, sampling,
                uniforms, normals, sigma, alphas, t_start, total_steps, period, algorithm, rank,
                c_eta, threshold, record_at, rec_offset, theta_star, J, rel_weight, records,
                snapshots) -> None:
    """Advance every live seed of a full-parameter baseline by one chunk, seeds in parallel."""
    for s in prange(theta.shape[0]):
        if diverged[s] >= 0:
            continue
        diverged[s] = _theta_seed(
            theta[s], eta[s], state[s], Phi, rewards, P_table, mu_table, chain, sampling,
            uniforms[s], normals[s], sigma, alphas, t_start, total_steps, period, algorithm,
            rank, c_eta, threshold, record_at, rec_offset, theta_star, J, rel_weight,
            records[s], snapshots[s])


@njit(cache=True)
def shared_chunk_by_agents(B, w, eta, state, diverged, Phi, rewards, P_table, mu_table,
                           chain, sampling, uniforms, normals, sigma, alphas, t_start,
                           algorithm, tau, rebase, c_eta, c_B, threshold, record_at,
                           rec_offset, theta_star, J, rel_weight, records, snapshots) -> None:
    """`shared_chunk` for period 1 with the agents' blocks in parallel, seeds one after another.

    For few seeds and many agents (N >= n_states, so the rows C are dense and the blocks share
    nothing writable); bit-identical to `shared_chunk`.
    """
    for s in range(B.shape[0]):
        if diverged[s] >= 0:
            continue
        BT = np.ascontiguousarray(B[s].T)
        diverged[s] = _shared_seed_parallel(
            BT, w[s], eta[s], state[s], Phi, rewards, P_table, mu_table, chain, sampling,
            uniforms[s], normals[s], sigma, alphas, t_start, algorithm, tau, rebase, c_eta, c_B,
            threshold, record_at, rec_offset, theta_star, J, rel_weight, records[s],
            snapshots[s])
        B[s] = BT.T
