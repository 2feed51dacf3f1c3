"""The sweep engine: run `fn(point, key)` on every point of a `Grid` with one compilation.

The grid is flattened and cut into chunks of `chunk_size` points (the last chunk padded, padding dropped);
each chunk is one call of `jit(vmap(fn))`, so memory stays bounded and there is one compilation per run.
With several devices the chunk axis is sharded over all of them (NamedSharding over a 1-D 'grid' mesh).
The PRNG key of point i is fold_in(PRNGKey(seed), i), so a point's result does not depend on the chunk size
or the device count. With a `Store`, finished chunks are skipped (resume) and each chunk is written as it
completes. Returns an `xarray.Dataset` with one dim per grid dim plus the outputs' own dims.
"""

from __future__ import annotations

import json
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from .grid import Grid
from .provenance import provenance
from .store import Store


def _flat_inputs(grid: Grid) -> dict[str, np.ndarray]:
    return grid.flat()


def _device_mesh() -> Mesh | None:
    devices = jax.local_devices()
    if len(devices) < 2:
        return None
    return Mesh(np.array(devices), ("grid",))


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


def sweep(
    fn: Callable[[dict, jax.Array], dict],
    grid: Grid,
    *,
    seed: int = 0,
    chunk_size: int = 64,
    dims: dict[str, tuple[str, ...]] | None = None,
    coords: dict | None = None,
    store: Store | None = None,
    progress: bool | None = None,
    desc: str | None = None,
    attrs: dict | None = None,
) -> xr.Dataset:
    """Evaluate fn(point, key) -> {name: array} at every grid point; see the module docstring."""
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a sims.grid.Grid, got {type(grid).__name__}")
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    t_start = time.perf_counter()
    flat = _flat_inputs(grid)
    n = grid.size
    base_key = jax.random.PRNGKey(seed)
    mesh = _device_mesh()
    n_dev = 1 if mesh is None else mesh.size
    if store is not None and store.initialised:
        chunk_size = store.chunk_size  # resume with the layout on disk
    chunk_size = min(chunk_size, n)
    padded = -(-chunk_size // n_dev) * n_dev
    n_chunks = -(-n // chunk_size)
    meta = {
        "seed": seed,
        "chunk_size": chunk_size,
        "grid": json.dumps(grid.to_json()),
        "grid_dims": json.dumps(list(grid.dims)),
        **(attrs or {}),
    }

    shapes = None
    if store is not None and store.initialised:
        shapes = store.outputs()
        done = store.done()
    else:
        done = np.zeros(n_chunks, dtype=bool)
    results = None if store is not None else {}

    todo = [i for i in range(n_chunks) if not done[i]]
    wall_compute = 0.0
    if todo:
        shapes = shapes or _out_shapes(fn, flat, base_key)
        if store is not None:
            store.initialise(n, chunk_size, shapes, {**provenance(), **meta})
        else:
            results = {k: np.zeros((n, *s), dtype=d) for k, (s, d) in shapes.items()}

        def run_points(point, index):
            key = jax.random.fold_in(base_key, index)
            return fn(point, key)

        batched = jax.jit(jax.vmap(run_points))
        sharding = None if mesh is None else NamedSharding(mesh, PartitionSpec("grid"))
        show = progress if progress is not None else None
        bar = tqdm(todo, desc=desc or "sweep", unit="chunk", disable=(show is False) or (show is None and n_chunks < 2),
                   leave=False)
        for i in bar:
            lo, hi = i * chunk_size, min((i + 1) * chunk_size, n)
            idx = np.arange(lo, lo + padded)
            idx = np.minimum(idx, hi - 1)  # pad by repeating the chunk's last point; dropped below
            point = {k: jnp.asarray(v[idx]) for k, v in flat.items()}
            index = jnp.asarray(idx)
            if sharding is not None:
                point, index = jax.device_put((point, index), sharding)
            t0 = time.perf_counter()
            out = jax.device_get(batched(point, index))
            wall_compute += time.perf_counter() - t0
            chunk = {k: np.asarray(out[k])[: hi - lo] for k in shapes}
            if store is not None:
                store.write_chunk(i, chunk)
            else:
                for k, v in chunk.items():
                    results[k][lo:hi] = v
    if store is not None:
        values, complete = store.read()
        if not complete.all():  # cannot happen unless the store was changed under us
            raise RuntimeError(f"{store.path}: {int((~complete).sum())} points are missing after the sweep")
        all_attrs = store.attrs()
        if todo:
            store.set_attrs(wall_time_s=float(all_attrs.get("wall_time_s", 0.0)) + time.perf_counter() - t_start)
            all_attrs = store.attrs()
        all_attrs = {k: v for k, v in all_attrs.items() if k not in ("outputs", "initialised")}
    else:
        values = results
        all_attrs = {**provenance(), **meta, "wall_time_s": time.perf_counter() - t_start}
    return to_dataset(grid, values, dims=dims, coords=coords, attrs=all_attrs)
