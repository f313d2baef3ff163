"""`suggest`'s cnn model (the optional extra): planted flips found, repeatable, and the path without torch."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from test_suggest import as_pairs, fake_scored, planted  # noqa: F401  (planted is a fixture)

import mnist_idk
from mnist_idk import suggest
from mnist_idk.cli import main

SMALL_CNN = suggest.Settings(model="cnn", pca_dims=20, neighbours=10, cnn_folds=2, epochs=3, width=8)


def hide_torch(monkeypatch):
    """Make ``import torch`` fail as it does where the extra is not installed.

    Where torch is installed and an earlier test imported the cnn module, the package keeps it as an
    attribute, and ``from . import suggest_cnn`` would hand that back without importing: drop both.
    """
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "mnist_idk.suggest_cnn", raising=False)
    monkeypatch.delattr(mnist_idk, "suggest_cnn", raising=False)


@pytest.fixture
def without_torch(monkeypatch):
    hide_torch(monkeypatch)


def test_without_torch_the_default_is_the_numpy_model_with_a_one_line_notice(without_torch):
    said = []
    assert suggest.default_model(said.append) == "conv"
    assert len(said) == 1 and "\n" not in said[0]
    assert "pip install 'mnist-idk[suggest]'" in said[0]


def test_without_torch_asking_for_the_cnn_says_what_to_install(without_torch, planted):  # noqa: F811
    with pytest.raises(suggest.ModelUnavailable, match=r"pip install 'mnist-idk\[suggest\]'"):
        suggest.score_splits(planted[0], SMALL_CNN)


def test_cli_without_torch_falls_back_or_explains(without_torch, monkeypatch, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    for split in ("train", "test"):
        (lists / f"{split}.csv").write_text("index,original,label,reason,note\n", "utf-8")
    models = []
    monkeypatch.setattr(suggest, "score_splits",
                        lambda splits, settings, progress, curated=None: models.append(settings.model) or fake_scored(splits))
    args = ["suggest", "--lists-dir", str(lists), "--out", str(tmp_path / "c.csv"), "--sheet", str(tmp_path / "c.png")]
    result = CliRunner().invoke(main, [*args, "-q"])
    assert result.exit_code == 0, result.output
    assert models == ["conv"]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "mnist-idk[suggest]" in notes[0]
    monkeypatch.undo()  # the real score_splits: --model cnn must fail before any work
    hide_torch(monkeypatch)
    result = CliRunner().invoke(main, [*args, "--model", "cnn", "-q"])
    assert result.exit_code == 2
    assert "error: the cnn model needs torch: pip install 'mnist-idk[suggest]'" in result.stderr
    assert "Traceback" not in result.output


def test_help_names_the_models_and_the_extra():
    result = CliRunner().invoke(main, ["suggest", "--help"])
    assert result.exit_code == 0
    assert "--model" in result.output and "mnist-idk[suggest]" in result.output


@pytest.fixture(scope="module")
def cnn_scored(planted):  # noqa: F811
    pytest.importorskip("torch")
    return suggest.score_splits(planted[0], SMALL_CNN)


def test_cnn_finds_planted_flips(planted, cnn_scored):  # noqa: F811
    _splits, truth, flipped = planted
    assert cnn_scored.parts.keys() == {"cnn deskewed", "cnn raw"}
    assert cnn_scored.held_out_accuracy > 0.95
    top = suggest.candidates(cnn_scored, top=len(flipped))
    # A random ranking finds about 0.3 of the 30 in its top 30. This tiny network on 3,000 synthetic
    # images finds 24-28 (seeds 0-3; re-reading the doubtful tenth: 0-2 fewer than without), so 24
    # catches a broken model; how many real flips it finds is benchmarks/suggest_quality.py's job.
    assert len(as_pairs(flipped) & set(zip(top["split"].tolist(), top["index"].tolist()))) >= 0.8 * len(flipped)
    assert (cnn_scored.predicted[flipped] == truth[flipped]).mean() > 0.9
    np.testing.assert_allclose(cnn_scored.probabilities.sum(1), 1, atol=1e-5)
    assert set(cnn_scored.signals) == set(suggest.SIGNALS)


def test_cnn_same_seed_same_csv_other_seed_other_csv(planted, cnn_scored, tmp_path):  # noqa: F811
    import torch

    threads = torch.get_num_threads()
    paths = [tmp_path / f"run{n}.csv" for n in range(3)]
    runs = (cnn_scored, suggest.score_splits(planted[0], SMALL_CNN),
            suggest.score_splits(planted[0], replace(SMALL_CNN, seed=1)))
    for path, result in zip(paths, runs):
        suggest.write_csv(suggest.candidates(result), path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()  # restored


def test_reread_averages_nine_shifted_readings_of_only_the_most_doubtful_share():
    torch = pytest.importorskip("torch")
    from mnist_idk import suggest_cnn

    generator = torch.Generator().manual_seed(0)
    images = torch.full((6, 1, 28, 28), suggest_cnn.BLANK)
    images[:, :, 6:22, 6:22] = torch.rand(6, 1, 16, 16, generator=generator) * 3  # ink away from the border
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()  # position matters to it
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    plain = suggest_cnn.predict(model, images)
    doubt = 1 - plain[np.arange(6), labels.numpy()]
    again = suggest_cnn.reread(model, images, labels, plain, share=0.5)
    chosen = np.sort(np.argsort(-doubt)[:3])
    untouched = np.setdiff1d(np.arange(6), chosen)
    np.testing.assert_array_equal(again[untouched], plain[untouched])  # only the doubtful half is re-read
    with torch.no_grad():  # on a blank border, rolling by a pixel is moving by a pixel
        expected = np.mean([torch.softmax(model(torch.roll(images[torch.from_numpy(chosen)], (dy, dx), (2, 3))), 1)
                            .double().numpy() for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
    np.testing.assert_allclose(again[chosen], expected, atol=1e-6)
    assert not np.allclose(again[chosen], plain[chosen], atol=1e-3)  # the moves did change the reading
    np.testing.assert_array_equal(suggest_cnn.reread(model, images, labels, plain, share=0), plain)


def test_the_networks_train_at_the_settings_learning_rate(planted, monkeypatch):  # noqa: F811
    suggest_cnn = pytest.importorskip("mnist_idk.suggest_cnn")
    seen = []

    def fake(images, labels, folds, **options):
        seen.append(options["learning_rate"])
        return np.full((len(labels), 10), 0.1)

    monkeypatch.setattr(suggest_cnn, "out_of_fold_probabilities", fake)
    suggest.score_splits(planted[0], replace(SMALL_CNN, learning_rate=1e-3))
    assert seen == [1e-3, 1e-3]  # both networks: the setting is not lost on the way


def test_the_cnn_learns_an_idk_class_when_the_curated_labels_have_one():
    pytest.importorskip("torch")
    from mnist_idk import suggest_cnn
    from test_suggest import synthetic_digits

    images, labels = synthetic_digits(2000, seed=5)
    labels = labels.copy()
    labels[labels == 3] = suggest.IDK  # one pattern is what the curators list
    folds = np.random.default_rng(0).permutation(2000) % 2  # (arange % 2 would hold out only odd digits)
    probabilities = suggest_cnn.out_of_fold_probabilities(images.reshape(2000, -1) / 255, labels, folds, width=8,
                                                          epochs=3, classes=11)
    assert probabilities.shape == (2000, 11)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)
    # held out, the listed pattern is read as IDK and nothing else is
    assert (probabilities.argmax(1)[labels == suggest.IDK] == suggest.IDK).mean() > 0.9
    assert (probabilities.argmax(1)[labels != suggest.IDK] != suggest.IDK).mean() > 0.9
