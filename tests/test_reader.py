"""A reader's folder: a sheet handed out as numbered items with the key kept apart, and filled back in."""

from __future__ import annotations


import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO, read_csv as read, released_record, write_csv as write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mnist_idk import reader
from mnist_idk.cli import main
from mnist_idk.errors import MnistIdkError


@pytest.fixture
def root(tmp_path, labels):
    return released_record(tmp_path / "lists", labels)


def run(root, *args):
    return CliRunner().invoke(main, ["review", *args[:2], "--lists-dir", str(root), *args[2:]])


@pytest.fixture
def sheet(root, tmp_path):
    """A blind sheet of 10 of the 20 decisions, as `review blind draw` writes it."""
    result = run(root, "blind", "draw", "--round", "1.1.0", "--fraction", "0.5", "--seed", "4",
                 "--out-dir", str(tmp_path / "blind"))
    assert result.exit_code == 0, result.output
    return tmp_path / "blind" / "blind-v1.1.0.csv"


def make(root, sheet, out, *options):
    return run(root, "reader", "make", str(sheet), "--out", str(out), *options)


def test_make_numbers_the_images_in_a_seeded_order_and_keeps_the_key_outside(root, sheet, tmp_path, real_splits):
    out = tmp_path / "r1"
    result = make(root, sheet, out, "--seed", "1")
    assert result.exit_code == 0, result.output
    key = tmp_path / "r1.key.csv"
    assert result.stdout.split()[-1] == str(key) and "keep it from the reader" in result.stderr
    assert not any(p.name.endswith(".csv") and "key" in p.name for p in out.iterdir())
    rows = read(key)
    drawn = read(sheet)
    assert sorted((r["split"], r["index"]) for r in rows) == sorted((r["split"], r["index"]) for r in drawn)
    assert [r["item"] for r in rows] == [f"item{n:02d}" for n in range(1, 11)]
    assert [(r["split"], r["index"]) for r in rows] != [(r["split"], r["index"]) for r in drawn]  # shuffled
    for row in rows:  # each item is its image: the PNG scaled 12 times, the text its pixel values
        image = real_splits[row["split"]].images[int(row["index"])].reshape(28, 28)
        big = np.asarray(Image.open(out / f"{row['item']}.png"))
        assert big.shape == (336, 336) and (big[::12, ::12] == image).all()
        lines = (out / f"{row['item']}.txt").read_text("utf-8").splitlines()[1:]
        assert np.array([[int(v) for v in line.split(":")[1].split()] for line in lines]).tolist() == image.tolist()
    # Nothing the reader gets names an image: no index in the CSV or the instructions.
    template = read(out / "decisions.csv")
    assert [r["item"] for r in template] == [r["item"] for r in rows]
    assert all(r["decision"] == r["reason"] == r["note"] == "" for r in template)
    text = (out / "decisions.csv").read_text("utf-8") + (out / "INSTRUCTIONS.md").read_text("utf-8")
    assert "train" not in text and "test," not in text
    assert list(template[0]) == ["item", "label", "decision", "reason", "note"]
    assert (out / "sheet-01.png").is_file() and not list(tmp_path.glob(".*partial"))
    # The same seed gives the same key; another seed another order.
    assert make(root, sheet, tmp_path / "again", "--seed", "1").exit_code == 0
    assert read(tmp_path / "again.key.csv") == rows
    assert (tmp_path / "again" / "sheet-01.png").read_bytes() == (out / "sheet-01.png").read_bytes()
    assert make(root, sheet, tmp_path / "r2", "--seed", "2").exit_code == 0
    assert read(tmp_path / "r2.key.csv") != rows


def test_instructions_carry_the_definition_the_rules_and_the_rule_images(root, sheet, tmp_path):
    refs, rules = tmp_path / "refs.csv", tmp_path / "rules.md"
    write(refs, reader.REF_COLUMNS, [{"name": "K1", "split": "train", "index": "5", "text": "kept: a plain 2"}])
    rules.write_text("- Keep a 2 with a loop at its foot.\n", "utf-8")
    out = tmp_path / "r"
    result = make(root, sheet, out, "--refs", str(refs), "--rules", str(rules))
    assert result.exit_code == 0, result.output
    text = (out / "INSTRUCTIONS.md").read_text("utf-8")
    assert reader.DEFINITION in text and "Keep a 2 with a loop at its foot." in text and "`K1`: kept: a plain 2" in text
    assert (out / "REF-K1.png").is_file() and (out / "REF-K1.txt").is_file()


def test_the_definition_is_the_one_the_curation_readme_gives():
    readme = (REPO / "curation_lists" / "README.md").read_text("utf-8")
    assert reader.DEFINITION in " ".join(readme.split())


def test_make_refuses_what_would_unblind_or_overwrite_and_leaves_nothing(root, sheet, tmp_path, labels):
    out = tmp_path / "r"
    drawn = read(sheet)[0]
    refs = tmp_path / "refs.csv"
    write(refs, reader.REF_COLUMNS, [{"name": "A", "split": drawn["split"], "index": drawn["index"], "text": "x"}])
    result = make(root, sheet, out, "--refs", str(refs))
    assert result.exit_code == 2 and "a rule image is also an item" in result.stderr
    assert not out.exists() and not (tmp_path / "r.key.csv").exists() and not list(tmp_path.glob(".r*"))
    result = make(root, sheet, out, "--key", str(out / "key.csv"))
    assert result.exit_code == 2 and "must not be inside the reader's folder" in result.stderr
    out.mkdir()
    result = make(root, sheet, out)
    assert result.exit_code == 2 and "never overwritten" in result.stderr
    decided = tmp_path / "decided.csv"
    rows = read(sheet)
    rows[2].update(decision="kept", note="a 2")
    write(decided, list(rows[0]), rows)
    result = make(root, decided, tmp_path / "r3")
    assert result.exit_code == 2 and f"{decided}:4: already decided" in result.stderr
    assert not (tmp_path / "r3").exists()


def test_fill_writes_the_readers_decisions_back_and_the_round_records(root, sheet, tmp_path):
    out = tmp_path / "r"
    assert make(root, sheet, out, "--seed", "7").exit_code == 0
    key = {r["item"]: (r["split"], r["index"]) for r in read(tmp_path / "r.key.csv")}
    decisions = [{"item": item, "label": "", "decision": "kept", "reason": "", "note": f"a plain digit, {item}",
                  "measurements": "none"} for item in key]
    write(out / "decisions.csv", list(decisions[0]), decisions)
    before = read(sheet)
    result = CliRunner().invoke(main, ["review", "reader", "fill", str(sheet), str(out / "decisions.csv"),
                                       "--key", str(tmp_path / "r.key.csv")])
    assert result.exit_code == 0, result.output
    assert "10 rows filled in from 1 reader(s): 0 listed, 10 kept, 0 unsure" in result.stdout
    after = read(sheet)
    by_image = {(r["split"], r["index"]): r for r in after}
    for item, image in key.items():  # each decision landed on its own image
        assert by_image[image]["note"] == f"a plain digit, {item}" and by_image[image]["decision"] == "kept"
    assert [{k: v for k, v in r.items() if k not in ("decision", "note")} for r in after] == \
        [{k: v for k, v in r.items() if k not in ("decision", "note")} for r in before]
    result = run(root, "blind", "record", str(sheet))
    assert result.exit_code == 0, result.output
    assert "10 re-checked blind; 10 agree" in result.stdout


def test_fill_checks_everything_and_writes_nothing_on_a_problem(root, sheet, tmp_path):
    out = tmp_path / "r"
    assert make(root, sheet, out).exit_code == 0
    key = tmp_path / "r.key.csv"
    items = [r["item"] for r in read(key)]
    bad = [{"item": items[0], "decision": "maybe", "reason": "", "note": "hm"},
           {"item": items[1], "decision": "listed", "reason": "", "note": "two digits"},
           {"item": items[1], "decision": "kept", "reason": "", "note": "again"},
           {"item": "item99", "decision": "kept", "reason": "", "note": "x"}]
    write(out / "decisions.csv", ["item", "decision", "reason", "note"], bad)
    before = sheet.read_bytes()
    result = CliRunner().invoke(main, ["review", "reader", "fill", str(sheet), str(out / "decisions.csv"),
                                       "--key", str(key)])
    assert result.exit_code == 2
    decisions = out / "decisions.csv"
    for expected in (f"{decisions}:2: decision 'maybe' is not listed, kept or unsure",
                     f"{decisions}:3: reason '' is not one of", f"{decisions}:4: {items[1]} is decided twice",
                     f"{decisions}:5: item 'item99' is not in the key", "8 item(s) not decided"):
        assert expected in result.stderr
    assert sheet.read_bytes() == before and not list(sheet.parent.glob(".*tmp"))
    template = [{"item": item, "decision": "", "reason": "", "note": ""} for item in items]
    write(decisions, ["item", "decision", "reason", "note"], template)
    with pytest.raises(MnistIdkError) as untouched:  # a reader not done yet: one line, not one per item
        reader.fill(sheet, [(key, decisions)])
    assert str(untouched.value).splitlines()[1:] == [f"{decisions}:0: none of its 10 items is decided yet (is the "
                                                     "reader done?)"]
    good = [{"item": item, "decision": "kept", "reason": "", "note": "a digit"} for item in items]
    write(decisions, ["item", "decision", "reason", "note"], good)
    assert reader.fill(sheet, [(key, decisions)]) == {"kept": 10}
    with pytest.raises(MnistIdkError, match="is already filled in"):
        reader.fill(sheet, [(key, decisions)])
    write(decisions, ["item", "verdict"], [{"item": "item01", "verdict": "kept"}])
    with pytest.raises(MnistIdkError, match=r":1: header lacks decision, reason, note \(needs item,decision,reason,note; has item,verdict\)"):
        reader.fill(sheet, [(key, decisions)])


def test_a_panel_goes_in_as_its_majority_and_unsure_where_it_has_none(root, sheet, tmp_path):
    votes = {  # per image of the sheet's first four: the three readers' (decision, reason)
        0: [("listed", "ambiguous"), ("listed", "deformed"), ("kept", "")],
        1: [("kept", ""), ("kept", ""), ("unsure", "")],
        2: [("listed", "deformed"), ("kept", ""), ("unsure", "")],
        3: [("listed", "noisy"), ("listed", "noisy"), ("listed", "ambiguous")],
    }
    images = [(r["split"], r["index"]) for r in read(sheet)]
    pairs = []
    for n in range(3):
        out = tmp_path / f"r{n}"
        assert make(root, sheet, out, "--seed", str(n)).exit_code == 0
        key = {(r["split"], r["index"]): r["item"] for r in read(tmp_path / f"r{n}.key.csv")}
        rows = [{"item": key[image], "decision": votes.get(i, [("kept", "")] * 3)[n][0],
                 "reason": votes.get(i, [("kept", "")] * 3)[n][1], "note": f"reader {n} on {i}"}
                for i, image in enumerate(images)]
        write(out / "decisions.csv", ["item", "decision", "reason", "note"], rows)
        pairs += [str(out / "decisions.csv")]
    keys = [arg for n in range(3) for arg in ("--key", str(tmp_path / f"r{n}.key.csv"))]
    result = CliRunner().invoke(main, ["review", "reader", "fill", str(sheet), *pairs[:2], *keys])
    assert result.exit_code == 2 and "2 DECISIONS file(s) but 3 --key" in result.stderr
    result = CliRunner().invoke(main, ["review", "reader", "fill", str(sheet), *pairs, *keys])
    assert result.exit_code == 0, result.output
    assert "10 rows filled in from 3 reader(s): 2 listed, 7 kept, 1 unsure" in result.stdout
    filled = read(sheet)
    assert [(r["decision"], r["reason"]) for r in filled[:4]] == [
        ("listed", "ambiguous"), ("kept", ""), ("unsure", ""), ("listed", "noisy")]
    assert filled[0]["note"] == ("3 blind readers L/L/K: (1) listed ambiguous: reader 0 on 0; "
                                 "(2) listed deformed: reader 1 on 0; (3) kept: reader 2 on 0")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_fill_reads_any_bytes_as_decisions_or_says_what_is_wrong(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("fuzz")
    sheet, key, decisions = root / "sheet.csv", root / "key.csv", root / "decisions.csv"
    sheet.write_text("split,index,original,decision,reason,note\ntrain,5,2,,,\n", "utf-8")
    key.write_text("item,split,index\nitem01,train,5\n", "utf-8")
    decisions.write_bytes(b"item,decision,reason,note\n" + data)
    before = sheet.read_bytes()
    try:
        assert sum(reader.fill(sheet, [(key, decisions)]).values()) == 1
    except MnistIdkError as exc:
        assert str(decisions) in str(exc)
        assert sheet.read_bytes() == before


def test_kept_more_often_is_the_one_sided_fisher_exact_test():
    # Values of scipy.stats.fisher_exact(..., alternative="greater") for the same tables.
    assert reader.kept_more_often(15, 15, 4, 15) == pytest.approx(2.4987506246876562e-05, rel=1e-9)
    assert reader.kept_more_often(3, 8, 2, 9) == pytest.approx(0.43665158371040724, rel=1e-9)
    assert reader.kept_more_often(0, 3, 3, 3) == 1.0
    with pytest.raises(ValueError):
        reader.kept_more_often(4, 3, 0, 3)


def test_tally_counts_a_filled_sheet_by_stratum_and_compares(root, sheet, tmp_path):
    rows = read(sheet)
    strata = tmp_path / "strata.csv"
    write(strata, ["split", "index", "stratum"],
          [{"split": r["split"], "index": r["index"], "stratum": "family" if i < 6 else "control"} for i, r in enumerate(rows)])
    for i, r in enumerate(rows):  # the family all kept, the controls 1 of 4 kept
        r.update(decision="kept" if i < 6 or i == 9 else "listed", reason="" if i < 6 or i == 9 else "ambiguous",
                 note="a reading")
    write(sheet, list(rows[0]), rows)
    result = CliRunner().invoke(main, ["review", "reader", "tally", str(sheet), "--strata", str(strata),
                                       "--compare", "family:control"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "control: 4 images, 3 listed, 1 kept, 0 unsure", "family: 6 images, 0 listed, 6 kept, 0 unsure",
        f"family kept 6 of 6 against control 1 of 4: one-sided Fisher exact p = "
        f"{reader.kept_more_often(6, 6, 1, 4):.2g}"]
    bad = CliRunner().invoke(main, ["review", "reader", "tally", str(sheet), "--strata", str(strata),
                                    "--compare", "family:controls"])
    assert bad.exit_code == 2 and "no stratum 'controls'" in bad.stderr
    assert bad.stdout == ""  # checked before any count is printed
    write(strata, ["split", "index", "stratum"], [{"split": rows[0]["split"], "index": rows[0]["index"], "stratum": "x"}])
    missing = CliRunner().invoke(main, ["review", "reader", "tally", str(sheet), "--strata", str(strata)])
    assert missing.exit_code == 2 and f"{sheet}:3: " in missing.stderr and "has no stratum" in missing.stderr
