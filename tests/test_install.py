"""A wheel installed non-editable into a fresh virtual environment serves both apps from any folder.

The wheel is built from a copy of the sources (so nothing of the checkout is reachable),
installed with ``--no-deps`` into a new venv, and the venv is given this environment's
site-packages for the dependencies (a ``.pth`` line, which adds the folder but runs none of
its ``.pth`` files, so a development install of latentatlas stays invisible): seconds and
offline, where resolving the ``app`` extra from an index takes minutes. The package itself,
its shipped data and its console script all come from the wheel.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest
from _ui import free_port

ROOT = Path(__file__).resolve().parents[1]

# about a minute: a wheel build, a venv, two Panel processes (CI runs it)
pytestmark = pytest.mark.slow

pytest.importorskip("panel")
# builds offline with this environment's setuptools, which makes wheels by itself from 70.1 on
pytest.importorskip("setuptools", minversion="70.1")


def _run(*args, **kwargs):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv with the wheel of this checkout; returns its bin folder."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "lib", source / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "wheel", source)
    (wheel,) = (tmp / "wheel").glob("latentatlas-*.whl")
    _run(sys.executable, "-m", "venv", "--without-pip", tmp / "venv")
    python = tmp / "venv" / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel)
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    deps = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "dependencies.pth").write_text("\n".join(deps) + "\n")
    return tmp / "venv" / "bin"


def _env():
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def test_installed_package_and_data_come_from_the_wheel(venv, tmp_path):
    code = ("import latentatlas, latentatlas.data as d; "
            "print(latentatlas.__file__); print(sorted(p.name for p in d.folder().glob('*.nc'))); "
            "from latentatlas.viz import Atlas, ConceptAtlas; print(list(Atlas().levels), ConceptAtlas().result.attrs['demo'])")
    out = _run(venv / "python", "-c", code, cwd=tmp_path, env=_env()).stdout.splitlines()
    assert Path(out[0]).is_relative_to(venv.parent)
    assert out[1] == str(["demo_comparison.nc", "demo_comparison_structure_level.nc", "demo_concepts_shapes.nc"])
    # the built-in demos open without arguments
    assert out[2].startswith("['atom level', 'structure level") and out[2].endswith("] shapes")


def _wait_listening(port: int, server: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}: {server.stdout.read()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def _document_strings(url: str) -> set[str]:
    """Every string property of the Bokeh document a browser would get from ``url``.

    Pulled in a thread of its own: Bokeh's client runs an event loop, which fails in a test
    process where an earlier test (Playwright, a notebook) left one running.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_pull_document_strings, url).result()


def _pull_document_strings(url: str) -> set[str]:
    import panel  # noqa: F401  (registers Panel's models for the client)
    from bokeh.client import pull_session

    found = set()
    with pull_session(url=url) as session:
        for model in session.document.models:
            for value in model.properties_with_values(include_defaults=False).values():
                items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
                for item in items:
                    item = item.tolist() if hasattr(item, "tolist") else item
                    found.update(x for x in (item if isinstance(item, list) else [item]) if isinstance(x, str))
    return found


@contextlib.contextmanager
def _served(command, cwd):
    """Run ``command`` (a ``latentatlas serve``) in ``cwd`` until the block ends; yields (base URL, log list)."""
    port = free_port()
    server = subprocess.Popen([*map(str, command), "--port", str(port)], cwd=cwd, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = []
    try:
        _wait_listening(port, server)
        yield f"http://127.0.0.1:{port}", log
    finally:
        server.terminate()
        log.append(server.communicate(timeout=30)[0])


def _page(url: str) -> bytes:
    # one patient request: on a busy machine building the page takes a while, and retries would pile up sessions
    with urllib.request.urlopen(url, timeout=300) as page:
        assert page.status == 200
        return page.read()


def test_serve_from_another_folder(venv, tmp_path):
    with _served([venv / "latentatlas", "serve"], tmp_path) as (url, log):
        for app in ("atlas", "concepts"):
            assert b"<title>latentatlas</title>" in _page(f"{url}/{app}")
        atlas = _document_strings(f"{url}/atlas")
        concepts = _document_strings(f"{url}/concepts")
    # the built-in comparison's feature sets and the shapes demo's concepts, read from the installed package
    assert {"chgnet-0.3.0:last", "soap:power_spectrum"} <= atlas, log
    assert "background=purple" in concepts, log
    assert "Traceback" not in log[0], log


def test_serving_a_result_needs_no_concept_demo(venv, tmp_path):
    """``python -m latentatlas serve mine.nc`` in a copy of the install whose concept demo is gone."""
    copy = tmp_path / "venv"
    shutil.copytree(venv.parent, copy, symlinks=True)
    code = "import latentatlas.data as d; print(d.folder())"
    site = Path(_run(copy / "bin" / "python", "-c", code, cwd=tmp_path, env=_env()).stdout.strip())
    assert site.is_relative_to(copy)
    (site / "demo_concepts_shapes.nc").unlink()
    shutil.copy(site / "demo_comparison.nc", tmp_path / "mine.nc")
    with _served([copy / "bin" / "python", "-m", "latentatlas", "serve", "mine.nc"], tmp_path) as (url, log):
        _page(f"{url}/atlas")
        atlas = _document_strings(f"{url}/atlas")
    assert {"chgnet-0.3.0:last", "soap:power_spectrum"} <= atlas, log
