"""`suggest`: planted label flips rank at the top, the same seed gives the same CSV, listed images stay out."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageFont

from mnist_idk import curation, sheet, suggest
from mnist_idk.cli import main
from mnist_idk.raw import Split

from conftest import workspace

SMALL = suggest.Settings(folds=5, pca_dims=20, filters=32, neighbours=10)
SMALL_V1 = suggest.Settings(model="rff", folds=5, pca_dims=20, random_features=400, neighbours=10, reference=1500)
HEADER = "index,original,label,reason,note\n"


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ten random stroke patterns ('digits'), each image a noisy copy of its class's."""
    rng = np.random.default_rng(seed)
    prototypes = (rng.random((10, 28, 28)) < 0.25) * rng.integers(120, 256, (10, 28, 28))
    labels = np.arange(n) % 10
    images = prototypes[labels] * (rng.random((n, 28, 28)) < 0.8) + rng.integers(0, 40, (n, 28, 28))
    return np.clip(images, 0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def planted():
    """3000 synthetic images in two 'splits' with 30 labels flipped to another digit."""
    images, labels = synthetic_digits(3000, seed=1)
    rng = np.random.default_rng(2)
    flipped = rng.choice(len(labels), 30, replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10
    splits = [Split("train", images[:2500], noisy[:2500]), Split("test", images[2500:], noisy[2500:])]
    return splits, labels, flipped


def scored(splits, seed=0):
    return suggest.score_splits(splits, replace(SMALL, seed=seed))


@pytest.fixture(scope="module")
def planted_scored(planted):
    return scored(planted[0])


def as_pairs(flipped) -> set[tuple[str, int]]:
    return {("train", int(i)) if i < 2500 else ("test", int(i) - 2500) for i in flipped}


def write_lists(root, rows: dict[str, list[tuple[int, int]]]) -> None:
    """Working lists in ``root`` listing (index, original) pairs as IDK."""
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        lines = [f"{index},{original},IDK,ambiguous,listed by the test\n" for index, original in sorted(rows.get(split, []))]
        (root / f"{split}.csv").write_text(HEADER + "".join(lines), "utf-8")


def test_planted_label_flips_rank_at_the_top(planted, planted_scored):
    splits, truth, flipped = planted
    result = planted_scored
    noisy = np.concatenate([s.labels for s in splits])
    assert result.held_out_accuracy > 0.95
    top = suggest.candidates(result, top=len(flipped))
    assert len(as_pairs(flipped) & set(zip(top["split"].tolist(), top["index"].tolist()))) >= 0.9 * len(flipped)
    # the model, never having seen them, predicts their true class rather than the planted label
    assert (result.predicted[flipped] == truth[flipped]).mean() > 0.9
    for name in ("self_confidence", "margin", "knn_disagreement"):
        clean = np.delete(result.signals[name], flipped)
        assert np.median(result.signals[name][flipped]) > np.quantile(clean, 0.95), name
    assert set(np.unique(noisy)) == set(range(10))


def test_the_v1_model_still_finds_planted_flips(planted):
    splits, truth, flipped = planted
    result = suggest.score_splits(splits, SMALL_V1)
    assert result.parts.keys() == {"rff"} and result.held_out_accuracy > 0.95
    top = suggest.candidates(result, top=len(flipped))
    assert len(as_pairs(flipped) & set(zip(top["split"].tolist(), top["index"].tolist()))) >= 0.9 * len(flipped)
    with pytest.raises(ValueError, match="unknown model 'mlp'"):
        suggest.score_splits(splits, replace(SMALL, model="mlp"))


def test_the_table_gives_the_predicted_digit_its_probability_and_the_sheet_says_so(planted, planted_scored,
                                                                                   tmp_path, monkeypatch):
    splits, truth, flipped = planted
    result = planted_scored
    assert result.parts.keys() == {"conv", "neighbours"}
    assert all(0.9 < value <= 1 for value in result.parts.values())
    np.testing.assert_allclose(result.probabilities.sum(1), 1, atol=1e-5)
    table = suggest.candidates(result, top=5)
    rows = [int(i) + (2500 if s == "test" else 0) for s, i in zip(table["split"], table["index"])]
    np.testing.assert_allclose(table["p_predicted"], result.probabilities[rows].max(1), rtol=1e-6)
    assert (table["predicted"] == result.probabilities[rows].argmax(1)).all()
    others = result.probabilities[rows].copy()
    others[np.arange(len(rows)), table["original"]] = 0
    assert (table["alternative"] == others.argmax(1)).all() and (table["alternative"] != table["original"]).all()
    np.testing.assert_allclose(table["p_alternative"], others.max(1), rtol=1e-6)
    drawn = []
    monkeypatch.setattr(sheet, "render", lambda tiles, columns: drawn.extend(tiles) or Image.new("L", (8, 8)))
    suggest.write_sheet(table, {s.name: s for s in splits}, tmp_path / "s.png")
    first = table[0]
    assert drawn[0].caption == [f"#1 {first['split']} {first['index']}",
                                f"{first['original']} -> {first['predicted']} ({first['p_predicted']:.2f})"]
    # every character has a glyph in the sheet's font (Pillow's default drew '→' as a box)
    font = ImageFont.load_default()
    missing = font.getmask("\U0010fffd")
    for character in "".join(drawn[0].caption):
        glyph = font.getmask(character)
        assert (glyph.size, bytes(glyph)) != (missing.size, bytes(missing)), character
    assert (splits[0 if first["split"] == "train" else 1].images[first["index"]] == drawn[0].image).all()


def test_same_seed_same_csv_other_seed_other_scores(planted, planted_scored, tmp_path):
    splits, _, _ = planted
    paths = [tmp_path / f"run{run}.csv" for run in range(3)]
    for path, result in zip(paths, (planted_scored, scored(splits, 0), scored(splits, 1))):
        suggest.write_csv(suggest.candidates(result), path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    rows = list(csv.DictReader(paths[0].open()))
    assert list(rows[0]) == list(suggest.COLUMNS)
    assert {"predicted", "p_predicted", *suggest.SIGNALS} <= set(rows[0])
    assert [int(r["rank"]) for r in rows] == list(range(1, 3001))
    assert all(float(a["score"]) >= float(b["score"]) for a, b in zip(rows, rows[1:]))
    assert sorted((r["split"], int(r["index"])) for r in rows) == sorted(
        [("train", i) for i in range(2500)] + [("test", i) for i in range(500)])
    assert not list(tmp_path.glob(".*.tmp"))


def test_listed_images_are_left_out_and_the_rest_keeps_its_order(planted, planted_scored, tmp_path):
    splits, _, flipped = planted
    result = planted_scored
    listed_pairs = sorted(as_pairs(flipped[:10]))
    noisy = {s.name: s.labels for s in splits}
    write_lists(tmp_path, {split: [(i, int(noisy[split][i])) for s, i in listed_pairs if s == split]
                           for split in ("train", "test")})
    listed = curation.load(workspace(tmp_path), curation.WORKING, raw_labels=noisy)
    listed = {name: [e.index for e in entries] for name, entries in listed.entries.items()}
    everything = suggest.candidates(result)
    pairs = list(zip(everything["split"].tolist(), everything["index"].tolist()))
    assert set(listed_pairs) <= set(pairs[:40])  # they would be near the top if not listed
    left = suggest.candidates(result, exclude=listed)
    assert list(zip(left["split"].tolist(), left["index"].tolist())) == [p for p in pairs if p not in set(listed_pairs)]
    assert left["rank"].tolist() == list(range(1, len(left) + 1))
    test_only = suggest.candidates(result, "test", exclude=listed)
    assert set(test_only["split"].tolist()) == {"test"}
    assert len(test_only) == 500 - sum(1 for s, _ in listed_pairs if s == "test")


@pytest.fixture(scope="module")
def blends():
    """3000 synthetic images, 60 of them half one class's pattern and half another's.

    The curated labels list 45 of the blends as IDK and leave 15 with their digit, as a review
    that has not reached them yet would.
    """
    images, labels = synthetic_digits(3000, seed=3)
    rng = np.random.default_rng(4)
    chosen = rng.choice(len(labels), 60, replace=False)
    others, _ = synthetic_digits(3000, seed=3)
    partner = others[(np.arange(3000) + rng.integers(1, 10, 3000)) % 3000]  # mostly another class's image
    mixed = np.maximum(images[chosen] // 2, partner[chosen] // 2) + images[chosen] // 4
    images = images.copy()
    images[chosen] = np.clip(mixed, 0, 255)
    curated = labels.copy()
    curated[chosen[:45]] = suggest.IDK
    splits = [Split("train", images[:2500], labels[:2500]), Split("test", images[2500:], labels[2500:])]
    return splits, [curated[:2500], curated[2500:]], chosen


def test_the_idk_target_ranks_unlisted_images_like_the_listed_ones_first(blends):
    splits, curated, chosen = blends
    result = suggest.score_splits(splits, replace(SMALL, target="idk"), curated=curated)
    assert result.parts.keys() == {"conv"}  # the neighbour vote knows no IDK: not in the probabilities
    np.testing.assert_allclose(result.probabilities.sum(1), 1, atol=1e-5)  # the digits alone, renormalized
    assert ((result.score >= 0) & (result.score <= 1)).all()
    listed = {"train": [int(i) for i in chosen[:45] if i < 2500], "test": [int(i) - 2500 for i in chosen[:45] if i >= 2500]}
    top = suggest.candidates(result, exclude=listed, top=30)
    unlisted = as_pairs(chosen[45:])
    # A random order puts about 0.15 of the 15 unlisted blends in the top 30 of 2955; the label
    # score cannot see them (their labels are right), p(IDK) learned from the 45 listed can.
    found = len(unlisted & set(zip(top["split"].tolist(), top["index"].tolist())))
    assert found >= 12, found
    plain = suggest.candidates(suggest.score_splits(splits, SMALL), exclude=listed, top=30)
    assert len(unlisted & set(zip(plain["split"].tolist(), plain["index"].tolist()))) < found


def test_the_idk_target_needs_listed_images(blends):
    splits, curated, _ = blends
    with pytest.raises(ValueError, match="learns from listed images"):
        suggest.score_splits(splits, replace(SMALL, target="idk"))
    with pytest.raises(ValueError, match="learns from listed images"):
        suggest.score_splits(splits, replace(SMALL, target="idk"), curated=[s.labels for s in splits])
    with pytest.raises(ValueError, match="unknown target 'idx'"):
        suggest.score_splits(splits, replace(SMALL, target="idx"), curated=curated)


def test_deskew_stands_a_slanted_stroke_upright():
    image = np.zeros((1, 28, 28), np.uint8)
    for row in range(4, 24):
        image[0, row, 6 + row // 2 : 9 + row // 2] = 255  # leaning right, like a slanted 1
    upright = suggest.deskew(image).reshape(28, 28)
    columns = [np.average(np.arange(28), weights=upright[row]) for row in range(4, 24)]
    before = [np.average(np.arange(28), weights=image[0, row].astype(float)) for row in range(4, 24)]
    assert np.ptp(before) > 8 and np.ptp(columns) < 1.5
    assert abs(np.mean(columns) - 13.5) < 1
    assert abs(upright.sum() - image.sum() / 255) < 0.05 * upright.sum()  # shear keeps the ink


def test_cli_on_real_mnist(tmp_path, real_splits):
    """One real 70k run of the numpy model (CI's default: no torch there): the ranking finds label errors,
    listed images are left out, the sheet is drawn."""
    lists = tmp_path / "lists"
    listed = {"test": [(i, int(real_splits["test"].labels[i])) for i in (0, 5, 9)],
              "train": [(7, int(real_splits["train"].labels[7]))]}
    write_lists(lists, listed)
    out, picture = tmp_path / "c.csv", tmp_path / "c.png"
    result = CliRunner().invoke(main, ["suggest", "--model", "conv", "--split", "test", "--top", "12", "--out", str(out),
                                       "--sheet", str(picture)], env={"MNIST_IDK_LISTS_DIR": str(lists)})
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert sorted(int(r["index"]) for r in rows) == sorted(set(range(10000)) - {0, 5, 9})
    assert {r["split"] for r in rows} == {"test"}
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    labels = real_splits["test"].labels
    assert all(int(r["original"]) == labels[int(r["index"])] for r in rows)
    # most of the top 1% are images the out-of-fold model reads as another digit
    assert sum(r["predicted"] != r["original"] for r in rows[:100]) >= 80
    accuracy = float(result.output.split("held-out accuracy of the model: ")[1].split()[0])
    assert accuracy > 0.985  # conv 98.6%, neighbours 98.3%, their average 98.8%
    assert "(9997 images ranked; 3 already listed or reviewed left out)" in result.output
    width, height = Image.open(picture).size
    expected = sheet.render([sheet.Tile(np.zeros((28, 28), np.uint8), [])] * 12, columns=10).size
    assert (width, height) == expected


def fake_scored(splits, settings=None, progress=None, curated=None):
    """Scores for the real 70k images without the model: a fixed random order (the CLI is under test)."""
    split = np.concatenate([np.full(len(s.labels), s.name) for s in splits])
    index = np.concatenate([np.arange(len(s.labels)) for s in splits])
    labels = np.concatenate([s.labels for s in splits]).astype(np.int64)
    probabilities = np.full((len(labels), 10), 0.1)
    score = np.random.default_rng(0).random(len(labels))
    signals = {name: score for name in suggest.SIGNALS}
    return suggest.Scored(split, index, labels, labels, probabilities, signals, score, 1.0, {"fake": 1.0})


def test_cli_leaves_reviewed_images_out_unless_asked(tmp_path, monkeypatch, real_splits):
    lists = tmp_path / "lists"
    write_lists(lists, {"test": [(0, 7)]})
    (lists / "reviewed").mkdir()
    (lists / "reviewed" / "test.csv").write_text(
        "index,original,decision,source,note\n0,7,listed,seed-v1.0.0,listed by the test\n"
        f"3,{real_splits['test'].labels[3]},kept,seed-v1.0.0,a clear digit\n", "utf-8")
    (lists / "reviewed" / "train.csv").write_text(
        f"index,original,decision,source,note\n5,{real_splits['train'].labels[5]},kept,seed-v1.0.0,a clear digit\n",
        "utf-8")
    monkeypatch.setattr(suggest, "score_splits", fake_scored)

    def ranked(*extra):
        out = tmp_path / "c.csv"
        result = CliRunner().invoke(main, ["suggest", "--lists-dir", str(lists), "--out", str(out),
                                           "--sheet", str(tmp_path / "c.png"), "-q", *extra])
        assert result.exit_code == 0, result.output
        return {(r["split"], int(r["index"])) for r in csv.DictReader(out.open())}, result.stdout

    default, said = ranked()
    assert not default & {("test", 0), ("test", 3), ("train", 5)} and len(default) == 70000 - 3
    assert "3 already listed or reviewed left out" in said
    everything, said = ranked("--include-reviewed")
    assert {("test", 3), ("train", 5)} <= everything and ("test", 0) not in everything
    assert "1 already listed left out" in said


def test_cli_target_idk_learns_the_curated_labels_and_refuses_lists_with_no_listing(tmp_path, monkeypatch,
                                                                                     real_splits):
    seen = {}

    def fake(splits, settings=None, progress=None, curated=None):
        seen.update(target=settings.target, curated=curated)
        return fake_scored(splits)

    monkeypatch.setattr(suggest, "score_splits", fake)
    lists = tmp_path / "lists"
    write_lists(lists, {"train": [(5, int(real_splits["train"].labels[5]))]})

    def run(folder):
        return CliRunner().invoke(main, ["suggest", "--target", "idk", "--lists-dir", str(folder), "--out",
                                         str(tmp_path / "c.csv"), "--sheet", str(tmp_path / "c.png"), "-q"])

    result = run(lists)
    assert result.exit_code == 0, result.output
    assert seen["target"] == "idk"
    train, test = seen["curated"]
    assert train[5] == suggest.IDK and (np.delete(train, 5) == np.delete(real_splits["train"].labels, 5)).all()
    assert (test == real_splits["test"].labels).all()
    empty = tmp_path / "empty"
    write_lists(empty, {})
    (tmp_path / "c.csv").unlink()
    result = run(empty)
    assert result.exit_code != 0 and "--target idk learns from the listed images" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "c.csv").exists()


def test_cli_refuses_a_broken_list_before_scoring(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.csv").write_text(HEADER + "0,3,IDK,ambiguous,wrong original\n", "utf-8")
    (lists / "test.csv").write_text(HEADER, "utf-8")
    result = CliRunner().invoke(main, ["suggest", "--out", str(tmp_path / "c.csv")],
                                env={"MNIST_IDK_LISTS_DIR": str(lists)})
    assert result.exit_code == 2
    assert "train.csv:2: original is 3 but raw train label 0 is 5" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "c.csv").exists()


def test_cli_help_explains():
    result = CliRunner().invoke(main, ["suggest", "--help"])
    assert result.exit_code == 0
    for option in ("--split", "--top", "--seed", "--out", "--sheet", "--raw-dir", "--target"):
        assert option in result.output
    assert "out of sample" in result.output
    assert "of the 15" in result.output and "17 blatant train errors" in result.output  # measured figures
    assert "p(IDK)" in result.output


def test_the_benchmark_plants_plausible_flips_on_the_same_images_as_uniform_ones():
    """`suggest_quality.py --flips plausible` changes the images uniform flips pick, to the digits it is given."""
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("suggest_quality", REPO / "benchmarks" / "suggest_quality.py")
    quality = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quality)
    labels = np.random.default_rng(1).integers(0, 10, 4000)
    likeliest = (labels + 3) % 10  # stands in for a model's likeliest digit other than the label
    uniform, rows = quality.flip(labels, 7)
    plausible, same_rows = quality.flip(labels, 7, likeliest)
    assert rows == same_rows and len(rows) == 20
    assert set(np.flatnonzero(uniform != labels).tolist()) == rows
    assert set(np.flatnonzero(plausible != labels).tolist()) == rows
    chosen = sorted(rows)
    assert (plausible[chosen] == likeliest[chosen]).all()
    assert (uniform[chosen] != likeliest[chosen]).any()  # uniform flips do not follow the model


def test_the_quality_benchmark_without_cleanlab_says_what_to_install_before_any_model_runs():
    """cleanlab is the benchmark's own dependency: a one-line error at once, not a traceback minutes in."""
    import subprocess
    import sys

    from conftest import REPO

    code = ("import sys; sys.modules['cleanlab'] = None; sys.path.insert(0, 'benchmarks'); sys.argv = ['suggest_quality']; "
            "import suggest_quality; suggest_quality.main()")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.strip() == "error: this benchmark needs cleanlab, which mnist-idk does not install: pip install cleanlab"
