"""Curation lists: every defect a reviewer should not have to spot is reported, with file:line, at once."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from click.testing import CliRunner

from mnist_idk import curation
from mnist_idk.cli import main
from mnist_idk.errors import MnistIdkError

from conftest import workspace

HEADER = "index,original,label,reason,note\n"


def lists_root(tmp_path, train: str | bytes, test: str = HEADER):
    root = tmp_path / "lists"
    root.mkdir()
    (root / "train.csv").write_bytes(train if isinstance(train, bytes) else train.encode())
    (root / "test.csv").write_text(test, "utf-8")
    return root


def messages(problems):
    return [(p.path.name, p.line, p.message) for p in problems]


def test_good_lists_load_in_index_order(tmp_path, real_splits):
    root = lists_root(tmp_path, HEADER + '0,5,IDK,ambiguous,"a 5, or a 3"\n7,3,8,mislabeled,clearly an 8\n')
    labels = {name: s.labels for name, s in real_splits.items()}
    assert curation.lint(workspace(root), labels) == []
    loaded = curation.load(workspace(root), "working", labels)
    assert [(e.index, e.label, e.reason, e.note) for e in loaded.entries["train"]] == [
        (0, "IDK", "ambiguous", "a 5, or a 3"), (7, "8", "mislabeled", "clearly an 8")]
    assert loaded.entries["test"] == [] and not loaded.released


def test_every_defect_is_reported_with_its_line(tmp_path):
    rows = [
        "5,5,IDK,ambiguous,ok",                 # 2: fine
        "5,5,IDK,noisy,again",                  # 3: duplicate
        "4,4,IDK,noisy,unsorted",               # 4: out of order
        "60000,1,IDK,noisy,too far",            # 5: index out of range
        "x,1,IDK,noisy,not a number",           # 6
        "9,12,IDK,noisy,bad original",          # 7
        "10,3,Z,noisy,bad label",               # 8
        "11,3,3,noisy,same label",              # 9
        "12,3,IDK,blurry,unknown reason",       # 10
        "13,3,IDK,noisy,",                      # 11: empty note
        "14,3,IDK, noisy,space",                # 12
        "15,3,IDK,noisy",                       # 13: 4 fields
    ]
    root = lists_root(tmp_path, HEADER + "\n".join(rows) + "\n")
    found = messages(curation.lint(workspace(root)))
    lines = [line for _, line, _ in found]
    assert sorted(lines) == list(range(3, 14)), found
    text = " | ".join(m for _, _, m in found)
    for expected in ("listed twice", "keep rows sorted", "0..59999", "not an integer", "not a digit 0-9",
                     "not IDK or a digit", "equals original", "'blurry' is not one of", "note is empty",
                     "whitespace", "4 fields"):
        assert expected in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"index,original,label,note\n", (1, "header is")),
        (b"\xef\xbb\xbf" + HEADER.encode() + b"0,5,IDK,noisy,x\n", (1, "byte-order mark")),
        (HEADER.encode() + b"0,5,IDK,noisy,caf\xe9\n", (2, "not UTF-8")),
        (HEADER.encode() + b"0,5,IDK,noisy,x\n\n1,0,IDK,noisy,y\n", (3, "empty line")),
    ],
)
def test_file_level_defects(tmp_path, content, expected):
    found = messages(curation.lint(workspace(lists_root(tmp_path, content))))
    assert [(line, message.startswith(expected[1]) or expected[1] in message) for _, line, message in found] == [
        (expected[0], True)]


def test_original_must_match_the_raw_label(tmp_path, real_splits):
    root = lists_root(tmp_path, HEADER + "0,3,IDK,noisy,off by one?\n")  # train 0 is a 5
    labels = {name: s.labels for name, s in real_splits.items()}
    assert messages(curation.lint(workspace(root), labels)) == [("train.csv", 2, "original is 3 but raw train label 0 is 5")]
    with pytest.raises(MnistIdkError, match="train.csv:2: original is 3"):
        curation.load(workspace(root), "working", labels)


def test_released_lists_are_immutable_and_versions_resolve(tmp_path):
    root = lists_root(tmp_path, HEADER + "0,5,IDK,noisy,x\n")
    release = root / "releases" / "v1.2.0"
    release.mkdir(parents=True)
    for name in ("train.csv", "test.csv"):
        (release / name).write_bytes((root / name).read_bytes())
    (release / "SHA256SUMS").write_text("".join(
        f"{hashlib.sha256((release / n).read_bytes()).hexdigest()}  {n}\n" for n in ("test.csv", "train.csv")))
    assert curation.lint(workspace(root)) == []
    assert curation.load(workspace(root), "1.2.0").version == "v1.2.0"
    with pytest.raises(MnistIdkError, match="no such release"):
        curation.load(workspace(root), "v9.9.9")
    (release / "train.csv").write_text(HEADER + "0,5,IDK,noisy,edited\n")
    assert "released file changed" in messages(curation.lint(workspace(root)))[0][2]
    with pytest.raises(MnistIdkError, match="released file changed"):
        curation.load(workspace(root), "v1.2.0")


def test_lint_reads_the_newest_releases_lists_and_every_ones_only_when_asked(tmp_path):
    root = lists_root(tmp_path, HEADER + "0,5,IDK,noisy,x\n")

    def freeze(version, train):
        release = root / "releases" / version
        release.mkdir(parents=True)
        (release / "train.csv").write_text(train)
        (release / "test.csv").write_bytes((root / "test.csv").read_bytes())
        (release / "SHA256SUMS").write_text("".join(
            f"{hashlib.sha256((release / n).read_bytes()).hexdigest()}  {n}\n" for n in ("test.csv", "train.csv")))

    freeze("v1.0.0", HEADER + "0,5,IDK,noisy,\n")  # an empty note, with sums that match: a forged release
    freeze("v1.1.0", HEADER + "0,5,IDK,noisy,x\n")
    assert curation.lint(workspace(root)) == []  # an older release is proved by its sums alone
    assert messages(curation.lint(workspace(root), every_release=True)) == [("train.csv", 2, "note is empty; say what you see")]
    freeze("v1.2.0", HEADER + "0,5,IDK,noisy,\n")
    assert messages(curation.lint(workspace(root))) == [("train.csv", 2, "note is empty; say what you see")]  # the newest is read


def test_lint_cli_reports_all_problems_and_exits_2(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_IDK_LISTS_DIR", str(lists_root(tmp_path, HEADER + "3,1,IDK,noisy,\n2,1,IDK,odd,x\n")))
    result = CliRunner().invoke(main, ["lint", "--no-raw"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1] == "error: 3 problems in the curation lists:"
    assert "train.csv:2: note is empty" in result.stderr and "train.csv:3:" in result.stderr


def test_the_shipped_lists_are_clean(real_splits):
    result = CliRunner().invoke(main, ["lint"])
    assert result.exit_code == 0, result.output
    v1 = curation.load(workspace(), "v1.0.0", raw_labels={name: s.labels for name, s in real_splits.items()})
    assert len(v1.entries["train"]) + len(v1.entries["test"]) > 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=300), st.text(alphabet=st.sampled_from(list('0123456789,IDK"\n\r ab\ufeff')),
                                                  max_size=200).map(lambda t: (HEADER + t).encode("utf-8"))))
def test_any_file_content_parses_or_becomes_problems(tmp_path, content):
    path = tmp_path / "train.csv"
    path.write_bytes(content)
    entries, problems = curation.read_list(path, "train")
    assert all(0 <= e.index < 60000 and e.label in curation.LABELS for e in entries)
    for problem in problems:
        assert problem.path == path and problem.line >= 0 and problem.message
    if not problems:  # a clean file round-trips: entries sorted, unique, in range, with notes
        assert [e.index for e in entries] == sorted({e.index for e in entries})
        assert all(e.note and e.reason in curation.REASONS and e.label != str(e.original) for e in entries)
