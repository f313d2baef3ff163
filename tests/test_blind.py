"""The blind re-check: draw hides the first decision, record compares and writes everything at once."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import LIST_HEADER, RECORD_HEADER, kept_rows, read_csv as read, released_record, workspace

from mnist_idk import blind, review
from mnist_idk.cli import main
from mnist_idk.errors import MnistIdkError


@pytest.fixture
def root(tmp_path, labels):
    """Release v1.0.0 with two decisions, then 20 more in the working record (train 10-29)."""
    return released_record(tmp_path / "lists", labels)


def fill(path, decisions):
    """Fill a blind CSV row by row: decisions are (decision, reason, note)."""
    rows = read(path)
    for row, (decision, reason, note) in zip(rows, decisions):
        row.update(decision=decision, reason=reason, note=note)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=blind.SHEET_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def snapshot(root):
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_draw_takes_a_tenth_of_the_decisions_since_the_release_and_hides_the_first(root):
    ws = workspace(root)
    chosen, shares = blind.draw(ws, "v1.0.0", "v1.1.0", seed=3)
    assert [(s.split, s.first, s.decisions, s.checked, s.drawn) for s in shares] == [
        ("train", "listed", 0, 0, 0), ("train", "kept", 20, 0, 2), ("test", "listed", 0, 0, 0), ("test", "kept", 0, 0, 0)]
    assert all(c.split == "train" and 10 <= c.index < 30 for c in chosen)  # nothing from the release
    assert chosen == blind.draw(ws, "v1.0.0", "v1.1.0", seed=3)[0]  # deterministic
    out = root.parent / "blind"
    result = CliRunner().invoke(main, ["review", "blind", "draw", "--lists-dir", str(root), "--round", "1.1.0",
                                       "--seed", "3", "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "train, kept: 20 decisions since v1.0.0; round v1.1.0 re-checks 0; drawn now 2" in result.stderr
    sheet = result.stdout.split()[-1]
    text = Path(sheet).read_text("utf-8")
    assert text.splitlines()[0] == ",".join(blind.SHEET_COLUMNS)
    assert "kept" not in text and "seed-v1.0.0" not in text and "plain digit" not in text  # blind
    assert [int(r["index"]) for r in read(sheet)] == [c.index for c in chosen]


def test_each_sheet_of_a_round_keeps_its_own_disagreements_and_filled_ones_are_never_overwritten(root):
    runner = CliRunner()
    out = root.parent / "blind"
    drawn = runner.invoke(main, ["review", "blind", "draw", "--lists-dir", str(root), "--round", "v1.1.0",
                                 "--seed", "3", "--out-dir", str(out)])
    part = out / "blind-v1.1.0-b.csv"
    Path(drawn.stdout.split()[-1]).rename(part)
    fill(part, [("listed", "ambiguous", "a 1 or a 7")] * 2)
    first = runner.invoke(main, ["review", "blind", "record", str(part), "--lists-dir", str(root)])
    assert first.exit_code == 0, first.output
    again = out / "disagreements-v1.1.0-b.csv"
    assert first.stdout.split()[-1] == str(again) and not (out / "disagreements-v1.1.0.csv").exists()
    rows = read(again)
    rows[0].update(decision="kept", note="looked again: a plain digit")
    with open(again, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=review.DECISION_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    filled = again.read_bytes()
    repeat = runner.invoke(main, ["review", "blind", "record", str(part), "--lists-dir", str(root)])
    assert repeat.exit_code == 2 and "already holds decisions" in repeat.stderr
    assert again.read_bytes() == filled


def test_record_waits_for_the_disagreements_then_writes_everything_at_once(root, labels):
    ws = workspace(root)
    out = root.parent / "blind"
    runner = CliRunner()
    result = runner.invoke(main, ["review", "blind", "draw", "--lists-dir", str(root), "--round", "v1.1.0",
                                  "--seed", "3", "--out-dir", str(out)])
    sheet = result.stdout.split()[-1]
    agree, differ = fill(sheet, [("kept", "", "a plain digit"), ("listed", "ambiguous", "a 1 or a 7")])
    before = snapshot(root)
    first = runner.invoke(main, ["review", "blind", "record", sheet, "--lists-dir", str(root)])
    assert first.exit_code == 0, first.output
    assert "round v1.1.0: 2 re-checked blind; 1 agree (50.0%); 1 disagree" in first.stdout
    assert f"train {differ['index']} (label {differ['original']}): first kept: a plain digit | blind listed " \
           "ambiguous: a 1 or a 7" in first.stdout
    assert "nothing recorded yet" in first.stderr
    assert snapshot(root) == before  # nothing recorded
    again = first.stdout.split()[-1]
    rows = read(again)
    assert [(r["index"], r["source"], r["decision"]) for r in rows] == [(differ["index"], "seed-v1.0.0", "")]

    rows[0].update(decision="listed", reason="ambiguous", note="looked again: a 1 or a 7")
    with open(again, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=review.DECISION_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    done = runner.invoke(main, ["review", "blind", "record", sheet, "--redecided", again, "--lists-dir", str(root)])
    assert done.exit_code == 0, done.output
    assert "recorded 2 rows of round v1.1.0; 1 decided once more: 1 changed (1 now listed, 0 now kept), 0 stand" \
        in done.stdout
    checks, problems = review.read_blind(root / "reviewed" / review.BLIND, labels)
    assert problems == []
    assert [(c.round, c.index, c.first, c.blind, c.final) for c in checks] == [
        ("v1.1.0", int(agree["index"]), "kept", "kept", "kept"),
        ("v1.1.0", int(differ["index"]), "kept", "listed", "listed")]
    assert f"{differ['index']},{differ['original']},IDK,ambiguous,looked again" in (root / "train.csv").read_text("utf-8")
    assert review.lint(ws, labels) == []
    status = runner.invoke(main, ["review", "status", "--lists-dir", str(root)])
    assert ("blind re-check v1.1.0: 1 of 2 agree (50.0%; first kept: 1 of 2, 95% interval 9%-91%); 1 changed when "
            "decided once more") in status.stdout
    repeat = runner.invoke(main, ["review", "blind", "record", sheet, "--lists-dir", str(root)])
    assert repeat.exit_code == 2 and "is already re-checked in round v1.1.0 (blind_recheck.csv:2)" in repeat.stderr

    # 10 more decisions: a second draw tops each stratum up to a tenth (of 29 kept; the 1 listed is
    # the re-decided image, already checked), never re-drawing a checked image
    record = root / "reviewed" / "train.csv"
    record.write_text(record.read_text("utf-8") + kept_rows(labels, range(40, 50)), "utf-8")
    top_up, shares = blind.draw(ws, "v1.0.0", "v1.1.0", seed=3)
    assert [(s.first, s.decisions, s.checked, s.drawn) for s in shares[:2]] == [("listed", 1, 1, 0), ("kept", 29, 1, 2)]
    assert not {c.index for c in top_up} & {int(agree["index"]), int(differ["index"])}

    # a later round taking on the same decisions can leave out what round v1.1.0 re-checked
    rechecked = {int(agree["index"]), int(differ["index"])}
    every, _ = blind.draw(ws, "v1.0.0", "v1.2.0", fraction=1.0, seed=3)
    fresh, _ = blind.draw(ws, "v1.0.0", "v1.2.0", fraction=1.0, seed=3, skip_rechecked=True)
    assert len(every) == 30 and rechecked <= {c.index for c in every}
    assert {c.index for c in fresh} == {c.index for c in every} - rechecked

    # a third look: the images round v1.1.0 disagreed on, whatever their decision now, and only those
    third, shares = blind.draw(ws, "v1.0.0", "v1.2.0", fraction=1.0, seed=3, disagreed="v1.1.0")
    assert [c.index for c in third] == [int(differ["index"])]
    assert [(s.first, s.decisions) for s in shares if s.split == "train"] == [("listed", 1), ("kept", 0)]
    skipping, _ = blind.draw(ws, "v1.0.0", "v1.2.0", fraction=1.0, seed=3, disagreed="v1.1.0", skip_rechecked=True)
    assert skipping == third  # v1.1.0's own re-check made the pool; it is no reason to leave one out
    with pytest.raises(MnistIdkError, match="--disagreed v1.5.0: no disagreement of that round"):
        blind.draw(ws, "v1.0.0", "v1.2.0", disagreed="1.5.0")
    shown = runner.invoke(main, ["review", "blind", "draw", "--lists-dir", str(root), "--round", "v1.2.0",
                                 "--since", "v1.0.0", "--disagreed", "v1.1.0", "--listed-fraction", "1",
                                 "--out-dir", str(root.parent / "third")])
    assert shown.exit_code == 0, shown.output
    assert "train, listed: 1 decisions round v1.1.0 disagreed on; round v1.2.0 re-checks 0; drawn now 1" in shown.stderr



def test_changed_draws_decisions_turned_over_since_the_release(root, labels):
    """--changed: a round can re-check what the last round's re-decisions turned over, and nothing else old."""
    ws = workspace(root)
    # train 3 was kept at v1.0.0 and is listed now; train 1 is listed in both
    (root / "train.csv").write_text((root / "train.csv").read_text("utf-8")
                                    + f"3,{labels['train'][3]},IDK,ambiguous,a 1 or a 7\n", "utf-8")
    record = root / "reviewed" / "train.csv"
    record.write_text(record.read_text("utf-8").replace(
        f"\n3,{labels['train'][3]},kept,seed-v1.0.0,a plain digit\n",
        f"\n3,{labels['train'][3]},listed,seed-v1.0.0,a 1 or a 7\n"), "utf-8")
    assert review.lint(ws, labels) == []
    plain, shares = blind.draw(ws, "v1.0.0", "v1.1.0", fraction=1.0)
    assert {c.index for c in plain} == set(range(10, 30))
    turned, shares = blind.draw(ws, "v1.0.0", "v1.1.0", fraction=1.0, changed=True)
    assert {c.index for c in turned} == {3, *range(10, 30)}
    assert [(s.first, s.decisions) for s in shares if s.split == "train"] == [("listed", 1), ("kept", 20)]
    out = root.parent / "blind"
    result = CliRunner().invoke(main, ["review", "blind", "draw", "--lists-dir", str(root), "--round", "v1.1.0",
                                       "--since", "v1.0.0", "--changed", "--listed-fraction", "1", "--fraction",
                                       "0.05", "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "train, listed: 1 decisions since v1.0.0; round v1.1.0 re-checks 0; drawn now 1" in result.stderr
    assert [row["index"] for row in read(out / "blind-v1.1.0.csv")][:1] == ["3"]

def test_listed_and_kept_decisions_are_drawn_apart_and_agreement_is_told_for_each(root, labels):
    """Deep in a ranking nearly every decision is a keep: --listed-fraction re-checks more of the listed ones."""
    ws = workspace(root)
    listed = range(30, 40)
    (root / "train.csv").write_text((root / "train.csv").read_text("utf-8") + "".join(
        f"{i},{labels['train'][i]},IDK,ambiguous,a 1 or a 7\n" for i in listed), "utf-8")
    record = root / "reviewed" / "train.csv"
    record.write_text(record.read_text("utf-8") + "".join(
        f"{i},{labels['train'][i]},listed,seed-v1.0.0,a 1 or a 7\n" for i in listed), "utf-8")
    assert review.lint(ws, labels) == []
    chosen, shares = blind.draw(ws, "v1.0.0", "v1.1.0", seed=3)
    assert [(s.first, s.decisions, s.drawn) for s in shares if s.split == "train"] == [("listed", 10, 1), ("kept", 20, 2)]
    out = root.parent / "blind"
    result = CliRunner().invoke(main, ["review", "blind", "draw", "--lists-dir", str(root), "--round", "v1.1.0",
                                       "--listed-fraction", "0.5", "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "train, listed: 10 decisions since v1.0.0; round v1.1.0 re-checks 0; drawn now 5" in result.stderr
    assert "train, kept: 20 decisions since v1.0.0; round v1.1.0 re-checks 0; drawn now 2" in result.stderr
    sheet = result.stdout.split()[-1]
    rows = read(sheet)
    indices = [int(r["index"]) for r in rows]
    assert indices == sorted(indices) and len(indices) == 7  # one order: nothing tells the strata apart
    assert sum(i in listed for i in indices) == 5
    fill(sheet, [("kept", "", "a plain 1") for _ in rows])  # the second reviewer keeps everything
    compared = CliRunner().invoke(main, ["review", "blind", "record", sheet, "--lists-dir", str(root)])
    assert "7 re-checked blind; 2 agree (28.6%); 5 disagree (first listed: 0 of 5 agree; first kept: 2 of 2 agree)" \
        in compared.stdout


def test_bad_blind_sheets_and_incomplete_redecisions_are_refused_with_file_and_line(root, labels):
    ws = workspace(root)
    sheet = root.parent / "blind.csv"
    sheet.write_text(",".join(blind.SHEET_COLUMNS) + "\n"
                     f"v1.1.0,train,10,{labels['train'][10]},,,,\n"                       # line 2: not filled
                     f"v1.1.0,train,31,{labels['train'][31]},,kept,,a 3\n"                 # line 3: not recorded
                     f"v1.1.0,train,11,{labels['train'][11]},,kept,noisy,x\n"             # line 4: reason on kept
                     f"v1.1.0,train,12,{labels['train'][12]},,or,,x\n", "utf-8")           # line 5: no such decision
    with pytest.raises(MnistIdkError) as error:
        blind.compare(ws, sheet, labels)
    for expected in (f"{sheet}:2: decision '' is not listed or kept", f"{sheet}:2: note is empty",
                     f"{sheet}:3: train 31 is not in the review record", f"{sheet}:4: reason 'noisy' given",
                     f"{sheet}:5: decision 'or' is not listed or kept"):
        assert expected in str(error.value)
    sheet.write_text(",".join(blind.SHEET_COLUMNS) + "\n"
                     f"v1.1.0,train,10,{labels['train'][10]},,listed,deformed,a scrawl\n", "utf-8")
    comparison = blind.compare(ws, sheet, labels)
    before = snapshot(root)
    with pytest.raises(MnistIdkError, match="1 disagreement.s. not decided once more: train 10"):
        blind.record(ws, comparison, None, labels)
    redecided = root.parent / "again.csv"
    redecided.write_text(",".join(review.DECISION_COLUMNS) + "\n"
                         f"train,10,{labels['train'][10]},,seed-v1.0.0,listed,deformed,a scrawl\n"
                         f"train,11,{labels['train'][11]},,seed-v1.0.0,kept,,a plain digit\n", "utf-8")
    with pytest.raises(MnistIdkError, match=f"{redecided}:3: train 11 is not a disagreement of this blind sheet"):
        blind.record(ws, comparison, redecided, labels)
    assert snapshot(root) == before and not list(root.rglob(".*.tmp"))


def test_lint_checks_the_blind_record(tmp_path, labels):
    root = tmp_path / "lists"
    (root / "reviewed").mkdir(parents=True)
    for name in ("train.csv", "test.csv"):
        (root / name).write_text(LIST_HEADER, "utf-8")
    (root / "reviewed" / "train.csv").write_text(RECORD_HEADER + kept_rows(labels, [3, 5]), "utf-8")
    (root / "reviewed" / "test.csv").write_text(RECORD_HEADER, "utf-8")
    (root / "reviewed" / review.BLIND).write_text(
        ",".join(review.BLIND_COLUMNS) + "\n"
        f"v1.2.0,train,5,{labels['train'][5]},kept,kept,,a 2,kept\n"
        f"v1.1.0,train,3,{labels['train'][3]},kept,kept,,a 1,kept\n"            # line 3: out of order
        f"v1.1.0,train,3,{labels['train'][3]},kept,maybe,noisy,,kept\n"         # line 4: twice, blind, reason, note
        f"1.1,train,3,{labels['train'][3]},kept,listed,,x,kept\n", "utf-8")     # line 5: round, no reason
    problems = {(p.line, p.message) for p in review.lint(workspace(root), labels)}
    assert (3, "round v1.1.0 train 3 comes after round v1.2.0 train 5; keep rows sorted by round, split, index") \
        in problems
    assert (4, "train 3 is re-checked twice in round v1.1.0 (also line 3)") in problems
    assert (4, "blind 'maybe' is not listed or kept") in problems
    assert (4, "blind_reason 'noisy' given, but the blind decision is maybe") in problems
    assert (4, "blind_note is empty; say what the second reviewer saw") in problems
    assert (5, "round '1.1' is not a version vX.Y.Z (the release it leads to)") in problems
    assert any(line == 5 and message.startswith("blind_reason '' is not one of") for line, message in problems)
