"""Named experiments: a grid, a JAX simulation per grid point, and a comparison against closed forms.

An `Experiment` is registered once in `sims/experiments/<family>.py` with `register(Experiment(...))`.
`simulate(point, key, config)` must be JAX-traceable (it is vmapped over the flattened grid by the sweep
engine and compiled once); `compare(ds, config)` computes the theory from `derivations` and returns `Check`s.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

from .grid import Grid

FAMILIES = (
    "deep_linear",
    "diagonal_linear",
    "matrix_sensing",
    "sgd_sde",
    "byol",
    "neural_collapse",
    "edge_of_stability",
)


@dataclass(frozen=True)
class Check:
    """One theory-vs-simulation comparison: passes when `error <= tolerance` (NaN never passes).

    `tolerance` must come from the integrator error, the step size or k Monte-Carlo standard errors; say which
    in `note`.
    """

    claim: str
    theory: float
    simulated: float
    error: float
    tolerance: float
    note: str = ""

    @property
    def passed(self) -> bool:
        return bool(math.isfinite(self.error) and self.error <= self.tolerance)


@dataclass(frozen=True)
class Experiment:
    """A named, registered comparison of a closed form (derivations/) with a simulation (toymodels/)."""

    name: str
    family: str
    claim: str
    paper: str
    grid: Callable[[bool], Grid]
    simulate: Callable[[dict, object, dict], dict]
    compare: Callable[[object, dict], list[Check]]
    config: Callable[[bool], dict] = field(default=lambda quick: {})
    dims: dict[str, tuple[str, ...]] = field(default_factory=dict)
    coords: Callable[[dict], dict] = field(default=lambda config: {})
    seeds: int = 1
    chunk_size: int = 64
    cost: Callable[[dict], object] | None = None  # expected cost per flat grid point: groups stiff points together

    def __post_init__(self):
        if not re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", self.name):
            raise ValueError(f"experiment name {self.name!r} must look like family.what (lowercase, digits, _)")
        if self.family not in FAMILIES:
            raise ValueError(f"experiment {self.name!r}: unknown family {self.family!r}; one of {FAMILIES}")
        if not self.name.startswith(self.family + "."):
            raise ValueError(f"experiment name {self.name!r} must start with its family {self.family!r}.")


REGISTRY: dict[str, Experiment] = {}


def register(exp: Experiment) -> Experiment:
    """Add an experiment to the registry (names are unique)."""
    if exp.name in REGISTRY and REGISTRY[exp.name] is not exp:
        raise ValueError(f"experiment {exp.name!r} is registered twice")
    REGISTRY[exp.name] = exp
    return exp


def load_all() -> dict[str, Experiment]:
    """Import every family's experiment module and return the registry."""
    import importlib

    for fam in FAMILIES:
        try:
            importlib.import_module(f"sims.experiments.{fam}")
        except ModuleNotFoundError as err:
            if err.name != f"sims.experiments.{fam}":
                raise
    return REGISTRY


def get(name: str) -> Experiment:
    """The experiment called `name`, or a ValueError listing close names."""
    reg = load_all()
    if name not in reg:
        import difflib

        close = difflib.get_close_matches(name, list(reg), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `python -m sims list`"
        raise ValueError(f"unknown experiment {name!r}{hint}")
    return reg[name]


def select(family: str | None = None) -> list[Experiment]:
    """All experiments, or those of one family (ValueError for an unknown family)."""
    reg = load_all()
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")
    return [e for e in reg.values() if family is None or e.family == family]
