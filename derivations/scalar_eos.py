"""Alias of `derivations.edge_of_stability` under the name used in the issue's notebook API, e.g. `gfs_sharpness(w, y=1.0)`."""

from .edge_of_stability import *  # noqa: F401,F403
from .edge_of_stability import gfs_sharpness  # noqa: F401
