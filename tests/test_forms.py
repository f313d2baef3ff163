"""The forms queue: images whose holes (bridge rule) contradict their label, served apart from any ranking."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_idk import coverage, forms, review
from mnist_idk.cli import main
from mnist_idk.raw import Split

from conftest import workspace
from test_review import lists


def ring(image: np.ndarray, top: int, bottom: int, left: int = 9, right: int = 18, ink: int = 255) -> None:
    """Draw a closed rectangular loop (a hole inside) from row ``top`` to ``bottom``."""
    image[top, left:right + 1] = image[bottom, left:right + 1] = ink
    image[top:bottom + 1, left] = image[top:bottom + 1, right] = ink


def eight(kind: str) -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    if kind in ("two", "upper"):
        ring(image, 4, 12)
    if kind == "two":
        ring(image, 13, 23)
    if kind == "upper":
        image[13:24, 9:19] = 255  # the lower part filled solid
    if kind == "lower":
        image[4, 9:19] = 255  # an open top: a bar, no loop
        ring(image, 13, 23)
    if kind == "none":
        image[4:24, 9:19] = 255  # a blot
    return image


def two(kind: str) -> np.ndarray:
    """A 2 drawn as a hook over a stem whose foot is a loop: ``kind`` says how the loop ends."""
    image = np.zeros((28, 28), np.uint8)
    image[4, 10:19] = image[4:16, 18] = 255  # the hook's top and the stem down its right
    small = kind == "small loop"
    ring(image, 20 if small else 15, 23, left=15 if small else 9, right=18)  # the foot loop, ending at the stem
    if kind == "tail":
        image[23, 18:26] = 255  # the foot runs on 7 px past the stem: a cursive 2
    if kind == "knot":
        ring(image, 4, 6, left=10, right=12)  # a second, small hole up in the hook
    return image


@pytest.mark.parametrize("kind,expected", [("no tail", "2-loop-no-tail"), ("knot", "2-loop-no-tail"),
                                           ("tail", None), ("small loop", None)])
def test_a_looped_2_is_a_form_only_with_a_large_loop_that_ends_at_the_stem(kind, expected):
    assert forms.form_of(2, two(kind)) == expected
    assert forms.form_of(7, two(kind)) is None  # the same ink labelled 7 is no form: forms belong to a label


@pytest.mark.parametrize("kind,expected", [("two", "two+"), ("upper", "upper"), ("lower", "lower"), ("none", "none")])
def test_the_pattern_counts_holes_by_the_bridge_rule_and_says_where_a_single_one_lies(kind, expected):
    assert forms.pattern(eight(kind)) == expected


def test_a_bridge_fainter_than_the_rule_leaves_the_loop_open():
    image = eight("upper")
    image[4, 12:15] = 50  # the top of the upper loop, thinned to ink the rule does not count
    assert forms.pattern(image) == "none"  # the loop is open: a blot with a cup on top
    image[4, 12:15] = 57
    assert forms.pattern(image) == "upper"


def test_find_lists_only_the_labelled_forms_in_table_order():
    images = np.stack([two("no tail"), eight("upper"), eight("two"), eight("none"), eight("lower"), eight("upper"),
                       eight("lower"), two("tail")])
    labels = np.array([2, 8, 8, 8, 8, 5, 5, 2], np.uint8)  # a 5 with one hole low down is a 5 whose bowl closes
    found = forms.find({"train": Split("train", images, labels)})
    assert [(f.index, f.form) for f in found] == [(1, "8-one-upper-hole"), (3, "8-no-hole"), (6, "5-lower-hole"),
                                                   (0, "2-loop-no-tail")]
    text = forms.to_csv(found)
    assert text.splitlines()[0] == "split,index,original,form" and text == forms.to_csv(list(found))


def test_review_forms_writes_the_queue_and_next_serves_it_alone(tmp_path, monkeypatch, labels):
    """`review forms` writes curation_lists/forms/candidates.csv; `review next --forms` serves its unreviewed images."""
    root = lists(tmp_path / "lists", reviewed_train="1,0,kept,seed-v1.0.0,a 0\n", runs="r1,0.1.0,rff,0,cmd\n")
    eights = [int(i) for i in np.flatnonzero(labels["train"] == 8)[:3]]
    fives = [int(i) for i in np.flatnonzero(labels["train"] == 5)[:1]]
    fake = [forms.FormImage("train", eights[0], 8, "8-one-upper-hole"), forms.FormImage("train", eights[1], 8, "8-no-hole"),
            forms.FormImage("train", fives[0], 5, "5-lower-hole")]
    monkeypatch.setattr(forms, "find", lambda splits, progress=None: fake)  # the real scan takes ~15 s on MNIST
    runner = CliRunner()
    result = runner.invoke(main, ["review", "forms", "--lists-dir", str(root)])
    assert result.exit_code == 0, result.output
    path = root / "forms" / "candidates.csv"
    assert path.read_text("utf-8") == forms.to_csv(fake)
    assert "8-one-upper-hole: 1 images, 1 unreviewed" in result.stdout

    out = tmp_path / "batch"
    served = runner.invoke(main, ["review", "next", "--lists-dir", str(root), "--forms", "--batch", "2",
                                  "--out-dir", str(out)])
    assert served.exit_code == 0, served.output
    rows = list(csv.DictReader(open(served.stdout.splitlines()[-1], encoding="utf-8")))
    assert [(int(r["index"]), r["source"]) for r in rows] == [(eights[0], forms.source("8-one-upper-hole")),
                                                              (eights[1], forms.source("8-no-hole"))]
    assert forms.source("8-no-hole").startswith("forms-v2:")  # the table's version: v1 had no 2s
    both = runner.invoke(main, ["review", "next", "--lists-dir", str(root), "--forms", "--second-look"])
    assert both.exit_code != 0 and "--forms is a queue of its own" in both.output

    for r, decision in zip(rows, ["listed", "kept"]):
        r.update(decision=decision, reason="deformed" if decision == "listed" else "", note="looked")
    with open(served.stdout.splitlines()[-1], "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=review.DECISION_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    applied = runner.invoke(main, ["review", "apply", "--lists-dir", str(root), served.stdout.splitlines()[-1]])
    assert applied.exit_code == 0, applied.output
    assert review.lint(workspace(root), labels) == []
    assert coverage.status(workspace(root))[0].by_source["forms"] == (2, 1)


def test_without_the_queue_file_next_forms_says_what_to_run(tmp_path):
    root = lists(tmp_path / "lists")
    result = CliRunner().invoke(main, ["review", "next", "--lists-dir", str(root), "--forms"])
    assert result.exit_code != 0 and "run `mnist-idk review forms` first" in result.output


def test_the_estimate_of_what_is_left_counts_the_forms_queue_apart(tmp_path):
    """Audit images inside the queue count for the queue, not for the random stratum."""
    rows = [review.Reviewed("train", i, 8, d, (s,), "n") for i, d, s in [
        (1, "listed", "forms-v1:8-one-upper-hole"), (2, "kept", "forms-v1:8-no-hole"),
        (3, "listed", "audit-s0:r1@9"),  # in the queue: a queue image the audit drew
        (4, "kept", "audit-s0:r1@10"), (5, "kept", "audit-s0:r1@11")]]
    left = coverage.left("train", rows, {1, 2, 3, 6, 7})
    assert (left.audited, left.audit_listed) == (2, 0)  # the audit outside the queue: 2 drawn, none listed
    assert (left.forms_reviewed, left.forms_listed, left.forms_unreviewed) == (3, 2, 2)
    assert left.unreviewed == 60000 - 5 - 2
    middle, (low, high) = left.estimate()
    assert middle == pytest.approx(2 / 3 * 2) and low < middle < high
    plain = coverage.left("train", [r for r in rows if "forms" not in r.sources[0]], {1, 2, 3, 6, 7})
    assert (plain.audited, plain.audit_listed, plain.forms_unreviewed) == (3, 1, 0)  # no forms decisions: one stratum


def test_on_real_mnist_the_looped_2_form_takes_the_listed_no_tail_loops_and_not_a_tailed_one(real_splits):
    """Train 52006 and 44054 are the rules' own examples of the form; 56583 has a knot too (two holes).
    Train 22169, a cursive 2 whose foot runs on past the stem, is the rules' kept example."""
    images = real_splits["train"].images
    assert [forms.form_of(2, images[i]) for i in (52006, 44054, 56583)] == ["2-loop-no-tail"] * 3
    assert forms.form_of(2, images[22169]) is None


def test_status_can_count_the_audit_without_a_form_chosen_after_it(tmp_path):
    """A form added because the audit found its images would hide those finds in the queue's stratum;
    `review status --without-form` counts the audit as if the queue lacked it, and names an unknown form."""
    root = lists(tmp_path / "lists", runs="r1,0.1.0,rff,0,cmd\n", reviewed_train=(
        "1,2,listed,audit-s0:r1@9,a hook over a round loop\n"  # the audit's find, in the 2s' form
        "3,8,kept,forms-v2:8-no-hole,a blot\n"
        "5,4,kept,audit-s0:r1@10,a 4\n"))
    (root / "forms").mkdir()
    (root / "forms" / "candidates.csv").write_text(
        "split,index,original,form\ntrain,3,8,8-no-hole\ntrain,1,2,2-loop-no-tail\n", "utf-8")
    runner = CliRunner()
    plain = runner.invoke(main, ["review", "status", "--lists-dir", str(root)])
    assert plain.exit_code == 0, plain.output
    assert "audit: 1 random unreviewed images decided, 0 listed" in plain.output
    without = runner.invoke(main, ["review", "status", "--lists-dir", str(root), "--without-form", "2-loop-no-tail"])
    assert without.exit_code == 0, without.output
    assert "audit: 2 random unreviewed images decided, 1 listed" in without.output
    unknown = runner.invoke(main, ["review", "status", "--lists-dir", str(root), "--without-form", "2-loop"])
    assert unknown.exit_code != 0 and "not a form of table v2" in unknown.output and "Traceback" not in unknown.output


def test_the_card_gives_the_audit_count_with_and_without_the_queue(tmp_path):
    """A form chosen after the audit found its image hides that find in the queue's stratum; the card says both."""
    from mnist_idk import card

    root = lists(tmp_path / "lists", runs="r1,0.1.0,rff,0,cmd\n", train="1,2,IDK,ambiguous,a loop\n", reviewed_train=(
        "1,2,listed,audit-s0:r1@9,a loop\n"  # the audit's find, in the queue
        "3,8,kept,forms-v2:8-no-hole,a blot\n"
        "5,4,kept,audit-s0:r1@10,a 4\n"))
    (root / "forms").mkdir()
    (root / "forms" / "candidates.csv").write_text(
        "split,index,original,form\ntrain,1,2,2-loop-no-tail\ntrain,3,8,8-no-hole\n", "utf-8")
    section = card.review_section(workspace(root), "working")
    outside = coverage.remaining(60000 - 3, 1, 0)
    whole = coverage.remaining(60000 - 3, 2, 1)
    assert f"train: 0 of 1 listed, so about {outside[0]:,.0f} IDK images" in section
    assert f"counted without the queue, {whole[0]:,.0f} ({whole[1][0]:,.0f}-{whole[1][1]:,.0f})" in section
    assert "what is left lies between" in section
