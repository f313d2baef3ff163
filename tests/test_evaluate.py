"""Scoring predictions: the metrics on synthetic answers with known figures, the predictions-file
checks (every defect named with file and line/row), and the CLI on the real v1.0.0 test split."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist_idk import card, curation, evaluate, metrics

from conftest import workspace
from mnist_idk.cli import main
from mnist_idk.errors import MnistIdkError
from mnist_idk.evaluate import read_predictions

IDK = metrics.IDK_CLASS
# 12 digits (every class, 0 and 1 twice) and 3 IDK images
TRUTH = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, IDK, IDK, IDK])


def test_perfect_predictions():
    s = metrics.score(TRUTH, TRUTH, confidence=np.linspace(1, 0, len(TRUTH)))
    assert (s.digit_accuracy, s.idk_precision, s.idk_recall, s.idk_f1, s.accuracy) == (1, 1, 1, 1, 1)
    assert np.array_equal(s.confusion, np.diag(np.bincount(TRUTH, minlength=11)))
    assert s.risk_coverage.aurc == 0 and set(s.risk_coverage.selective_accuracy.values()) == {1.0}
    assert (s.images, s.digit_images, s.idk_images, s.idk_predicted) == (15, 12, 3, 3)


def test_never_idk_gets_the_digits_right_and_finds_no_idk():
    predicted = np.where(TRUTH == IDK, 7, TRUTH)
    s = metrics.score(TRUTH, predicted)
    assert s.digit_accuracy == 1 and s.idk_recall == 0 and s.idk_f1 == 0
    assert s.idk_precision is None  # never predicts IDK: precision is undefined, not 0 or 1
    assert s.confusion[IDK][7] == 3 and s.accuracy == 12 / 15 and s.risk_coverage is None


def test_always_idk_finds_every_idk_and_no_digit():
    s = metrics.score(TRUTH, np.full(len(TRUTH), "IDK"))
    assert s.digit_accuracy == 0 and s.idk_recall == 1
    assert s.idk_precision == pytest.approx(3 / 15) and s.idk_f1 == pytest.approx(2 * 3 / (2 * 3 + 12))
    assert [row[IDK] for row in s.confusion] == np.bincount(TRUTH, minlength=11).tolist()


def test_shuffled_predictions_are_all_wrong_and_the_matrix_says_where():
    truth = np.arange(11)
    predicted = np.roll(truth, 1)  # image of class c predicted as c - 1 (IDK predicted on the 0)
    s = metrics.score(truth, predicted, confidence=np.ones(11))
    assert s.digit_accuracy == 0 and s.accuracy == 0
    assert (s.idk_precision, s.idk_recall, s.idk_f1) == (0, 0, 0)
    assert s.confusion[0][IDK] == 1 and s.confusion[IDK][9] == 1 and np.trace(s.confusion) == 0
    assert s.risk_coverage.aurc == 1 and s.risk_coverage.risk == [1.0] * 11


def test_risk_coverage_by_hand():
    truth, predicted = np.array([1, 2, 3, IDK]), np.array([1, 5, 3, IDK])  # wrong on the 2nd
    s = metrics.score(truth, predicted, confidence=[0.9, 0.8, 0.7, 0.6])
    rc = s.risk_coverage
    assert rc.coverage == [0.25, 0.5, 0.75, 1.0]
    assert rc.risk == pytest.approx([0, 1 / 2, 1 / 3, 1 / 4])
    assert rc.aurc == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    # ceil(0.9 * 4) = ceil(0.95 * 4) = ceil(0.99 * 4) = 4 images answered
    assert rc.selective_accuracy == {"0.90": 0.75, "0.95": 0.75, "0.99": 0.75}
    # the same mistake made with the least confidence: it is the one left out at low coverage
    rc = metrics.score(truth, predicted, confidence=[0.9, 0.1, 0.7, 0.6]).risk_coverage
    assert rc.risk == pytest.approx([0, 0, 0, 1 / 4])


def test_selective_accuracy_uses_ceil_of_coverage():
    n = 100
    truth = np.zeros(n, int)
    predicted = np.zeros(n, int)
    predicted[-5:] = 1  # the 5 least confident answers are wrong
    rc = metrics.score(truth, predicted, confidence=-np.arange(n)).risk_coverage
    assert rc.selective_accuracy == {"0.90": 1.0, "0.95": 1.0, "0.99": pytest.approx(1 - 4 / 99)}


def test_ties_count_by_expectation_so_row_order_never_matters():
    truth = np.array([0, 0, 0, 0])
    predicted = np.array([0, 1, 0, 1])
    rc = metrics.score(truth, predicted, confidence=[1, 1, 1, 1]).risk_coverage
    assert rc.risk == [0.5] * 4 and rc.aurc == 0.5  # constant confidence: risk = error rate


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10), st.integers(0, 10), st.integers(0, 3)), min_size=1, max_size=40),
       st.randoms(use_true_random=False))
def test_figures_do_not_depend_on_row_order(rows, rnd):
    truth, predicted, confidence = map(np.array, zip(*rows))
    order = np.array(rnd.sample(range(len(rows)), len(rows)))
    a = metrics.score(truth, predicted, confidence)
    b = metrics.score(truth[order], predicted[order], confidence[order])
    assert (a.confusion, a.idk_precision, a.idk_recall, a.idk_f1) == (b.confusion, b.idk_precision, b.idk_recall, b.idk_f1)
    assert np.allclose(a.risk_coverage.risk, b.risk_coverage.risk) and np.isclose(a.risk_coverage.aurc, b.risk_coverage.aurc)
    assert 0 <= a.risk_coverage.aurc <= 1 and np.isclose(a.risk_coverage.risk[-1], 1 - a.accuracy)


def test_metric_inputs_are_checked():
    with pytest.raises(MnistIdkError, match="'idk' at position 1 is not a class"):
        metrics.score(["1", "idk"], ["1", "1"])
    with pytest.raises(MnistIdkError, match="shape"):
        metrics.score([1, 2], [1])
    with pytest.raises(MnistIdkError, match="confidence at position 1 is nan"):
        metrics.score([1, 2], [1, 2], [0.5, float("nan")])


def test_json_ready_and_curve_optional():
    s = metrics.score(TRUTH, TRUTH, confidence=np.arange(len(TRUTH)))
    full, short = json.loads(json.dumps(s.to_dict())), s.to_dict(curve=False)
    assert len(full["risk_coverage"]["risk"]) == len(TRUTH) and "risk" not in short["risk_coverage"]
    assert short["risk_coverage"]["aurc"] == 0


# --- predictions files -------------------------------------------------------------------------

def write_csv(path, lines):
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def problems_of(path, size=4, split="test"):
    with pytest.raises(MnistIdkError) as info:
        read_predictions(path, size, split)
    return str(info.value)


def test_a_good_csv_in_any_order(tmp_path):
    path = write_csv(tmp_path / "p.csv", ["mnist_index,prediction,confidence", "2,IDK,0.1", "0,3,0.9", "3,10,1e-3",
                                          "1,9,-2"])
    got = read_predictions(path, 4)
    assert got.predicted.tolist() == [3, 9, IDK, IDK] and got.confidence.tolist() == [0.9, -2, 0.1, 0.001]
    got = read_predictions(write_csv(tmp_path / "q.csv", ["prediction,mnist_index", "1,0", "2,1"]), 2)
    assert got.predicted.tolist() == [1, 2] and got.confidence is None


@pytest.mark.parametrize(("lines", "expected"), [
    (["mnist_index,prediction", "0,1", "1,1", "3,1"], "image(s) of the test split have no row: mnist_index 2"),
    (["mnist_index,prediction", "0,1", "1,1", "1,2", "2,1", "3,1"], "p.csv:4: mnist_index 1 is listed twice (also line 3)"),
    (["mnist_index,prediction", "0,1", "1,1", "2,1", "4,1"], "p.csv:5: mnist_index '4' is not an integer in 0..3"),
    (["mnist_index,prediction", "0,1", "1,1", "2,1", "x,1"], "p.csv:5: mnist_index 'x' is not an integer in 0..3"),
    (["mnist_index,prediction", "0,1", "1,idk", "2,1", "3,1"], "p.csv:3: prediction 'idk' is not a class; expected 0-9 or IDK"),
    (["mnist_index,prediction", "0,1", "1,11", "2,1", "3,"], "p.csv:5: prediction '' is not a class"),
    (["mnist_index,prediction,confidence", "0,1,0.5", "1,1,high", "2,1,1", "3,1,1"],
     "p.csv:3: confidence 'high' is not a finite number"),
    (["mnist_index,prediction,confidence", "0,1,0.5", "1,1,nan", "2,1,1", "3,1,"], "p.csv:5: confidence '' is not"),
    (["mnist_index,prediction", "0,1", "1,1", "2,1"], "p.csv: 3 rows, but the test split has 4 images"),
    (["mnist_index,prediction", "0,1", "1,1", "2,1", "3,1", "0,1"], "p.csv: 5 rows, but the test split has 4 images"),
    (["mnist_index,label", "0,1"], "p.csv:1: columns are 'mnist_index,label', expected mnist_index,prediction"),
    (["mnist_index,prediction,score", "0,1,1"], "(unknown 'score')"),
    (["mnist_index,prediction", "0,1,7", "1,1", "2,1", "3,1"], "p.csv:2: 3 fields, expected 2"),
], ids=["missing", "duplicate", "out-of-range", "not-integer", "not-a-class", "empty-class", "confidence-word",
        "confidence-nan-empty", "too-few", "too-many", "no-prediction-column", "unknown-column", "extra-field"])
def test_each_bad_input_is_one_line_naming_file_and_line(tmp_path, lines, expected):
    message = problems_of(write_csv(tmp_path / "p.csv", lines))
    assert expected in message
    assert all(line.startswith(str(tmp_path / "p.csv")) for line in message.splitlines()[1:]), message


def test_every_problem_at_once_and_long_lists_cut(tmp_path):
    message = problems_of(write_csv(tmp_path / "p.csv", ["mnist_index,prediction"] + [f"{i},X" for i in range(30)]),
                          size=30)
    assert message.startswith("30 problem(s) in the predictions:") and message.endswith("... and 10 more")


def test_parquet_rows_are_counted_from_zero(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"mnist_index": [0, 1, 1, 3], "prediction": ["1", "IDK", "x", "2"],
                             "confidence": [0.5, None, 1.0, 2.0]}), path)
    message = problems_of(path)
    assert f"{path}: row 1: confidence None is not a finite number" in message
    assert f"{path}: row 2: mnist_index 1 is listed twice (also row 1)" in message
    assert f"{path}: row 2: prediction 'x' is not a class" in message
    assert "no row: mnist_index 2" in message
    pq.write_table(pa.table({"mnist_index": pa.array([1, 0], pa.int32()), "prediction": [10, 4]}), path)
    assert read_predictions(path, 2).predicted.tolist() == [4, IDK]


def test_unreadable_files(tmp_path):
    assert "no such file" in problems_of(tmp_path / "absent.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    assert "not a readable Parquet file" in problems_of(tmp_path / "bad.parquet")
    (tmp_path / "latin.csv").write_bytes(b"mnist_index,prediction\n0,\xff\n")
    assert "not UTF-8" in problems_of(tmp_path / "latin.csv")
    (tmp_path / "empty.csv").write_bytes(b"")
    assert "empty file" in problems_of(tmp_path / "empty.csv")


# --- the command on the real release -------------------------------------------------------------

@pytest.fixture(scope="module")
def v1_test_truth(real_splits):
    return card.final_labels(real_splits["test"], curation.load(workspace(), "v1.0.0"))


def test_cli_scores_a_perfect_and_a_never_idk_model(tmp_path, v1_test_truth):
    truth = v1_test_truth
    rows = ["mnist_index,prediction,confidence"] + [f"{i},{metrics.CLASSES[c]},{1 - i / 1e5}" for i, c in enumerate(truth)]
    perfect = write_csv(tmp_path / "perfect.csv", rows[:1] + rows[:0:-1])  # reversed order is fine
    result = CliRunner().invoke(main, ["evaluate", str(perfect), "--version", "v1.0.0", "--json", str(tmp_path / "s.json"),
                                       "--plot", str(tmp_path / "rc.png")])
    assert result.exit_code == 0, result.output
    assert "accuracy on digits        1.0000  (9980/9980)" in result.output
    assert "IDK recall                1.0000  (20/20)" in result.output and "AURC (lower is better)    0.00000" in result.output
    figures = json.loads((tmp_path / "s.json").read_text())
    assert figures["version"] == "v1.0.0" and figures["split"] == "test" and figures["scores"]["idk_f1"] == 1
    assert len(figures["scores"]["risk_coverage"]["risk"]) == 10000
    assert (tmp_path / "rc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    never = tmp_path / "never.parquet"
    pq.write_table(pa.table({"mnist_index": np.arange(10000), "prediction": np.where(truth == IDK, 8, truth)}), never)
    result = CliRunner().invoke(main, ["evaluate", str(never), "--version", "v1.0.0"])
    assert result.exit_code == 0, result.output
    assert "IDK precision             n/a  (0/0)" in result.output and "IDK recall                0.0000  (0/20)" in result.output
    assert "no confidence column" in result.output
    assert CliRunner().invoke(main, ["evaluate", str(never), "--plot", str(tmp_path / "x.png")]).exit_code == 2


def test_cli_bad_input_is_an_error_line_not_a_traceback(tmp_path):
    path = write_csv(tmp_path / "p.csv", ["mnist_index,prediction", "0,1", "70000,1"])
    result = CliRunner().invoke(main, ["evaluate", str(path), "--version", "v1.0.0", "--split", "train"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith("error: 3 problem(s) in the predictions:")
    assert f"{path}:3: mnist_index '70000' is not an integer in 0..59999 (the train split has 60000 images)" in result.output
    assert f"{path}: 2 rows, but the train split has 60000 images" in result.output
    result = CliRunner().invoke(main, ["evaluate", str(path), "--version", "v9.9.9"])
    assert result.exit_code == 2 and "no such release" in result.output


def test_wilson_interval_matches_its_closed_forms_and_brackets_the_share():
    """0 of n and n of n have closed forms (z^2/(n+z^2) and n/(n+z^2)); every interval holds its share."""
    z2 = 1.96 ** 2
    assert metrics.wilson(0, 0) is None
    low, high = metrics.wilson(0, 20)
    assert low == 0 and high == pytest.approx(z2 / (20 + z2))
    low, high = metrics.wilson(20, 20)
    assert high == 1 and low == pytest.approx(20 / (20 + z2))
    assert metrics.wilson(1, 30) == pytest.approx((0.0059, 0.1667), abs=5e-4)  # one IDK image found of 30


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_interval_holds_the_share_and_narrows_with_more_trials(successes, trials):
    successes = min(successes, trials)
    low, high = metrics.wilson(successes, trials)
    assert 0 <= low <= successes / trials <= high <= 1
    wider = metrics.wilson(successes * 4, trials * 4)
    assert wider[1] - wider[0] <= high - low + 1e-12


def test_evaluate_prints_the_interval_of_idk_precision_and_recall():
    truth = np.array([10] * 30 + [3] * 70)
    predicted = np.array([10] + [3] * 29 + [10] + [3] * 69)  # finds 1 of 30 IDK, one false IDK
    scores = metrics.score(truth, predicted)
    assert scores.idk_recall_interval == metrics.wilson(1, 30) and scores.idk_precision_interval == metrics.wilson(1, 2)
    table = evaluate.format_table(scores, "t")
    assert f"IDK recall                0.0333  (1/30)  95% interval {metrics.wilson(1, 30)[0]:.4f}-" in table
    assert metrics.score(truth, np.full(100, 3)).idk_precision_interval is None  # never predicts IDK


def test_auroc_counts_ties_half_and_orders_perfectly_separated_scores():
    listed = np.array([True, False, False, True])
    assert metrics.auroc(listed, [0.9, 0.1, 0.2, 0.8]) == 1.0
    assert metrics.auroc(listed, [0.1, 0.9, 0.8, 0.2]) == 0.0
    assert metrics.auroc(listed, np.full(4, 0.5)) == 0.5
    assert metrics.auroc(listed, [0.9, 0.1, 0.9, 0.8]) == 0.625  # 1 + 0.5 (a tie) + 1 + 0 of the 4 pairs
    assert metrics.auroc([True, True], [0.1, 0.2]) is None and metrics.auroc([False], [0.3]) is None
    with pytest.raises(MnistIdkError, match="3 labels but 2 scores"):
        metrics.auroc([True, False, True], [0.1, 0.2])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 6)), min_size=2, max_size=40))
def test_auroc_is_the_share_of_ordered_pairs(rows):
    """Against the definition, pair by pair (small integer scores, so ties are common)."""
    positive = np.array([p for p, _ in rows])
    score = np.array([s for _, s in rows], float)
    pos, neg = score[positive], score[~positive]
    if len(pos) == 0 or len(neg) == 0:
        assert metrics.auroc(positive, score) is None
        return
    pairs = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    assert metrics.auroc(positive, score) == pytest.approx(pairs / (len(pos) * len(neg)), abs=1e-12)
