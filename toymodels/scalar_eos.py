"""Alias of `toymodels.edge_of_stability` under the name used in the issue's notebook API (scalar networks at the EoS)."""

from .edge_of_stability import *  # noqa: F401,F403
from .edge_of_stability import __all__  # noqa: F401
from .linalg import hessian_sharpness as sharpness  # noqa: F401  sharpness(loss, w): exact largest eigenvalue
