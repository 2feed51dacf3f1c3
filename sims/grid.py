"""Parameter grids: a cartesian product of groups of zipped axes, flattened for one vmapped compiled run.

`Grid.product(a=[...], b=[...])` has dims (a, b); `Grid.zip(a=[...], b=[...], dim="point")` runs paired values
along one dim; `g1 * g2` is their product. `flat()` gives the per-point values in C order of the dims.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Mapping

import numpy as np


def _as_axis(name: str, values) -> np.ndarray:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"grid axis name must be an identifier, got {name!r}")
    try:
        arr = np.asarray(values)
    except Exception as err:  # ragged input etc.
        raise ValueError(f"grid axis {name!r}: values must be a 1-D list of numbers ({err})") from None
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim != 1:
        raise ValueError(f"grid axis {name!r} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"grid axis {name!r} is empty")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"grid axis {name!r} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"grid axis {name!r} contains NaN or inf")
    return arr.astype(np.float64) if arr.dtype.kind == "f" else arr.astype(np.int64)


@dataclass(frozen=True)
class Group:
    """Axes that vary together along one dimension `dim` (a single axis is a group of one)."""

    dim: str
    axes: tuple[tuple[str, np.ndarray], ...]

    @property
    def size(self) -> int:
        return len(self.axes[0][1])


class Grid:
    """Cartesian product of groups; each group is one dimension of the result."""

    def __init__(self, groups: tuple[Group, ...]):
        names = [n for g in groups for n, _ in g.axes]
        dims = [g.dim for g in groups]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate grid axis names: {names}")
        if len(set(dims)) != len(dims):
            raise ValueError(f"duplicate grid dims: {dims}")
        self.groups = tuple(groups)

    @classmethod
    def product(cls, **axes) -> "Grid":
        if not axes:
            raise ValueError("a grid needs at least one axis")
        return cls(tuple(Group(n, ((n, _as_axis(n, v)),)) for n, v in axes.items()))

    @classmethod
    def zip(cls, dim: str = "point", **axes) -> "Grid":
        if not axes:
            raise ValueError("a grid needs at least one axis")
        arrs = tuple((n, _as_axis(n, v)) for n, v in axes.items())
        sizes = {n: len(a) for n, a in arrs}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"zipped grid axes must have equal lengths, got {sizes}")
        return cls((Group(dim, arrs),))

    def __mul__(self, other: "Grid") -> "Grid":
        return Grid(self.groups + other.groups)

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(g.dim for g in self.groups)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(g.size for g in self.groups)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(n for g in self.groups for n, _ in g.axes)

    def axis(self, name: str) -> np.ndarray:
        for g in self.groups:
            for n, a in g.axes:
                if n == name:
                    return a
        raise KeyError(f"grid has no axis {name!r}; axes are {self.axis_names}")

    def flat(self) -> dict[str, np.ndarray]:
        """Per-point value of every axis, flattened in C order over `dims` (length `size`)."""
        idx = np.indices(self.shape).reshape(len(self.shape), -1)
        out = {}
        for gi, g in enumerate(self.groups):
            for n, a in g.axes:
                out[n] = a[idx[gi]]
        return out

    def coords(self) -> dict[str, tuple[str, np.ndarray]]:
        """xarray coordinates: every axis along its group's dim."""
        return {n: (g.dim, a) for g in self.groups for n, a in g.axes}

    def replace(self, **axes) -> "Grid":
        """The same grid with some axes given new values (zipped partners must be replaced together)."""
        unknown = set(axes) - set(self.axis_names)
        if unknown:
            raise ValueError(f"unknown grid axis {sorted(unknown)}; axes are {list(self.axis_names)}")
        groups = []
        for g in self.groups:
            new = tuple((n, _as_axis(n, axes[n]) if n in axes else a) for n, a in g.axes)
            sizes = {n: len(a) for n, a in new}
            if len(set(sizes.values())) != 1:
                raise ValueError(f"zipped axes {list(sizes)} must be set together with equal lengths, got {sizes}")
            groups.append(Group(g.dim, new))
        return Grid(tuple(groups))

    def to_json(self) -> list:
        return [[g.dim, [[n, a.tolist()] for n, a in g.axes]] for g in self.groups]

    @classmethod
    def from_json(cls, data) -> "Grid":
        return cls(tuple(Group(dim, tuple((n, _as_axis(n, v)) for n, v in axes)) for dim, axes in data))

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json()).encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        parts = ", ".join(f"{g.dim}={'+'.join(n for n, _ in g.axes)}[{g.size}]" for g in self.groups)
        return f"Grid({parts})"


def parse_range(text: str) -> np.ndarray:
    """Parse a `--set` value: 'start:stop:num' (linspace), 'start:stop:num:log' (geomspace) or 'v1,v2,...'."""
    text = text.strip()
    if not text:
        raise ValueError("empty value")
    if ":" in text:
        parts = text.split(":")
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] not in ("log", "lin")):
            raise ValueError(f"{text!r} is not start:stop:num or start:stop:num:log")
        try:
            start, stop = float(parts[0]), float(parts[1])
            num = int(parts[2])
        except ValueError:
            raise ValueError(f"{text!r}: start and stop must be numbers and num an integer") from None
        if num < 1:
            raise ValueError(f"{text!r}: num must be >= 1")
        if not (np.isfinite(start) and np.isfinite(stop)):
            raise ValueError(f"{text!r}: start and stop must be finite")
        if len(parts) == 4 and parts[3] == "log":
            if start <= 0 or stop <= 0:
                raise ValueError(f"{text!r}: a log range needs positive start and stop")
            return np.geomspace(start, stop, num)
        return np.linspace(start, stop, num)
    try:
        vals = np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of numbers") from None
    if not np.all(np.isfinite(vals)):
        raise ValueError(f"{text!r} contains NaN or inf")
    return vals


def parse_set(items: list[str] | None) -> Mapping[str, np.ndarray]:
    """Parse repeated `--set axis=range` options into {axis: values}."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected axis=start:stop:num")
        name, value = item.split("=", 1)
        name = name.strip()
        if not name.isidentifier():
            raise ValueError(f"--set {item!r}: {name!r} is not an axis name")
        try:
            out[name] = parse_range(value)
        except ValueError as err:
            raise ValueError(f"--set {name}: {err}") from None
    return out
