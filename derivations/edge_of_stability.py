"""Scalar networks at the edge of stability: conservation laws, the gradient-flow solution (GFS) and its
sharpness, the catapult map of the uv model, and the self-stabilisation (Lotka-Volterra) limit.

Conventions (spec PART B): scalar network f(w) = prod_i w_i, L = (f - y)^2 / 2, r = f - y;
uv model f = u.v / sqrt(n), lambda = (|u|^2 + |v|^2)/n, L = (f - y)^2 / 2.
Papers: Kreisler, Nacson, Soudry, Carmon 2023 (GFS sharpness); Zhu, Wang, Wang, Zhou, Ge 2023 (minimalist
tied depth-4 example); Lewkowycz, Bahri, Dyer, Sohl-Dickstein, Gur-Ari 2020 (catapult); Damian, Nichani, Lee
2023 (self-stabilisation).

Closed forms are plain jax.numpy functions (jit/vmap/grad-safe) written from the sympy-checked expressions
below; `IDENTITIES` lists the symbolic statements that must simplify to 0. Never imports `toymodels`.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .codegen import Identity

__all__ = [
    "IDENTITIES",
    "gd_pair_factor",
    "gfs_offset",
    "gfs_squares",
    "gfs_sharpness",
    "gfs_sharpness_depth2",
    "min_gfs_sharpness",
    "uv_map",
    "uv_map_trajectory",
    "uv_width_free_map",
    "lazy_shift",
    "lv_invariant",
    "lv_fixed_point_x2",
    "gap_law",
]

# ----------------------------------------------------------------------------------------------------------
# closed forms (jax.numpy)
# ----------------------------------------------------------------------------------------------------------


def _check_w(w):
    if isinstance(w, jax.core.Tracer):
        return jnp.asarray(w)
    arr = jnp.asarray(w)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(float)
    if arr.ndim < 1 or arr.shape[-1] < 1:
        raise ValueError(f"w must have a trailing depth axis, got shape {arr.shape}")
    if not bool(jnp.all(jnp.isfinite(arr))):
        raise ValueError("w contains NaN or inf")
    return arr


def gd_pair_factor(w, r, eta):
    """Exact GD factor on w_i^2 - w_j^2: (1 - eta^2 r^2 prod_{k!=i,j} w_k^2), shape (..., D, D) for w (..., D).

    Kreisler et al. 2023; diagonal entries are meaningless and set to 1. Zero entries of w are allowed.
    """
    w = _check_w(w)
    D = w.shape[-1]
    w2 = w**2
    idx = jnp.arange(D)
    # prod over k not in {i, j}: build the mask explicitly (no division, so zeros are fine)
    mask = (idx[None, None, :] != idx[:, None, None]) & (idx[None, None, :] != idx[None, :, None])
    terms = jnp.where(mask, w2[..., None, None, :], 1.0)
    prod = jnp.prod(terms, axis=-1)
    r = jnp.asarray(r)[..., None, None]
    out = 1.0 - eta**2 * r**2 * prod
    return jnp.where(jnp.eye(D, dtype=bool), 1.0, out)


def _mask_for(w, mask):
    if mask is None:
        return jnp.ones(w.shape, dtype=bool)
    mask = jnp.asarray(mask, dtype=bool)
    if mask.shape[-1] != w.shape[-1]:
        raise ValueError(f"mask must have the depth axis of w ({w.shape[-1]}), got shape {mask.shape}")
    return jnp.broadcast_to(mask, w.shape)


def gfs_offset(w, y=1.0, mask=None, num_iter: int = 80):
    """See `_gfs_offset` (validated, jitted entry point)."""
    w = _check_w(w)
    return _gfs_offset_jit(w, jnp.asarray(y, dtype=w.dtype), _mask_for(w, mask), num_iter)


def _gfs_offset(w, y, mask, num_iter: int = 80):
    """The GFS offset t = log(m + c), m = min_i w_i^2, where c solves prod_i (w_i^2 + c) = y^2, c > -m.

    Kreisler et al. 2023 (squares are conserved up to a common shift under gradient flow). Solved by Newton on
    g(t) = sum_i log(w_i^2 - m + e^t) - 2 log|y| (the argmin term is t itself), which is convex and increasing
    in t, started right of the root at t0 = (2/D) log|y|: monotone, quadratic convergence. Coordinates with
    mask False are absent (padding). Shape (...,) for w (..., D).
    """
    D = jnp.sum(mask, axis=-1)
    w2 = w**2
    m = jnp.min(jnp.where(mask, w2, jnp.inf), axis=-1, keepdims=True)
    a = jnp.where(mask, w2 - m, 0.0)  # >= 0, the argmin entry is 0
    logy2 = 2.0 * jnp.log(jnp.abs(jnp.asarray(y, dtype=w.dtype)))

    def body(_, t):
        e = jnp.exp(t)[..., None]
        val = jnp.sum(jnp.where(mask, jnp.log(a + e), 0.0), axis=-1) - logy2
        dval = jnp.sum(jnp.where(mask, e / (a + e), 0.0), axis=-1)
        return t - val / dval

    t0 = jnp.broadcast_to(logy2 / D, a.shape[:-1])
    return jax.lax.fori_loop(0, num_iter, body, t0)


_gfs_offset_jit = jax.jit(_gfs_offset, static_argnames=("num_iter",))


def gfs_squares(w, y=1.0, mask=None):
    """Squared coordinates of the gradient-flow solution, s_i^2 = w_i^2 + c(w) with prod(w_i^2 + c) = y^2.

    Kreisler et al. 2023. Shape (..., D); masked-out (padding) entries are returned as 1.
    """
    w = _check_w(w)
    mask = _mask_for(w, mask)
    return _gfs_squares_jit(w, jnp.asarray(y, dtype=w.dtype), mask)


def _gfs_squares(w, y, mask):
    t = _gfs_offset(w, y, mask)
    w2 = w**2
    m = jnp.min(jnp.where(mask, w2, jnp.inf), axis=-1, keepdims=True)
    return jnp.where(mask, w2 - m + jnp.exp(t)[..., None], 1.0)


def gfs_sharpness(w, y=1.0, mask=None):
    """Sharpness of the GFS reached from w: phi(w) = y^2 sum_i 1/(w_i^2 + c(w)), shape (...,) for w (..., D).

    Kreisler et al. 2023; at a minimiser the Hessian is grad f grad f^T with trace y^2 sum 1/s_i^2.
    `mask` (bool, (..., D)) marks the coordinates that exist (for depth padding).
    """
    w = _check_w(w)
    mask = _mask_for(w, mask)
    return _gfs_sharpness_jit(w, jnp.asarray(y, dtype=w.dtype), mask)


def _gfs_sharpness(w, y, mask):
    s2 = _gfs_squares(w, y, mask)
    return y**2 * jnp.sum(jnp.where(mask, 1.0 / s2, 0.0), axis=-1)


_gfs_squares_jit = jax.jit(_gfs_squares)
_gfs_sharpness_jit = jax.jit(_gfs_sharpness)


def gfs_sharpness_depth2(w1, w2, y=1.0):
    """Depth 2: phi = sqrt((w1^2 - w2^2)^2 + 4 y^2) (Kreisler et al. 2023)."""
    return jnp.sqrt((w1**2 - w2**2) ** 2 + 4.0 * jnp.asarray(y) ** 2)


def min_gfs_sharpness(depth: int, y=1.0):
    """Smallest sharpness over the global-minimum manifold: D y^(2 - 2/D) (balanced minimiser, AM-GM)."""
    if not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}")
    return depth * np.abs(y) ** (2.0 - 2.0 / depth)


def uv_map(f, lam, eta, n, y=0.0):
    """One exact GD step of the uv model in (f, lambda) (Lewkowycz et al. 2020), r = f - y:

    f' = f - eta lam r + (eta^2/n) r^2 f,   lam' = lam - (4 eta/n) r f + (eta^2/n) r^2 lam.
    """
    r = f - y
    return (f - eta * lam * r + eta**2 / n * r**2 * f, lam - 4 * eta / n * r * f + eta**2 / n * r**2 * lam)


def uv_map_trajectory(f0, lam0, eta, n, num_steps: int, y=0.0, blowup=1e150):
    """Iterate the exact reduced map (numpy, float64): arrays f, lam of length num_steps + 1 (NaN after blow-up)."""
    if not (eta > 0):
        raise ValueError(f"eta must be positive, got {eta!r}")
    if not (n > 0):
        raise ValueError(f"n must be positive, got {n!r}")
    f = np.full(num_steps + 1, np.nan)
    lam = np.full(num_steps + 1, np.nan)
    f[0], lam[0] = float(f0), float(lam0)
    fk, lk = f[0], lam[0]
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(num_steps):
            fk, lk = uv_map(fk, lk, eta, n, y)
            if not (np.isfinite(fk) and np.isfinite(lk)) or abs(fk) > blowup or abs(lk) > blowup:
                break
            f[k + 1], lam[k + 1] = fk, lk
    return f, lam


def uv_width_free_map(a, z):
    """Width-free catapult map for y = 0 with a = eta lam, z = eta^2 f^2 / n: a' = a + z(a - 4), z' = z(1 - a + z)^2."""
    return a + z * (a - 4.0), z * (1.0 - a + z) ** 2


def lazy_shift(a0, z0):
    """First-order change of a = eta*lam in the lazy phase (y = 0, a0 < 2): Delta a = -(4 - a0) z0 / (a0 (2 - a0)).

    Sum of the geometric series z_k = z0 (1 - a0)^(2k) in a' - a = z (a - 4), with O(z0^2) error.
    """
    return -(4.0 - a0) * z0 / (a0 * (2.0 - a0))


def lv_invariant(x2, yv, alpha, beta):
    """Conserved quantity of the continuous self-stabilisation limit: H = y^2 + beta X / 2 - alpha log X, X = x^2."""
    return yv**2 + beta * x2 / 2.0 - alpha * jnp.log(x2)


def lv_fixed_point_x2(alpha, beta):
    """Fixed point (= cycle time-average) of X = x^2 in the Lotka-Volterra limit: 2 alpha / beta."""
    return 2.0 * alpha / beta


def gap_law(eta):
    """Measured leading-order gap of the tied depth-4 example: 1 - eta S_inf / 2 ~ eta^2 / 4 (S_inf ~ 2/eta - eta/2)."""
    return eta**2 / 4.0


# ----------------------------------------------------------------------------------------------------------
# sympy identities
# ----------------------------------------------------------------------------------------------------------

_eta, _y, _t, _c = sp.symbols("eta y t c", real=True)


def _ws(D):
    return sp.symbols(f"w1:{D + 1}", real=True)


def _gf_conservation(D):
    def build():
        w = _ws(D)
        f = sp.Mul(*w)
        L = (f - _y) ** 2 / 2
        wdot = [-sp.diff(L, wi) for wi in w]
        return sp.Matrix([2 * w[i] * wdot[i] - 2 * w[j] * wdot[j] for i, j in itertools.combinations(range(D), 2)])

    return build


def _gd_factor(D):
    def build():
        w = _ws(D)
        f = sp.Mul(*w)
        r = f - _y
        L = (f - _y) ** 2 / 2
        wn = [wi - _eta * sp.diff(L, wi) for wi in w]
        out = []
        for i, j in itertools.combinations(range(D), 2):
            rest = sp.Mul(*[w[k] ** 2 for k in range(D) if k not in (i, j)])
            out.append(sp.expand(wn[i] ** 2 - wn[j] ** 2 - (w[i] ** 2 - w[j] ** 2) * (1 - _eta**2 * r**2 * rest)))
        return sp.Matrix(out)

    return build


def _hessian_at_min(D):
    """Hessian of L = (f - y)^2/2 equals grad f grad f^T + r Hess f (so grad f grad f^T at a minimiser)."""

    def build():
        w = _ws(D)
        f = sp.Mul(*w)
        L = (f - _y) ** 2 / 2
        H = sp.hessian(L, w)
        g = sp.Matrix([sp.diff(f, wi) for wi in w])
        return sp.expand(H - g * g.T - (f - _y) * sp.hessian(f, w))

    return build


def _trace_at_gfs(D):
    """|grad f|^2 = f^2 sum_i 1/w_i^2, so at s_i^2 = w_i^2 + c with prod s_i^2 = y^2: phi = y^2 sum 1/s_i^2."""

    def build():
        w = sp.symbols(f"s1:{D + 1}", positive=True)
        f = sp.Mul(*w)
        g2 = sum(sp.diff(f, wi) ** 2 for wi in w)
        return sp.simplify(g2 - f**2 * sum(1 / wi**2 for wi in w))

    return build


def _depth2_phi():
    w1, w2 = sp.symbols("w1 w2", real=True)
    y = sp.symbols("y", positive=True)
    A = w1**2 + w2**2
    c = (-A + sp.sqrt((w1**2 - w2**2) ** 2 + 4 * y**2)) / 2
    root = sp.expand((w1**2 + c) * (w2**2 + c) - y**2)
    phi = y**2 * (1 / (w1**2 + c) + 1 / (w2**2 + c))
    # phi = (s1^2 + s2^2) y^2/(s1^2 s2^2) = s1^2 + s2^2 on the root
    phi_on_root = sp.simplify((w1**2 + c + w2**2 + c) - sp.sqrt((w1**2 - w2**2) ** 2 + 4 * y**2))
    num = sp.together(phi * (w1**2 + c) * (w2**2 + c) - y**2 * (w1**2 + w2**2 + 2 * c))
    return sp.Matrix([sp.simplify(root), phi_on_root, sp.simplify(num)])


def _balanced_min(D):
    def build():
        y = sp.symbols("y", positive=True)
        s2 = y ** sp.Rational(2, D)
        phi = y**2 * D / s2
        return sp.simplify(sp.powsimp(phi - D * y ** (2 - sp.Rational(2, D)), force=True))

    return build


def _minimalist_equivalence():
    """GD on l(x, y) = (x^2 y^2 - 1)^2 / 4 equals GD on the D=4 network from (x, x, y, y); trace at a minimum."""
    x, yy = sp.symbols("x y", positive=True)
    w = sp.symbols("w1:5", real=True)
    L4 = (sp.Mul(*w) - 1) ** 2 / 2
    ell = (x**2 * yy**2 - 1) ** 2 / 4
    sub = {w[0]: x, w[1]: x, w[2]: yy, w[3]: yy}
    g4 = [sp.diff(L4, wi).subs(sub) for wi in w]
    r = x**2 * yy**2 - 1
    H4 = sp.hessian(L4, w).subs(sub)
    tr_at_min = sp.simplify(H4.trace().subs(yy, 1 / x) - 2 * (x**2 + 1 / x**2))
    Hl = sp.hessian(ell, (x, yy))
    tr_l = sp.simplify(Hl.trace().subs(yy, 1 / x) - 2 * (x**2 + 1 / x**2))
    det_l = sp.simplify(Hl.det().subs(yy, 1 / x))
    return sp.Matrix(
        [
            sp.expand(g4[0] - sp.diff(ell, x)),
            sp.expand(g4[1] - sp.diff(ell, x)),
            sp.expand(g4[2] - sp.diff(ell, yy)),
            sp.expand(g4[3] - sp.diff(ell, yy)),
            sp.expand(sp.diff(ell, x) - r * x * yy**2),
            tr_at_min,
            tr_l,
            det_l,
        ]
    )


def _uv_map_identity(n=2):
    def build():
        u = sp.symbols(f"u1:{n + 1}", real=True)
        v = sp.symbols(f"v1:{n + 1}", real=True)
        sq = sp.sqrt(n)
        f = sum(ui * vi for ui, vi in zip(u, v)) / sq
        lam = (sum(ui**2 for ui in u) + sum(vi**2 for vi in v)) / n
        L = (f - _y) ** 2 / 2
        un = [ui - _eta * sp.diff(L, ui) for ui in u]
        vn = [vi - _eta * sp.diff(L, vi) for vi in v]
        fn = sum(a * b for a, b in zip(un, vn)) / sq
        lamn = (sum(a**2 for a in un) + sum(b**2 for b in vn)) / n
        r = f - _y
        f_pred, lam_pred = uv_map(f, lam, _eta, n, _y)
        imbalance = (sum(a**2 for a in un) - sum(b**2 for b in vn)) - (
            sum(ui**2 for ui in u) - sum(vi**2 for vi in v)
        ) * (1 - _eta**2 * r**2 / n)
        return sp.Matrix([sp.expand(fn - f_pred), sp.expand(lamn - lam_pred), sp.expand(imbalance)])

    return build


def _width_free():
    f, lam, n = sp.symbols("f lambda n", positive=True)
    fn, lamn = uv_map(f, lam, _eta, n, 0)
    a, z = _eta * lam, _eta**2 * f**2 / n
    a_pred, z_pred = uv_width_free_map(a, z)
    return sp.Matrix([sp.expand(_eta * lamn - a_pred), sp.expand(_eta**2 * fn**2 / n - z_pred)])


def _lazy_series():
    a0, z0 = sp.symbols("a0 z0", positive=True)
    q = (1 - a0) ** 2
    total = z0 / (1 - q)  # sum_k z0 q^k, |1 - a0| < 1
    return sp.simplify((a0 - 4) * total - lazy_shift(a0, z0))


def _lv_invariant():
    X, yv, al, be = sp.symbols("X y alpha beta", positive=True)
    H = yv**2 + be * X / 2 - al * sp.log(X)
    dX = 2 * yv * X
    dy = al - be * X / 2
    return sp.simplify(sp.diff(H, X) * dX + sp.diff(H, yv) * dy)


def _lv_fixed_point():
    al, be = sp.symbols("alpha beta", positive=True)
    X = lv_fixed_point_x2(al, be)
    return sp.simplify(al - be * X / 2)


def _self_stab_continuum():
    """x_{t+1}^2 = (1 + eta y)^2 x_t^2 gives dX/dtau = 2 y X to first order in eta (tau = eta t)."""
    X, yv = sp.symbols("X y", positive=True)
    Xn = (1 + _eta * yv) ** 2 * X
    return sp.simplify(sp.limit((Xn - X) / _eta, _eta, 0) - 2 * yv * X)


IDENTITIES: list[Identity] = (
    [
        Identity(f"gf_conserves_squares_D{D}", _gf_conservation(D),
                 f"d/dt (w_i^2 - w_j^2) = 0 under gradient flow, depth {D}", "Kreisler et al. 2023")
        for D in (2, 3, 4, 5)
    ]
    + [
        Identity(f"gd_pair_factor_D{D}", _gd_factor(D),
                 f"w_i'^2 - w_j'^2 = (w_i^2 - w_j^2)(1 - eta^2 r^2 prod_(k!=i,j) w_k^2) for one GD step, depth {D}",
                 "Kreisler et al. 2023")
        for D in (2, 3, 4)
    ]
    + [
        Identity(f"hessian_split_D{D}", _hessian_at_min(D),
                 "Hess L = grad f grad f^T + r Hess f, so Hess L = grad f grad f^T at a minimiser", "")
        for D in (3, 4)
    ]
    + [
        Identity(f"gfs_trace_D{D}", _trace_at_gfs(D), "|grad f|^2 = f^2 sum 1/w_i^2 (sharpness at the GFS)",
                 "Kreisler et al. 2023")
        for D in (2, 3, 4, 5)
    ]
    + [
        Identity("gfs_depth2_closed_form", _depth2_phi,
                 "D=2: c solves (w1^2+c)(w2^2+c)=y^2 and phi = sqrt((w1^2-w2^2)^2+4y^2)", "Kreisler et al. 2023"),
        Identity("balanced_min_sharpness_D3", _balanced_min(3), "min sharpness on the manifold = D y^(2-2/D)", ""),
        Identity("balanced_min_sharpness_D5", _balanced_min(5), "min sharpness on the manifold = D y^(2-2/D)", ""),
        Identity("minimalist_tied_depth4", _minimalist_equivalence,
                 "GD on (x^2y^2-1)^2/4 = GD on the D=4 network from (x,x,y,y); trace 2(x^2+y^2), det 0 at a min",
                 "Zhu et al. 2023"),
        Identity("uv_reduced_map_n2", _uv_map_identity(2), "uv model GD is the exact 2-D map in (f, lambda), n=2",
                 "Lewkowycz et al. 2020"),
        Identity("uv_reduced_map_n3", _uv_map_identity(3), "uv model GD is the exact 2-D map in (f, lambda), n=3",
                 "Lewkowycz et al. 2020"),
        Identity("uv_width_free_map", _width_free, "y=0: a' = a + z(a-4), z' = z(1-a+z)^2 with a=eta lam, z=eta^2f^2/n",
                 "Lewkowycz et al. 2020"),
        Identity("uv_lazy_shift", _lazy_series, "lazy phase: sum_k z0 (1-a0)^(2k) (a0-4) = -(4-a0) z0/(a0(2-a0))",
                 "Lewkowycz et al. 2020"),
        Identity("self_stab_continuum", _self_stab_continuum, "x' = -(1+eta y)x gives dX/dtau = 2yX as eta -> 0",
                 "Damian et al. 2023"),
        Identity("lotka_volterra_invariant", _lv_invariant,
                 "dH/dtau = 0 for H = y^2 + beta X/2 - alpha ln X under dX = 2yX, dy = alpha - beta X/2",
                 "Damian et al. 2023"),
        Identity("lotka_volterra_fixed_point", _lv_fixed_point, "X* = 2 alpha/beta is the fixed point",
                 "Damian et al. 2023"),
    ]
)


def _paper_equations() -> dict:
    """The closed forms printed in the paper (generated LaTeX), as sympy expressions."""
    w_i, w_j, r, P = sp.symbols("w_i w_j r P_{ij}", real=True)
    c, y, eta, n, f, lam = sp.symbols("c y eta n f lambda", positive=True)
    i = sp.symbols("i", integer=True)
    D = sp.symbols("D", integer=True, positive=True)
    w = sp.IndexedBase("w")
    X, yv, al, be = sp.symbols("X y alpha beta", positive=True)
    f_next, lam_next = uv_map(f, lam, eta, n, y)
    return {
        "GD_PAIR_FACTOR": (w_i**2 - w_j**2) * (1 - eta**2 * r**2 * P),
        "GFS_EQUATION": sp.Product(w[i] ** 2 + c, (i, 1, D)),
        "GFS_SHARPNESS": y**2 * sp.Sum(1 / (w[i] ** 2 + c), (i, 1, D)),
        "BALANCED_MIN_SHARPNESS": D * y ** (2 - sp.Rational(2) / D),
        "UV_MAP_F": f_next,
        "UV_MAP_LAMBDA": lam_next,
        "TIED_DEPTH4_GAP": eta**2 / 4,
        "SELF_STAB_INVARIANT": yv**2 + be * X / 2 - al * sp.log(X),
    }


PAPER_EQUATIONS = _paper_equations()
