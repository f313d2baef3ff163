"""`mnist-idk push` against tests/fakehub.py, driven by the real huggingface_hub and datasets clients.

The CLI runs in a subprocess because huggingface_hub reads HF_ENDPOINT when it is imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from fakehub import FakeHub

from conftest import REPO, workspace

TOKEN = "hf_TestSecretToken_4f2a9c"  # distinctive, so a leak is easy to spot
REPO_ID = "alice/mnist_idk"
NEW_ENTRY = "11657,0,IDK,noisy,test entry for release v1.1.0\n"


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Release v1.0.0 and a v1.1.0 with one more listed image, built from a copy of the lists."""
    from mnist_idk.build import build
    from mnist_idk.curation import file_sha256

    root = tmp_path_factory.mktemp("push")
    lists = root / "lists"
    shutil.copytree(REPO / "curation_lists", lists)
    for later in (lists / "releases").iterdir():  # the tests make their own v1.1.0 on top of v1.0.0
        if later.name != "v1.0.0":
            shutil.rmtree(later)
    release = lists / "releases" / "v1.1.0"
    shutil.copytree(lists / "releases" / "v1.0.0", release)
    train = (release / "train.csv").read_text("utf-8").splitlines(keepends=True)
    train.insert(next(i for i, line in enumerate(train[1:], 1) if int(line.split(",")[0]) > 11657), NEW_ENTRY)
    (release / "train.csv").write_text("".join(train), "utf-8")
    (release / "SHA256SUMS").write_text(
        "".join(f"{file_sha256(release / name)}  {name}\n" for name in ("test.csv", "train.csv")), "utf-8")
    out = {}
    for version in ("v1.0.0", "v1.1.0"):
        out[version] = build(workspace(lists), root / version, version, validate=False)
    return lists, {version: result.out for version, result in out.items()}


@pytest.fixture
def hub():
    with FakeHub({TOKEN: ("alice", "write"), "hf_ReadOnly_77": ("alice", "read")}) as server:
        yield server


def run(hub, builds, directory, *args, token=TOKEN, repo_id=REPO_ID):
    lists, _ = builds
    env = dict(os.environ, HF_ENDPOINT=hub.endpoint, HF_HUB_DISABLE_XET="1", MNIST_IDK_LISTS_DIR=str(lists),
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    env.pop("HF_TOKEN", None)
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-c", "from mnist_idk.cli import main; main()", "push", str(directory),
         "--repo-id", repo_id, *args],
        env=env, capture_output=True, text=True, timeout=300,
    )


def assert_clean_failure(result, *words):
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert TOKEN not in output
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, result.stderr
    for word in words:
        assert word in error[0], error[0]


def local_files(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_push_then_load_dataset_by_tag_gives_the_build(hub, builds):
    _, out = builds
    result = run(hub, builds, out["v1.0.0"])
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    repo = hub.repos[REPO_ID]
    assert repo.tags["v1.0.0"] == repo.branches["main"]
    remote = hub.files(REPO_ID, "v1.0.0")
    assert remote.pop(".gitattributes")
    assert remote == local_files(out["v1.0.0"])

    code = f"""
import json, datasets
remote = datasets.load_dataset({REPO_ID!r}, revision="v1.0.0")
local = datasets.load_dataset({str(out["v1.0.0"])!r})
answer = {{}}
for split in ("train", "test"):
    r, l = remote[split], local[split]
    answer[split] = [r.num_rows == l.num_rows, r.features == l.features,
                     r["label"] == l["label"], r["reason"] == l["reason"], r[0]["image"].tobytes() == l[0]["image"].tobytes()]
answer["names"] = remote["train"].features["label"].names
print(json.dumps(answer))
"""
    env = dict(os.environ, HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN, HF_HUB_DISABLE_PROGRESS_BARS="1")
    loaded = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    answer = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert answer["train"] == [True] * 5 and answer["test"] == [True] * 5
    assert answer["names"][-1] == "IDK"


def test_second_push_is_a_no_op_and_a_new_release_is_one_commit_deleting_stale_files(hub, builds):
    _, out = builds
    assert run(hub, builds, out["v1.0.0"]).returncode == 0
    repo = hub.repos[REPO_ID]
    # A stale shard from some earlier layout, committed by someone else.
    head = repo.branches["main"]
    files = dict(repo.commits[head].files) | {"data/train-00000-of-00002.parquet": b"old shard"}
    repo.branches["main"] = hub.new_commit(repo, head, "old layout", files)
    before = len(repo.commits)

    again = run(hub, builds, out["v1.0.0"])
    assert again.returncode == 0, again.stderr
    assert "delete data/train-00000-of-00002.parquet" in " ".join(again.stdout.split())
    assert len(repo.commits) == before + 1
    assert "data/train-00000-of-00002.parquet" not in hub.files(REPO_ID)

    commits = len(repo.commits)
    idle = run(hub, builds, out["v1.0.0"])
    assert idle.returncode == 0 and "up to date" in idle.stdout
    assert len(repo.commits) == commits

    head = repo.branches["main"]
    new = run(hub, builds, out["v1.1.0"])
    assert new.returncode == 0, new.stderr
    assert len(repo.commits) == commits + 1
    assert repo.tags["v1.1.0"] == repo.branches["main"] != repo.tags["v1.0.0"]
    commit = repo.commits[repo.branches["main"]]
    assert commit.parent == head and "v1.1.0" in commit.title
    assert hub.files(REPO_ID, "v1.0.0")["README.md"] == (out["v1.0.0"] / "README.md").read_bytes()


def test_a_release_tag_is_never_moved(hub, builds):
    _, out = builds
    hub.seed(REPO_ID, local_files(out["v1.0.0"]), tag="v1.1.0")  # someone tagged other content by hand
    before = hub.snapshot(REPO_ID)
    result = run(hub, builds, out["v1.1.0"])
    assert_clean_failure(result, "tag v1.1.0", "immutable")
    assert hub.snapshot(REPO_ID) == before


def test_dry_run_writes_nothing_and_create_pr_leaves_main_alone(hub, builds):
    _, out = builds
    dry = run(hub, builds, out["v1.0.0"], "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "add    data/train-00000-of-00001.parquet" in dry.stdout and "nothing was written" in dry.stdout
    assert hub.writes() == [] and REPO_ID not in hub.repos

    main = hub.seed(REPO_ID, local_files(out["v1.0.0"]), tag="v1.0.0")
    pr = run(hub, builds, out["v1.1.0"], "--create-pr")
    assert pr.returncode == 0, pr.stderr
    repo = hub.repos[REPO_ID]
    assert repo.branches["main"] == main and "v1.1.0" not in repo.tags
    assert "discussions/1" in pr.stdout
    assert b"11657" in repo.commits[repo.prs[0]].files["README.md"]


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("commit-412", ["changed while pushing", "re-run"]),
        ("commit-500", ["HTTP 500", "nothing was committed"]),
        ("upload-drop", ["nothing was committed"]),
        ("read-only-token", ["HTTP 403", "write access"]),
        ("bad-token", ["HTTP 401", "hf auth login"]),
        ("unknown-namespace", ["nobody/mnist_idk", "HTTP 404", "namespace"]),
    ],
)
def test_failures_are_one_line_leave_the_remote_unchanged_and_never_show_the_token(hub, builds, fault, words):
    _, out = builds
    hub.seed(REPO_ID, local_files(out["v1.0.0"]), tag="v1.0.0")
    before = hub.snapshot(REPO_ID)
    token = TOKEN
    if fault == "commit-412":
        hub.fail_next("commit", 412)
    elif fault == "commit-500":
        hub.fail_next("commit", 500)
    elif fault == "upload-drop":
        hub.fail_next("upload", 0, times=20)  # more than the client's retries
    elif fault == "read-only-token":
        token = "hf_ReadOnly_77"
    elif fault == "bad-token":
        token = TOKEN + "x"  # unknown to the Hub, and still must not be printed
    repo_id = "nobody/mnist_idk" if fault == "unknown-namespace" else REPO_ID
    result = run(hub, builds, out["v1.1.0"], token=token, repo_id=repo_id)
    assert_clean_failure(result, *words)
    assert token not in result.stdout + result.stderr
    assert hub.snapshot(REPO_ID) == before and "nobody/mnist_idk" not in hub.repos


def test_refuses_without_token_unreleased_or_invalid_builds(hub, builds, working_build, tmp_path):
    _, out = builds
    assert_clean_failure(run(hub, builds, out["v1.0.0"], token=None), "hf auth login")
    assert_clean_failure(run(hub, builds, working_build), "unreleased", "--allow-unreleased")
    broken = tmp_path / "broken"
    shutil.copytree(out["v1.0.0"], broken)
    card = broken / "README.md"
    card.write_text(card.read_text("utf-8").replace("num_examples: 60000", "num_examples: 60001"), "utf-8")
    assert_clean_failure(run(hub, builds, broken), "does not validate")
    assert hub.writes() == []


def test_unreleased_refusal_names_the_release_the_working_lists_equal(builds, working_build, tmp_path):
    """Right after `mnist-idk release` a build of the working lists is refused, naming what to build."""
    from mnist_idk.errors import MnistIdkError
    from mnist_idk.push import push

    lists, _ = builds
    shutil.copytree(lists / "releases", tmp_path / "lists" / "releases")
    for name in ("train.csv", "test.csv"):
        shutil.copy(lists / "releases" / "v1.0.0" / name, tmp_path / "lists" / name)
    ws = workspace(tmp_path / "lists")
    with pytest.raises(MnistIdkError, match=r"equal release v1\.0\.0: mnist-idk build --version v1\.0\.0"):
        push(ws, working_build, REPO_ID, dry_run=True)
    shutil.copy(lists / "releases" / "v1.1.0" / "train.csv", tmp_path / "lists" / "train.csv")
    with pytest.raises(MnistIdkError, match=r"equal release v1\.1\.0"):  # now v1.1.0's train list
        push(ws, working_build, REPO_ID, dry_run=True)
    (tmp_path / "lists" / "test.csv").write_text("index,original,label,reason,note\n", "utf-8")
    with pytest.raises(MnistIdkError, match=r"unreleased working lists; build a release \(mnist-idk build "
                                             r"--version vX\.Y\.Z\) or pass --allow-unreleased"):
        push(ws, working_build, REPO_ID, dry_run=True)
