"""Zarr store of one experiment run: flat per-point arrays written chunk by chunk, with a per-chunk done flag.

A chunk's flag is set only after its data is written, so a run killed at any moment resumes by recomputing
exactly the chunks without a flag; readers only decode flagged chunks, so a half-written chunk is never read.
A store remembers the fingerprint (grid, config, seed) it was made for and refuses to mix results of
another configuration: pass `fresh=True` to discard it on purpose.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import zarr
import zarr.errors

_DONE = "_chunk_done"
_ORDER = "_order"


def _open_group(path: Path):
    """Open (creating if needed) the zarr group; if another process creates it at the same moment, open theirs."""
    try:
        return zarr.open_group(str(path), mode="a")
    except zarr.errors.ContainsGroupError:
        return zarr.open_group(str(path), mode="r+")


class StoreMismatch(ValueError):
    """The store on disk was written for another grid/config/seed."""


class Store:
    """One experiment's results at `path` (a zarr v3 directory)."""

    def __init__(self, path: str | os.PathLike, *, fingerprint: str, fresh: bool = False):
        self.path = Path(path)
        self.fingerprint = fingerprint
        if fresh and self.path.exists():
            shutil.rmtree(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(self.path.parent, os.W_OK):
            raise PermissionError(f"results directory {str(self.path.parent)!r} is not writable")
        if self.path.exists():
            # a store whose creation was interrupted (not 'initialised') holds no finished chunk: `initialise`
            # simply overwrites it. It is never deleted here, since another process may be creating it right now.
            group = _open_group(self.path)
            if group.attrs.get("initialised", False) and group.attrs.get("fingerprint") != fingerprint:
                raise StoreMismatch(
                    f"{self.path} holds results for another grid/config/seed "
                    f"(fingerprint {group.attrs.get('fingerprint')} != {fingerprint}); "
                    "use --fresh to recompute it, or --out to write elsewhere"
                )
        self.group = _open_group(self.path)

    @property
    def initialised(self) -> bool:
        return bool(self.group.attrs.get("initialised", False))

    def reopen(self):
        """Re-read the group (after another process created it)."""
        self.group = _open_group(self.path)

    def initialise(
        self,
        n_points: int,
        chunk_size: int,
        shapes: dict[str, tuple[tuple, np.dtype]],
        attrs: dict,
        order: np.ndarray | None = None,
    ):
        """Create one array per output with shape (n_points, *shape), chunked along points by `chunk_size`.

        Rows are stored in processing order: row j holds flat grid point `order[j]` (identity by default).
        """
        if self.initialised:
            return
        n_chunks = -(-n_points // chunk_size)
        for name, (shape, dtype) in shapes.items():
            fill = False if np.dtype(dtype) == np.bool_ else (0 if np.dtype(dtype).kind in "iu" else np.nan)
            self.group.create_array(
                name, shape=(n_points, *shape), chunks=(chunk_size, *shape), dtype=dtype, fill_value=fill,
                overwrite=True,
            )
        self.group.create_array(_DONE, shape=(n_chunks,), chunks=(1,), dtype="int8", fill_value=0, overwrite=True)
        order = np.arange(n_points) if order is None else np.asarray(order, dtype=np.int64)
        self.group.create_array(_ORDER, shape=(n_points,), dtype="int64", overwrite=True)
        self.group[_ORDER][:] = order
        self.group.attrs.update(
            {
                **{k: v for k, v in attrs.items()},
                "fingerprint": self.fingerprint,
                "n_points": n_points,
                "chunk_size": chunk_size,
                "outputs": json.dumps({k: [list(s), np.dtype(d).str] for k, (s, d) in shapes.items()}),
                "initialised": True,
            }
        )

    @property
    def chunk_size(self) -> int:
        return int(self.group.attrs["chunk_size"])

    @property
    def n_points(self) -> int:
        return int(self.group.attrs["n_points"])

    def outputs(self) -> dict[str, tuple[tuple, np.dtype]]:
        raw = json.loads(self.group.attrs["outputs"])
        return {k: (tuple(s), np.dtype(d)) for k, (s, d) in raw.items()}

    def order(self) -> np.ndarray:
        """Row j of every output holds flat grid point order[j]."""
        return np.asarray(self.group[_ORDER][:])

    def done(self) -> np.ndarray:
        """Boolean flag per chunk: its data is completely written."""
        return np.asarray(self.group[_DONE][:]).astype(bool)

    def write_chunk(self, index: int, values: dict[str, np.ndarray]):
        """Write chunk `index` (all outputs), then mark it done."""
        start = index * self.chunk_size
        for name, arr in values.items():
            self.group[name][start : start + len(arr)] = arr
        self.group[_DONE][index] = 1

    def read(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """All outputs in flat grid order (points of unfinished chunks are NaN/0) and the per-point completion mask."""
        done = self.done()
        n, cs = self.n_points, self.chunk_size
        complete = np.zeros(n, dtype=bool)
        out = {}
        for name, (shape, dtype) in self.outputs().items():
            fill = False if dtype == np.bool_ else (0 if dtype.kind in "iu" else np.nan)
            arr = np.full((n, *shape), fill, dtype=dtype)
            for i in np.flatnonzero(done):
                arr[i * cs : (i + 1) * cs] = self.group[name][i * cs : (i + 1) * cs]
            out[name] = arr
        for i in np.flatnonzero(done):
            complete[i * cs : (i + 1) * cs] = True
        order = self.order()
        unsorted = {}
        for name, arr in out.items():
            u = np.empty_like(arr)
            u[order] = arr
            unsorted[name] = u
        c = np.empty_like(complete)
        c[order] = complete
        return unsorted, c

    def attrs(self) -> dict:
        return dict(self.group.attrs)

    def set_attrs(self, **attrs):
        self.group.attrs.update(attrs)
