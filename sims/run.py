"""Run, resume and validate registered experiments; results live in `<out>/<name>[-quick][-<hash>].zarr`."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from . import registry
from .grid import Grid
from .registry import Check, Experiment
from .store import Store
from .sweep import sweep

DEFAULT_OUT = "results"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, (int, float, str, bool)) or obj is None:
        return obj
    return repr(obj)


def resolve(exp: Experiment | str) -> Experiment:
    return exp if isinstance(exp, Experiment) else registry.get(exp)


def experiment_grid(exp: Experiment, quick: bool, overrides=None, seeds: int | None = None) -> Grid:
    """The experiment's grid with `--set` overrides applied and the trailing `seed` dim."""
    grid = exp.grid(quick)
    if overrides:
        grid = grid.replace(**overrides)
    n_seeds = exp.seeds if seeds is None else seeds
    if not isinstance(n_seeds, int) or isinstance(n_seeds, bool) or n_seeds < 1:
        raise ValueError(f"seeds must be a positive int, got {n_seeds!r}")
    return grid * Grid.product(seed=np.arange(n_seeds))


def store_path(exp: Experiment, quick: bool, out, overrides=None, seeds=None, seed: int = 0) -> Path:
    """Where a run's store lives; custom grids/seeds get a hash suffix so they never overwrite the defaults."""
    out = Path(out)
    name = exp.name + ("-quick" if quick else "")
    if overrides or seeds is not None or seed:
        spec = json.dumps(
            {"set": {k: np.asarray(v).tolist() for k, v in sorted((overrides or {}).items())}, "seeds": seeds,
             "seed": seed},
            sort_keys=True,
        )
        name += "-" + hashlib.sha256(spec.encode()).hexdigest()[:8]
    path = (out / f"{name}.zarr").resolve()
    if out.resolve() not in path.parents:
        raise ValueError(f"store path {path} escapes the results directory {out}")
    return path


def run_experiment(
    exp: Experiment | str,
    quick: bool = True,
    out: str | os.PathLike = DEFAULT_OUT,
    fresh: bool = False,
    overrides: dict | None = None,
    seeds: int | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
    progress: bool | None = None,
) -> xr.Dataset:
    """Run (or resume, or just load) an experiment into its zarr store and return the dataset."""
    exp = resolve(exp)
    grid = experiment_grid(exp, quick, overrides, seeds)
    config = exp.config(quick)
    config_json = json.dumps(_jsonable(config), sort_keys=True)
    fingerprint = hashlib.sha256(
        json.dumps([exp.name, grid.to_json(), config_json, seed]).encode()
    ).hexdigest()[:16]
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"results directory {str(out)!r} cannot be created: {err.strerror}") from None
    if not os.access(out, os.W_OK):
        raise ValueError(f"results directory {str(out)!r} is not writable")
    path = store_path(exp, quick, out, overrides, seeds, seed)
    store = Store(path, fingerprint=fingerprint, fresh=fresh)
    rerun = ["python", "-m", "sims", "run", exp.name] + (["--quick"] if quick else [])
    for k, v in (overrides or {}).items():
        rerun += ["--set", f"{k}={','.join(repr(float(x)) for x in np.asarray(v))}"]
    if seeds is not None:
        rerun += ["--seeds", str(seeds)]
    if seed:
        rerun += ["--seed", str(seed)]
    attrs = {
        "experiment": exp.name,
        "family": exp.family,
        "claim": exp.claim,
        "paper": exp.paper,
        "quick": bool(quick),
        "config": config_json,
        "rerun": shlex.join(rerun),
    }

    def fn(point, key):
        return exp.simulate(point, key, config)

    return sweep(
        fn,
        grid,
        seed=seed,
        chunk_size=chunk_size or exp.chunk_size,
        dims=exp.dims,
        coords=exp.coords(config),
        store=store,
        order_by=exp.cost,
        progress=progress,
        desc=exp.name,
        attrs=attrs,
    )


def validate_experiment(exp: Experiment | str, quick: bool = True, out=DEFAULT_OUT, **kwargs) -> list[Check]:
    """Run (or load) an experiment and compare it with its closed forms; a crash in `compare` is a FAIL row."""
    exp = resolve(exp)
    ds = run_experiment(exp, quick=quick, out=out, **kwargs)
    try:
        checks = list(exp.compare(ds, exp.config(quick)))
    except Exception as err:
        checks = [Check(f"compare raised {type(err).__name__}: {err}", float("nan"), float("nan"), float("nan"), 0.0)]
    if not checks:
        checks = [Check("compare returned no checks", float("nan"), float("nan"), float("nan"), 0.0)]
    return checks


def load(exp: Experiment | str, quick: bool = True, out=DEFAULT_OUT) -> xr.Dataset | None:
    """The stored dataset of a finished default run, or None if there is none."""
    exp = resolve(exp)
    path = store_path(exp, quick, out)
    if not path.exists():
        return None
    try:
        return run_experiment(exp, quick=quick, out=out, progress=False)
    except Exception as err:  # a mismatching store is reported, never deleted
        print(f"warning: cannot use {path}: {err}", file=sys.stderr)
        return None
