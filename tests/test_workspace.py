"""Where things are: found from the working directory like git, overridable, never the package's own path."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from mnist_idk.cli import main
from mnist_idk.errors import MnistIdkError
from mnist_idk.staging import make_staging, sweep_dead
from mnist_idk.workspace import Workspace, user_cache_raw_dir

from conftest import RAW, REPO

HEADER = "index,original,label,reason,note\n"


def checkout(root, train_rows=()):
    """A minimal checkout: curation_lists/ with working lists, release v1.0.0 copied from this repo."""
    lists = root / "curation_lists"
    lists.mkdir(parents=True)
    (lists / "train.csv").write_text(HEADER + "".join(train_rows), "utf-8")
    (lists / "test.csv").write_text(HEADER, "utf-8")
    shutil.copytree(REPO / "curation_lists" / "releases" / "v1.0.0", lists / "releases" / "v1.0.0")
    shutil.copyfile(REPO / "curation_lists" / "CHANGELOG.md", lists / "CHANGELOG.md")
    return root


def test_an_unknown_release_names_the_releases_in_one_readable_line(tmp_path):
    root = checkout(tmp_path / "clone")
    ws = Workspace.find(cwd=root, environ={})
    with pytest.raises(MnistIdkError, match=r"v9\.9\.9: no such release \(released: v1\.0\.0\)"):
        ws.version_dir("v9.9.9")
    for minor in range(1, 12):  # twelve releases: the count, the range and the newest five
        (root / "curation_lists" / "releases" / f"v1.{minor}.0").mkdir()
    with pytest.raises(MnistIdkError) as error:
        ws.version_dir("9.9.9")
    assert str(error.value).endswith("no such release (12 released, v1.0.0 to v1.11.0; the newest: v1.7.0, v1.8.0, "
                                     "v1.9.0, v1.10.0, v1.11.0)")


def test_the_checkout_is_found_from_any_subdirectory(tmp_path):
    root = checkout(tmp_path / "clone")
    deep = root / "a" / "b"
    deep.mkdir(parents=True)
    ws = Workspace.find(cwd=deep, environ={})
    assert ws.lists_dir == (root / "curation_lists").resolve() and ws.has_working
    assert not ws.obvious  # found above the current directory: the command says which lists it uses
    assert Workspace.find(cwd=root, environ={}).obvious
    assert ws.raw_dir == user_cache_raw_dir()  # this checkout has no raw/mnist
    (root / "raw" / "mnist").mkdir(parents=True)
    assert Workspace.find(cwd=deep, environ={}).raw_dir == (root / "raw" / "mnist").resolve()


def test_options_beat_the_environment_which_beats_the_checkout(tmp_path):
    root = checkout(tmp_path / "clone")
    env = {"MNIST_IDK_LISTS_DIR": str(tmp_path / "env-lists"), "MNIST_IDK_RAW_DIR": str(tmp_path / "env-raw")}
    ws = Workspace.find(cwd=root, environ=env)
    assert (ws.lists_dir, ws.raw_dir, ws.origin) == (tmp_path / "env-lists", tmp_path / "env-raw", "MNIST_IDK_LISTS_DIR")
    ws = Workspace.find(tmp_path / "flag", tmp_path / "raw-flag", cwd=root, environ=env)
    assert (ws.lists_dir, ws.raw_dir) == (tmp_path / "flag", tmp_path / "raw-flag")


def test_outside_a_checkout_the_shipped_releases_are_used(tmp_path):
    ws = Workspace.find(cwd=tmp_path, environ={})
    assert not ws.has_working and "v1.0.0" in ws.released_versions()
    assert ws.default_version() == ws.released_versions()[-1]
    assert ws.raw_dir == user_cache_raw_dir() and ws.template.is_file()
    with pytest.raises(MnistIdkError, match="needs the working lists of a checkout"):
        ws.version_dir("working")


@pytest.mark.parametrize("command, what", [
    (["lint", "--no-raw"], "lint"), (["release", "9.0.0"], "release"),
    (["build", "--version", "working"], "--version working"),
    (["review", "reader", "contested"], "review reader contested"),
    (["review", "reader", "family", "--label", "4", "--note", "closed", "--out", "family.csv"], "review reader family"),
])
def test_commands_that_need_working_lists_say_so_outside_a_checkout(tmp_path, monkeypatch, command, what):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MNIST_IDK_LISTS_DIR", raising=False)
    monkeypatch.setenv("MNIST_IDK_RAW_DIR", str(RAW))
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"error: {what} needs the working lists of a checkout" in errors[0]
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def run_cli(cwd, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_IDK_")}
    env["MNIST_IDK_RAW_DIR"] = str(RAW)
    return subprocess.run([sys.executable, "-m", "mnist_idk", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_two_checkouts_side_by_side_each_lint_and_release_only_themselves(tmp_path):
    a = checkout(tmp_path / "a", ["1,0,IDK,noisy,a smudge over the 0\n"])
    b = checkout(tmp_path / "b", ["1,0,IDK,noisy,x\n", "3,7,IDK,noisy,y\n"])
    (b / "curation_lists" / "test.csv").write_text(HEADER + "5,1,IDK,noisy,\n", "utf-8")  # empty note
    lint_a, lint_b = run_cli(a, "lint"), run_cli(b, "lint")
    assert lint_a.returncode == 0 and lint_a.stdout.strip() == f"{(a / 'curation_lists').resolve()}: lists are clean"
    assert lint_b.returncode == 2 and "test.csv:2: note is empty" in lint_b.stderr
    assert "original is 7 but raw train label 3 is 1" in lint_b.stderr
    before_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*"))
    ours = {p: p.read_bytes() for p in (REPO / "curation_lists").rglob("*") if p.is_file()}
    released = run_cli(a, "release", "1.1.0", "-m", "Only a.")
    assert released.returncode == 0, released.stderr
    assert (a / "curation_lists" / "releases" / "v1.1.0" / "train.csv").is_file()
    assert sorted(p.relative_to(b).as_posix() for p in b.rglob("*")) == before_b
    assert {p: p.read_bytes() for p in (REPO / "curation_lists").rglob("*") if p.is_file()} == ours


def test_python_dash_m_is_the_command():
    result = subprocess.run([sys.executable, "-m", "mnist_idk", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("Usage: mnist-idk")


def test_a_killed_build_leaves_staging_that_the_next_build_removes(tmp_path):
    """SIGKILL mid-build leaves the hidden staging directory; the next build into the place removes it."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_IDK_")}
    env["MNIST_IDK_RAW_DIR"] = str(RAW)
    process = subprocess.Popen([sys.executable, "-m", "mnist_idk", "build", "--out", str(out), "-q"],
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    leftovers = list(tmp_path.glob(".out.*.tmp"))
    assert len(leftovers) == 1 and not out.exists()
    alive = make_staging(out)  # a concurrent run: its owner (this process) is alive
    assert not leftovers[0].exists() and alive.is_dir()  # making one swept the dead one
    assert sweep_dead(out) == [] and alive.is_dir()  # never a live run's
    leftovers[0].mkdir()  # put the dead one back: the next build, not a helper, must clear it
    result = subprocess.run([sys.executable, "-m", "mnist_idk", "build", "--out", str(out), "-q", "--no-validate"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", alive.name])
