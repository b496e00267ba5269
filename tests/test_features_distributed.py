"""Featurising on a real dask LocalCluster into zarr: same values as in one process, resumable after a kill."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from latentatlas.cli import main
from latentatlas.features.distributed import chunk_frames, partial_path
from latentatlas.io import load

pytest.importorskip("distributed")
pytest.importorskip("featomic")

CLI = [sys.executable, "-c", "import sys; from latentatlas.cli import main; sys.exit(main())"]


def test_chunk_plan_covers_every_atom_once():
    n_atoms = [3, 7, 1, 1, 12, 2]
    plan = chunk_frames(n_atoms, 5)
    owner = np.repeat(np.arange(len(n_atoms)), n_atoms)
    starts = np.concatenate([[0], np.cumsum(n_atoms)])
    rows = []
    for frames, local in plan:
        atoms = np.arange(starts[frames.start], starts[frames.stop])[local]
        assert set(owner[atoms]) <= set(range(frames.start, frames.stop))
        rows.extend(atoms)
    np.testing.assert_array_equal(rows, np.arange(sum(n_atoms)))
    assert [len(range(sum(n_atoms))[a:b]) for a, b in [(0, 5), (25, 30)]] == [5, 1]
    with pytest.raises(ValueError, match="chunk_atoms"):
        chunk_frames(n_atoms, 0)


def _env(tmp_path):
    return {**os.environ, "LATENTATLAS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}


def _done_chunks(store):
    import zarr

    try:
        return int(np.asarray(zarr.open_group(str(store), mode="r")["chunk_done"][:]).sum())
    except Exception:  # the store is still being created
        return 0


def test_distributed_run_equals_an_in_process_run(tmp_path):
    args = ["featurize", "--builtin", "--small", "-m", "soap", "-q", "--no-cache"]
    assert main([*args, "--out", str(tmp_path / "f.nc")]) == 0
    assert main([*args, "--out", str(tmp_path / "f.zarr"), "--chunk-atoms", "24", "--workers", "2"]) == 0
    reference, got = load(tmp_path / "f.nc"), load(tmp_path / "f.zarr")
    assert got["soap:power_spectrum"].chunks[0][0] == 24
    assert got.attrs["fingerprint"] == reference.attrs["fingerprint"]
    xr.testing.assert_allclose(got.compute(), reference, rtol=1e-12, atol=0)
    assert got["soap:power_spectrum"].attrs == reference["soap:power_spectrum"].attrs


@pytest.mark.slow
def test_killed_run_resumes_and_equals_a_clean_run(tmp_path):
    # CHGNet, in chunks of 12 atoms: slow enough per chunk that the run is caught half-way
    # (SOAP finishes all chunks within a poll interval on an idle machine)
    model = ["-m", "chgnet-0.3.0", "--layers", "last"]
    out = tmp_path / "f.zarr"
    args = ["featurize", "--builtin", "--small", *model, "--out", str(out), "--chunk-atoms", "12"]
    # a clean run in one process, netCDF (CHGNet's features do not depend on the batching)
    assert main(["featurize", "--builtin", "--small", *model, "--out", str(tmp_path / "f.nc"), "-q", "--no-cache"]) == 0
    reference = load(tmp_path / "f.nc")

    run = subprocess.Popen([*CLI, *args, "--workers", "1"], env=_env(tmp_path), start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    n_chunks = len(chunk_frames(reference.n_atoms.values, 12))
    try:
        deadline = time.monotonic() + 300
        while _done_chunks(partial_path(out)) < 3 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.02)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the CLI, its scheduler and its worker processes
        run.wait()
    done = _done_chunks(partial_path(out))
    assert 3 <= done < n_chunks, f"the run must be killed half-way ({done} of {n_chunks} chunks done)"
    assert not out.exists()

    rerun = subprocess.run([*CLI, *args, "--workers", "2"], env=_env(tmp_path), capture_output=True, text=True, timeout=400)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    first = re.search(r"featurize:.*?\| *(\d+)/(\d+)", rerun.stderr)
    assert first and int(first.group(1)) >= done and int(first.group(2)) == n_chunks, "the rerun resumes"
    assert not partial_path(out).exists()
    got = load(out)
    assert got["chgnet-0.3.0:last"].chunks[0][0] == 12
    assert got.attrs["fingerprint"] == reference.attrs["fingerprint"]
    assert "chunk_done" not in got and "chunk_done" not in got.dims
    xr.testing.assert_allclose(got.compute(), reference, rtol=1e-12, atol=0)
    assert got["chgnet-0.3.0:last"].attrs == reference["chgnet-0.3.0:last"].attrs


def test_distributed_needs_a_zarr_output(tmp_path, capsys):
    rc = main(["featurize", "--builtin", "--small", "-m", "soap", "--out", str(tmp_path / "f.nc"), "--workers", "2"])
    assert rc == 2 and "give --out ending in .zarr" in capsys.readouterr().err


def test_resume_refuses_a_store_of_other_frames(tmp_path, capsys):
    from ase.build import bulk

    import ase.io

    from latentatlas.dataset import add_feature_set, empty_features
    from latentatlas.io import save

    other = empty_features([bulk("Cu")])
    other = add_feature_set(other, np.ones((1, 3)), model="soap", layer="power_spectrum")
    out = tmp_path / "f.zarr"
    save(other, partial_path(out).with_suffix(".zarr"))
    partial_path(out).with_suffix(".zarr").rename(partial_path(out))
    ase.io.write(tmp_path / "s.extxyz", [bulk("Si"), bulk("Al")])
    rc = main(["featurize", str(tmp_path / "s.extxyz"), "-m", "soap", "--out", str(out), "--workers", "1", "-q"])
    assert rc == 2 and "interrupted run for other frames" in capsys.readouterr().err
