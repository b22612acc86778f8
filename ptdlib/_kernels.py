"""Compiled (numba) kernels of the simulator: the steps of `ptdlib.steps`, per agent, in loops.

Random numbers are drawn beforehand in bulk (`ptdlib.simulate`); these kernels are
deterministic consumers of them (QuantEcon style). Each kernel advances every seed of a batch
by one chunk of iterations, in place, seeds in parallel (``prange``); agents are an inner loop
so that an iteration costs O(rank) per agent instead of O(dim rank).

How each kernel line maps to `ptdlib.steps` (docs/algorithm.md)
--------------------------------------------------------------
=====================  =============================================  ===========================
kernel line            equation                                       steps.py function
=====================  =============================================  ===========================
``_sample_all``        one uniform -> s' (rule of markov.sample_next_states)     (sampling)
``delta = ...``        delta = r - eta + (phi(s') - phi(s))^T B w      `td_error`
``eta[i] += ...``      eta <- eta + c_eta alpha (r - eta)             `gain_step`
                       or eta <- eta + c_eta alpha delta (GAIN_TD)    `differential_gain_step`
``w[i, k] += ...``     w <- w + alpha delta B^T phi(s)                `head_step`
``w[i, k] *= ...``     then w <- w R / max(||w||, R) if R < inf       `head_projection`
``M[s0, k] += ...``    sum_i G^i = Phi^T M, M[s] = sum_{i: s_i=s}     `representation_gradient`
                       delta_i w_i^T, since G^i = delta_i phi(s_i) w_i^T
                       (HEADS_FIRST: delta'_i w_{t+1}^T)              `heads_first_gradient`
``_server_step``       B~ = B + beta (1/N) Phi^T M, beta = c_B alpha  `server_average`
``BL[i, k, a] += ..``  B^i <- B^i + beta delta phi(s) w^T             `local_representation_step`
``_average_copies``    B~ = (1/N) sum_i B^i                           `average_local_copies`
``_retract``           B~ = Q R, diag R > 0; then w <- R w if rebase  `retraction_step`
                       (POLAR: B~ = U S V^T, B = U V^T, w <- V S V^T w)  `polar_retraction_step`
``theta[i, a] += ..``  theta <- theta + alpha delta phi(s)            `local_td_step`
``_average_thetas``    theta^i <- (1/N) sum_j theta^j                 `fedtd_average`
``_project_thetas``    Theta <- U_r U_r^T Theta (top-r eigenvectors)  `lowrank_projection`
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
Floating point is exact IEEE arithmetic by default: no reassociation, no fused multiply-adds,
so the same inputs give the same bits on every x86-64 CPU, with or without AVX-512/FMA, and
under any ``NUMBA_CPU_NAME`` (tests/test_foreign_machine.py); the kernels use only +, -, *, /
and sqrt, which IEEE 754 rounds alike everywhere, so arm64 should agree too (not tested here).
``PTD_FASTMATH=1`` in the environment (read at import) lets LLVM reassociate and contract
(``fastmath`` without the no-NaN/no-inf flags, which the divergence test needs): faster, but the
last bits then depend on the CPU's vector width and FMA, so tests and reports never use it, and
report provenance records the mode (`FASTMATH`). Its compiled code is cached in a folder of its
own, since numba's cache key does not include the fastmath flags. `alias_draw` is exact in
either mode.

Readings (docs/algorithm.md, "Readings"). The shared-basis kernels take ``betas``, the basis
step of each iteration (c_B alpha_t, or beta_t of a representation schedule), and ``switches``
= (update order, gain update, retraction, head radius): the integer codes below and R (inf for
no projection). The theta kernel takes the gain code alone. Each code is a branch on a
loop-invariant integer; the defaults run the same arithmetic, in the same order, as without
the switches.

Divergence: after every iteration the updated w, eta (or theta, eta) and the averaged basis
must be finite with absolute entries <= ``threshold``; otherwise the seed stops and the kernel
returns the number of completed iterations (its divergence step). A numerically rank-deficient
B~ (R_kk <= dim eps max_j R_jj, the test of `subspace.qr_retraction`) counts as divergence.

Running average (``average_from``, `ptdlib.simulate`). The kernels take ``avg_from`` and
``theta_sum`` (N x dim per seed): after every iteration t with t + 1 >= avg_from that did not
diverge they add the agents' parameters theta_{t+1}^i (B w_i, the agent's own copy B^i w_i
between rounds when K > 1, or theta_i) to ``theta_sum``, O(dim rank) per agent. Off, avg_from
is larger than any iteration and ``theta_sum`` is empty: the default path only compares two
integers per iteration and computes what it computed before, bit for bit.

Record layout: ``records[s, g]`` = (parameter error, relative parameter error, head error, gain
error) at global record g (NaN where not applicable); ``snapshots[s, g - offset]`` holds what
the subspace distances are computed from (the basis B, the Gram matrix Theta Theta^T, or the
mean parameter, by family).
"""

from __future__ import annotations

import os
import types
from pathlib import Path

import numba
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
#: Reading codes (ptdlib.steps.UPDATE_ORDERS, GAIN_UPDATES, RETRACTIONS, in that order).
SIMULTANEOUS, HEADS_FIRST = 0, 1
GAIN_REWARD, GAIN_TD = 0, 1
QR, POLAR = 0, 1
#: Metric columns of ``records``.
PARAM, RELATIVE, HEAD, GAIN = 0, 1, 2, 3
N_METRICS = 4
#: Agents per block of the K = 1 kernel (fixed: it fixes the summation order of M).
AGENT_BLOCK = 256
_EPS = float(np.finfo(np.float64).eps)
#: Opt-in fast mode (module docstring): the CPU then decides the last bits of every result.
FASTMATH = os.environ.get("PTD_FASTMATH", "0") == "1"
#: Reassociation and contraction let LLVM vectorise the inner products; no 'nnan'/'ninf'.
_FLAGS: set[str] = {"reassoc", "contract", "arcp", "nsz"} if FASTMATH else set()
if FASTMATH:  # numba keys its cache on bytecode and CPU, not flags: keep the two modes apart
    _default_cache = Path(__file__).resolve().parent / "__pycache__"
    numba.config.CACHE_DIR = str(Path(numba.config.CACHE_DIR or _default_cache) / "fastmath")
_jit = njit(cache=True, fastmath=_FLAGS)
#: Small helpers inlined into the caller's IR (numba inline="always"): factoring costs no call.
_inline = njit(cache=True, fastmath=_FLAGS, inline="always")


@njit(cache=True)  # exact in either mode: the draw must match markov.sample_next_states
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


#: Rows per task of `alias_rows` (scratch arrays are allocated once per block).
ALIAS_BLOCK = 4096


@njit(cache=True, parallel=True)  # exact in either mode: the tables decide every sampled state
def alias_rows(p: np.ndarray, prob: np.ndarray, alias: np.ndarray) -> None:
    """Walker alias tables of each row of p (rows, n) into prob, alias (markov.alias_tables).

    ``prob`` and ``alias`` are (rows, n) arrays, possibly strided views of one packed table
    (``alias`` may then be float64: states < 2^53 are exact). Blocks of rows run in parallel;
    each row's table depends on that row alone.
    """
    rows = p.shape[0]
    for b in prange(-(-rows // ALIAS_BLOCK)):
        _alias_block(p, prob, alias, b * ALIAS_BLOCK, min(rows, (b + 1) * ALIAS_BLOCK))


@njit(cache=True)
def _alias_block(p, prob, alias, lo, hi) -> None:
    """Rows lo..hi-1 of `alias_rows`.

    Vose's sweep, row by row: with q = n p / sum(p) (a fair share is 1), the light columns
    (q < 1) and the heavy ones (q >= 1; the largest q if rounding left none) are each visited in
    column order. With D_m the deficit 1 - q of the lights before light m and E_j the excess
    q - 1 of heavies 0..j (prefix sums, so no weight is carried by repeated subtraction), light
    m keeps prob q_m and aliases the first heavy with E_j >= D_m; heavy j is demoted iff
    E_j < D_total (never the last heavy), with prob 1 + E_j - D_incl(L_j), L_j the last light
    with D_m <= E_j, and aliases heavy j + 1; other heavies keep prob min(q, 1) and alias
    themselves.
    """
    n = p.shape[1]
    q = np.empty(n)
    lights = np.empty(n, dtype=np.int64)
    heavies = np.empty(n, dtype=np.int64)
    deficit_before = np.empty(n)  # D_m, lights in column order
    deficit_upto = np.empty(n)  # D_m + (1 - q_m)
    excess_upto = np.empty(n)  # E_j, heavies in column order
    for row in range(lo, hi):
        total = 0.0
        for c in range(n):
            total += p[row, c]
        scale = n / total
        largest, top = 0, -1.0
        for c in range(n):
            q[c] = p[row, c] * scale
            if q[c] > top:
                largest, top = c, q[c]
        forced = top < 1.0  # rounding can leave every q just below 1
        n_light = n_heavy = 0
        deficit = excess = 0.0
        for c in range(n):
            # Both lists get c; only the one whose count advances keeps it: no branch to mispredict.
            heavy = q[c] >= 1.0 or (forced and c == largest)
            lights[n_light] = c
            heavies[n_heavy] = c
            deficit_before[n_light] = deficit
            excess += max(q[c] - 1.0, 0.0) if heavy else 0.0
            deficit += 0.0 if heavy else 1.0 - q[c]
            deficit_upto[n_light] = deficit
            excess_upto[n_heavy] = excess
            n_heavy += heavy
            n_light += 1 - heavy
        j = 0
        for m in range(n_light):
            while j < n_heavy - 1 and excess_upto[j] < deficit_before[m]:
                j += 1
            prob[row, lights[m]] = q[lights[m]]
            alias[row, lights[m]] = heavies[j]
        paid = 0  # L_j: lights with D_m <= E_j
        for j in range(n_heavy):
            while paid < n_light and deficit_before[paid] <= excess_upto[j]:
                paid += 1
            c = heavies[j]
            if j < n_heavy - 1 and excess_upto[j] < deficit:  # then paid >= 1
                prob[row, c] = min(max(1.0 + excess_upto[j] - deficit_upto[paid - 1], 0.0), 1.0)
                alias[row, c] = heavies[j + 1]
            else:
                prob[row, c] = min(q[c], 1.0)
                alias[row, c] = c


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
def orthonormal_factor(G: np.ndarray) -> np.ndarray:
    """Q of G = Q R with diag(R) > 0 for each matrix of a (batch, dim, rank) stack (`qr_retract`).

    The sign-fixed QR factor of subspace.haar_orthonormal without LAPACK, so that the Haar
    bases of problems and of B_0 are the same bits on every machine.
    """
    batch, dim, rank = G.shape
    Q = np.empty_like(G)
    BT = np.empty((rank, dim))
    R = np.empty((rank, rank))
    for b in range(batch):
        BT[:] = G[b].T
        if not qr_retract(BT, R):
            raise ValueError("orthonormal_factor: a matrix of the stack is numerically rank "
                             "deficient")
        Q[b] = BT.T
    return Q


@_jit
def _stacked_matmul(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    batch, m, inner = A.shape
    n = B.shape[2]
    out = np.zeros((batch, m, n))
    for b in range(batch):
        for i in range(m):
            for k in range(inner):
                a = A[b, i, k]
                for j in range(n):
                    out[b, i, j] += a * B[b, k, j]
    return out


def matmul(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A @ B for matrices or equal stacks of them, each entry summed over k in order (no BLAS).

    BLAS kernels sum in an order that depends on the CPU (OpenBLAS picks a kernel per CPU
    model), so the last bits of a product differ between machines; problems are built with this
    product so that a seed gives the same problem everywhere.
    """
    A3, B3 = (np.ascontiguousarray(X, dtype=np.float64) for X in (A, B))
    if A3.ndim not in (2, 3) or A3.ndim != B3.ndim or A3.shape[:-2] != B3.shape[:-2] \
            or A3.shape[-1] != B3.shape[-2]:
        raise ValueError(f"matmul needs (m, k) @ (k, n) or equal stacks of them; got "
                         f"{A3.shape} @ {B3.shape}")
    if A3.ndim == 2:
        return _stacked_matmul(A3[None], B3[None])[0]
    return _stacked_matmul(A3, B3)


#: Cyclic Jacobi stops when the off-diagonal mass is below this multiple of eps ||G||_F, or
#: after JACOBI_SWEEPS sweeps (convergence is quadratic: 6-10 sweeps at dim <= 100).
JACOBI_SWEEPS = 50


@_jit
def symmetric_eigen(G: np.ndarray, values: np.ndarray, vectors: np.ndarray) -> None:
    """Eigen-decomposition G = V diag(values) V^T of a symmetric G (m x m), values descending.

    Cyclic Jacobi rotations (Golub & Van Loan, Matrix Computations, 4th ed., Alg. 8.5.3) on a
    copy of G, in a fixed order with exact IEEE arithmetic, so that the result does not depend
    on the BLAS/LAPACK build or the CPU (the reason it replaces ``numpy.linalg.eigh`` in the
    simulator's data path). Accurate to O(eps ||G||) in the eigenvalues and to
    O(eps ||G|| / gap) in the eigenvectors, like a LAPACK solver.
    """
    m = G.shape[0]
    A = G.copy()
    V = np.eye(m)
    scale = 0.0
    for i in range(m):
        for k in range(m):
            scale += A[i, k] * A[i, k]
    for _ in range(JACOBI_SWEEPS):
        off = 0.0
        for i in range(m):
            for k in range(i + 1, m):
                off += A[i, k] * A[i, k]
        if not off > _EPS * _EPS * scale:
            break
        for p in range(m - 1):
            for q in range(p + 1, m):
                if A[p, q] == 0.0:
                    continue
                zeta = (A[q, q] - A[p, p]) / (2.0 * A[p, q])
                t = (1.0 if zeta >= 0.0 else -1.0) / (abs(zeta) + np.sqrt(1.0 + zeta * zeta))
                c = 1.0 / np.sqrt(1.0 + t * t)
                s = t * c
                for k in range(m):  # A <- A J (columns p, q)
                    akp, akq = A[k, p], A[k, q]
                    A[k, p] = c * akp - s * akq
                    A[k, q] = s * akp + c * akq
                for k in range(m):  # A <- J^T A (rows p, q)
                    apk, aqk = A[p, k], A[q, k]
                    A[p, k] = c * apk - s * aqk
                    A[q, k] = s * apk + c * aqk
                for k in range(m):
                    vkp, vkq = V[k, p], V[k, q]
                    V[k, p] = c * vkp - s * vkq
                    V[k, q] = s * vkp + c * vkq
    order = np.empty(m, dtype=np.int64)
    for i in range(m):
        order[i] = i
    for i in range(m):  # selection sort, descending; ties keep index order
        best = i
        for k in range(i + 1, m):
            if A[order[k], order[k]] > A[order[best], order[best]]:
                best = k
        order[i], order[best] = order[best], order[i]
    for i in range(m):
        values[i] = A[order[i], order[i]]
        for k in range(m):
            vectors[k, i] = V[k, order[i]]


@_jit
def _rotate(X, p, q, c, s) -> None:
    """Rows p, q of X <- (c x_p - s x_q, s x_p + c x_q): a plane (Jacobi) rotation."""
    for a in range(X.shape[1]):
        xp, xq = X[p, a], X[q, a]
        X[p, a] = c * xp - s * xq
        X[q, a] = s * xp + c * xq


@_jit
def polar_retract(BT: np.ndarray, H: np.ndarray) -> bool:
    """In place B^T <- (U V^T)^T and H = V S V^T with B~ = U S V^T; False if B~ is deficient.

    One-sided Jacobi (Hestenes 1958; Demmel & Veselic 1992): plane rotations of the rows of
    BT = B~^T, accumulated in V^T, until every pair of rows is orthogonal to working precision;
    the rows are then s_k u_k^T (subspace.polar_retraction without LAPACK). Unlike an eigen-
    decomposition of B~^T B~ it does not square the condition number, so the rank test
    s_min <= dim eps s_max is the one numpy's SVD gives. Near an orthonormal B~ (the usual
    small step) one or two sweeps suffice.
    """
    rank, dim = BT.shape
    VT = np.eye(rank)  # rows are the columns of V
    for _ in range(JACOBI_SWEEPS):
        rotated = False
        for p in range(rank - 1):
            for q in range(p + 1, rank):
                a, b, g = _dot(BT[p], BT[p]), _dot(BT[q], BT[q]), _dot(BT[p], BT[q])
                if not abs(g) > _EPS * np.sqrt(a * b):
                    continue
                rotated = True
                zeta = (b - a) / (2.0 * g)
                t = (1.0 if zeta >= 0.0 else -1.0) / (abs(zeta) + np.sqrt(1.0 + zeta * zeta))
                c = 1.0 / np.sqrt(1.0 + t * t)
                _rotate(BT, p, q, c, c * t)
                _rotate(VT, p, q, c, c * t)
        if not rotated:
            break
    sigma = np.empty(rank)
    for k in range(rank):
        sigma[k] = np.sqrt(_dot(BT[k], BT[k]))
    largest, smallest = sigma.max(), sigma.min()
    if not smallest > dim * _EPS * largest:
        return False
    U = np.empty_like(BT)
    for k in range(rank):
        for a in range(dim):
            U[k, a] = BT[k, a] / sigma[k]
    for m in range(rank):  # B^T = V U^T: row m is sum_k V[m, k] u_k^T; H = V S V^T
        for a in range(dim):
            acc = 0.0
            for k in range(rank):
                acc += VT[k, m] * U[k, a]
            BT[m, a] = acc
        for n in range(rank):
            acc = 0.0
            for k in range(rank):
                acc += VT[k, m] * sigma[k] * VT[k, n]
            H[m, n] = acc
    return True


@_jit
def basis_distances(B: np.ndarray, B_star: np.ndarray, out: np.ndarray) -> None:
    """out = (||(I - B* B*^T) B||_2, ||(I - B* B*^T) B||_F) of an orthonormal B (dim x rank).

    The residual E = B - B* (B*^T B) by loops in a fixed order, then sigma_max(E) as the root of
    the largest eigenvalue of E^T E (`symmetric_eigen`): the singular values of E are the sines
    of the principal angles. No BLAS or LAPACK: this is `subspace.subspace_distances`.
    """
    dim, rank = B.shape
    E = B.copy()
    for k in range(B_star.shape[1]):
        for j in range(rank):
            c = 0.0
            for a in range(dim):
                c += B_star[a, k] * B[a, j]
            for a in range(dim):
                E[a, j] -= c * B_star[a, k]
    gram = np.empty((rank, rank))
    frobenius = 0.0
    for i in range(rank):
        for j in range(rank):
            acc = 0.0
            for a in range(dim):
                acc += E[a, i] * E[a, j]
            gram[i, j] = acc
        frobenius += gram[i, i]
    values = np.empty(rank)
    symmetric_eigen(gram, values, np.empty((rank, rank)))
    out[0] = np.sqrt(max(values[0], 0.0))
    out[1] = np.sqrt(frobenius)


#: What a record snapshot holds (ptdlib.simulate): a basis B, the Gram matrix Theta Theta^T, or
#: the mean parameter.
BASIS, GRAM, MEAN = 0, 1, 2


@_jit
def top_eigenvectors(G: np.ndarray, rank: int) -> tuple[np.ndarray, bool]:
    """(V_r, defined): the top-r eigenvectors of a symmetric PSD G (dim x dim), and whether their
    span is defined, lambda_r > dim eps lambda_1 (it is not while rank(G) < r)."""
    dim = G.shape[0]
    values = np.empty(dim)
    V = np.empty((dim, dim))
    symmetric_eigen(G, values, V)
    return np.ascontiguousarray(V[:, :rank]), values[rank - 1] > dim * _EPS * values[0]


@_jit
def snapshot_distances(snapshots, B_star, kind, out) -> None:
    """out[:, s, g] = (spectral, Frobenius) distance to span(B*) of snapshot (s, g).

    ``kind`` BASIS: the snapshot is B; GRAM: Theta Theta^T, compared through its top-r
    eigenvectors (undefined while rank(Theta) < r); MEAN: a vector theta-bar, whose distance is
    the sine of its angle to span(B*) (undefined when it is 0). Undefined distances and
    snapshots with a non-finite entry leave ``out`` as it was (the caller fills it with NaN).
    """
    rank = B_star.shape[1]
    pair = np.empty(2)
    for s in range(snapshots.shape[0]):
        for g in range(snapshots.shape[1]):
            snap = snapshots[s, g]
            if not np.all(np.isfinite(snap)):
                continue
            if kind == BASIS:
                basis_distances(snap, B_star, pair)
            elif kind == GRAM:
                basis, defined = top_eigenvectors(snap, rank)
                if not defined:
                    continue
                basis_distances(basis, B_star, pair)
            else:
                norm = np.sqrt(_dot(snap[:, 0], snap[:, 0]))
                if not norm > 0.0:
                    continue
                basis_distances(snap / norm, B_star, pair)
                pair[0] = pair[1]  # one column: both norms are the sine of the angle
            out[0, s, g] = pair[0]
            out[1, s, g] = pair[1]


@_inline
def _td_error(reward, gain, next_row, row, head) -> float:
    """delta = r - eta + (c_{t+1} - c_t)^T w (td_error) with c = B^T phi(s), rows of length r."""
    delta = reward - gain
    for k in range(head.shape[0]):
        delta += (next_row[k] - row[k]) * head[k]
    return delta


@_inline
def _project(w, i, radius) -> None:
    """w_i <- w_i R / ||w_i|| if ||w_i|| > R (head_projection; heads inside keep their bits)."""
    norm = 0.0
    for k in range(w.shape[1]):
        norm += w[i, k] * w[i, k]
    norm = np.sqrt(norm)
    if norm > radius:
        scale = radius / norm
        for k in range(w.shape[1]):
            w[i, k] *= scale


@_jit
def _rebase(w: np.ndarray, R: np.ndarray, upper: bool, radius: float, threshold: float) -> bool:
    """w_i <- R w_i for every agent (R upper triangular, or full when not ``upper``), then onto
    ||w_i|| <= radius (retraction_step with rebase_heads); False if out of range."""
    n_agents, rank = w.shape
    row = np.empty(rank)
    ok = True
    for i in range(n_agents):
        for k in range(rank):
            acc = 0.0
            for m in range(k if upper else 0, rank):
                acc += R[k, m] * w[i, m]
            row[k] = acc
        w[i] = row
        if radius < np.inf:
            _project(w, i, radius)
        for k in range(rank):
            ok &= abs(w[i, k]) <= threshold
    return ok


@_inline
def _retract(BT, R, w, rebase, retraction, radius, threshold) -> bool:
    """Step 7 in place: B^T <- Q^T of B~ = Q R (or, POLAR, the polar factor of B~ = U S V^T with
    R <- V S V^T), then w_i <- R w_i if rebase (retraction_step, polar_retraction_step).

    False if B~ is numerically rank-deficient or a re-based head leaves [-threshold, threshold].
    """
    ok = polar_retract(BT, R) if retraction == POLAR else qr_retract(BT, R)
    if rebase:
        ok &= _rebase(w, R, retraction != POLAR, radius, threshold)
    return ok


@_jit
def _add_shared_parameters(BT, w, theta_sum, lo, hi) -> None:
    """theta_sum[i] += B w_i for agents lo..hi-1, from BT = B^T (rank x dim)."""
    rank, dim = BT.shape
    for i in range(lo, hi):
        for a in range(dim):
            acc = 0.0
            for k in range(rank):
                acc += BT[k, a] * w[i, k]
            theta_sum[i, a] += acc


@_jit
def _add_copy_parameters(BL, w, theta_sum) -> None:
    """theta_sum[i] += B^i w_i, each agent with its own copy BL[i] = (B^i)^T (K > 1)."""
    for i in range(w.shape[0]):
        _add_shared_parameters(BL[i], w, theta_sum, i, i + 1)


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


@_inline
def _row(C, stamp, j, Phi, BT, s) -> None:
    """C[s] = phi(s)^T B, computed once per iteration j (stamp).

    Inlined by numba: `_agent_block` grew past LLVM's own inlining budget with the readings, and
    a call per agent then cost 10-25% of the default throughput at N = 1 and 16 (measured).
    """
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
                 switches, threshold, M, touched, touched_at):
    """Steps 1-5 (docs/algorithm.md) for agents lo..hi-1 of one iteration; returns (ok, rows
    of M touched).

    The block's own M (n_states x rank) accumulates delta_i w_i^T by state s_t^i and its
    ``touched`` list the states it visited; rows C[s] are read (dense) or computed on demand.
    HEADS_FIRST (personalized only: rep and heads together) accumulates delta'_i w_{t+1}^T
    after the head step instead, with delta' from the new head and the old gain.

    The per-agent helpers (`_row`, `_td_error`, `_project`) are inlined into the loop by numba.
    """
    order, gain, _, radius = switches
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
        delta = _td_error(reward, eta[i], C[s1], C[s0], w[i])
        eta_t = eta[i]
        eta[i] += c_eta * alpha * (delta if gain == GAIN_TD else reward - eta_t)
        ok &= abs(eta[i]) <= threshold
        if rep and order == SIMULTANEOUS:
            if touched_at[s0] != j:  # first agent of the block in s0: register the row
                touched_at[s0] = j
                touched[n_touched] = s0
                n_touched += 1
            for k in range(rank):
                M[s0, k] += delta * w[i, k]
        if heads:
            for k in range(rank):
                w[i, k] += alpha * delta * C[s0, k]
            if radius < np.inf:
                _project(w, i, radius)
            for k in range(rank):
                ok &= abs(w[i, k]) <= threshold
        if rep and order == HEADS_FIRST:  # delta' from the new head and the old gain
            delta = _td_error(reward, eta_t, C[s1], C[s0], w[i])
            if touched_at[s0] != j:
                touched_at[s0] = j
                touched[n_touched] = s0
                n_touched += 1
            for k in range(rank):
                M[s0, k] += delta * w[i, k]
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
def _finish_step(j, t, beta, rep, BT, w, eta, Phi, M_blocks, touched_blocks, counts, M,
                 touched, touched_at, R, rebase, switches, threshold, record_at, rec_offset,
                 theta_star, J, rel_weight, records, snapshots, ok) -> int:
    """Steps 6-7 after the agents' blocks, then the divergence test and the record.

    Returns the divergence step t + 1, or -1.
    """
    if rep:
        n_touched = _merge_blocks(M_blocks, touched_blocks, counts, M, touched, touched_at, j)
        _server_step(BT, Phi, M, touched, n_touched, beta / w.shape[0])
        ok &= _retract(BT, R, w, rebase, switches[2], switches[3], threshold)
    if not ok:
        return t + 1
    if record_at[j] >= 0:
        g = record_at[j]
        record_shared(BT, w, eta, theta_star, J, rel_weight, records[g],
                      snapshots[g - rec_offset])
    return -1


def _shared_seed_body(BT, w, eta, state, Phi, rewards, P_table, mu_table, chain, sampling, uniforms,
                      normals, sigma, alphas, betas, t_start, algorithm, tau, rebase, c_eta,
                      switches, threshold, record_at, rec_offset, theta_star, J, rel_weight,
                      records, snapshots, avg_from, theta_sum):
    """Period K = 1: one shared basis, averaged and retracted after every representation step.

    Agents are processed in fixed blocks of AGENT_BLOCK (each with its own M), summed in block
    order, so the arithmetic is the same whether the blocks run one after the other
    (`_shared_seed`) or in parallel (`_shared_seed_parallel`). With N >= n_states every row
    C[s] is computed up front (dense); with fewer agents only the visited rows are, on demand,
    so one agent costs O(dim rank) per iteration, not O(n_states dim rank). The running sum
    of B w_i (module docstring, "Running average") is one serial pass over the agents.
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
                chain, sampling, uniforms, normals, sigma, c_eta, switches, threshold,
                M_blocks[b], touched_blocks[b], touched_at_blocks[b])
        diverged = _finish_step(j, t, betas[j], rep, BT, w, eta, Phi, M_blocks, touched_blocks,
                                counts, M, touched, touched_at, R, rebase, switches, threshold,
                                record_at, rec_offset, theta_star, J, rel_weight, records,
                                snapshots, oks.all())
        if diverged >= 0:
            return diverged
        if t + 1 >= avg_from:  # one call, out of line: the default loop stays as it was
            _add_shared_parameters(BT, w, theta_sum, 0, n_agents)
    return -1


def _compiled(body, name: str, parallel: bool):
    """Compile ``body`` under its own name (numba caches by name: one cache entry per variant)."""
    clone = types.FunctionType(body.__code__, body.__globals__, name)
    clone.__qualname__ = name
    return njit(cache=True, fastmath=_FLAGS, parallel=parallel)(clone)


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
                        uniforms, normals, sigma, alphas, betas, t_start, total_steps, period,
                        algorithm, tau, rebase, c_eta, switches, threshold, record_at,
                        rec_offset, theta_star, J, rel_weight, records, snapshots, avg_from,
                        theta_sum):
    """Period K > 1: each agent steps its own copy BL[i] = (B^i)^T; rounds every K iterations."""
    order, gain, retraction, radius = switches
    dim = Phi.shape[1]
    n_agents, rank = w.shape
    c = np.empty((2, rank))  # rows B_i^T phi(s_t), B_i^T phi(s_{t+1})
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
                c[0, k] = _dot(Phi[s0], BL[i, k])
                c[1, k] = _dot(Phi[s1], BL[i, k])
            delta = _td_error(reward, eta[i], c[1], c[0], w[i])
            eta_t = eta[i]
            eta[i] += c_eta * alpha * (delta if gain == GAIN_TD else reward - eta_t)
            ok &= abs(eta[i]) <= threshold
            if rep and order == SIMULTANEOUS:
                for k in range(rank):
                    x = betas[j] * delta * w[i, k]
                    for a in range(dim):
                        BL[i, k, a] += x * Phi[s0, a]
            if heads:
                for k in range(rank):
                    w[i, k] += alpha * delta * c[0, k]
                if radius < np.inf:
                    _project(w, i, radius)
                for k in range(rank):
                    ok &= abs(w[i, k]) <= threshold
            if rep and order == HEADS_FIRST:  # delta' from the new head and the old gain
                delta = _td_error(reward, eta_t, c[1], c[0], w[i])
                for k in range(rank):
                    x = betas[j] * delta * w[i, k]
                    for a in range(dim):
                        BL[i, k, a] += x * Phi[s0, a]
        if _communicates(t, total_steps, period, algorithm, tau):
            _average_copies(BL, BT)
            ok &= _retract(BT, R, w, rebase, retraction, radius, threshold)
            for i in range(n_agents):
                BL[i] = BT
        if not ok:
            return t + 1
        if t + 1 >= avg_from:
            _add_copy_parameters(BL, w, theta_sum)
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
def gram_matrix(theta: np.ndarray) -> np.ndarray:
    """theta^T theta (dim x dim) of theta (N x dim), summed over agents in order (no BLAS)."""
    n_agents, dim = theta.shape
    gram = np.zeros((dim, dim))
    for i in range(n_agents):
        for a in range(dim):
            for b in range(dim):
                gram[a, b] += theta[i, a] * theta[i, b]
    return gram


@_jit
def _project_thetas(theta, rank) -> None:
    """Theta <- V_r V_r^T Theta, V_r the top-r eigenvectors of theta^T theta (lowrank_projection).

    V_r spans the top-r left singular vectors of Theta = theta^T (`symmetric_eigen`,
    machine-independent, instead of LAPACK's SVD); an undefined span (rank(Theta) < r) needs no
    care: Theta has no component along the extra eigenvectors.
    """
    n_agents, dim = theta.shape
    V = top_eigenvectors(gram_matrix(theta), rank)[0]
    h = np.zeros(rank)
    for i in range(n_agents):
        for k in range(rank):
            h[k] = _dot(theta[i], V[:, k])
        for a in range(dim):
            acc = 0.0
            for k in range(rank):
                acc += h[k] * V[a, k]
            theta[i, a] = acc


@_jit
def _theta_seed(theta, eta, state, Phi, rewards, P_table, mu_table, chain, sampling, uniforms,
                normals, sigma, alphas, t_start, total_steps, period, algorithm, rank, c_eta, gain,
                threshold, record_at, rec_offset, theta_star, J, rel_weight, records, snapshots,
                avg_from, theta_sum):
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
            eta[i] += c_eta * alpha * (delta if gain == GAIN_TD else reward - eta[i])
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
        if t + 1 >= avg_from:
            theta_sum += theta
        if record_at[j] >= 0:
            g = record_at[j]
            record_theta(theta, eta, theta_star, J, rel_weight, algorithm, records[g],
                         snapshots[g - rec_offset])
    return -1


@njit(cache=True, parallel=True)
def shared_chunk(B, B_local, w, eta, state, diverged, Phi, rewards, P_table, mu_table,
                 chain, sampling, uniforms, normals, sigma, alphas, betas, t_start, total_steps,
                 period, algorithm, tau, rebase, c_eta, switches, threshold, record_at,
                 rec_offset, theta_star, J, rel_weight, records, snapshots, avg_from,
                 theta_sum) -> None:
    """Advance every live seed of a shared-representation run by one chunk, seeds in parallel.

    ``B`` (seeds, dim, rank) and, when period > 1, the agents' copies ``B_local`` (seeds, N,
    dim, rank; empty when period = 1) are updated in place. ``diverged[s]`` < 0 marks a live
    seed and receives the divergence step. ``uniforms`` is (seeds, N, steps, draws per step),
    ``normals`` (seeds, N, steps) or (seeds, N, 0) without reward noise. ``alphas`` and
    ``betas`` are the chunk's head and basis steps, ``switches`` the reading (module docstring);
    ``theta_sum`` (seeds, N, dim) receives the running sum from iteration ``avg_from`` on
    (empty, (seeds, 0, dim), when off).
    """
    for s in prange(B.shape[0]):
        if diverged[s] >= 0:
            continue
        BT = np.ascontiguousarray(B[s].T)
        if period == 1:
            diverged[s] = _shared_seed(
                BT, w[s], eta[s], state[s], Phi, rewards, P_table, mu_table, chain, sampling,
                uniforms[s], normals[s], sigma, alphas, betas, t_start, algorithm, tau, rebase,
                c_eta, switches, threshold, record_at, rec_offset, theta_star, J, rel_weight,
                records[s], snapshots[s], avg_from, theta_sum[s])
        else:
            BL = np.ascontiguousarray(B_local[s].transpose(0, 2, 1))
            diverged[s] = _shared_copies_seed(
                BT, BL, w[s], eta[s], state[s], Phi, rewards, P_table, mu_table, chain, sampling,
                uniforms[s], normals[s], sigma, alphas, betas, t_start, total_steps, period,
                algorithm, tau, rebase, c_eta, switches, threshold, record_at, rec_offset,
                theta_star, J, rel_weight, records[s], snapshots[s], avg_from, theta_sum[s])
            B_local[s] = BL.transpose(0, 2, 1)
        B[s] = BT.T


@njit(cache=True, parallel=True)
def theta_chunk(theta, eta, state, diverged, Phi, rewards, P_table, mu_table, chain, sampling,
                uniforms, normals, sigma, alphas, t_start, total_steps, period, algorithm, rank,
                c_eta, gain, threshold, record_at, rec_offset, theta_star, J, rel_weight, records,
                snapshots, avg_from, theta_sum) -> None:
    """Advance every live seed of a full-parameter baseline by one chunk, seeds in parallel;
    ``gain`` is the gain update's code (GAIN_REWARD or GAIN_TD)."""
    for s in prange(theta.shape[0]):
        if diverged[s] >= 0:
            continue
        diverged[s] = _theta_seed(
            theta[s], eta[s], state[s], Phi, rewards, P_table, mu_table, chain, sampling,
            uniforms[s], normals[s], sigma, alphas, t_start, total_steps, period, algorithm,
            rank, c_eta, gain, threshold, record_at, rec_offset, theta_star, J, rel_weight,
            records[s], snapshots[s], avg_from, theta_sum[s])


@njit(cache=True)
def shared_chunk_by_agents(B, w, eta, state, diverged, Phi, rewards, P_table, mu_table,
                           chain, sampling, uniforms, normals, sigma, alphas, betas, t_start,
                           algorithm, tau, rebase, c_eta, switches, threshold, record_at,
                           rec_offset, theta_star, J, rel_weight, records, snapshots, avg_from,
                           theta_sum) -> None:
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
            uniforms[s], normals[s], sigma, alphas, betas, t_start, algorithm, tau, rebase, c_eta,
            switches, threshold, record_at, rec_offset, theta_star, J, rel_weight, records[s],
            snapshots[s], avg_from, theta_sum[s])
        B[s] = BT.T
