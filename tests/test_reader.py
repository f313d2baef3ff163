"""A reader's folder: a sheet handed out as numbered items with the key kept apart, and filled back in."""

from __future__ import annotations


import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO, read_csv as read, released_record, workspace, write_csv as write
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
    # Readers work side by side: nothing they write may land where another reader could read it.
    assert "work only in this folder, and write nothing outside it" in text
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
    undecided = decisions.with_name("undecided.csv")
    decisions.rename(undecided)
    write(decisions, ["item", "decision", "reason", "note"], good)
    with pytest.raises(MnistIdkError) as waiting:  # a panel with one reader out: that line only, no knock-on
        reader.fill(sheet, [(key, decisions), (key, undecided)])
    assert str(waiting.value).splitlines()[1:] == [f"{undecided}:0: none of its 10 items is decided yet (is the "
                                                   "reader done?)"]
    other = read(key)
    other[0]["index"] = str(int(other[0]["index"]) + 1)  # a key of another draw: one image differs
    write(key.with_name("other.key.csv"), ["item", "split", "index"], other)
    with pytest.raises(MnistIdkError, match=r"other\.key\.csv:0: holds other images than .*r\.key\.csv"):
        reader.fill(sheet, [(key, decisions), (key.with_name("other.key.csv"), decisions)])
    assert reader.fill(sheet, [(key, decisions)]) == {"kept": 10}
    with pytest.raises(MnistIdkError) as again:  # e.g. a panel's second reader filled in on its own
        reader.fill(sheet, [(key, decisions)])
    assert str(again.value).splitlines()[1:] == [f"{sheet}:2: 10 of the key's 10 images are already filled in (a "
                                                 "sheet is filled once: give every reader's decisions to one `fill`)"]
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
    early = CliRunner().invoke(main, ["review", "reader", "tally", str(sheet), "--strata", str(strata)])
    assert early.exit_code == 2 and [line for line in early.stderr.splitlines() if line.startswith("error")] == [
        f"error: {sheet}: none of its 10 rows is decided yet (fill the sheet first: `review reader fill`)"]
    for i, r in enumerate(rows):  # the family all kept, the controls 1 of 4 kept
        r.update(decision="kept" if i < 6 or i == 9 else "listed", reason="" if i < 6 or i == 9 else "ambiguous",
                 note="a reading")
    write(sheet, list(rows[0]), rows)
    result = CliRunner().invoke(main, ["review", "reader", "tally", str(sheet), "--strata", str(strata),
                                       "--compare", "family:control"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "control: 4 images, 3 listed, 1 kept, 0 unsure (kept 25%, 95% interval 5%-70%)",
        "family: 6 images, 0 listed, 6 kept, 0 unsure (kept 100%, 95% interval 61%-100%)",
        f"family kept 6 of 6 against control 1 of 4: one-sided Fisher exact p = "
        f"{reader.kept_more_often(6, 6, 1, 4):.2g}"]
    bad = CliRunner().invoke(main, ["review", "reader", "tally", str(sheet), "--strata", str(strata),
                                    "--compare", "family:controls"])
    assert bad.exit_code == 2 and "no stratum 'controls'" in bad.stderr
    assert bad.stdout == ""  # checked before any count is printed
    write(strata, ["split", "index", "stratum"], [{"split": rows[0]["split"], "index": rows[0]["index"], "stratum": "x"}])
    missing = CliRunner().invoke(main, ["review", "reader", "tally", str(sheet), "--strata", str(strata)])
    assert missing.exit_code == 2 and f"{sheet}:3: " in missing.stderr and "has no stratum" in missing.stderr


def test_beyond_controls_is_a_binomial_tail_at_the_controls_upper_keep_rate():
    # Wilson's 95% upper end for 10 of 100 is 0.17437 (statsmodels' proportion_confint, method="wilson").
    rate, p = reader.beyond_controls(5, 5, 10, 100)
    assert rate == pytest.approx(0.174366, abs=1e-5) and p == pytest.approx(rate ** 5, rel=1e-12)
    _, four = reader.beyond_controls(4, 5, 10, 100)
    assert four == pytest.approx(5 * rate ** 4 * (1 - rate) + rate ** 5, rel=1e-12)
    assert reader.beyond_controls(0, 5, 10, 100)[1] == pytest.approx(1.0)
    assert reader.beyond_controls(5, 5, 0, 100)[1] < reader.beyond_controls(5, 5, 30, 100)[1]
    for bad in ((6, 5, 1, 10), (1, 5, 11, 10), (1, 5, 0, 0)):
        with pytest.raises(ValueError):
            reader.beyond_controls(*bad)


def test_tally_per_image_reads_each_readers_vote(root, sheet, tmp_path):
    rows = read(sheet)
    strata = tmp_path / "strata.csv"
    write(strata, ["split", "index", "stratum"],
          [{"split": r["split"], "index": r["index"], "stratum": "asked" if i < 2 else "control"}
           for i, r in enumerate(rows)])
    votes = ["K/K/K/K/K", "K/K/K/L/K"] + ["K/K/L/L/L"] * 3 + ["L/L/L/L/L"] * 4 + ["L/L/U/L/L"]  # controls: 6 of 40
    for r, vote in zip(rows, votes):
        majority = "kept" if vote.count("K") > 2 else "listed"
        r.update(decision=majority, reason="" if majority == "kept" else "ambiguous",
                 note=f"5 blind readers {vote}: (1) ...")
    write(sheet, list(rows[0]), rows)
    result = CliRunner().invoke(main, ["review", "reader", "tally", str(sheet), "--strata", str(strata),
                                       "--per-image", "asked:control"])
    assert result.exit_code == 0, result.output
    five, four = (reader.beyond_controls(k, 5, 6, 40) for k in (5, 4))
    assert result.stdout.splitlines()[2:] == [
        f"asked {rows[0]['split']} {rows[0]['index']}: K/K/K/K/K, kept by 5 of 5; against control's 6 of 40 votes "
        f"kept (rate at most {five[0]:.0%}): p = {five[1]:.2g}, under 0.01/2",
        f"asked {rows[1]['split']} {rows[1]['index']}: K/K/K/L/K, kept by 4 of 5; against control's 6 of 40 votes "
        f"kept (rate at most {four[0]:.0%}): p = {four[1]:.2g}, not under 0.01/2"]
    assert five[1] < 0.005 < four[1]
    bad = CliRunner().invoke(main, ["review", "reader", "tally", str(sheet), "--strata", str(strata),
                                    "--per-image", "asked:controls"])
    assert bad.exit_code == 2 and "--per-image asked:controls: no stratum 'controls'" in bad.stderr
    assert bad.stdout == ""


@pytest.fixture
def panel_root(tmp_path, labels):
    """Train 1-12 listed and 20-30 kept; a blind record that agrees once on 1-8 and 20-29 (and on the rest not so)."""
    from conftest import LIST_HEADER, RECORD_HEADER

    root = tmp_path / "panel-lists"
    (root / "reviewed").mkdir(parents=True)
    digit = labels["train"]
    note = {i: "a faint bridge closes the bowl" if i == 2 else f"a plain form {i}" for i in range(1, 13)}
    (root / "train.csv").write_text(LIST_HEADER + "".join(f"{i},{digit[i]},IDK,ambiguous,{note[i]}\n" for i in range(1, 13)))
    (root / "test.csv").write_text(LIST_HEADER)
    (root / "reviewed" / "test.csv").write_text(RECORD_HEADER)
    (root / "reviewed" / "train.csv").write_text(
        RECORD_HEADER + "".join(f"{i},{digit[i]},listed,seed-v1.0.0,{note[i]}\n" for i in range(1, 13))
        + "".join(f"{i},{digit[i]},kept,seed-v1.0.0,a plain digit\n" for i in range(20, 31)))
    checks = [("v1.1.0", i, "listed", "listed", "listed") for i in range(1, 9)]
    checks += [("v1.1.0", 9, "listed", "kept", "listed"), ("v1.1.0", 10, "listed", "listed", "listed"),
               ("v1.2.0", 10, "listed", "listed", "listed"), ("v1.1.0", 11, "listed", "listed", "listed")]
    checks += [("v1.1.0", i, "kept", "kept", "kept") for i in range(20, 30)] + [("v1.1.0", 30, "kept", "listed", "kept")]
    write(root / "reviewed" / "blind_recheck.csv", list(reader.review.BLIND_COLUMNS), [
        {"round": r, "split": "train", "index": i, "original": digit[i], "first": first, "blind": blind,
         "blind_reason": "ambiguous" if blind == "listed" else "", "blind_note": "a reading", "final": final}
        for r, i, first, blind, final in sorted(checks, key=lambda c: c[:2])])
    return root


def draw(root, family, out, *options):
    return run(root, "reader", "draw", str(family), "--round", "1.3.0", "--out-dir", str(out), *options)


def test_draw_puts_the_family_beside_controls_that_the_record_and_one_blind_reading_agree_on(panel_root, tmp_path, labels):
    family = tmp_path / "family.csv"
    write(family, ["split", "index", "stratum"], [{"split": "train", "index": "11", "stratum": "6h"},
                                                  {"split": "train", "index": "12", "stratum": ""}])
    every_digit = ("--digits", "0,1,2,3,4,5,6,7,8,9")
    result = draw(panel_root, family, tmp_path / "a", "--listed-controls", "3", "--kept-controls", "2",
                  "--exclude-notes", "BRIDGE", "--seed", "1", *every_digit)
    assert result.exit_code == 0, result.output
    sheet, strata = tmp_path / "a" / "blind-v1.3.0.csv", tmp_path / "a" / "strata.csv"
    assert result.stdout.split() == [str(sheet), str(strata)]
    # Not 2 (its note names the rule), 9 (the blind reader disagreed), 10 (read twice), 11 (the family).
    assert "control-listed: 3 images (drawn from 7)" in result.stderr
    assert "control-kept: 2 images (drawn from 10)" in result.stderr
    stratum = {int(r["index"]): r["stratum"] for r in read(strata)}
    listed = sorted(i for i, s in stratum.items() if s == "control-listed")
    kept = sorted(i for i, s in stratum.items() if s == "control-kept")
    assert stratum[11] == "6h" and stratum[12] == "family" and len(stratum) == 7
    assert len(listed) == 3 and set(listed) <= {1, 3, 4, 5, 6, 7, 8}
    assert len(kept) == 2 and set(kept) <= set(range(20, 30))
    rows = read(sheet)
    assert list(rows[0]) == ["round", "split", "index", "original", "predicted", "decision", "reason", "note"]
    assert [int(r["index"]) for r in rows] == sorted(stratum)  # by index: the order says nothing of the stratum
    assert all(r["round"] == "v1.3.0" and r["original"] == str(labels["train"][int(r["index"])])
               and r["decision"] == r["reason"] == r["note"] == "" for r in rows)
    # Seeded: the same seed draws the same controls, another seed others; the sheet goes to a reader as is.
    again = draw(panel_root, family, tmp_path / "b", "--listed-controls", "3", "--kept-controls", "2",
                 "--exclude-notes", "BRIDGE", "--seed", "1", *every_digit)
    assert again.exit_code == 0 and (tmp_path / "b" / "strata.csv").read_bytes() == strata.read_bytes()
    other = draw(panel_root, family, tmp_path / "c", "--listed-controls", "3", "--kept-controls", "2",
                 "--exclude-notes", "BRIDGE", "--seed", "2", *every_digit)
    assert other.exit_code == 0 and (tmp_path / "c" / "strata.csv").read_bytes() != strata.read_bytes()
    assert make(panel_root, sheet, tmp_path / "r1", "--seed", "1").exit_code == 0
    # A second chunk of the round, drawn before the first is recorded, leaves the first's controls out.
    chunk = draw(panel_root, family, tmp_path / "e", "--listed-controls", "4", "--kept-controls", "8",
                 "--exclude-notes", "BRIDGE", "--leave-out", str(strata), *every_digit)
    assert chunk.exit_code == 0, chunk.output
    assert "control-listed: 4 images (drawn from 4)" in chunk.stderr
    assert "control-kept: 8 images (drawn from 8)" in chunk.stderr
    second = {int(r["index"]) for r in read(tmp_path / "e" / "strata.csv") if r["stratum"].startswith("control")}
    assert not second & (set(listed) | set(kept))
    # By default the controls share the family's labels.
    plain = draw(panel_root, family, tmp_path / "d", "--listed-controls", "0", "--kept-controls", "1")
    assert plain.exit_code == 0, plain.output
    digits = {labels["train"][11], labels["train"][12]}
    assert all(int(r["original"]) in digits for r in read(tmp_path / "d" / "blind-v1.3.0.csv"))


def test_draw_says_what_is_wrong_and_writes_nothing(panel_root, tmp_path):
    family = tmp_path / "family.csv"
    write(family, ["split", "index"], [{"split": "train", "index": "11"}])
    out = tmp_path / "out"
    cases = [
        (["--listed-controls", "9", "--digits", "0,1,2,3,4,5,6,7,8,9"], "9 listed controls asked for, but only 8 listed"),
        (["--digits", "8,x"], "--digits '8,x': give digits 0-9"),
        (["--exclude-notes", "(bridge"], "--exclude-notes '(bridge': not a regular expression"),
    ]
    for options, message in cases:
        result = draw(panel_root, family, out, *options)
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output, result.output
        assert not out.exists()
    write(family, ["split", "index"], [{"split": "train", "index": "11"}, {"split": "valid", "index": "3"},
                                       {"split": "train", "index": "11"}])
    result = draw(panel_root, family, out)
    assert result.exit_code == 2 and f"{family}:3: split 'valid' is not train or test" in result.stderr
    assert f"{family}:4: train 11 is named twice (also line 2)" in result.stderr and not out.exists()
    write(family, ["split", "index"], [{"split": "train", "index": "40"}])
    result = draw(panel_root, family, out)
    assert result.exit_code == 2 and "not in the review record" in result.stderr and "train 40" in result.stderr
    write(family, ["split", "index"], [{"split": "train", "index": "11"}])
    first = draw(panel_root, family, out, "--listed-controls", "1", "--kept-controls", "1", "--digits", "0,1,2,3,4,5,6,7,8,9")
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    repeat = draw(panel_root, family, out, "--listed-controls", "1", "--kept-controls", "1", "--seed", "5",
                  "--digits", "0,1,2,3,4,5,6,7,8,9")
    assert repeat.exit_code == 2 and "already exist" in repeat.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def fill_panel(root, sheet, tmp_path, listed_by: dict[int, int]):
    """Three readers fill ``sheet``: image i of the sheet is listed by the first ``listed_by[i]`` readers."""
    images = [(r["split"], r["index"]) for r in read(sheet)]
    pairs, keys = [], []
    for n in range(3):
        out = tmp_path / f"p{n}"
        assert make(root, sheet, out, "--seed", str(n)).exit_code == 0
        item = {(r["split"], r["index"]): r["item"] for r in read(tmp_path / f"p{n}.key.csv")}
        rows = [{"item": item[image], "decision": "listed" if n < listed_by.get(i, 0) else "kept",
                 "reason": "deformed" if n < listed_by.get(i, 0) else "", "note": f"reader {n} on {i}"}
                for i, image in enumerate(images)]
        write(out / "decisions.csv", ["item", "decision", "reason", "note"], rows)
        pairs.append(str(out / "decisions.csv"))
        keys += ["--key", str(tmp_path / f"p{n}.key.csv")]
    result = CliRunner().invoke(main, ["review", "reader", "fill", str(sheet), *pairs, *keys])
    assert result.exit_code == 0, result.output
    return images


def test_decide_takes_the_panel_where_the_rule_was_met_and_lets_the_rest_stand(root, sheet, tmp_path):
    images = fill_panel(root, sheet, tmp_path, {0: 3, 1: 2, 5: 2})  # all first kept; the panel lists 0, 1 and 5
    strata, seen = tmp_path / "strata.csv", tmp_path / "seen.csv"
    write(strata, ["split", "index", "stratum"],
          [{"split": s, "index": i, "stratum": "family" if n < 5 else "control-kept"} for n, (s, i) in enumerate(images)])
    decide = ["reader", "decide", str(sheet), "--strata", str(strata), "--change", "family", "--seen", str(seen),
              "--why", "the rule is retired"]
    write(seen, ["split", "index", "seen"], [{"split": images[0][0], "index": images[0][1], "seen": "a broken 4"}])
    early = run(root, *decide)
    assert early.exit_code == 2 and "run `mnist-idk review blind record SHEET` first" in early.stderr
    assert run(root, "blind", "record", str(sheet)).exit_code == 0
    disagreements = sheet.parent / "disagreements-v1.1.0.csv"
    before = disagreements.read_bytes()
    unseen = run(root, *decide)
    assert unseen.exit_code == 2 and f"{images[1][0]} {images[1][1]} changes to listed: say what you saw" in unseen.stderr
    assert disagreements.read_bytes() == before  # nothing written
    wrong = run(root, *decide[:5], "--change", "famliy")
    assert wrong.exit_code == 2 and "--change famliy: no such stratum" in wrong.stderr
    write(seen, ["split", "index", "seen"], [{"split": s, "index": i, "seen": f"{'Seen large: ' * n}seen {n}"}
                                             for n, (s, i) in enumerate(images[:2])])  # the prefix is not doubled
    result = run(root, *decide)
    assert result.exit_code == 0, result.output
    assert "2 take the panel's majority, 1 stand" in result.stdout
    rows = {(r["split"], r["index"]): r for r in read(disagreements)}
    assert rows[images[0]]["decision"] == "listed" and rows[images[0]]["reason"] == "deformed"
    assert rows[images[0]]["note"] == "the rule is retired; round v1.1.0's panel read it L/L/L; seen large: seen 0"
    assert rows[images[1]]["note"] == "the rule is retired; round v1.1.0's panel read it L/L/K; seen large: seen 1"
    assert rows[images[5]]["decision"] == "kept" and rows[images[5]]["note"] == \
        "a plain digit; stands after blind round v1.1.0 (a panel read it L/L/K, a control)"
    again = run(root, *decide)
    assert again.exit_code == 2 and "already holds decisions" in again.stderr
    recorded = run(root, "blind", "record", str(sheet), "--redecided", str(disagreements))
    assert recorded.exit_code == 0, recorded.output
    assert "2 changed (2 now listed, 0 now kept), 1 stand" in recorded.stdout
    listed = {r["index"]: r for r in read(root / "train.csv")}
    assert listed[images[0][1]]["reason"] == "deformed" and images[5][1] not in listed


def test_read_seen_starts_every_look_with_seen_large_once(tmp_path):
    seen = tmp_path / "seen.csv"
    looks = ["a broken 4", "Seen large: a 9", "seen large beside train 8926: a 0", "seen largely a 7"]
    write(seen, ["split", "index", "seen"], [{"split": "train", "index": n, "seen": look} for n, look in enumerate(looks)])
    assert list(reader.read_seen(seen).values()) == [
        "seen large: a broken 4", "seen large: a 9", "seen large beside train 8926: a 0", "seen large: seen largely a 7"]


def test_decide_per_image_keeps_a_listing_only_where_enough_readers_keep_it_beyond_the_controls(panel_root, tmp_path):
    family = tmp_path / "family.csv"
    write(family, ["split", "index", "stratum"], [{"split": "train", "index": i, "stratum": "contested"} for i in (11, 12)])
    drawn = draw(panel_root, family, tmp_path / "p", "--listed-controls", "7", "--kept-controls", "2",
                 "--exclude-notes", "BRIDGE", "--digits", "0,1,2,3,4,5,6,7,8,9")
    assert drawn.exit_code == 0, drawn.output
    sheet, strata = tmp_path / "p" / "blind-v1.3.0.csv", tmp_path / "p" / "strata.csv"
    stratum = {r["index"]: r["stratum"] for r in read(strata)}
    order = [r["index"] for r in read(sheet)]
    # Train 11 kept by all three readers, 12 by two; every listed control listed by all three (0 of 21 votes kept).
    listed_by = {n: {"11": 0, "12": 1}.get(i, 3 if stratum[i] == "control-listed" else 0) for n, i in enumerate(order)}
    fill_panel(panel_root, sheet, tmp_path, listed_by)
    assert run(panel_root, "blind", "record", str(sheet)).exit_code == 0
    seen = tmp_path / "seen.csv"
    write(seen, ["split", "index", "seen"], [{"split": "train", "index": "11", "seen": "a plain 4"}])
    decide = ["reader", "decide", str(sheet), "--strata", str(strata), "--seen", str(seen), "--why", "kept alone"]
    alone = run(panel_root, *decide, "--per-image", "contested:control-listed")
    assert alone.exit_code == 2 and "--per-image and --at-least go together" in alone.stderr
    result = run(panel_root, *decide, "--per-image", "contested:control-listed", "--at-least", "3")
    assert result.exit_code == 0, result.output
    # 3 of 3 against a keep rate of at most 15.5% (0 of 21): p = 0.0037 < 0.01/2; 12 has only 2 of 3.
    _, p = reader.beyond_controls(3, 3, 0, 21)
    assert 0.003 < p < 0.005 and f"train 11: K/K/K, p = {p:.2g}: kept by the rule" in result.stderr
    assert "train 12: L/K/K" in result.stderr and "not kept" in result.stderr
    assert "1 take the panel's majority, 1 stand" in result.stdout
    rows = {r["index"]: r for r in read(tmp_path / "p" / "disagreements-v1.3.0.csv")}
    assert rows["11"]["decision"] == "kept" and rows["11"]["note"].startswith("kept alone; round v1.3.0's panel read it K/K/K")
    assert rows["12"]["decision"] == "listed" and "stands after blind round v1.3.0 (a panel read it L/K/K)" in rows["12"]["note"]
    # Both conditions count: with 4 readers asked, 3 of 3 is not enough, however small p.
    (kept, votes, rate), rule = reader.alone(sheet, strata, "contested", "control-listed", at_least=4)
    assert (kept, votes) == (0, 21) and rule[("train", 11)] == ("K/K/K", p, False)
    with pytest.raises(MnistIdkError, match="no stratum 'family'"):
        reader.alone(sheet, strata, "family", "control-listed")


def test_contested_finds_the_listings_every_panel_kept_and_those_only_one_reader_kept(panel_root, tmp_path):
    blind = panel_root / "reviewed" / "blind_recheck.csv"
    rows = read(blind)
    def panel(round_, i, votes):
        majority = "kept" if votes.count("K") * 2 > len(votes.replace("/", "")) else "listed"
        return {**next(r for r in rows if r["index"] == str(i)), "round": round_, "blind": majority,
                "blind_reason": "" if majority == "kept" else "ambiguous", "final": "listed",
                "blind_note": f"3 blind readers {votes}: (1) ..."}
    # Train 3: two panels, both keep; 4: one keeps, one lists; 5: one panel only; 9: one reader kept it.
    extra = [panel("v1.2.0", 3, "K/K/L"), panel("v1.3.0", 3, "K/K/K"), panel("v1.2.0", 4, "K/K/K"),
             panel("v1.3.0", 4, "L/L/K"), panel("v1.2.0", 5, "K/K/K")]
    # Kept train 21: one panel listed it (as a kept control, say); 22: one panel kept it.
    extra += [{**panel("v1.2.0", 21, "L/L/K"), "first": "kept", "final": "kept"},
              {**panel("v1.2.0", 22, "K/L/K"), "first": "kept", "final": "kept"}]
    # Listed train 6: one panel listed it by a bare majority (3 of 5); 7: one panel listed it 3 of 3.
    extra += [panel("v1.2.0", 6, "L/K/L/K/L"), panel("v1.2.0", 7, "L/L/L")]
    write(blind, list(rows[0]), sorted(rows + extra, key=lambda r: (r["round"], int(r["index"]))))
    out = tmp_path / "family.csv"
    result = run(panel_root, "reader", "contested", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert read(out) == [{"split": "train", "index": "3", "stratum": "panels-kept"},
                         {"split": "train", "index": "5", "stratum": "one-panel-kept"},  # 4: the panels split
                         {"split": "train", "index": "6", "stratum": "one-panel-weak"},  # 7: listed firmly
                         {"split": "train", "index": "9", "stratum": "one-reader-kept"},
                         {"split": "train", "index": "21", "stratum": "one-panel-listed"},
                         {"split": "train", "index": "30", "stratum": "one-reader-listed"}]  # kept, a lone reader listed it
    assert ("1 panels-kept, 1 one-reader-kept, 1 one-reader-listed, 1 one-panel-kept, 1 one-panel-listed, "
            "1 one-panel-weak") in result.stderr
    status = run(panel_root, "status")
    assert status.exit_code == 0, status.output
    assert ("doubted by the blind readings: 1 panels-kept, 1 one-reader-kept, 1 one-reader-listed, "
            "1 one-panel-kept, 1 one-panel-listed, 1 one-panel-weak") in status.stdout
    # Panels read listings 3-7 and keeps 21-22; the lone readers of 1-12 and 20-30 are not panels.
    assert "read by a panel: 5 of 12 listings, 2 of 11 keeps (" in status.stdout
    assert "panels-kept: train 3 (label" in result.stdout and "v1.2.0 K/K/L, v1.3.0 K/K/K" in result.stdout
    again = run(panel_root, "reader", "contested", "--out", str(out), "--kind", "panels-kept")
    assert again.exit_code == 2 and "already exists" in again.stderr
    only = run(panel_root, "reader", "contested", "--kind", "one-reader-kept")
    assert only.exit_code == 0 and "train 9" in only.stdout and "train 3 " not in only.stdout
    assert "train 30" not in only.stdout and "train 5 " not in only.stdout
    one_panel = run(panel_root, "reader", "contested", "--kind", "one-panel-kept")
    assert one_panel.exit_code == 0 and "one-panel-kept: train 5 (label" in one_panel.stdout, one_panel.output
    assert "v1.2.0 K/K/K" in one_panel.stdout and "train 3 " not in one_panel.stdout
    weak = run(panel_root, "reader", "contested", "--kind", "one-panel-weak")
    assert weak.exit_code == 0 and "one-panel-weak: train 6 (label" in weak.stdout, weak.output
    assert "v1.2.0 L/K/L/K/L" in weak.stdout and "train 7 " not in weak.stdout
    # The family goes straight to a panel draw.
    drawn = draw(panel_root, out, tmp_path / "p", "--listed-controls", "2", "--kept-controls", "1",
                 "--digits", "0,1,2,3,4,5,6,7,8,9")
    assert drawn.exit_code == 0, drawn.output
    assert {r["index"]: r["stratum"] for r in read(tmp_path / "p" / "strata.csv")}["3"] == "panels-kept"


def test_contested_kind_choices_are_the_kinds_reader_finds():
    # The CLI spells the kinds out so that --help need not import reader (numpy, PIL): keep them in step.
    from mnist_idk.reader_cli import review_reader_contested

    kind = next(p for p in review_reader_contested.params if p.name == "kind")
    assert tuple(kind.type.choices) == reader.CONTESTED


def test_family_not_source_choices_are_the_kinds_the_record_accepts():
    # The CLI spells the kinds out so that --help need not import review: keep them in step with its grammar.
    from mnist_idk.reader_cli import review_reader_family

    choices = next(p for p in review_reader_family.params if p.name == "not_sources").type.choices
    tokens = ["seed-v1.0.0", "published:northcutt2021", "suggest:cnn-s0@1", "audit-s3:cnn-s0@1", "forms-v2:2-loop-no-tail"]
    assert all(reader.review._SOURCE.match(t) for t in tokens)
    assert sorted(reader.review.source_kind(t) for t in tokens) == sorted(choices)


def fill_with_one_panel_split(sheet, split_note: str, kept_note: str) -> list[dict]:
    """Fill ``sheet`` as a panel would: its first row unsure with no majority, every other row kept."""
    rows = read(sheet)
    for n, r in enumerate(rows):
        r.update(decision="unsure" if n == 0 else "kept", reason="", note=split_note if n == 0 else kept_note)
    write(sheet, list(rows[0]), rows)
    return rows


def test_blind_record_says_what_to_do_with_a_panel_that_has_no_majority(root, sheet):
    rows = fill_with_one_panel_split(sheet, "3 blind readers K/L/U: (1) kept: a 4", "3 blind readers K/K/K: (1) kept")
    result = run(root, "blind", "record", str(sheet))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (f"{sheet}:2: {rows[0]['split']} {rows[0]['index']}: the panel has no majority (3 blind readers K/L/U): "
            "no reading to record") in result.stderr
    assert not (sheet.parent / "disagreements-v1.1.0.csv").exists()


def test_blind_record_can_set_a_panel_with_no_majority_aside_and_record_the_rest(root, sheet):
    rows = fill_with_one_panel_split(sheet, "5 blind readers K/K/U/U/U: (1) kept: a 7",
                                     "5 blind readers K/K/K/K/K: (1) kept")
    assert not (root / "reviewed" / "blind_recheck.csv").exists()  # the first round to be recorded
    result = run(root, "blind", "record", str(sheet), "--set-aside-no-majority")
    assert result.exit_code == 0, result.output
    aside = f"set aside: {rows[0]['split']} {rows[0]['index']} (label {rows[0]['original']}), 5 blind readers K/K/U/U/U"
    assert aside in result.stderr
    assert f"recorded {len(rows) - 1} rows of round v1.1.0" in result.stdout
    recorded = read(root / "reviewed" / "blind_recheck.csv")
    this_round = {(r["split"], r["index"]) for r in recorded if r["round"] == "v1.1.0"}
    assert this_round == {(r["split"], r["index"]) for r in rows[1:]}
    # Not recorded, so not read by a panel: a new panel may take it; the others are.
    ws = workspace(root)
    read_now = reader.panel_read(reader.review.load_record(ws, "working"), reader.review.load_blind(ws))
    assert (rows[0]["split"], int(rows[0]["index"])) not in read_now
    assert {(r["split"], int(r["index"])) for r in rows[1:]} <= read_now


def test_decide_per_image_toward_listed_lists_a_keep_only_beyond_the_readers_listing_rate(root, sheet, tmp_path):
    rows = read(sheet)  # train 10-29 are all kept in the record
    strata = tmp_path / "strata.csv"
    write(strata, ["split", "index", "stratum"],
          [{"split": r["split"], "index": r["index"], "stratum": "doubted" if n < 2 else "control-kept"}
           for n, r in enumerate(rows)])
    votes = ["L/L/L/L/L", "L/L/L/L/K"] + ["K/K/K/K/K"] * (len(rows) - 2)
    for r, vote in zip(rows, votes):
        listed = vote.count("L") > 2
        r.update(decision="listed" if listed else "kept", reason="ambiguous" if listed else "",
                 note=f"5 blind readers {vote}: (1) ...")
    write(sheet, list(rows[0]), rows)
    tally = CliRunner().invoke(main, ["review", "reader", "tally", str(sheet), "--strata", str(strata),
                                      "--per-image", "doubted:control-kept", "--toward", "listed"])
    assert tally.exit_code == 0, tally.output
    (listing, total, rate), rule = reader.alone(sheet, strata, "doubted", "control-kept", toward="listed")
    assert (listing, total) == (0, 40) and rule[("train", int(rows[0]["index"]))][1] == pytest.approx(rate ** 5)
    assert f"listed by 5 of 5; against control-kept's 0 of 40 votes listed" in tally.stdout
    assert run(root, "blind", "record", str(sheet)).exit_code == 0
    seen = tmp_path / "seen.csv"
    write(seen, ["split", "index", "seen"], [{"split": "train", "index": rows[0]["index"], "seen": "no digit"}])
    result = run(root, "reader", "decide", str(sheet), "--strata", str(strata), "--seen", str(seen),
                 "--per-image", "doubted:control-kept", "--at-least", "5", "--toward", "listed")
    assert result.exit_code == 0, result.output
    assert f"train {rows[0]['index']}: L/L/L/L/L" in result.stderr and "listed by the rule" in result.stderr
    assert f"train {rows[1]['index']}: L/L/L/L/K" in result.stderr and "not listed" in result.stderr
    decided = {r["index"]: r for r in read(sheet.parent / "disagreements-v1.1.0.csv")}
    assert decided[rows[0]["index"]]["decision"] == "listed" and decided[rows[0]["index"]]["reason"] == "ambiguous"
    assert decided[rows[1]["index"]]["decision"] == "kept"  # 4 of 5 is short of --at-least 5: it stands


def test_headroom_is_the_last_control_count_at_which_a_unanimous_image_passes():
    # Round v1.41.1: 46 asked, 5 readers, 20 kept controls; its panel listed 11 of 100 control votes.
    room = reader.headroom(46, 5, 20)
    assert room == 10
    assert reader.beyond_controls(5, 5, room, 100)[1] < 0.01 / 46 <= reader.beyond_controls(5, 5, room + 1, 100)[1]
    assert reader.headroom(31, 5, 20) == 12  # fewer asked, a looser bound
    assert reader.headroom(10 ** 6, 2, 1) is None  # two readers cannot reach a bound that strict
    with pytest.raises(ValueError):
        reader.headroom(0, 5, 20)


def test_draw_prints_the_per_image_rules_headroom_for_the_family_it_drew(panel_root, tmp_path):
    family = tmp_path / "family.csv"
    write(family, ["split", "index", "stratum"], [{"split": "train", "index": i, "stratum": "f"} for i in (11, 12)])
    drawn = draw(panel_root, family, tmp_path / "p", "--listed-controls", "3", "--kept-controls", "2",
                 "--digits", "0,1,2,3,4,5,6,7,8,9")
    assert drawn.exit_code == 0, drawn.output
    # Five readers (the default): a unanimous keep bears 1 of 15 keeping votes on listed controls, a
    # unanimous listing none of 10 listing votes on kept controls.
    assert (reader.headroom(2, 5, 3), reader.headroom(2, 5, 2)) == (1, 0)
    assert ("2 asked: 5 of 5 readers pass only while they vote kept on at most 1 of the 15 votes on listed controls"
            in drawn.stderr)
    assert ("2 asked: 5 of 5 readers pass only while they vote listed on at most 0 of the 10 votes on kept controls"
            in drawn.stderr)
    three = draw(panel_root, family, tmp_path / "q", "--listed-controls", "3", "--kept-controls", "2",
                 "--digits", "0,1,2,3,4,5,6,7,8,9", "--readers", "3")
    assert three.exit_code == 0, three.output
    assert "not even 3 of 3 readers can pass, whatever the kept controls' votes" in three.stderr


def test_family_picks_a_lines_unread_keeps_in_the_order_the_networks_doubt_them(panel_root, tmp_path, labels):
    digit = labels["train"]
    record = panel_root / "reviewed" / "train.csv"
    rows = read(record)
    notes = {20: "a closed head on a stem", 21: "a closed triangular head", 22: "a closed head, open 4 below",
             23: "a Closed head", 24: "a closed head, thick"}
    for r in rows:
        r["note"] = notes.get(int(r["index"]), r["note"])
    write(record, list(rows[0]), rows)
    blind = panel_root / "reviewed" / "blind_recheck.csv"
    checks = read(blind)
    checks.append({"round": "v1.3.0", "split": "train", "index": "21", "original": str(digit[21]), "first": "kept",
                   "blind": "listed", "blind_reason": "ambiguous", "final": "kept",
                   "blind_note": "5 blind readers L/L/L/L/K: (1) listed ambiguous: 4 or 9"})  # a panel read 21
    write(blind, list(checks[0]), checks)
    ranking = tmp_path / "ranking.csv"  # p(9): 23 predicted 9 at 0.6, 24 and 20 with 9 as the alternative, 21 not at all
    columns = ["rank", "split", "index", "original", "predicted", "p_predicted", "alternative", "p_alternative",
               "self_confidence"]
    p9 = {23: ("9", "0.6", "4", "0.3"), 24: ("4", "0.5", "9", "0.45"), 20: ("4", "0.7", "9", "0.2"),
          21: ("4", "0.9", "7", "0.05"), 22: ("4", "0.1", "9", "0.8")}
    write(ranking, columns, [{"rank": n, "split": "train", "index": i, "original": digit[i], "predicted": p[0],
                              "p_predicted": p[1], "alternative": p[2], "p_alternative": p[3], "self_confidence": "0.5"}
                             for n, (i, p) in enumerate(p9.items(), 1)])
    label = ",".join(sorted({str(digit[i]) for i in range(20, 31)}))
    base = ["reader", "family", "--label", label, "--note", "closed", "--not-note", "open 4"]
    out = tmp_path / "family.csv"
    result = run(panel_root, *base, "--ranking", str(ranking), "--toward", "9", "--stratum", "closed4", "--out", str(out))
    assert result.exit_code == 0, result.output
    # 22 says "open 4", 21 has had a panel: the rest by p(9), highest first.
    assert [(r["index"], r["stratum"]) for r in read(out)] == [("23", "closed4"), ("24", "closed4"), ("20", "closed4")]
    assert "train 23 (label" in result.stdout and "p(9) 0.600" in result.stdout
    assert "3 of 3 kept images whose note matches, no panel has read; p(9) 0.200 to 0.600" in result.stderr
    again = run(panel_root, *base, "--out", str(out))
    assert again.exit_code == 2 and "already exists" in again.stderr
    top = run(panel_root, *base, "--ranking", str(ranking), "--toward", "9", "--top", "2", "--include-read",
              "--out", str(tmp_path / "top.csv"))
    assert top.exit_code == 0, top.output
    assert [r["index"] for r in read(tmp_path / "top.csv")] == ["23", "24"]
    assert "2 of 4 kept images" in top.stderr  # 21 counts once panels' readings are let in
    plain = run(panel_root, *base, "--out", str(tmp_path / "plain.csv"))
    assert [r["index"] for r in read(tmp_path / "plain.csv")] == ["20", "23", "24"]  # no ranking: record order
    train = run(panel_root, *base, "--split", "train", "--top", "1", "--out", str(tmp_path / "train.csv"))
    assert [r["index"] for r in read(tmp_path / "train.csv")] == ["20"] and "1 of 3 kept images" in train.stderr
    for bad, message in ((["--toward", "9"], "--toward orders by a ranking"), (["--note", "("], "not a regular expression"),
                         (["--label", "4x"], "give digits 0-9")):
        refused = run(panel_root, *base, *bad, "--out", str(tmp_path / "bad.csv"))
        assert refused.exit_code == 2 and message in refused.stderr and "Traceback" not in refused.output
    none = run(panel_root, "reader", "family", "--label", label, "--note", "nothing says this", "--out", str(tmp_path / "n.csv"))
    assert none.exit_code == 2 and "no image matches" in none.stderr and not (tmp_path / "n.csv").exists()
    broken = tmp_path / "broken.csv"
    write(broken, columns, [{**{c: "" for c in columns}, "split": "train", "index": "23", "predicted": "9",
                             "p_predicted": "high", "alternative": "4"}])
    bad = run(panel_root, *base, "--ranking", str(broken), "--toward", "9", "--out", str(tmp_path / "b.csv"))
    assert bad.exit_code == 2 and f"{broken}:2: p_predicted 'high' is not a number" in bad.stderr


def test_family_by_a_signal_orders_by_that_column_with_ties_in_the_rankings_order(panel_root, tmp_path, labels):
    # A line the networks do not order: the unread keeps whose neighbours most often carry another label.
    digit = labels["train"]
    ranking = tmp_path / "ranking.csv"
    columns = ["rank", "split", "index", "original", "self_confidence", "knn_disagreement"]
    # Ranked by doubt 26, 24, 22, 20; by neighbours 22 and 26 tie at 0.9 (26 ranks first), 20 at 0.5, 24 at 0.1.
    knn = {26: ("0.4", "0.9"), 24: ("0.3", "0.1"), 22: ("0.2", "0.9"), 20: ("0.1", "0.5")}
    write(ranking, columns, [{"rank": n, "split": "train", "index": i, "original": digit[i], "self_confidence": c,
                              "knn_disagreement": k} for n, (i, (c, k)) in enumerate(knn.items(), 1)])
    label = ",".join(str(d) for d in range(10))
    base = ["reader", "family", "--label", label, "--note", ".", "--split", "train", "--ranking", str(ranking)]
    out = tmp_path / "family.csv"
    result = run(panel_root, *base, "--by", "knn_disagreement", "--top", "5", "--stratum", "named-kept", "--out", str(out))
    assert result.exit_code == 0, result.output
    # Every unread train keep outside the ranking (21, 23, 25, ...) comes after the four it scores.
    assert [r["index"] for r in read(out)][:5] == ["26", "22", "20", "24", "21"]
    assert "train 26 (label" in result.stdout and "knn_disagreement 0.900" in result.stdout
    doubt = run(panel_root, *base, "--top", "4", "--out", str(tmp_path / "doubt.csv"))
    assert [r["index"] for r in read(tmp_path / "doubt.csv")] == ["26", "24", "22", "20"]
    for bad, message in ((["--by", "knn_disagreement", "--toward", "9"], "--by and --toward are two orders"),
                         (["--by", "novelty"], f"{ranking}:1: header lacks novelty (needs split,index,novelty;")):
        refused = run(panel_root, *base, *bad, "--out", str(tmp_path / "bad.csv"))
        assert refused.exit_code == 2 and message in refused.stderr and "Traceback" not in refused.output
        assert not (tmp_path / "bad.csv").exists()
    unranked = run(panel_root, "reader", "family", "--label", label, "--note", ".", "--by", "knn_disagreement",
                   "--out", str(tmp_path / "bad.csv"))
    assert unranked.exit_code == 2 and "--by orders by a ranking's column: give --ranking too" in unranked.stderr


def test_family_sample_is_a_seeded_random_n_in_index_order_that_leaves_out_a_source_kind(panel_root, tmp_path, labels):
    # Keeps 20-30 are unread by any panel (their one reading is a lone reader's); 20-23 came from a published list.
    digit = labels["train"]
    record = panel_root / "reviewed" / "train.csv"
    rows = read(record)
    for r in rows:
        if int(r["index"]) in (20, 21, 22, 23):
            r["source"] = "published:northcutt"
    write(record, list(rows[0]), rows)
    label = ",".join(str(d) for d in range(10))
    base = ["reader", "family", "--label", label, "--note", ".", "--split", "train"]

    def family(name, *options):
        result = run(panel_root, *base, *options, "--out", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        return result, [int(r["index"]) for r in read(tmp_path / name)]

    result, first = family("a.csv", "--sample", "4", "--seed", "7", "--stratum", "named-kept")
    assert len(first) == 4 and first == sorted(first) and set(first) <= set(range(20, 31))
    assert {r["stratum"] for r in read(tmp_path / "a.csv")} == {"named-kept"}
    assert "4 of 11 kept images whose note matches, no panel has read, at random (seed 7)" in result.stderr
    _, again = family("b.csv", "--sample", "4", "--seed", "7")
    assert again == first  # the same record and seed, the same images
    # The rounds' fixed recipe: random.Random(seed).sample over the matching indices in order.
    import random
    assert first == sorted(random.Random(7).sample(list(range(20, 31)), 4))
    others = {tuple(family(f"s{seed}.csv", "--sample", "4", "--seed", str(seed))[1]) for seed in range(8)}
    assert len(others) > 1  # the seed matters
    result, outside = family("c.csv", "--sample", "4", "--seed", "7", "--not-source", "published")
    assert set(outside) <= set(range(24, 31)) and len(outside) == 4
    assert "4 of 7 kept images whose note matches, no panel has read, no published source, at random" in result.stderr
    _, whole = family("d.csv", "--sample", "50", "--not-source", "published")
    assert whole == list(range(24, 31))  # asked for more than match: all of them
    neither = run(panel_root, *base, "--not-source", "published", "--not-source", "seed", "--out", str(tmp_path / "e.csv"))
    assert neither.exit_code == 2 and "no image matches" in neither.stderr  # every keep came from one or the other
    for bad, message in ((["--sample", "3", "--top", "2"], "--sample draws at random: give no --ranking or --top"),
                         (["--sample", "0"], "--sample"), (["--not-source", "rumour"], "--not-source")):
        refused = run(panel_root, *base, *bad, "--out", str(tmp_path / "bad.csv"))
        assert refused.exit_code == 2 and message in refused.stderr and "Traceback" not in refused.output
        assert not (tmp_path / "bad.csv").exists()


def test_draw_unread_for_leaves_out_the_controls_read_within_the_newest_releases(panel_root, tmp_path):
    # Keeps 20-29 agree with their one reading; move 20-24's readings to round v1.2.0, and release v1.1.0 and v1.2.0.
    blind = panel_root / "reviewed" / "blind_recheck.csv"
    checks = read(blind)
    for c in checks:
        if c["index"] in ("20", "21", "22", "23", "24"):
            c["round"] = "v1.2.0"
    write(blind, list(checks[0]), sorted(checks, key=lambda c: (c["round"], int(c["index"]))))
    for version in ("v1.1.0", "v1.2.0"):
        (panel_root / "releases" / version).mkdir(parents=True)
    family = tmp_path / "family.csv"
    write(family, ["split", "index", "stratum"], [{"split": "train", "index": "11", "stratum": "f"}])
    every_digit = ("--listed-controls", "0", "--digits", "0,1,2,3,4,5,6,7,8,9")

    def kept_pool(name, *options):
        result = draw(panel_root, family, tmp_path / name, *every_digit, *options)
        assert result.exit_code == 0, result.output
        return result, {r["index"] for r in read(tmp_path / name / "strata.csv") if r["stratum"] == "control-kept"}

    plain, _ = kept_pool("a", "--kept-controls", "10")
    assert "control-kept: 10 images (drawn from 10)" in plain.stderr
    newest, kept = kept_pool("b", "--kept-controls", "5", "--unread-for", "1")
    assert "--unread-for 1: 6 image(s) read since v1.2.0 are not controls" in newest.stderr  # and listed 10
    assert "control-kept: 5 images (drawn from 5)" in newest.stderr and kept == {"25", "26", "27", "28", "29"}
    both = draw(panel_root, family, tmp_path / "c", *every_digit, "--kept-controls", "1", "--unread-for", "5")
    assert both.exit_code == 2 and "1 kept controls asked for, but only 0 kept images" in both.stderr  # every reading


def test_draw_takes_no_control_from_a_panel_that_split_over_it(panel_root, tmp_path):
    # Train 20 and 21 are kept and read once; make those readings panels, 21's split 4 to 1.
    blind = panel_root / "reviewed" / "blind_recheck.csv"
    checks = read(blind)
    for c in checks:
        if c["index"] in ("20", "21"):
            c["blind_note"] = "5 blind readers K/K/K/K/K: (1) kept" if c["index"] == "20" else "5 blind readers K/K/L/K/K: (1) kept"
    write(blind, list(checks[0]), checks)
    family = tmp_path / "family.csv"
    write(family, ["split", "index", "stratum"], [{"split": "train", "index": "11", "stratum": "f"}])
    drawn = draw(panel_root, family, tmp_path / "a", "--listed-controls", "1", "--kept-controls", "9",
                 "--digits", "0,1,2,3,4,5,6,7,8,9")
    assert drawn.exit_code == 0, drawn.output
    assert "control-kept: 9 images (drawn from 9)" in drawn.stderr  # 20-29 less 21
    kept = {r["index"] for r in read(tmp_path / "a" / "strata.csv") if r["stratum"] == "control-kept"}
    assert "20" in kept and "21" not in kept


def test_precedents_are_the_images_a_note_names_as_its_form():
    assert reader.precedents("a 5 whose bowl is collapsed, as train 32445; still unsure") == {("train", 32445)}
    assert reader.precedents("a 3 whose foot loops flat: train 30011's form, like test 62") == {("train", 30011), ("test", 62)}
    assert reader.precedents("beside train 51442 (listed) and 27016; a basket") == set()  # compared, not followed
    assert reader.precedents("has train 5 in it") == set()
    assert reader.precedents("no arm hangs down (not train 14961's form), not as test 9") == set()


def test_family_with_precedent_overturned_finds_the_keeps_whose_model_image_is_now_listed(panel_root, tmp_path, labels):
    digit = labels["train"]
    record = panel_root / "reviewed" / "train.csv"
    rows = read(record)
    notes = {25: "a plain digit, as train 3", 26: "train 27's form", 27: "a loop like train 4 and train 26",
             28: "beside train 5", 29: "as test 3"}  # 1-12 are listed, 20-30 kept; test has no images
    for r in rows:
        r["note"] = notes.get(int(r["index"]), r["note"])
    write(record, list(rows[0]), rows)
    label = ",".join(sorted({str(digit[i]) for i in range(20, 31)}))
    out = tmp_path / "family.csv"
    result = run(panel_root, "reader", "family", "--label", label, "--note", ".", "--precedent-overturned",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    assert [r["index"] for r in read(out)] == ["25", "27"]  # 26 follows a keep, 28 only compares, 29's is unknown
    assert "2 of 2 kept images whose note matches, no panel has read, whose precedent the record now decides " \
           "the other way" in result.stderr
    none = run(panel_root, "reader", "family", "--label", label, "--note", ".", "--precedent-overturned", "--split", "test",
               "--out", str(tmp_path / "t.csv"))
    assert none.exit_code == 2 and "no image matches" in none.stderr  # the panel's record has no test images
    plain = run(panel_root, "reader", "family", "--label", label, "--note", "as t|form", "--out", str(tmp_path / "p.csv"))
    assert [r["index"] for r in read(tmp_path / "p.csv")] == ["25", "26", "29"]  # without the flag: the note alone


def test_draw_refuses_a_family_image_that_another_unrecorded_draw_holds_as_a_control(panel_root, tmp_path):
    family = tmp_path / "family.csv"
    write(family, ["split", "index"], [{"split": "train", "index": "11"}])
    first = draw(panel_root, family, tmp_path / "a", "--listed-controls", "2", "--kept-controls", "2",
                 "--digits", "0,1,2,3,4,5,6,7,8,9")
    assert first.exit_code == 0, first.output
    strata = tmp_path / "a" / "strata.csv"
    control = next(r for r in read(strata) if r["stratum"] == "control-kept")
    later = tmp_path / "later.csv"
    write(later, ["split", "index"], [{"split": "train", "index": "12"}, {"split": control["split"], "index": control["index"]}])
    refused = draw(panel_root, later, tmp_path / "b", "--listed-controls", "1", "--kept-controls", "1", "--leave-out", str(strata),
                   "--digits", "0,1,2,3,4,5,6,7,8,9")
    assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output
    assert (f"1 image(s) of the family are controls of another draw whose readings are not recorded yet: "
            f"train {control['index']} ({strata})") in refused.stderr
    assert not (tmp_path / "b").exists()
    # Once the first round is recorded, its control has a panel's reading and may be asked again.
    sheet = tmp_path / "a" / "blind-v1.3.0.csv"
    stratum = {r["index"]: r["stratum"] for r in read(strata)}
    fill_panel(panel_root, sheet, tmp_path, {n: 3 if stratum[r["index"]] in ("control-listed", "family") else 0
                                             for n, r in enumerate(read(sheet))})
    recorded = run(panel_root, "blind", "record", str(sheet))
    assert recorded.exit_code == 0 and "recorded" in recorded.stdout, recorded.output
    again = draw(panel_root, later, tmp_path / "b", "--listed-controls", "1", "--kept-controls", "1", "--leave-out", str(strata),
                 "--digits", "0,1,2,3,4,5,6,7,8,9")
    assert again.exit_code == 0, again.output


def test_draw_reread_controls_also_takes_images_every_reading_agrees_on(panel_root, tmp_path):
    family = tmp_path / "family.csv"
    write(family, ["split", "index"], [{"split": "train", "index": "11"}])
    every_digit = ("--digits", "0,1,2,3,4,5,6,7,8,9")
    # Read once and agreed: train 1-8; train 10 was read twice, both listing it; 9's reader kept it.
    short = draw(panel_root, family, tmp_path / "a", "--listed-controls", "9", "--kept-controls", "0", *every_digit)
    assert short.exit_code == 2 and "only 8 listed images" in short.stderr
    assert "--reread-controls also takes images read more than once" in short.stderr and not (tmp_path / "a").exists()
    result = draw(panel_root, family, tmp_path / "a", "--listed-controls", "9", "--kept-controls", "0",
                  "--reread-controls", *every_digit)
    assert result.exit_code == 0, result.output
    assert "control-listed: 9 images (drawn from 9)" in result.stderr
    drawn = {int(r["index"]) for r in read(tmp_path / "a" / "strata.csv") if r["stratum"] == "control-listed"}
    assert drawn == {1, 2, 3, 4, 5, 6, 7, 8, 10}
    too_many = draw(panel_root, family, tmp_path / "b", "--listed-controls", "10", "--kept-controls", "0",
                    "--reread-controls", *every_digit)
    assert too_many.exit_code == 2 and "only 9 listed images" in too_many.stderr and "every blind reading" in too_many.stderr
