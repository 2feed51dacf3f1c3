"""Sweep engine and store: grids, chunk-size invariance, divergence per point, resume after SIGKILL."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from sims import Grid, Store, StoreMismatch, parse_range, parse_set, sweep
from toymodels.iterate import gd_step, iterate


def gd_point(point, key):
    """GD on a 2-d quadratic with step size lr: diverges iff lr * 3 > 2 (blow-up past 1e8)."""
    lam = jnp.array([1.0, 3.0])
    w0 = jnp.ones(2) + 0.1 * jax.random.normal(key, (2,))
    res = iterate(gd_step(lambda w: 0.5 * jnp.sum(lam * w**2), point["lr"]), w0, 60, save_every=20,
                  observables=lambda w: jnp.sum(w**2))
    return {"norm2": res.observables, "diverged": res.diverged, "diverged_step": res.diverged_step}


GRID = Grid.product(lr=np.linspace(0.1, 1.0, 7)) * Grid.product(seed=np.arange(3))


def test_grid_product_zip_and_flat_order():
    g = Grid.product(a=[1.0, 2.0], b=[10, 20, 30])
    assert g.shape == (2, 3) and g.dims == ("a", "b")
    np.testing.assert_array_equal(g.flat()["b"], [10, 20, 30] * 2)
    z = Grid.zip(a=[1.0, 2.0], c=[5.0, 6.0], dim="pair") * Grid.product(b=[0.0])
    assert z.dims == ("pair", "b") and z.size == 2
    np.testing.assert_array_equal(z.flat()["c"], [5.0, 6.0])
    with pytest.raises(ValueError, match="equal lengths"):
        Grid.zip(a=[1.0], b=[1.0, 2.0])
    with pytest.raises(ValueError, match="empty"):
        Grid.product(a=[])
    with pytest.raises(ValueError, match="NaN"):
        Grid.product(a=[1.0, np.nan])
    with pytest.raises(ValueError, match="unknown grid axis"):
        g.replace(zz=[1.0])
    assert Grid.from_json(z.to_json()).fingerprint() == z.fingerprint()


@pytest.mark.parametrize("text,expected", [("0:1:3", [0, 0.5, 1]), ("1:100:3:log", [1, 10, 100]), ("1,2.5", [1, 2.5])])
def test_parse_range(text, expected):
    np.testing.assert_allclose(parse_range(text), expected)


@pytest.mark.parametrize("bad", ["1:2", "a:b:3", "1:2:0", "0:1:3:log", "1,x", "", "1:2:3:cube", "nan,1"])
def test_parse_range_rejects(bad):
    with pytest.raises(ValueError):
        parse_range(bad)


def test_parse_set_names_the_axis():
    with pytest.raises(ValueError, match="--set lr"):
        parse_set(["lr=1:2"])
    with pytest.raises(ValueError, match="expected"):
        parse_set(["lr"])


def test_results_do_not_depend_on_chunk_size():
    # fixed vector width 4; units of 4, 21 (padded to 24) and 5 (padded to 8) points
    kw = dict(dims={"norm2": ("save",)}, progress=False, batch_size=4)
    a = sweep(gd_point, GRID, chunk_size=4, **kw)
    b = sweep(gd_point, GRID, chunk_size=21, **kw)
    c = sweep(gd_point, GRID, chunk_size=5, **kw)
    d = sweep(gd_point, GRID, chunk_size=64, dims={"norm2": ("save",)}, progress=False)  # default width
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values)
        np.testing.assert_array_equal(a[name].values, c[name].values)
        np.testing.assert_array_equal(a[name].values, d[name].values)
    assert a["norm2"].dims == ("lr", "seed", "save")


def test_divergence_is_flagged_per_point_and_others_unaffected():
    ds = sweep(gd_point, GRID, chunk_size=8, dims={"norm2": ("save",)}, progress=False)
    div = ds["diverged"].values
    lr = ds["lr"].values
    # |1 - 3 lr| > 1 iff lr > 2/3: exactly those points diverge (within 60 steps |w| reaches 1e8 only if
    # |1-3lr|^60 > 1e8, i.e. |1-3lr| > 1.36, lr > 0.79)
    np.testing.assert_array_equal(div.any(axis=1), lr > 0.79)
    assert np.all(np.isfinite(ds["norm2"].values))
    # a converging point computed alone (one-point grid) is bitwise the same as inside the big sweep
    alone = sweep(lambda p, k: gd_point(p, k), Grid.product(lr=[lr[1]]) * Grid.product(seed=[0]), progress=False)
    # its key is fold_in(seed_key, 0) there vs fold_in(seed_key, 3) in the big grid: compare with the same key
    ref = jax.jit(gd_point)({"lr": jnp.asarray(lr[1]), "seed": jnp.asarray(0)}, jax.random.fold_in(jax.random.PRNGKey(0), 3))
    np.testing.assert_array_equal(ds["norm2"].values[1, 0], np.asarray(ref["norm2"]))
    assert alone["norm2"].shape == (1, 1, 4)


def test_store_resume_and_mismatch(tmp_path):
    path = tmp_path / "s.zarr"
    full = sweep(gd_point, GRID, chunk_size=4, batch_size=2, progress=False, store=Store(path, fingerprint="f1"))
    # pretend a run died after 2 chunks: clear the done flags of the others and corrupt their data
    store = Store(path, fingerprint="f1")
    done = store.group["_chunk_done"]
    done[2:] = 0
    store.group["norm2"][8:] = -1.0
    # resumed with other settings: the stored layout and vector width win
    resumed = sweep(gd_point, GRID, chunk_size=16, progress=False, store=Store(path, fingerprint="f1"))
    xr.testing.assert_identical(full.drop_attrs(), resumed.drop_attrs())
    with pytest.raises(StoreMismatch, match="--fresh"):
        Store(path, fingerprint="other")
    assert path.exists()  # the mismatching store is not touched
    Store(path, fingerprint="other", fresh=True)


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from sims import Grid, Store, sweep

    def slow(point, key):
        x = jnp.ones(50) * point["a"]
        def body(c, _):
            return jnp.sin(c) + 0.5 * c, None
        y, _ = jax.lax.scan(body, x, None, length=20000)
        return {"y": y[:3], "r": jax.random.normal(key)}

    g = Grid.product(a=np.linspace(0, 1, 48))
    ds = sweep(slow, g, chunk_size=4, batch_size=4, store=Store(sys.argv[1], fingerprint="k"), progress=False)
    np.save(sys.argv[2], ds["y"].values)
    np.save(sys.argv[3], ds["r"].values)
    """
)


def test_resume_after_sigkill_gives_identical_results(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "JAX_PLATFORMS": "cpu"}

    def run(store, y, r, kill_after=None):
        p = subprocess.Popen([sys.executable, str(script), str(store), str(y), str(r)], env=env)
        if kill_after is None:
            assert p.wait(timeout=600) == 0
            return
        time.sleep(kill_after)
        p.send_signal(signal.SIGKILL)
        p.wait()

    ref_store = tmp_path / "ref.zarr"
    run(ref_store, tmp_path / "ry.npy", tmp_path / "rr.npy")
    store = tmp_path / "killed.zarr"
    rng = np.random.default_rng(0)
    for _ in range(3):  # killed at random moments, possibly before anything was written
        run(store, tmp_path / "y.npy", tmp_path / "r.npy", kill_after=float(rng.uniform(1.0, 5.0)))
        # the store is always readable between kills
        if store.exists() and Store(store, fingerprint="k").initialised:
            Store(store, fingerprint="k").read()
    run(store, tmp_path / "y.npy", tmp_path / "r.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.load(tmp_path / "ry.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), np.load(tmp_path / "rr.npy"))


def test_sweep_rejects_bad_arguments():
    with pytest.raises(ValueError, match="chunk_size"):
        sweep(gd_point, GRID, chunk_size=0)
    with pytest.raises(TypeError, match="Grid"):
        sweep(gd_point, {"lr": [1.0]})
    with pytest.raises(TypeError, match="dict"):
        sweep(lambda p, k: p["lr"], GRID, progress=False)
