"""A plain (non-editable) install works from anywhere, as users and the publish workflow run it.

A clean copy of this checkout (the files git would clone) is built into a wheel and installed into
a fresh virtual environment; its `mnist-idk` then runs outside any checkout with an empty cache,
and the publish workflow's steps run in the clean copy, against tests/fakehub.py.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import venv
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from fakehub import FakeHub
from mnist_idk.workspace import Workspace

from conftest import RAW, REPO

TOKEN = "hf_InstallTestToken_91c3"
#: sha256 of release v1.0.0's Parquet shards as built by the code that published it (commit a6bcbc0).
V1_SHARDS = {
    "data/train-00000-of-00001.parquet": "b97037ad34dcbe539c78d5d66263f4f2b7340388079c6f7a737f9f192a4a5197",
    "data/test-00000-of-00001.parquet": "f5a4638599a9b15990a5e731b89fd928dd6f833e6255ffd9cca98717a639e945",
}


def clean_copy(target: Path) -> Path:
    """The files a clone would have (tracked and not ignored), as they are now in this checkout."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def tree_digest(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(clean copy, venv bin dir, site-packages) with mnist-idk installed from a wheel, not editable."""
    root = tmp_path_factory.mktemp("install")
    clone = clean_copy(root / "clone")
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(clone)],
                   check=True, capture_output=True, timeout=600)
    # The dependencies come from this interpreter's site-packages; mnist-idk itself only from the wheel.
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(root / "venv")
    bin_dir = root / "venv" / "bin"
    python = bin_dir / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(next(wheels.glob("*.whl")))], check=True, capture_output=True, timeout=600)
    site = Path(subprocess.run([python, "-c", "import mnist_idk, pathlib; print(pathlib.Path(mnist_idk.__file__).parent)"],
                               capture_output=True, text=True, check=True, cwd=root).stdout.strip())
    assert site.is_relative_to(root / "venv"), site  # the wheel, not this checkout's editable install
    return clone, bin_dir, site


def run(bin_dir: Path, cwd: Path, *args, env_extra=None, timeout=600):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MNIST_IDK_", "HF_TOKEN"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", **(env_extra or {}))
    return subprocess.run(["mnist-idk", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def mirror():
    """The raw .gz files served over HTTP, as a mirror for `mnist-idk fetch`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(RAW)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_from_an_unrelated_directory_with_an_empty_cache(installed, mirror, tmp_path, ws):
    clone, bin_dir, site = installed
    package_before = tree_digest(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache = tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    raw_dir = cache / "mnist-idk" / "raw"

    missing = run(bin_dir, elsewhere, "build", "--version", "v1.0.0", env_extra=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    error = missing.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {raw_dir}: missing ") and "mnist-idk fetch" in error, error
    assert "site-packages" not in error and not (elsewhere / "build").exists()

    fetched = run(bin_dir, elsewhere, "fetch", "--mirror", mirror, "-q", env_extra=env)
    assert fetched.returncode == 0, fetched.stderr
    assert sorted(p.name for p in raw_dir.iterdir()) == sorted(p.name for p in RAW.iterdir())

    built = run(bin_dir, elsewhere, "build", "--version", "v1.0.0", env_extra=env)
    assert built.returncode == 0, built.stderr
    assert "shipped with mnist-idk" in built.stderr  # it says which lists it used

    from mnist_idk.build import build

    reference = build(ws, tmp_path / "checkout-build", "v1.0.0", validate=False).out
    for shard, digest in V1_SHARDS.items():  # as release v1.0.0 was built and published
        assert hashlib.sha256((reference / shard).read_bytes()).hexdigest() == digest
    for shard in ("data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"):
        assert (elsewhere / "build" / "mnist_idk" / shard).read_bytes() == (reference / shard).read_bytes()
    assert tree_digest(elsewhere / "build" / "mnist_idk") == tree_digest(reference)

    # Without --version outside a checkout: the newest shipped release; working lists are refused.
    assert run(bin_dir, elsewhere, "validate", env_extra=env).returncode == 0
    working = run(bin_dir, elsewhere, "build", "--version", "working", env_extra=env)
    assert working.returncode == 2 and "needs the working lists of a checkout" in working.stderr
    assert tree_digest(site) == package_before  # nothing was written inside the installed package


def test_the_publish_workflow_steps_as_written(installed, tmp_path):
    """`pip install .` then the workflow's run steps, in a clean copy, pushing (dry run) to a local Hub."""
    clone, bin_dir, _ = installed
    workflow = yaml.safe_load((clone / ".github" / "workflows" / "publish.yml").read_text("utf-8"))
    steps = [step["run"] for step in workflow["jobs"]["publish"]["steps"] if "run" in step]
    assert steps[0] == "pip install ."  # what the fixture did, into a fresh venv
    version = Workspace.find(cwd=clone, environ={}).released_versions()[-1]
    with FakeHub({TOKEN: ("alice", "write")}) as hub:
        env = {"VERSION": version, "MNIST_IDK_REPO_ID": "alice/mnist_idk", "HF_ENDPOINT": hub.endpoint,
               "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf")}
        for step in steps[1:]:
            command = step.replace("mnist-idk push", "mnist-idk push --dry-run")
            env_all = {k: v for k, v in os.environ.items() if not k.startswith(("MNIST_IDK_", "HF_TOKEN"))}
            env_all.update(env, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
            result = subprocess.run(["sh", "-c", command], cwd=clone, env=env_all, capture_output=True,
                                    text=True, timeout=600)
            assert result.returncode == 0, (command, result.stderr)
            assert TOKEN not in result.stdout + result.stderr
        assert "dry run: nothing was written" in result.stdout
        assert f"tag {version}" in result.stdout or version in result.stdout
