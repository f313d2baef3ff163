"""Publish a build to a Hub dataset repo: one atomic commit, tagged with the curation version.

Everything remote goes through ``huggingface_hub``. The build is compared with the remote
revision by content hash (git blob sha1 for plain files, sha256 for LFS files), and the
difference is sent as a single ``create_commit`` whose ``parent_commit`` is the revision that was
compared: if anyone pushed in between, the Hub refuses the commit and nothing mixes. Releases
are immutable, so a tag that already names other content is an error, never moved.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import card, curation
from .errors import MnistIdkError
from .workspace import Workspace

KEEP_REMOTE = {".gitattributes"}  # the Hub's own file; never ours to delete
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Change:
    action: str  # "add", "update" or "delete"
    path: str
    size: int  # bytes of the local file; 0 for a delete


@dataclass(frozen=True)
class Plan:
    repo_id: str
    revision: str
    version: str
    digest: str  # sha256 over the build's file names and contents
    changes: tuple[Change, ...]
    parent_commit: str | None  # None: the repo does not exist yet
    tag: str | None  # None for unreleased builds
    tag_exists: bool

    @property
    def message(self) -> str:
        return f"MNIST-IDK {self.version} (build {self.digest[:12]})"

    def describe(self) -> str:
        """The plan as a reviewer reads it (what ``--dry-run`` prints)."""
        where = f"{self.repo_id}@{self.revision}" + ("" if self.parent_commit else " (new repo)")
        lines = [f"push {self.message} to {where}"]
        lines += [f"  {c.action:<6} {c.path}" + (f" ({c.size:,} bytes)" if c.size else "") for c in self.changes]
        if not self.changes:
            lines.append("  no file changes")
        if self.tag:
            lines.append(f"  tag    {self.tag}" + (" (exists, same content)" if self.tag_exists else ""))
        return "\n".join(lines)


@dataclass(frozen=True)
class PushResult:
    plan: Plan
    commit: str | None  # the new commit's id; None when up to date or a dry run
    url: str | None  # commit or pull request URL

    @property
    def up_to_date(self) -> bool:
        return not self.plan.changes and (self.plan.tag is None or self.plan.tag_exists)


def build_files(out: Path) -> dict[str, Path]:
    """Every file of the build, by its path in the repo (POSIX separators), sorted."""
    files = sorted(p for p in Path(out).rglob("*") if p.is_file())
    return {p.relative_to(out).as_posix(): p for p in files}


def build_digest(files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for name, path in files.items():
        digest.update(f"{name}\0{curation.file_sha256(path)}\n".encode())
    return digest.hexdigest()


def _git_blob_oid(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _same(local: Path, remote) -> bool:
    if remote.lfs is not None:
        return remote.lfs.sha256 == curation.file_sha256(local)
    return remote.blob_id == _git_blob_oid(local)


def diff_remote(files: dict[str, Path], remote: dict) -> tuple[Change, ...]:
    """Adds and updates for changed local files, deletes for remote files the build lacks."""
    changes = [
        Change("update" if name in remote else "add", name, path.stat().st_size)
        for name, path in files.items()
        if name not in remote or not _same(path, remote[name])
    ]
    changes += [Change("delete", name, 0) for name in sorted(remote) if name not in files and name not in KEEP_REMOTE]
    return tuple(changes)


def _remote_files(api, repo_id: str, revision: str) -> dict:
    from huggingface_hub.hf_api import RepoFile

    tree = api.list_repo_tree(repo_id, repo_type="dataset", revision=revision, recursive=True)
    return {item.path: item for item in tree if isinstance(item, RepoFile)}


def plan(api, out: Path, repo_id: str, revision: str, version: str) -> Plan:
    """Compare the build with the remote revision; reads only."""
    from huggingface_hub.errors import RepositoryNotFoundError

    files = build_files(out)
    tag = None if version == curation.WORKING else version
    try:
        parent = api.repo_info(repo_id, repo_type="dataset", revision=revision).sha
    except RepositoryNotFoundError:
        return Plan(repo_id, revision, version, build_digest(files), diff_remote(files, {}), None, tag, False)
    tag_exists = False
    if tag is not None:
        tags = {ref.name: ref.target_commit for ref in api.list_repo_refs(repo_id, repo_type="dataset").tags}
        if tag in tags:
            if diff_remote(files, _remote_files(api, repo_id, tags[tag])):
                raise MnistIdkError(
                    f"{repo_id}: tag {tag} already names commit {tags[tag][:12]} with other content; "
                    "releases are immutable: cut a new version with `mnist-idk release`"
                )
            tag_exists = True
    changes = diff_remote(files, _remote_files(api, repo_id, revision))
    return Plan(repo_id, revision, version, build_digest(files), changes, parent, tag, tag_exists)


def push(
    ws: Workspace,
    out: Path,
    repo_id: str,
    revision: str = "main",
    *,
    create_pr: bool = False,
    private: bool = False,
    dry_run: bool = False,
    allow_unreleased: bool = False,
    message: str | None = None,
    token: str | None = None,
    progress: Progress = lambda message: None,
) -> PushResult:
    """Validate the build at ``out``, then make the remote revision equal to it in one commit."""
    from .validate import validate_build

    out = Path(out)
    version = card.recorded_version(out)
    if version == curation.WORKING and not allow_unreleased:
        from .release import release_like_working

        same = release_like_working(ws)
        release = (f"the working lists equal release {same}: mnist-idk build --version {same}" if same
                   else "mnist-idk build --version vX.Y.Z")
        raise MnistIdkError(
            f"{out} is a build of the unreleased working lists; build a release "
            f"({release}) or pass --allow-unreleased"
        )
    if not token:  # a dry run only reads: it may go without a token (public repos)
        from huggingface_hub import get_token

        token = get_token() if dry_run else _saved_token()
    progress(f"validating {out} against the raw files and curation {version}")
    problems = validate_build(ws, out, version=version)
    if problems:
        raise MnistIdkError(f"{out} does not validate; not pushing:\n" + "\n".join(problems))
    with hub_errors(repo_id, token):
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

        api = HfApi(token=token)
        progress(f"comparing with {repo_id}@{revision}")
        the_plan = plan(api, out, repo_id, revision, version)
        if dry_run:
            return PushResult(the_plan, None, None)
        if the_plan.parent_commit is None:
            progress(f"creating dataset repo {repo_id}")
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
            the_plan = plan(api, out, repo_id, revision, version)
        commit, url = None, None
        if the_plan.changes:
            files = build_files(out)
            operations = [
                CommitOperationDelete(c.path) if c.action == "delete" else CommitOperationAdd(c.path, str(files[c.path]))
                for c in the_plan.changes
            ]
            progress(f"uploading {sum(c.action != 'delete' for c in the_plan.changes)} file(s) in one commit")
            info = api.create_commit(
                repo_id,
                operations,
                commit_message=the_plan.message,
                commit_description=message or f"Built from curation lists {version}; sha256 of the build {the_plan.digest}.",
                repo_type="dataset",
                revision=revision,
                create_pr=create_pr,
                parent_commit=the_plan.parent_commit,
            )
            commit, url = info.oid, info.pr_url or info.commit_url
        if the_plan.tag and not the_plan.tag_exists and not create_pr:
            progress(f"tagging {the_plan.tag}")
            api.create_tag(repo_id, tag=the_plan.tag, revision=commit or the_plan.parent_commit,
                           tag_message=the_plan.message, repo_type="dataset")
    return PushResult(the_plan, commit, url)


def _saved_token() -> str:
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise MnistIdkError("no Hugging Face token: run `hf auth login` or set HF_TOKEN to a token with write access")
    return token


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection failures of whichever HTTP library this huggingface_hub uses."""
    import importlib

    errors = []
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "ConnectionError")):
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


class hub_errors:
    """Turn the client's exceptions into one-line errors that never contain the token."""

    def __init__(self, repo_id: str, token: str | None):
        self.repo_id, self.token = repo_id, token

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, traceback) -> bool:
        if exc is None or isinstance(exc, MnistIdkError):
            return False
        cause, message = exc, None
        while cause is not None and message is None:  # the client wraps upload errors in RuntimeError
            message = self.explain(cause)
            cause = cause.__cause__
        if message is None:
            return False
        raise MnistIdkError(message.replace(self.token, "<token>") if self.token else message) from None

    def explain(self, exc: BaseException) -> str | None:
        from huggingface_hub.errors import HfHubHTTPError

        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        if isinstance(exc, HfHubHTTPError) and exc.response is not None:
            status = exc.response.status_code
            server = (exc.server_message or "").strip().splitlines()[0:1]
            detail = f" ({server[0]})" if server else ""
            if status == 401:
                return f"the Hub rejected the token (HTTP 401){detail}; run `hf auth login` or set HF_TOKEN"
            if status == 403:
                return f"the token has no write access to {self.repo_id} (HTTP 403){detail}"
            if status == 404:
                return f"{self.repo_id}: not found (HTTP 404){detail}; check the namespace and the branch"
            if status in (409, 412):
                return (f"{self.repo_id} changed while pushing (HTTP {status}){detail}; nothing was committed: "
                        "re-run mnist-idk push")
            if status >= 500:
                return f"the Hub failed (HTTP {status}){detail}; nothing was committed: try again later"
            return f"{self.repo_id}: the Hub answered HTTP {status}{detail}"
        if isinstance(exc, (OSError, *_transport_errors())):
            return f"could not talk to {endpoint}: {type(exc).__name__}: {exc}; nothing was committed"
        return None
