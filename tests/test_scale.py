"""Sharding over several (fake CPU) devices and over two jax.distributed processes gives the same results
as one device, bitwise; a killed multi-process run resumes without recomputing finished chunks."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

JOB = Path(__file__).with_name("scale_job.py")
ROOT = Path(__file__).resolve().parents[1]


def _env(devices=1):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _single(tmp_path, devices, name, extra=()):
    out = tmp_path / f"{name}.npz"
    subprocess.run([sys.executable, str(JOB), str(tmp_path / f"{name}.zarr"), str(out), *extra], env=_env(devices),
                   check=True, timeout=600)
    return np.load(out)


def _multi(tmp_path, name, kill_when_done=None, timeout=300):
    """Run the job as two jax.distributed processes; optionally SIGKILL both once `kill_when_done` units are stored.

    Each process logs to a file; a process that fails or hangs fails the test with both logs (never a hung suite).
    """
    port = _free_port()
    out = tmp_path / f"{name}.npz"
    logs = [tmp_path / f"{name}-{i}-{port}.log" for i in range(2)]
    procs = [
        subprocess.Popen([sys.executable, str(JOB), str(tmp_path / f"{name}.zarr"), str(out), str(i), "2", str(port)],
                         env=_env(2), stdout=open(logs[i], "w"), stderr=subprocess.STDOUT)
        for i in range(2)
    ]

    def kill_all():
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait()

    def report():
        return "\n".join(f"--- process {i} ---\n" + logs[i].read_text()[-3000:] for i in range(2))

    deadline = time.time() + timeout
    if kill_when_done is not None:
        from sims import Store

        while time.time() < deadline and all(p.poll() is None for p in procs):
            time.sleep(0.2)
            try:
                s = Store(tmp_path / f"{name}.zarr", fingerprint="scale")
                if s.initialised and s.done().sum() >= kill_when_done:
                    break
            except Exception:
                continue  # being created
        kill_all()
        return None
    while time.time() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.2)
        if any(p.poll() not in (None, 0) for p in procs):
            break  # one process failed: the other would wait for it forever
    codes = [p.poll() for p in procs]
    kill_all()
    assert codes == [0, 0], f"exit codes {codes} (None = hung past {timeout} s)\n{report()}"
    return np.load(out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return _single(tmp_path_factory.mktemp("ref"), 1, "ref")


def test_four_devices_bitwise_equal_to_one(tmp_path, reference):
    four = _single(tmp_path, 4, "four")
    assert int(four["devices"]) == 4
    np.testing.assert_array_equal(four["x"], reference["x"])
    np.testing.assert_array_equal(four["n"], reference["n"])


def test_cost_ordering_does_not_change_results(tmp_path, reference):
    ordered = _single(tmp_path, 1, "ordered", extra=("--ordered",))
    np.testing.assert_array_equal(ordered["x"], reference["x"])


def test_two_processes_gloo_equal_to_one_and_resume_after_kill(tmp_path, reference):
    from sims import Store

    two = _multi(tmp_path, "two")
    assert int(two["devices"]) == 4  # 2 processes x 2 local devices
    np.testing.assert_array_equal(two["x"], reference["x"])
    # kill both hosts once some units are stored; mark the stored rows with a sentinel
    _multi(tmp_path, "killed", kill_when_done=2)
    s = Store(tmp_path / "killed.zarr", fingerprint="scale")
    done = s.done()
    assert 2 <= done.sum() < len(done) or done.all()
    rows = np.concatenate([np.arange(u * s.chunk_size, min((u + 1) * s.chunk_size, s.n_points))
                           for u in np.flatnonzero(done)])
    s.group["n"][rows] = -1.0  # a recomputation would overwrite this
    resumed = _multi(tmp_path, "killed")
    flat_n = resumed["n"].reshape(-1)
    assert np.all(flat_n[rows] == -1.0)  # finished units were not recomputed
    others = np.setdiff1d(np.arange(s.n_points), rows)
    np.testing.assert_array_equal(flat_n[others], reference["n"].reshape(-1)[others])
    np.testing.assert_array_equal(resumed["x"], reference["x"])
