"""The sweep engine: run `fn(point, key)` on every point of a `Grid` with one compilation per process.

The grid is flattened (optionally reordered by an expected-cost key so stiff points share chunks) and cut into
work units of equal size (the last one padded, padding dropped). Each unit is one jitted call; its point axis is
sharded over all local devices (a 1-D 'grid' `Mesh` with Auto axis types, `NamedSharding`, `shard_map`), and each
device runs `lax.map(fn, ..., batch_size=batch_size)`: a `vmap` of fixed width `batch_size` scanned over its share.
The vectorised body therefore has the same shape whatever the chunk size or device count, which is what makes
results bitwise independent of both (on one device kind); memory stays bounded by the unit size, and there is one
compilation per process. With several processes
(`jax.distributed.initialize`), a chunk of `chunk_size` points is split into one unit per process: process p
computes unit p of every chunk and writes its own region of the shared zarr store.
The PRNG key of point i is fold_in(PRNGKey(seed), i) (i = index in the unsorted flat grid), so a point's result
does not depend on the chunk size, the ordering, or the device/process count. With a `Store`, finished units are
skipped (resume) and each unit is written and flagged as it completes.
Returns an `xarray.Dataset` with one dim per grid dim plus the outputs' own dims.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.sharding import AxisType, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from .grid import Grid
from .provenance import provenance
from .store import Store


def local_mesh():
    """A 1-D mesh named 'grid' over this process's devices (Auto axis type), or None with one device."""
    devices = jax.local_devices()
    if len(devices) < 2:
        return None
    return jax.make_mesh((len(devices),), ("grid",), axis_types=(AxisType.Auto,), devices=devices)


def default_batch_size(n_points: int) -> int:
    """Vector width of the compiled body: 256 on CPU, 4096 on accelerators, never wider than the grid needs.

    It depends only on the grid size and the device kind, never on chunk size or device count.
    """
    cap = 256 if jax.default_backend() == "cpu" else 4096
    return int(min(cap, 1 << max(0, int(n_points - 1).bit_length())))


@functools.lru_cache(maxsize=64)
def _compiled(fn, seed: int, batch_size: int, devices: tuple | None):
    """jit of the per-share function, cached so repeated sweeps of the same `fn` compile once."""
    base_key = jax.random.PRNGKey(seed)

    def run_point(args):
        point, index = args
        return fn(point, jax.random.fold_in(base_key, index))

    def run_share(point, index):
        return jax.lax.map(run_point, (point, index), batch_size=batch_size)

    if devices is None:
        return jax.jit(run_share), None
    mesh = jax.make_mesh((len(devices),), ("grid",), axis_types=(AxisType.Auto,), devices=devices)
    spec = PartitionSpec("grid")
    sharded = jax.shard_map(run_share, mesh=mesh, in_specs=(spec, spec), out_specs=spec, check_vma=False)
    return jax.jit(sharded), NamedSharding(mesh, spec)


def _barrier(name: str):
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _out_shapes(fn, flat, key) -> dict[str, tuple[tuple, np.dtype]]:
    point = {k: jax.ShapeDtypeStruct((), v.dtype) for k, v in flat.items()}
    out = jax.eval_shape(fn, point, key)
    if not isinstance(out, dict) or not out:
        raise TypeError("a sweep function must return a non-empty dict of arrays")
    shapes = {}
    for name, leaf in out.items():
        if not hasattr(leaf, "shape"):
            raise TypeError(f"sweep output {name!r} must be an array, got {type(leaf).__name__}")
        shapes[name] = (tuple(leaf.shape), np.dtype(leaf.dtype))
    return shapes


def to_dataset(
    grid: Grid,
    values: dict[str, np.ndarray],
    dims: dict[str, tuple[str, ...]] | None = None,
    coords: dict | None = None,
    attrs: dict | None = None,
) -> xr.Dataset:
    """Reshape flat per-point outputs into an xarray.Dataset over the grid dims plus each output's own dims."""
    dims = dims or {}
    data_vars = {}
    for name, arr in values.items():
        extra = arr.shape[1:]
        own = tuple(dims.get(name, tuple(f"{name}_dim{i}" for i in range(len(extra)))))
        if len(own) != len(extra):
            raise ValueError(f"output {name!r} has {len(extra)} non-grid dims but dims gives {own}")
        data_vars[name] = (grid.dims + own, arr.reshape(grid.shape + extra))
    all_coords = {n: (d, a) for n, (d, a) in grid.coords().items()}
    for n, v in (coords or {}).items():
        all_coords[n] = (n, np.asarray(v)) if not isinstance(v, tuple) else v
    return xr.Dataset(data_vars, coords=all_coords, attrs=attrs or {})


def processing_order(flat: dict[str, np.ndarray], order_by: Callable | None) -> np.ndarray:
    """Permutation of the flat grid: ascending expected cost `order_by(flat)` (stable), or the identity."""
    n = len(next(iter(flat.values())))
    if order_by is None:
        return np.arange(n)
    cost = np.asarray(order_by(flat), dtype=float)
    if cost.shape != (n,) or not np.all(np.isfinite(cost)):
        raise ValueError(f"order_by must return one finite cost per grid point (shape ({n},)), got {cost.shape}")
    return np.argsort(cost, kind="stable")


def sweep(
    fn: Callable[[dict, jax.Array], dict],
    grid: Grid,
    *,
    seed: int = 0,
    chunk_size: int = 64,
    dims: dict[str, tuple[str, ...]] | None = None,
    coords: dict | None = None,
    store: Store | None = None,
    order_by: Callable[[dict], np.ndarray] | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    desc: str | None = None,
    attrs: dict | None = None,
) -> xr.Dataset:
    """Evaluate fn(point, key) -> {name: array} at every grid point; see the module docstring.

    `order_by(flat_grid) -> cost per point` groups points of similar cost (e.g. stiffness) into the same
    vmapped unit, so one stiff point does not set the step count of a whole chunk.
    """
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a sims.grid.Grid, got {type(grid).__name__}")
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    n_proc, proc = jax.process_count(), jax.process_index()
    if n_proc > 1 and store is None:
        raise ValueError("a multi-process sweep needs a store (each process writes its region of it)")
    t_start = time.perf_counter()
    flat = grid.flat()
    n = grid.size
    order = processing_order(flat, order_by)
    base_key = jax.random.PRNGKey(seed)
    mesh = local_mesh()
    n_dev = 1 if mesh is None else mesh.size

    resumed = store is not None and store.initialised
    if resumed:
        unit = store.chunk_size  # resume with the layout (and vector width) on disk, for any process count
        batch_size = int(store.attrs().get("batch_size", batch_size or default_batch_size(n)))
        stored_order = store.order()
        if not np.array_equal(stored_order, order):
            raise ValueError(f"{store.path}: stored with another point ordering; use --fresh to recompute")
    else:
        batch_size = batch_size or default_batch_size(n)
        # a unit holds at least one full vector width per local device (units are padded to whole widths)
        unit = max(-(-min(chunk_size, n) // n_proc), batch_size * n_dev)
    per_call = batch_size * n_dev
    padded = -(-unit // per_call) * per_call
    n_units = -(-n // unit)
    meta = {
        "seed": seed,
        "grid": json.dumps(grid.to_json()),
        "grid_dims": json.dumps(list(grid.dims)),
        "ordered": order_by is not None,
        "batch_size": batch_size,
        **(attrs or {}),
    }

    shapes = store.outputs() if resumed else None
    if store is not None and not resumed:
        shapes = _out_shapes(fn, flat, base_key)
        if proc == 0:
            store.initialise(n, unit, shapes, {**provenance(), **meta}, order=order)
        _barrier("sweep-store-created")
        if proc != 0:
            store.reopen()
    done = store.done() if store is not None else np.zeros(n_units, dtype=bool)
    todo = [u for u in range(n_units) if u % n_proc == proc and not done[u]]
    results = None
    if store is None:
        shapes = _out_shapes(fn, flat, base_key)
        results = {k: np.zeros((n, *s), dtype=d) for k, (s, d) in shapes.items()}

    if todo:

        batched, sharding = _compiled(fn, seed, batch_size, None if mesh is None else tuple(mesh.devices.flat))
        bar = tqdm(todo, desc=desc or "sweep", unit="chunk", leave=False,
                   disable=(progress is False) or (progress is None and len(todo) < 2))
        for u in bar:
            lo, hi = u * unit, min((u + 1) * unit, n)
            pos = np.minimum(np.arange(lo, lo + padded), hi - 1)  # pad with the unit's last point; dropped below
            idx = order[pos]
            point = {k: jnp.asarray(v[idx]) for k, v in flat.items()}
            index = jnp.asarray(idx)
            if sharding is not None:
                point, index = jax.device_put((point, index), sharding)
            out = jax.device_get(batched(point, index))
            values = {k: np.asarray(out[k])[: hi - lo] for k in shapes}
            if store is not None:
                store.write_chunk(u, values)
            else:
                for k, v in values.items():
                    results[k][order[lo:hi]] = v

    if store is not None:
        _barrier("sweep-done")
        values, complete = store.read()
        if not complete.all():  # cannot happen unless the store was changed under us
            raise RuntimeError(f"{store.path}: {int((~complete).sum())} points are missing after the sweep")
        if todo and proc == 0:
            prev = float(store.attrs().get("wall_time_s", 0.0))
            store.set_attrs(wall_time_s=prev + time.perf_counter() - t_start)
        all_attrs = {k: v for k, v in store.attrs().items() if k not in ("outputs", "initialised")}
    else:
        values = results
        all_attrs = {**provenance(), **meta, "chunk_size": unit, "wall_time_s": time.perf_counter() - t_start}
    return to_dataset(grid, values, dims=dims, coords=coords, attrs=all_attrs)
