"""A small in-memory Hugging Face Hub for tests, spoken to over real HTTP on 127.0.0.1.

It implements the endpoints that the real, unmodified ``huggingface_hub`` and ``datasets``
clients call to push and to load a dataset repo (see ../shared/notes/hub-api.md): whoami, repo
creation, card YAML validation, revision info, preupload, the Git LFS batch API and uploads, NDJSON commits (honouring
``parentCommit``, all-or-nothing), tags, refs, commits, tree, paths-info, resolve (with Range)
and pull requests as ``refs/pr/N``. Uploads use the plain LFS path: the tests set
``HF_HUB_DISABLE_XET=1``, because emulating Xet's content-addressed chunk protocol would be a
project of its own and tells us nothing more about our push logic.

Every request must carry a bearer token the server knows; a ``read`` token cannot write.
``fail_next(kind, status, times)`` injects failures (``commit``, ``upload`` or ``whoami``);
``status=0`` drops the connection instead of answering. ``requests`` logs every request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".parquet", ".png", ".arrow")


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    files: dict[str, bytes]


@dataclass
class Repo:
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    prs: list[str] = field(default_factory=list)  # head commit of refs/pr/N at index N-1

    def resolve(self, revision: str) -> str | None:
        revision = unquote(revision)
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        match = re.fullmatch(r"refs/pr/(\d+)", revision)
        if match and 0 < int(match.group(1)) <= len(self.prs):
            return self.prs[int(match.group(1)) - 1]
        return revision if revision in self.commits else None


class FakeHub:
    """State plus a server thread; use as a context manager, read ``endpoint``."""

    def __init__(self, tokens: dict[str, tuple[str, str]], orgs: tuple[str, ...] = ()):
        self.tokens = tokens  # token -> (user name, "read" | "write")
        self.orgs = orgs
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.faults: dict[str, list[int]] = {}
        self.lock = threading.RLock()
        self._commits = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeHub":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()

    def seed(self, repo_id: str, files: dict[str, bytes], tag: str | None = None) -> str:
        """A repo whose main branch already holds ``files`` (tests set up state without pushing)."""
        with self.lock:
            repo = self.repos.setdefault(repo_id, Repo(private=False))
            parent = repo.branches.get("main")
            base = repo.commits[parent].files if parent else {".gitattributes": b"*.parquet filter=lfs\n"}
            oid = repo.branches["main"] = self.new_commit(repo, parent, "seed", {**base, **files})
            if tag:
                repo.tags[tag] = oid
            return oid

    def sign(self, oid: str) -> str:
        return hashlib.sha256(f"{id(self)}:{oid}".encode()).hexdigest()[:16]

    def fail_next(self, kind: str, status: int, times: int = 1) -> None:
        self.faults[kind] = [status] * times

    def snapshot(self, repo_id: str) -> tuple:
        """Everything a client could observe about a repo, to prove that nothing changed."""
        repo = self.repos.get(repo_id)
        if repo is None:
            return ()
        return (dict(repo.branches), dict(repo.tags), list(repo.prs), sorted(repo.commits))

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return dict(repo.commits[repo.resolve(revision)].files)

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if m in ("POST", "PUT", "DELETE") and "/preupload/" not in p
                and "/paths-info/" not in p and not p.endswith("/objects/batch")]

    def new_commit(self, repo: Repo, parent: str | None, title: str, files: dict[str, bytes]) -> str:
        self._commits += 1
        oid = hashlib.sha1(f"commit {self._commits} {title}".encode()).hexdigest()
        repo.commits[oid] = Commit(oid, parent, title, files)
        return oid


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        # -- plumbing -------------------------------------------------------------------
        def body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def send(self, status: int, payload=b"", headers: dict | None = None, head_only: bool = False) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            content_type = "application/octet-stream" if isinstance(payload, bytes) else "application/json"
            self.send_header("Content-Type", content_type)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head_only:
                self.wfile.write(data)

        def error(self, status: int, message: str) -> None:
            self.send(status, {"error": message}, {"X-Error-Message": message})

        def user(self) -> tuple[str, str] | None:
            auth = self.headers.get("Authorization", "")
            return hub.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None

        def injected(self, kind: str) -> bool:
            with hub.lock:
                pending = hub.faults.get(kind)
                status = pending.pop() if pending else None
            if status is None:
                return False
            if status == 0:
                self.close_connection = True
                self.connection.shutdown(2)
            else:
                self.error(status, f"injected failure {status}")
            return True

        def handle_any(self, method: str) -> None:
            url = urlsplit(self.path)
            hub.requests.append((method, url.path))
            self.query = parse_qs(url.query)
            caller = self.user()
            if url.path.startswith("/lfs-upload/"):  # a presigned URL, as on the Hub: no bearer token
                oid = url.path.rsplit("/", 1)[1]
                caller = ("lfs", "write") if self.query.get("sig") == [hub.sign(oid)] else None
            if caller is None:
                self.body()
                return self.error(401, "Invalid credentials in Authorization header")
            for pattern, name in ROUTES:
                match = re.fullmatch(pattern, url.path)
                if match and name.startswith(method.lower() + "_"):
                    return getattr(self, name)(caller, **match.groupdict())
            self.error(404, f"no route {method} {url.path}")

        def do_GET(self):
            self.handle_any("GET")

        def do_HEAD(self):
            self.handle_any("HEAD")

        def do_POST(self):
            self.handle_any("POST")

        def do_PUT(self):
            self.handle_any("PUT")

        def repo(self, repo_id: str) -> Repo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self.send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound",
                                                                    "X-Error-Message": "Repository not found"})
            return repo

        def revision(self, repo: Repo, rev: str) -> str | None:
            oid = repo.resolve(rev)
            if oid is None:
                self.send(404, {"error": f"Invalid rev id: {unquote(rev)}"},
                          {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"})
            return oid

        def can_write(self, caller, repo_id: str) -> bool:
            if caller[1] != "write" or repo_id.split("/")[0] not in (caller[0], *hub.orgs):
                self.error(403, "You don't have the rights to write to this repository")
                return False
            return True

        def entry(self, path: str, data: bytes) -> dict:
            item = {"type": "file", "oid": git_blob_oid(data), "size": len(data), "path": path}
            if path.endswith(LFS_SUFFIXES):
                item["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            return item

        # -- endpoints ----------------------------------------------------------------------
        def get_whoami(self, caller):
            if not self.injected("whoami"):
                self.send(200, {"type": "user", "name": caller[0], "orgs": [{"name": o} for o in hub.orgs],
                                "auth": {"accessToken": {"displayName": "test", "role": caller[1]}}})

        def post_validate_yaml(self, caller):
            self.body()
            self.send(200, {"errors": [], "warnings": []})

        def get_agent_harnesses(self, caller):
            self.send(200, [])

        def post_create(self, caller):
            request = json.loads(self.body() or b"{}")
            namespace = request.get("organization") or caller[0]
            repo_id = f"{namespace}/{request['name']}"
            if namespace not in (caller[0], *hub.orgs):
                return self.error(404, f"Namespace {namespace} not found")
            if caller[1] != "write":
                return self.error(403, "You don't have the rights to create a repository")
            with hub.lock:
                if repo_id in hub.repos:
                    return self.error(409, "You already created this dataset repo")
                repo = hub.repos[repo_id] = Repo(private=bool(request.get("private")))
                attributes = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"
                repo.branches["main"] = hub.new_commit(repo, None, "initial commit", {".gitattributes": attributes})
            self.send(200, {"url": f"{hub.endpoint}/datasets/{repo_id}", "name": repo_id})

        def get_info(self, caller, repo_id, rev="main"):
            repo = self.repo(repo_id)
            if repo and (oid := self.revision(repo, rev)):
                files = repo.commits[oid].files
                self.send(200, {"id": repo_id, "_id": repo_id, "sha": oid, "private": repo.private,
                                "siblings": [{"rfilename": p} for p in sorted(files)], "tags": [],
                                "lastModified": "2026-11-24T00:00:00.000Z", "downloads": 0, "likes": 0,
                                "cardData": {}, "disabled": False, "gated": False})

        def post_preupload(self, caller, repo_id, rev):
            request = json.loads(self.body())
            if self.repo(repo_id) is not None and self.can_write(caller, repo_id):
                self.send(200, {"files": [
                    {"path": f["path"], "shouldIgnore": False,
                     "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular"}
                    for f in request["files"]]})

        def post_lfs_batch(self, caller, repo_id):
            request = json.loads(self.body())
            if self.repo(repo_id) is None or not self.can_write(caller, repo_id):
                return
            objects = []
            for obj in request["objects"]:
                item = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in hub.lfs:
                    item["actions"] = {"upload": {"href": f"{hub.endpoint}/lfs-upload/{obj['oid']}?sig={hub.sign(obj['oid'])}", "header": {}}}
                objects.append(item)
            self.send(200, {"transfer": "basic", "objects": objects})

        def put_lfs_upload(self, caller, oid):
            if self.injected("upload"):
                return
            data = self.body()
            if hashlib.sha256(data).hexdigest() != oid:
                return self.error(400, "sha256 mismatch")
            with hub.lock:
                hub.lfs[oid] = data
            self.send(200, {})

        def post_commit(self, caller, repo_id, rev):
            payload = self.body()
            repo = self.repo(repo_id)
            if repo is None or not self.can_write(caller, repo_id) or self.injected("commit"):
                return
            lines = [json.loads(line) for line in payload.splitlines() if line.strip()]
            header = next(line["value"] for line in lines if line["key"] == "header")
            with hub.lock:
                head = self.revision(repo, rev)
                if head is None:
                    return
                if header.get("parentCommit") and header["parentCommit"] != head:
                    return self.error(412, "A commit has happened since. Please refresh and try again.")
                files = dict(repo.commits[head].files)
                for line in lines:
                    value = line["value"]
                    if line["key"] == "file":
                        files[value["path"]] = base64.b64decode(value["content"])
                    elif line["key"] == "lfsFile":
                        if value["oid"] not in hub.lfs:
                            return self.error(422, f"LFS object {value['oid']} was never uploaded")
                        files[value["path"]] = hub.lfs[value["oid"]]
                    elif line["key"] == "deletedFile":
                        if files.pop(value["path"], None) is None:
                            return self.error(404, f"{value['path']} does not exist")
                oid = hub.new_commit(repo, head, header["summary"], files)
                answer = {"commitUrl": f"{hub.endpoint}/datasets/{repo_id}/commit/{oid}", "commitOid": oid}
                if self.query.get("create_pr") == ["1"]:
                    repo.prs.append(oid)
                    answer["pullRequestUrl"] = f"{hub.endpoint}/datasets/{repo_id}/discussions/{len(repo.prs)}"
                else:
                    repo.branches[unquote(rev)] = oid
            self.send(200, answer)

        def post_tag(self, caller, repo_id, rev):
            request = json.loads(self.body())
            repo = self.repo(repo_id)
            if repo is None or not self.can_write(caller, repo_id):
                return
            with hub.lock:
                oid = self.revision(repo, rev)
                if oid is None:
                    return
                if request["tag"] in repo.tags:
                    return self.error(409, f"Tag {request['tag']} already exists")
                repo.tags[request["tag"]] = oid
            self.send(200, {})

        def get_refs(self, caller, repo_id):
            if repo := self.repo(repo_id):
                self.send(200, {
                    "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": o} for n, o in repo.branches.items()],
                    "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": o} for n, o in repo.tags.items()],
                    "converts": [],
                    "pullRequests": [{"name": f"{i}", "ref": f"refs/pr/{i}", "targetCommit": o}
                                     for i, o in enumerate(repo.prs, 1)],
                })

        def get_commits(self, caller, repo_id, rev):
            repo = self.repo(repo_id)
            if repo and (oid := self.revision(repo, rev)):
                history = []
                while oid:
                    commit = repo.commits[oid]
                    history.append({"id": oid, "title": commit.title, "message": "", "authors": [{"user": "test"}],
                                    "date": "2026-11-24T00:00:00.000Z"})
                    oid = commit.parent
                self.send(200, history)

        def get_tree(self, caller, repo_id, rev, path=""):
            repo = self.repo(repo_id)
            if not (repo and (oid := self.revision(repo, rev))):
                return
            prefix = f"{path.strip('/')}/" if path else ""
            recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
            entries, folders = [], set()
            for name, data in sorted(repo.commits[oid].files.items()):
                if not name.startswith(prefix):
                    continue
                rest = name[len(prefix):]
                if "/" in rest and not recursive:
                    folders.add(prefix + rest.split("/")[0])
                    continue
                for i in range(len(rest.split("/")) - 1):
                    folders.add(prefix + "/".join(rest.split("/")[: i + 1]))
                entries.append(self.entry(name, data))
            if path and not entries and not folders:
                return self.send(404, {"error": "not found"}, {"X-Error-Code": "EntryNotFound"})
            dirs = [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
                    for d in sorted(folders)]
            self.send(200, dirs + entries)

        def post_paths_info(self, caller, repo_id, rev):
            form = parse_qs(self.body().decode())
            repo = self.repo(repo_id)
            if not (repo and (oid := self.revision(repo, rev))):
                return
            files = repo.commits[oid].files
            answer = []
            for path in form.get("paths", []):
                if path in files:
                    answer.append(self.entry(path, files[path]))
                elif any(name.startswith(path.rstrip("/") + "/") for name in files):
                    answer.append({"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(),
                                   "size": 0, "path": path})
            self.send(200, answer)

        def get_resolve(self, caller, repo_id, rev, path):
            self.resolve(caller, repo_id, rev, path, head_only=False)

        def head_resolve(self, caller, repo_id, rev, path):
            self.resolve(caller, repo_id, rev, path, head_only=True)

        def resolve(self, caller, repo_id, rev, path, head_only):
            repo = hub.repos.get(repo_id)
            oid = repo.resolve(rev) if repo else None
            data = repo.commits[oid].files.get(unquote(path)) if oid else None
            if data is None:
                code = "RepoNotFound" if repo is None else "RevisionNotFound" if oid is None else "EntryNotFound"
                return self.send(404, b"", {"X-Error-Code": code, "X-Error-Message": code}, head_only=head_only)
            headers = {"X-Repo-Commit": oid, "ETag": f'"{git_blob_oid(data)}"', "Accept-Ranges": "bytes"}
            if path.endswith(LFS_SUFFIXES):
                headers |= {"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))}
            status = 200
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if match:
                start = int(match.group(1))
                end = int(match.group(2)) if match.group(2) else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{min(end, len(data) - 1)}/{len(data)}"
                data, status = data[start : end + 1], 206
            self.send(status, data, headers, head_only=head_only)

    return Handler


_REPO = r"/api/datasets/(?P<repo_id>[^/]+/[^/]+)"
ROUTES = [
    (r"/api/whoami-v2", "get_whoami"),
    (r"/api/repos/create", "post_create"),
    (r"/api/validate-yaml", "post_validate_yaml"),
    (r"/api/agent-harnesses", "get_agent_harnesses"),
    (_REPO, "get_info"),
    (_REPO + r"/revision/(?P<rev>.+)", "get_info"),
    (_REPO + r"/preupload/(?P<rev>.+)", "post_preupload"),
    (r"/datasets/(?P<repo_id>[^/]+/[^/]+)\.git/info/lfs/objects/batch", "post_lfs_batch"),
    (r"/lfs-upload/(?P<oid>[0-9a-f]{64})", "put_lfs_upload"),
    (_REPO + r"/commit/(?P<rev>.+)", "post_commit"),
    (_REPO + r"/tag/(?P<rev>.+)", "post_tag"),
    (_REPO + r"/refs", "get_refs"),
    (_REPO + r"/commits/(?P<rev>.+)", "get_commits"),
    (_REPO + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "get_tree"),
    (_REPO + r"/paths-info/(?P<rev>.+)", "post_paths_info"),
    (r"/datasets/(?P<repo_id>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "get_resolve"),
    (r"/datasets/(?P<repo_id>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "head_resolve"),
]
