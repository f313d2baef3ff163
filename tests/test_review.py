"""The review record and its queue: lint finds every defect with file:line, release freezes it, apply merges."""

from __future__ import annotations

import csv
import datetime

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mnist_idk import coverage, curation, review
from mnist_idk.cli import main
from mnist_idk.errors import MnistIdkError
from mnist_idk.release import release

from conftest import workspace

LIST = "index,original,label,reason,note\n"
RECORD = "index,original,decision,source,note\n"


def lists(root, train="", test="", reviewed_train="", reviewed_test="", runs=None):
    """A lists directory with working lists and a review record (train 1 is a 0, train 3 a 1, test 0 a 7)."""
    (root / "reviewed").mkdir(parents=True, exist_ok=True)
    (root / "train.csv").write_text(LIST + train, "utf-8")
    (root / "test.csv").write_text(LIST + test, "utf-8")
    (root / "reviewed" / "train.csv").write_text(RECORD + reviewed_train, "utf-8")
    (root / "reviewed" / "test.csv").write_text(RECORD + reviewed_test, "utf-8")
    if runs is not None:
        (root / "reviewed" / "runs.csv").write_text("run,tool_version,model,seed,command\n" + runs, "utf-8")
    return root


@pytest.fixture(scope="module")
def labels(real_splits):
    return {name: split.labels for name, split in real_splits.items()}


def found(problems):
    return sorted((p.path.parent.name + "/" + p.path.name, p.line, p.message) for p in problems)


def test_a_consistent_record_is_clean(tmp_path, labels):
    root = lists(tmp_path, train="1,0,IDK,noisy,a smudge\n",
                 reviewed_train="1,0,listed,published:northcutt2021,a smudge\n3,1,kept,suggest:r1@2,a clear 1\n",
                 runs="r1,0.1.0,rff,0,mnist-idk suggest\n")
    assert review.lint(workspace(root), labels) == []


def test_every_record_defect_is_reported_with_file_and_line(tmp_path, labels):
    root = lists(
        tmp_path,
        train="1,0,IDK,noisy,a smudge\n5,2,IDK,noisy,x\n",
        reviewed_train=("3,1,kept,seed-v1.0.0,a 1\n"      # line 2
                        "1,0,listed,seed-v1.0.0,ok\n"      # line 3: not sorted
                        "3,1,kept,seed-v1.0.0,again\n"     # line 4: twice
                        "7,9,listed,somewhere,\n"          # line 5: original, source, empty note, not in list
                        "60000,1,kept,seed-v1.0.0,x\n"     # line 6: out of range
                        "8,1,maybe,suggest:nope@1,x\n"),   # line 7: decision, unrecorded run
        reviewed_test="0,7,kept,seed-v1.0.0,a 7\n",
        test="0,7,IDK,noisy,listed but recorded kept\n",
    )
    problems = found(review.lint(workspace(root), labels))
    messages = {(where, line): message for where, line, message in problems}
    assert messages[("reviewed/train.csv", 3)] == "index 1 comes after 3; keep rows sorted"
    assert messages[("reviewed/train.csv", 4)] == "index 3 is recorded twice (also line 2)"
    assert ("reviewed/train.csv", 5, "original is 9 but raw train label 7 is 3") in problems
    assert ("reviewed/train.csv", 5, "note is empty; say what you see") in problems
    assert any(p[:2] == ("reviewed/train.csv", 5) and "is not seed-vX.Y.Z" in p[2] for p in problems)
    assert messages[("reviewed/train.csv", 6)] == "index '60000' is not an integer in 0..59999"
    assert ("reviewed/train.csv", 7, "decision 'maybe' is not listed or kept") in problems
    assert ("reviewed/train.csv", 7, "source 'suggest:nope@1' names a run not recorded in runs.csv") in problems
    assert ("reviewed/train.csv", 0, "train 5 is in train.csv (line 3) but not in the review record; "
                                     "record it as listed") in problems
    assert ("reviewed/test.csv", 2, "test 0 is in test.csv (line 2) but recorded as kept") in problems
    result = CliRunner().invoke(main, ["lint", "--lists-dir", str(root)])
    assert result.exit_code == 2 and "reviewed/train.csv:4: index 3 is recorded twice" in result.stderr


def test_release_freezes_the_record_with_the_lists(tmp_path, labels):
    root = lists(tmp_path, train="1,0,IDK,noisy,a smudge\n",
                 reviewed_train="1,0,listed,seed-v1.0.0,a smudge\n3,1,kept,seed-v1.0.0,a clear 1\n")
    target = release(workspace(root), "1.0.0", "first", labels, datetime.date(2026, 1, 1))
    assert (target / "reviewed" / "train.csv").read_bytes() == (root / "reviewed" / "train.csv").read_bytes()
    sums = (target / "SHA256SUMS").read_text("utf-8")
    assert "  reviewed/train.csv\n" in sums and "  reviewed/test.csv\n" in sums
    assert curation.check_release_sums(target) == []
    frozen = target / "reviewed" / "train.csv"
    frozen.write_text(frozen.read_text("utf-8").replace("a clear 1", "a clear 7"), "utf-8")
    assert any("released file changed" in p.message for p in review.lint(workspace(root), labels))
    assert [r.index for r in review.load_record(workspace(root), "v1.0.0")["train"]] == [1, 3]


def test_lint_rereads_the_newest_releases_record_and_every_one_only_when_asked(tmp_path, labels):
    import hashlib

    root = lists(tmp_path, train="1,0,IDK,noisy,a smudge\n", reviewed_train="1,0,listed,seed-v1.0.0,a smudge\n")
    release(workspace(root), "1.0.0", "first", labels, datetime.date(2026, 1, 1))
    with open(root / "reviewed" / "train.csv", "a", encoding="utf-8") as f:
        f.write("3,1,kept,seed-v1.0.0,a clear 1\n")
    release(workspace(root), "1.1.0", "second", labels, datetime.date(2026, 1, 2))

    def forge(version):
        """Break a release's record so that its list disagrees, and forge its checksum to match."""
        frozen = root / "releases" / version / "reviewed" / "train.csv"
        frozen.write_text(frozen.read_text("utf-8").replace("1,0,listed", "1,0,kept"), "utf-8")
        sums = root / "releases" / version / "SHA256SUMS"
        digest = hashlib.sha256(frozen.read_bytes()).hexdigest()
        sums.write_text("".join(f"{digest}  reviewed/train.csv\n" if line.endswith("  reviewed/train.csv") else line + "\n"
                                for line in sums.read_text("utf-8").splitlines()), "utf-8")
        return frozen

    broken = forge("v1.0.0")
    assert curation.check_release_sums(root / "releases" / "v1.0.0") == []  # the forgery passes the checksums
    assert review.lint(workspace(root), labels) == []  # an older release: its sums are what lint checks
    deep = found(review.lint(workspace(root), labels, every_release=True))
    assert deep == [("reviewed/train.csv", 2, "train 1 is in train.csv (line 2) but recorded as kept")], deep
    every = CliRunner().invoke(main, ["lint", "--every-release", "--lists-dir", str(root)])
    assert every.exit_code == 2 and f"{broken}:2: train 1 is in train.csv (line 2) but recorded as kept" in every.stderr
    assert CliRunner().invoke(main, ["lint", "--lists-dir", str(root)]).exit_code == 0
    newest = forge("v1.1.0")
    problems = [str(p) for p in review.lint(workspace(root), labels)]
    assert problems == [f"{newest}:2: train 1 is in train.csv (line 2) but recorded as kept"], problems


def test_release_waits_for_the_second_look_pile(tmp_path, labels):
    root = lists(tmp_path)
    (root / "reviewed" / "second_look.csv").write_text(
        "split,index,original,predicted,source,note\ntrain,1,0,6,seed-v1.0.0,unsure\n", "utf-8")
    with pytest.raises(MnistIdkError, match="second look"):
        release(workspace(root), "1.0.0", "", labels)
    assert not (root / "releases").exists()


def test_next_serves_published_first_then_the_ranking_skipping_what_is_reviewed(tmp_path, real_splits, labels):
    root = lists(tmp_path, reviewed_train="3,1,kept,seed-v1.0.0,a clear 1\n", runs="r1,0.1.0,rff,0,cmd\n")
    (root / "published").mkdir()
    (root / "published" / "candidates.csv").write_text(
        "split,index,original,study,alternative,votes_given,votes_alternative,votes_neither\n"
        "test,0,7,study-a,1,4,1,0\ntest,0,7,study-b,,,,\ntrain,3,1,study-a,7,,,\n", "utf-8")
    ranking = tmp_path / "ranking.csv"
    ranking.write_text("rank,split,index,original,predicted\n1,test,0,7,1\n2,train,1,0,6\n3,train,3,1,7\n"
                       "4,train,5,2,3\n", "utf-8")
    queue = review.next_batch(workspace(root), "all", 10, review.ranking_candidates(ranking, "r1"))
    assert [(c.split, c.index, c.source) for c in queue] == [
        ("test", 0, "published:study-a;published:study-b"), ("train", 1, "suggest:r1@1"), ("train", 5, "suggest:r1@3")]
    out = tmp_path / "batch"
    result = CliRunner().invoke(main, ["review", "next", "--lists-dir", str(root), "--ranking", str(ranking),
                                       "--run", "r1", "--batch", "2", "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    sheet, decisions = [p.rstrip() for p in result.stdout.splitlines()]
    picture = np.asarray(Image.open(sheet).convert("L"))
    np.testing.assert_array_equal(picture[6:6 + 168:6, 6:6 + 168:6], real_splits["test"].images[0])  # drawn large
    rows = list(csv.DictReader(open(decisions, encoding="utf-8")))
    assert [(r["split"], r["index"], r["decision"]) for r in rows] == [("test", "0", ""), ("train", "1", "")]
    unknown = CliRunner().invoke(main, ["review", "next", "--lists-dir", str(root), "--ranking", str(ranking),
                                        "--run", "r9", "--out-dir", str(out)])
    assert unknown.exit_code == 2 and "--run 'r9' is not recorded" in unknown.stderr


def test_apply_merges_atomically_and_refuses_bad_rows(tmp_path, labels):
    root = lists(tmp_path, reviewed_train="3,1,kept,seed-v1.0.0,a clear 1\n")
    header = ",".join(review.DECISION_COLUMNS) + "\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "train,1,0,6,published:x,listed,,a 0 or a 6\n"   # line 2: no reason
                            "train,3,1,7,published:x,kept,,again\n"          # line 3: already reviewed
                            "train,5,9,3,published:x,kept,noisy,x\n", "utf-8")  # line 4: original, reason on kept
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(MnistIdkError) as error:
        review.apply(workspace(root), bad, labels)
    message = str(error.value)
    for expected in (f"{bad}:2: reason '' is not one of", f"{bad}:3: train 3 is already reviewed",
                     f"{bad}:4: original is 9 but raw train label 5 is 2", f"{bad}:4: reason 'noisy' given"):
        assert expected in message
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    good = tmp_path / "good.csv"
    good.write_text(header + "train,1,0,6,published:x,listed,ambiguous,an open loop: 0 or 6\n"
                             "train,5,2,3,published:x,unsure,,a 2 or a 3\n", "utf-8")
    assert review.apply(workspace(root), good, labels) == {"listed": 1, "kept": 0, "unsure": 1}
    assert (root / "train.csv").read_text("utf-8") == LIST + "1,0,IDK,ambiguous,an open loop: 0 or 6\n"
    assert "1,0,listed,published:x,an open loop: 0 or 6\n" in (root / "reviewed" / "train.csv").read_text("utf-8")
    assert review.lint(workspace(root), labels) == []
    pile = review.next_batch(workspace(root), "all", 5, None, second_look=True)
    assert [(c.split, c.index) for c in pile] == [("train", 5)]
    rerank = tmp_path / "rerank.csv"
    rerank.write_text(header + "train,3,1,7,suggest:r1@1,kept,,looked again\n", "utf-8")
    (root / "reviewed" / "runs.csv").write_text("run,tool_version,model,seed,command\nr1,0.1.0,rff,0,cmd\n", "utf-8")
    record = root / "reviewed" / "train.csv"
    record.write_text(record.read_text("utf-8").replace("3,1,kept,seed-v1.0.0,", "3,1,kept,seed-v1.0.0;suggest:r1@9,"), "utf-8")
    with pytest.raises(MnistIdkError, match=f"{rerank}:2: source suggest:r1@1 contradicts the recorded suggest:r1@9"):
        review.apply(workspace(root), rerank, labels, redecide=True)
    redo = tmp_path / "redo.csv"
    redo.write_text(header + "train,1,0,6,published:y,kept,,looked again: a 0\n", "utf-8")
    review.apply(workspace(root), redo, labels, redecide=True)
    assert (root / "train.csv").read_text("utf-8") == LIST
    assert "1,0,kept,published:x;published:y,looked again: a 0\n" in (root / "reviewed" / "train.csv").read_text("utf-8")
    assert not list(root.rglob(".*.tmp"))


def test_status_reports_coverage_and_the_last_200_yield(tmp_path):
    rows = "".join(f"{i},{d},kept,suggest:r1@{i + 1},looked\n" for i, d in enumerate([5, 0, 4, 1, 9]))
    root = lists(tmp_path, reviewed_train=rows, runs="r1,0.1.0,rff,0,cmd\n")
    train = coverage.status(workspace(root))[0]
    assert (train.reviewed, train.listed, train.ranked_reviewed, train.deepest_rank) == (5, 0, 5, 5)
    assert train.by_source == {"suggest": (5, 0)} and train.last_window == 5


def test_the_card_says_how_much_was_reviewed_and_draws_a_sheet_per_reason(tmp_path, real_splits, labels):
    from mnist_idk import card, sheet

    root = lists(tmp_path / "lists", train="1,0,IDK,noisy,a smudge\n3,1,IDK,ambiguous,1 or 7\n",
                 reviewed_train=("1,0,listed,published:northcutt2021,a smudge\n3,1,listed,suggest:r1@1,1 or 7\n"
                                 "5,2,kept,suggest:r1@2,a 2\n"),
                 runs="r1,0.1.0,rff,0,cmd\n")
    ws = workspace(root)
    section = card.review_section(ws, "working")
    assert "Reviewed **3** of the 70,000 images" in section and "**2** are listed" in section
    assert "| train | 3 | 2 | 1 (1) | 2 (1) |" in section and "| test | 0 | 0 | 0 (0) | 0 (0) |" in section
    assert "blind" not in section  # no re-check yet: no paragraph
    (root / "reviewed" / review.BLIND).write_text(
        ",".join(review.BLIND_COLUMNS) + "\n"
        "v1.1.0,train,1,0,listed,kept,,a plain 0,listed\nv1.1.0,train,3,1,listed,listed,ambiguous,1 or 7,listed\n"
        "v1.1.0,train,5,2,kept,kept,,a 2,kept\n", "utf-8")
    assert "| v1.1.0 | 3 | 2 of 3 (67%) | 1 of 2 (50%) | 1 of 1 (100%) | 0 |" in card.review_section(ws, "working")
    paths = sheet.write_card_sheet(tmp_path / "out", real_splits, curation.load(ws, "working", labels))
    assert [p.name for p in paths] == ["idk_examples.png", "idk_ambiguous.png", "idk_noisy.png"]
    assert card.reason_sheets(curation.load(ws, "working", labels)) == (
        "Every listed image, one sheet per reason: [ambiguous (1)](images/idk_ambiguous.png), "
        "[noisy (1)](images/idk_noisy.png).")
    assert card.review_section(workspace(), "v1.0.0") == ""  # a release without a record: no section


def test_a_new_ranking_continues_the_review_counting_what_other_runs_decided(tmp_path):
    """The stopping rule walks the new ranking from the top; decisions made by another run count."""
    reviewed = ("0,5,kept,suggest:r1@1,a 5\n3,1,listed,suggest:r1@2,a 1 or a 7\n"
                "4,9,kept,published:study,a 9\n")
    root = lists(tmp_path / "lists", train="3,1,IDK,ambiguous,a 1 or a 7\n", reviewed_train=reviewed,
                 runs="r1,0.1.0,rff,0,cmd\nr2,0.1.0,cnn,0,cmd\n")
    ranking = tmp_path / "r2.csv"
    ranking.write_text("rank,split,index,original,predicted\n1,train,4,9,4\n2,train,3,1,7\n3,train,0,5,3\n"
                       "4,train,7,3,5\n5,train,1,0,6\n", "utf-8")
    listed = {"train": {3}, "test": set()}
    (check,) = coverage.ranking_check(workspace(root), ranking, "r2", listed)
    assert (check.depth, check.next_rank, check.window, check.window_listed, check.done) == (3, 4, 3, 1, False)
    runner = CliRunner()
    result = runner.invoke(main, ["review", "status", "--lists-dir", str(root), "--ranking", str(ranking),
                                  "--run", "r2"])
    assert result.exit_code == 0, result.output
    assert "train, ranking r2: decided to rank 3; next undecided rank 4; last 3: 1 listed (33.3%) -> continue" \
        in result.output
    alone = runner.invoke(main, ["review", "status", "--lists-dir", str(root), "--ranking", str(ranking)])
    assert alone.exit_code != 0 and "--ranking and --run go together" in alone.output
    unknown = runner.invoke(main, ["review", "status", "--lists-dir", str(root), "--ranking", str(ranking),
                                   "--run", "r9"])
    assert unknown.exit_code != 0 and "run 'r9' is not recorded" in unknown.output


def test_where_the_model_reads_the_label_the_second_column_shows_the_next_likeliest_digit(tmp_path, real_splits):
    """Deep in a ranking the model's digit is the label; the sheet then compares with the ranking's alternative."""
    ranking = tmp_path / "ranking.csv"
    ranking.write_text("rank,split,index,original,predicted,alternative\n1,train,1,0,6,6\n2,train,3,1,1,7\n"
                       "3,train,5,2,2,\n", "utf-8")
    older = tmp_path / "older.csv"
    older.write_text("rank,split,index,original,predicted\n1,train,3,1,1\n", "utf-8")
    read = review.ranking_candidates(ranking, "r1")
    assert [(c.predicted, c.alternative, c.reference) for c in read] == [(6, 6, 6), (1, 7, 7), (2, None, None)]
    assert [c.reference for c in review.ranking_candidates(older, "r1")] == [None]

    def typical_tiles(candidate):
        """The second group's three tiles, read back from the drawn row at 3x."""
        picture = np.asarray(review.render_batch([candidate], real_splits))
        left = 6 + 168 + 12 + 3 * (84 + 2) + 12
        return [picture[6 + 14:6 + 14 + 84:3, x:x + 84:3] for x in range(left, left + 3 * 86, 86)]

    train = real_splits["train"]
    for tile, index in zip(typical_tiles(read[1]), review.typical(train, 7)):
        np.testing.assert_array_equal(tile, train.images[index])
    assert all((tile == 255).all() for tile in typical_tiles(read[2]))  # no second column: left blank


def test_an_audit_serves_the_unreviewed_images_in_a_seeded_random_order(tmp_path, labels):
    """`review next --audit SEED`: published candidates and rank order give way to a seeded permutation."""
    root = lists(tmp_path / "lists", reviewed_train="3,1,kept,suggest:r1@1,a clear 1\n", runs="r1,0.1.0,rff,0,cmd\n")
    (root / "published").mkdir()
    (root / "published" / "candidates.csv").write_text(
        "split,index,original,study,alternative,votes_given,votes_alternative,votes_neither\n"
        "train,5,2,study-a,7,,,\n", "utf-8")
    indices = np.arange(40)
    ranking = tmp_path / "ranking.csv"
    ranking.write_text("rank,split,index,original,predicted\n" + "".join(
        f"{rank},train,{i},{labels['train'][i]},{labels['train'][i]}\n" for rank, i in enumerate(indices, 1)), "utf-8")
    ranked = review.ranking_candidates(ranking, "r1")
    audit = review.audit_candidates(ranked, 7)
    assert sorted(c.index for c in audit) == indices.tolist()  # every image once
    assert [c.index for c in audit] != indices.tolist()  # not in rank order
    assert [c.index for c in audit] == [c.index for c in review.audit_candidates(ranked, 7)]  # the seed fixes it
    assert [c.index for c in audit] != [c.index for c in review.audit_candidates(ranked, 8)]
    assert all(c.source == f"audit-s7:r1@{c.index + 1}" for c in audit)  # the rank stays in the source
    queue = review.next_batch(workspace(root), "train", 39, audit, alone=True)
    assert [c.index for c in queue] == [c.index for c in audit if c.index != 3]  # no published first, reviewed left out

    out = tmp_path / "batch"
    result = CliRunner().invoke(main, ["review", "next", "--lists-dir", str(root), "--ranking", str(ranking),
                                       "--run", "r1", "--audit", "7", "--split", "train", "--batch", "4",
                                       "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    decisions = result.stdout.splitlines()[-1]
    rows = list(csv.DictReader(open(decisions, encoding="utf-8")))
    assert [int(r["index"]) for r in rows] == [c.index for c in queue[:4]]
    alone = CliRunner().invoke(main, ["review", "next", "--lists-dir", str(root), "--audit", "7"])
    assert alone.exit_code != 0 and "--audit draws from a ranking" in alone.output

    for r, decision in zip(rows, ["kept", "listed", "kept", "kept"]):  # the sources pass apply's checks
        r.update(decision=decision, reason="noisy" if decision == "listed" else "", note="looked")
    with open(decisions, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=review.DECISION_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    applied = CliRunner().invoke(main, ["review", "apply", "--lists-dir", str(root), decisions])
    assert applied.exit_code == 0, applied.output
    assert review.lint(workspace(root), labels) == []
    train = coverage.status(workspace(root))[0]
    assert (train.left.audited, train.left.audit_listed, train.ranked_reviewed) == (4, 1, 1)  # audits leave the stopping rule alone
    middle, (low, high) = train.left.estimate()
    assert middle == pytest.approx(0.25 * (60000 - 5)) and low < middle < high
    status = CliRunner().invoke(main, ["review", "status", "--lists-dir", str(root)])
    assert "audit: 4 random unreviewed images decided, 1 listed (25.0%) -> about 14,999 IDK images" in status.output


def test_an_audit_source_must_name_a_recorded_run(tmp_path, labels):
    root = lists(tmp_path, reviewed_train="1,0,kept,audit-s0:r9@4,a 0\n3,1,kept,audit:r1@2,a 1\n",
                 runs="r1,0.1.0,rff,0,cmd\n")
    messages = [p.message for p in review.lint(workspace(root), labels)]
    assert any("'audit-s0:r9@4' names a run not recorded" in m for m in messages)
    assert any("'audit:r1@2' is not seed-vX.Y.Z" in m for m in messages)


def test_the_card_says_what_an_audit_estimates_is_left_unreviewed(tmp_path):
    from mnist_idk import card

    rows = "1,0,listed,audit-s0:r1@40,a smudge\n3,1,kept,audit-s0:r1@9,a 1\n5,2,kept,suggest:r1@1,a 2\n"
    root = lists(tmp_path, train="1,0,IDK,noisy,a smudge\n", reviewed_train=rows, runs="r1,0.1.0,rff,0,cmd\n")
    section = card.review_section(workspace(root), "working")
    assert "| train | 3 | 1 | 2 (1) | 1 (0) |" in section  # audit, suggest
    assert "train: 1 of 2 listed, so about 29,998 IDK images (95% interval 5,671-54,326)" in section  # Wilson 1 of 2: 0.0945-0.9055
    assert "test:" not in section  # no audit there
    assert "unreviewed images drawn at random (`audit`)" in section
    assert "drawn at random (`audit`)" not in card.review_section(workspace(lists(tmp_path / "plain", reviewed_train=rows.splitlines()[-1] + "\n", runs="r1,0.1.0,rff,0,cmd\n")), "working")


def test_a_release_of_the_review_record_alone_is_a_patch(tmp_path, labels):
    """More images reviewed, none listed: the lists equal the last release, the record does not."""
    root = lists(tmp_path, train="1,0,IDK,noisy,a smudge\n", reviewed_train="1,0,listed,seed-v1.0.0,a smudge\n")
    release(workspace(root), "1.0.0", "first", labels, datetime.date(2026, 1, 1))
    with pytest.raises(MnistIdkError, match="lists and review record equal v1.0.0: nothing to release"):
        release(workspace(root), "1.0.1", "", labels)
    (root / "reviewed" / "train.csv").write_text(RECORD + "1,0,listed,seed-v1.0.0,a smudge\n3,1,kept,seed-v1.0.0,a 1\n",
                                                 "utf-8")
    target = release(workspace(root), "1.0.1", "An audit.", labels, datetime.date(2026, 1, 2))
    assert (target / "train.csv").read_bytes() == (root / "releases" / "v1.0.0" / "train.csv").read_bytes()
    assert "3,1,kept" in (target / "reviewed" / "train.csv").read_text("utf-8")
    section = (root / "CHANGELOG.md").read_text("utf-8").split("## v1.0.1")[1].split("## v1.0.0")[0]
    assert "An audit." in section and "none to the lists; the review record grows." in section
