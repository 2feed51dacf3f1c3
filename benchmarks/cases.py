"""The benchmark cases: each returns a dict of measurements including a `ratio` against its baseline."""

from __future__ import annotations

import time

import diffrax
import jax
import jax.numpy as jnp
import lineax
import numpy as np
from scipy.integrate import solve_ivp

from sims import Grid, sweep
from toymodels.flow import gradient_flow
from toymodels.iterate import iterate
from toymodels.sde import euler_maruyama


def _timed(f, repeat=1):
    best = np.inf
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _block(tree):
    return jax.block_until_ready(tree)


def mode_odes_vs_solve_ivp(quick: bool) -> dict:
    """10^4 Saxe mode ODEs u' = 2u(s - u) through the vectorised sweep vs scipy solve_ivp (RK45) in a Python loop."""
    n = 1000 if quick else 10_000
    rtol, atol = 1e-8, 1e-10
    ts = np.linspace(0.0, 10.0, 21)
    grid = Grid.product(s=np.linspace(0.5, 3.0, n // 10), u0=np.geomspace(1e-4, 1e-1, 10))

    def fn(p, key):
        r = gradient_flow(lambda t, u, a: 2 * u * (a - u), p["u0"], ts, args=p["s"], rtol=rtol, atol=atol)
        return {"u": r.observables, "steps": r.num_steps}

    t_first, ds = _timed(lambda: sweep(fn, grid, chunk_size=1024, progress=False))
    t_warm, _ = _timed(lambda: sweep(fn, grid, chunk_size=1024, progress=False))
    flat = grid.flat()
    m = min(300, n)
    idx = np.linspace(0, n - 1, m).astype(int)

    def scipy_loop():
        for i in idx:
            s = flat["s"][i]
            solve_ivp(lambda t, u: 2 * u * (s - u), (0, 10), [flat["u0"][i]], t_eval=ts, rtol=rtol, atol=atol)

    t_scipy, _ = _timed(scipy_loop)
    t_scipy_all = t_scipy * n / m
    return {"points": n, "sweep_s_with_compile": t_first, "sweep_s": t_warm, "scipy_s_extrapolated": t_scipy_all,
            "scipy_points_timed": m, "ratio": t_scipy_all / t_warm, "ratio_with_compile": t_scipy_all / t_first,
            "target": 50}


def gd_sweep_vs_numpy_loop(quick: bool) -> dict:
    """GD on a diagonal linear network (u*u - v*v parametrisation) over seeds x step sizes: sweep vs NumPy loop."""
    n_seeds, n_lr, steps = (8, 8, 2000) if quick else (32, 32, 5000)
    n, d = 20, 40
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    beta = np.zeros(d)
    beta[:3] = 1.0
    y = X @ beta
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def loss(w):
        u, v = w
        return 0.5 * jnp.mean((Xj @ (u * u - v * v) - yj) ** 2)

    grad = jax.grad(loss)
    grid = Grid.product(lr=np.geomspace(1e-3, 3e-2, n_lr), seed=np.arange(n_seeds))

    def fn(p, key):
        w0 = (0.1 + 0.01 * jax.random.normal(key, (d,)), 0.1 * jnp.ones(d))
        step = lambda w, k: jax.tree_util.tree_map(lambda a, g: a - p["lr"] * g, w, grad(w))
        r = iterate(step, w0, steps, save_every=steps, observables=loss)
        return {"loss": r.observables[-1]}

    t_first, _ = _timed(lambda: sweep(fn, grid, chunk_size=256, progress=False))
    t_warm, _ = _timed(lambda: sweep(fn, grid, chunk_size=256, progress=False))

    def numpy_run(lr, seed):
        r = np.random.default_rng(seed)
        u, v = 0.1 + 0.01 * r.standard_normal(d), 0.1 * np.ones(d)
        for _ in range(steps):  # the papers' style: one Python iteration per GD step
            res = X @ (u * u - v * v) - y
            g = X.T @ res / n
            u, v = u - lr * 2 * u * g, v + lr * 2 * v * g
        return 0.5 * np.mean((X @ (u * u - v * v) - y) ** 2)

    m = 4
    t_np, _ = _timed(lambda: [numpy_run(1e-2, s) for s in range(m)])
    t_np_all = t_np * grid.size / m
    return {"points": grid.size, "steps": steps, "sweep_s_with_compile": t_first, "sweep_s": t_warm,
            "numpy_s_extrapolated": t_np_all, "ratio": t_np_all / t_warm, "ratio_with_compile": t_np_all / t_first,
            "target": 20}


def sde_scan_vs_diffrax(quick: bool) -> dict:
    """Euler-Maruyama ensemble of a 2-d OU process: lax.scan (toymodels.sde) vs diffrax Euler + VirtualBrownianTree."""
    n_paths, steps, dt = (2000, 500, 0.01) if quick else (20_000, 1000, 0.01)
    H = jnp.array([1.0, 3.0])

    def ours():
        r = euler_maruyama(lambda t, x: -H * x, lambda t, x: 0.3 * jnp.ones(2), jnp.ones(2), jax.random.PRNGKey(0),
                           dt=dt, num_steps=steps, n_paths=n_paths, save_every=steps, diagonal=True)
        return r.mean

    f_ours = jax.jit(ours)
    t_ours_c, _ = _timed(lambda: _block(f_ours()))
    t_ours, _ = _timed(lambda: _block(f_ours()), repeat=2)

    def one_path(key):
        bm = diffrax.VirtualBrownianTree(0.0, steps * dt, tol=dt / 2, shape=(2,), key=key)
        diag = lambda t, x, a: lineax.DiagonalLinearOperator(0.3 * jnp.ones(2))
        terms = diffrax.MultiTerm(diffrax.ODETerm(lambda t, x, a: -H * x), diffrax.ControlTerm(diag, bm))
        sol = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, steps * dt, dt, jnp.ones(2),
                                  saveat=diffrax.SaveAt(t1=True), max_steps=steps + 1)
        return sol.ys[-1]

    keys = jax.random.split(jax.random.PRNGKey(1), n_paths)
    f_dfx = jax.jit(jax.vmap(one_path))
    t_dfx_c, _ = _timed(lambda: _block(f_dfx(keys)))
    t_dfx, _ = _timed(lambda: _block(f_dfx(keys)), repeat=2)
    return {"paths": n_paths, "steps": steps, "scan_s": t_ours, "diffrax_s": t_dfx, "scan_s_with_compile": t_ours_c,
            "diffrax_s_with_compile": t_dfx_c, "ratio": t_dfx / t_ours}


def matmul_sweep_flops(quick: bool) -> dict:
    """Achieved FLOP/s of a matmul-heavy sweep (deep-linear GD, 64x64 layers) vs this machine's matmul peak."""
    h, steps, n_pts = (64, 200, 64) if quick else (256, 100, 64)
    grid = Grid.product(lr=np.linspace(0.01, 0.05, n_pts))

    def fn(p, key):
        W1 = 0.1 * jax.random.normal(key, (h, h))
        W2 = 0.1 * jax.random.normal(jax.random.fold_in(key, 1), (h, h))
        T = jnp.eye(h)

        def step(w, k):
            a, b = w
            r = b @ a - T
            return (a - p["lr"] * (b.T @ r), b - p["lr"] * (r @ a.T))

        r = iterate(step, (W1, W2), steps, save_every=steps, observables=lambda w: jnp.sum((w[1] @ w[0] - T) ** 2))
        return {"loss": r.observables[-1]}

    flops = n_pts * steps * 3 * 2 * h**3
    sweep(fn, grid, chunk_size=n_pts, progress=False)  # compile
    t, _ = _timed(lambda: sweep(fn, grid, chunk_size=n_pts, progress=False))
    a = jax.random.normal(jax.random.PRNGKey(0), (2048, 2048))
    mm = jax.jit(lambda x: x @ x)
    _block(mm(a))
    t_mm, _ = _timed(lambda: _block(mm(a)), repeat=3)
    peak = 2 * 2048**3 / t_mm
    achieved = flops / t
    return {"achieved_gflops": achieved / 1e9, "peak_gflops": peak / 1e9, "ratio": achieved / peak, "target": 0.30,
            "dtype": str(a.dtype)}


def memory_and_compiles(quick: bool) -> dict:
    """Peak resident memory of a sweep vs grid size (flat with chunking) and the number of compilations (one)."""
    import subprocess
    import sys
    import textwrap

    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    script = textwrap.dedent(
        """
        import resource, sys, jax, numpy as np, jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        from jax import monitoring
        compiles = []
        monitoring.register_event_duration_secs_listener(
            lambda name, secs, **kw: compiles.append(name) if name == "/jax/core/compile/backend_compile_duration" else None)
        from sims import Grid, sweep
        n = int(sys.argv[1])
        def fn(p, key):
            x = jax.random.normal(key, (256,)) * p["a"]
            return {"m": jnp.mean(x), "v": jnp.var(x)}
        before = len(compiles)
        sweep(fn, Grid.product(a=np.linspace(0, 1, n)), chunk_size=512, progress=False)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, len(compiles) - before)
        """
    )
    rows = []
    for n in sizes:
        out = subprocess.run([sys.executable, "-c", script, str(n)], capture_output=True, text=True, check=True)
        rss_kb, n_comp = map(int, out.stdout.split()[-2:])
        rows.append({"grid_points": n, "peak_rss_mb": rss_kb / 1024, "compilations": n_comp})
    return {"rows": rows, "ratio": rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"],
            "note": "ratio = peak RSS at the largest grid / smallest grid (flat means ~1); compilations counts every "
                    "XLA compile in the process (PRNG helpers included): constant in the grid size"}


def stiffness_bucketing(quick: bool) -> dict:
    """Lockstep cost of adaptive solves: logistic ODEs with rates spread over 3 decades, shuffled vs cost-ordered."""
    n = 512 if quick else 4096
    rng = np.random.default_rng(0)
    s = rng.permutation(np.geomspace(0.1, 100.0, n))
    grid = Grid.zip(s=s)
    ts = np.linspace(0.0, 20.0, 11)

    def fn(p, key):
        r = gradient_flow(lambda t, u, a: 2 * u * (a - u) + jnp.sin(a * t) * 1e-3, 1e-3, ts, args=p["s"], rtol=1e-8,
                          atol=1e-10, max_steps=1_000_000)
        return {"u": r.observables[-1], "steps": r.num_steps}

    kw = dict(chunk_size=64, progress=False, batch_size=64)
    sweep(fn, grid, **kw)
    t_plain, ds = _timed(lambda: sweep(fn, grid, **kw))
    t_sorted, ds2 = _timed(lambda: sweep(fn, grid, order_by=lambda f: f["s"], **kw))
    steps = ds["steps"].values
    lock_plain = sum(steps[i:i + 64].max() * len(steps[i:i + 64]) for i in range(0, n, 64))
    st = np.sort(steps)
    lock_sorted = sum(st[i:i + 64].max() * len(st[i:i + 64]) for i in range(0, n, 64))
    assert np.array_equal(ds["u"].values, ds2["u"].values)
    return {"points": n, "unsorted_s": t_plain, "sorted_s": t_sorted, "ratio": t_plain / t_sorted,
            "useful_steps": int(steps.sum()), "lockstep_steps_unsorted": int(lock_plain),
            "lockstep_steps_sorted_by_steps": int(lock_sorted)}


CASES = {
    "mode_odes_vs_solve_ivp": mode_odes_vs_solve_ivp,
    "gd_sweep_vs_numpy_loop": gd_sweep_vs_numpy_loop,
    "sde_scan_vs_diffrax": sde_scan_vs_diffrax,
    "matmul_sweep_flops": matmul_sweep_flops,
    "memory_and_compiles": memory_and_compiles,
    "stiffness_bucketing": stiffness_bucketing,
}
