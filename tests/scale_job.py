"""Helper script for test_scale.py: one sweep, optionally as one process of a jax.distributed job.

usage: python scale_job.py STORE OUT.npz [--ordered] [PROCESS_ID NUM_PROCESSES PORT]
"""

import sys

import jax

jax.config.update("jax_enable_x64", True)
ordered = "--ordered" in sys.argv
args = [a for a in sys.argv[1:] if a != "--ordered"]
if len(args) > 2:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{args[4]}", num_processes=int(args[3]), process_id=int(args[2])
    )

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from sims import Grid, Store, sweep  # noqa: E402


def point_fn(point, key):
    """A small matmul-and-scan workload with randomness (so keys matter)."""
    a = jax.random.normal(key, (8, 8)) * 0.3 + point["s"] * jnp.eye(8)

    def body(x, _):
        return jnp.tanh(a @ x), None

    x, _ = jax.lax.scan(body, jnp.ones(8), None, length=3000)
    return {"x": x, "n": jnp.sum(x**2)}


grid = Grid.product(s=np.linspace(0.1, 1.0, 13)) * Grid.product(seed=np.arange(3))
ds = sweep(point_fn, grid, chunk_size=6, batch_size=2, store=Store(args[0], fingerprint="scale"), progress=False,
           order_by=(lambda flat: -flat["s"]) if ordered else None)
if jax.process_index() == 0:
    np.savez(args[1], x=ds["x"].values, n=ds["n"].values, devices=jax.device_count())
