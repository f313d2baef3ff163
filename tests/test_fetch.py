"""`mnist-idk fetch` against a local HTTP server: good, corrupted, truncated, missing files, a dead mirror."""

from __future__ import annotations

import functools
import gzip
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from mnist_idk.cli import main
from mnist_idk.fetch import fetch
from mnist_idk.raw import RAW_FILES, load_split

from conftest import REPO

GOOD = {f"{raw.name}.gz": (REPO / "raw" / "mnist" / f"{raw.name}.gz").read_bytes() for raw in RAW_FILES.values()}


@functools.cache
def corrupted(name: str) -> bytes:
    """A valid gzip file whose content differs from the real one in its last byte."""
    raw = bytearray(gzip.decompress(GOOD[name]))
    raw[-1] ^= 0xFF
    return gzip.compress(bytes(raw), compresslevel=1, mtime=0)


class Mirrors:
    """One server, one mirror per path prefix: /good/, /corrupt/, /truncated/, /missing/."""

    def __init__(self):
        self.requests: list[tuple[str, str, str | None]] = []
        self.truncate_once: set[str] = set()
        mirrors = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                kind, _, name = self.path.strip("/").partition("/")
                mirrors.requests.append((kind, name, self.headers.get("Range")))
                if kind == "missing" or name not in GOOD:
                    self.send_error(404)
                    return
                data = GOOD[name]
                if kind == "corrupt":
                    data = corrupted(name)
                start = int(self.headers["Range"][6:].rstrip("-")) if self.headers.get("Range") else 0
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if kind == "truncated" and (kind, name) not in mirrors.truncate_once:
                    mirrors.truncate_once.add((kind, name))
                    self.wfile.write(data[start : start + len(data) // 3])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(data[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, kind):
        return f"{self.base}/{kind}/"


@pytest.fixture
def mirrors():
    server = Mirrors()
    yield server
    server.server.shutdown()


def dead_mirror():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"  # closed again: connection refused


def contents(dest):
    return sorted(p.name for p in dest.iterdir())


def test_falls_back_past_dead_missing_and_corrupt_mirrors(mirrors, tmp_path):
    order = (dead_mirror(), mirrors.url("missing"), mirrors.url("corrupt"), mirrors.url("good"))
    paths = fetch(tmp_path, order, attempts=2, backoff=0)
    assert contents(tmp_path) == sorted(GOOD)
    assert all(p.read_bytes() == GOOD[p.name] for p in paths)
    assert load_split("test", tmp_path).labels[0] == 7
    kinds = [kind for kind, name, _ in mirrors.requests if name == "t10k-labels-idx1-ubyte.gz"]
    assert kinds == ["missing", "corrupt", "good"]  # 404 and a bad checksum are not retried


def test_truncated_download_is_resumed_with_a_range_request(mirrors, tmp_path):
    fetch(tmp_path, (mirrors.url("truncated"),), attempts=3, backoff=0)
    assert contents(tmp_path) == sorted(GOOD)
    name = "train-images-idx3-ubyte.gz"
    ranges = [rng for kind, n, rng in mirrors.requests if n == name]
    assert ranges[0] is None and ranges[1] == f"bytes={len(GOOD[name]) // 3}-"


def test_present_valid_files_are_not_downloaded_again(mirrors, tmp_path):
    fetch(tmp_path, (mirrors.url("good"),), backoff=0)
    first = len(mirrors.requests)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"damaged")
    fetch(tmp_path, (mirrors.url("good"),), backoff=0)
    assert [name for _, name, _ in mirrors.requests[first:]] == ["t10k-labels-idx1-ubyte.gz"]


def test_cli_all_mirrors_bad_is_one_line_and_leaves_nothing(mirrors, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_IDK_MIRRORS", f"{dead_mirror()},{mirrors.url('corrupt')},{mirrors.url('missing')}")
    dest = tmp_path / "raw"
    result = CliRunner().invoke(main, ["fetch", "--dest", str(dest), "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "every mirror failed" in lines[0]
    assert "Connection refused" in lines[0] and "checksum mismatch" in lines[0] and "HTTP 404" in lines[0]
    assert contents(dest) == []


def test_cli_fetches_through_mirror_options(mirrors, tmp_path):
    result = CliRunner().invoke(main, ["fetch", "--dest", str(tmp_path), "--mirror", mirrors.url("good"), "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(line.rsplit("/", 1)[1] for line in result.output.split()) == sorted(GOOD)
