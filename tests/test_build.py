"""Build, card and validate on the real MNIST files, through the API and the CLI as a user types it."""

from __future__ import annotations

import gzip
import shutil

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from mnist_idk import curation
from mnist_idk.build import build
from mnist_idk.cli import main
from mnist_idk.errors import MnistIdkError
from mnist_idk.features import FEATURES, IDK_ID, data_file
from mnist_idk.raw import RAW_FILES

from conftest import REPO, workspace

HEADER = "index,original,label,reason,note\n"
NASTY_NOTE = 'pipe | <script>alert(1)</script> **bold** `code` [link](x)'


def tree(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_lists(tmp_path_factory):
    root = tmp_path_factory.mktemp("lists")
    (root / "train.csv").write_text(HEADER + f'0,5,IDK,ambiguous,"{NASTY_NOTE.replace(chr(34), "")}"\n7,3,8,mislabeled,an 8\n')
    (root / "test.csv").write_text(HEADER + "0,7,IDK,outlier,test row\n")
    return root


@pytest.fixture(scope="module")
def small_build(small_lists, tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "mnist_idk"
    build(workspace(small_lists), out)  # validates
    return out


def test_load_dataset_gives_known_rows(small_build, real_splits):
    ds = datasets.load_dataset(str(small_build), cache_dir=str(small_build.parent / "cache"))
    train, test = ds["train"], ds["test"]
    assert (train.num_rows, test.num_rows) == (60000, 10000)
    assert train.features == FEATURES and train.features["label"].names[IDK_ID] == "IDK"
    row = train[0]
    assert (row["original_label"], row["label"], row["reason"], row["mnist_index"]) == (5, IDK_ID, "ambiguous", 0)
    assert (train[7]["label"], train[7]["original_label"], train[7]["reason"]) == (8, 3, "mislabeled")
    assert (train[1]["label"], train[1]["reason"]) == (0, None)  # unlisted rows keep their MNIST label
    assert test[0]["label"] == IDK_ID and test[1]["label"] == 2
    np.testing.assert_array_equal(np.asarray(train[59999]["image"]), real_splits["train"].images[59999])
    labels = np.asarray(train["label"])
    assert (labels == IDK_ID).sum() == 1 and np.array_equal(np.asarray(train["mnist_index"]), np.arange(60000))


def test_the_shipped_lists_build_with_every_listed_image_idk(working_build):
    listed = curation.load(workspace(), "working")
    for split in ("train", "test"):
        table = pq.read_table(working_build / data_file(split))
        labels, reasons = table["label"].to_numpy(), table["reason"].to_pylist()
        for entry in listed.entries[split]:
            assert labels[entry.index] == FEATURES["label"].str2int(entry.label)
            assert reasons[entry.index] == entry.reason
        assert sum(r is not None for r in reasons) == len(listed.entries[split])


def test_builds_are_byte_identical_across_runs_and_worker_counts(small_build, small_lists, tmp_path):
    again = tmp_path / "again"
    build(workspace(small_lists), again, workers=1, validate=False)
    assert tree(again) == tree(small_build)


def test_card_yaml_matches_the_files_and_notes_are_escaped(small_build):
    text = (small_build / "README.md").read_text("utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["license"] == "cc-by-sa-3.0" and front["task_categories"] == ["image-classification"]
    assert front["curation_version"] == "working"
    assert front["configs"][0]["data_files"] == [{"split": s, "path": data_file(s)} for s in ("train", "test")]
    splits = {s["name"]: s for s in front["dataset_info"]["splits"]}
    assert splits["train"]["num_examples"] == 60000 and splits["test"]["num_examples"] == 10000
    assert front["dataset_info"]["download_size"] == sum((small_build / data_file(s)).stat().st_size for s in splits)
    assert "<script>" not in text
    row = next(line for line in text.splitlines() if line.startswith("| train | 0 | 5 | IDK |"))
    cells = [c.strip() for c in __import__("re").split(r"(?<!\\)\|", row)[1:-1]]
    assert len(cells) == 6 and cells[:5] == ["train", "0", "5", "IDK", "ambiguous"]
    table = pq.read_table(small_build / data_file("train"), columns=["label"])["label"].to_numpy()
    after = next(line for line in text.splitlines() if line.startswith("| train | after |"))
    assert after.split("|")[3].strip() == str((table == 0).sum())  # digit 0 after curation
    assert "Unreleased working lists" in text


def test_a_failed_build_leaves_the_previous_output_untouched(small_build, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(small_build, out)
    before = tree(out)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.csv").write_text(HEADER + "0,4,IDK,noisy,wrong original\n")
    (bad / "test.csv").write_text(HEADER)
    monkeypatch.setenv("MNIST_IDK_LISTS_DIR", str(bad))
    result = CliRunner().invoke(main, ["build", "--out", str(out), "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(f"... using curation lists: {bad} (MNIST_IDK_LISTS_DIR)")
    assert "\nerror: 1 problem in the curation lists:" in result.stderr
    assert "train.csv:2: original is 4 but raw train label 0 is 5" in result.stderr
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "out"]  # no staging left behind


def raw_copy(tmp_path, change=None):
    raw = tmp_path / "raw"
    shutil.copytree(REPO / "raw" / "mnist", raw)
    if change:
        name, edit = change
        data = bytearray(gzip.decompress((raw / name).read_bytes()))
        edit(data)
        (raw / name).unlink()
        (raw / name.removesuffix(".gz")).write_bytes(bytes(data))  # uncompressed files are accepted too
    return raw


@pytest.mark.parametrize("name", ["t10k-labels-idx1-ubyte", "train-images-idx3-ubyte"])
def test_corrupted_raw_file_names_the_file_and_both_digests(tmp_path, name):
    def flip(data):
        data[-1] ^= 1

    raw = raw_copy(tmp_path, (f"{name}.gz", flip))
    result = CliRunner().invoke(main, ["build", "--raw-dir", str(raw), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert f"{raw / name}: sha256 of the decompressed content is" in result.output
    pinned = next(r for r in RAW_FILES.values() if r.name == name)
    assert f"expected {pinned.sha256}" in result.output
    assert not (tmp_path / "o").exists()


def test_a_corrupted_gzip_stream_is_named_with_its_offset(tmp_path):
    raw = raw_copy(tmp_path)
    path = raw / "train-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF
    path.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["build", "--raw-dir", str(raw), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{path}: at byte offset 0: not a valid gzip stream" in result.output or f"{path}: sha256" in result.output


def test_missing_raw_file_says_how_to_fetch_it(tmp_path):
    raw = raw_copy(tmp_path)
    (raw / "train-images-idx3-ubyte.gz").unlink()
    result = CliRunner().invoke(main, ["validate", str(tmp_path), "--raw-dir", str(raw)])
    assert result.exit_code == 2
    result = CliRunner().invoke(main, ["build", "--raw-dir", str(raw), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "missing train-images-idx3-ubyte" in result.output
    assert "mnist-idk fetch" in result.output


def tampered(small_build, tmp_path, change):
    copy = tmp_path / "copy"
    shutil.copytree(small_build, copy)
    change(copy)
    return copy


def rewrite_train(copy, edit):
    path = copy / data_file("train")
    table = pq.read_table(path)
    pq.write_table(edit(table), path)


def bump_after_count(card):
    """Add one to the card's 'train after' count of digit 0."""
    lines = card.read_text("utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("| train | after | "))
    cells = lines[at].split(" | ")
    cells[2] = str(int(cells[2]) + 1)
    lines[at] = " | ".join(cells)
    card.write_text("".join(lines), "utf-8")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: rewrite_train(c, lambda t: t.set_column(1, "label", pa.array(
            np.r_[[3], t["label"].to_numpy()[1:]], pa.int64()))), "label differs from raw labels + working lists at rows 0"),
        (lambda c: rewrite_train(c, lambda t: t.slice(1)), "59999 rows, expected 60000"),
        (lambda c: rewrite_train(c, lambda t: t.set_column(0, "image", t["image"].take(
            np.r_[[1, 0], np.arange(2, t.num_rows)]))), "pixels differ from the raw images at rows 0, 1"),
        (lambda c: bump_after_count(c / "README.md"), "count table does not match"),
    ],
    ids=["label", "row-dropped", "images-swapped", "card-count"],
)
def test_validate_reports_tampering(small_build, small_lists, tmp_path, change, expected, monkeypatch):
    copy = tampered(small_build, tmp_path, change)
    monkeypatch.setenv("MNIST_IDK_LISTS_DIR", str(small_lists))
    result = CliRunner().invoke(main, ["validate", str(copy), "--skip-load-dataset"])
    assert result.exit_code == 2, result.output
    assert expected in result.output


def test_validate_accepts_the_untouched_build(small_build, small_lists, monkeypatch):
    monkeypatch.setenv("MNIST_IDK_LISTS_DIR", str(small_lists))
    result = CliRunner().invoke(main, ["validate", str(small_build)])
    assert result.exit_code == 0 and result.stdout.strip() == f"{small_build}: valid"


def test_unknown_release_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["build", "--version", "v9.9.9", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no such release" in result.output and "v1.0.0" in result.output


def test_help_explains_every_command():
    runner = CliRunner()
    for name in main.list_commands(None):
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0 and len(result.output.splitlines()) > 4, name


def test_api_raises_our_error_type(tmp_path):
    with pytest.raises(MnistIdkError):
        build(workspace(), tmp_path / "o", version="nonsense")


def test_datasets_view_reads_labels_rows_and_card_with_datasets(small_build, small_lists, real_splits):
    from mnist_idk.datasets_view import DatasetsView, datasets_problems
    from mnist_idk.validate import expected_columns

    cur = curation.load(workspace(small_lists), "working", {n: s.labels for n, s in real_splits.items()})
    labels = {name: expected_columns(split, cur)[0] for name, split in real_splits.items()}
    assert datasets_problems(str(small_build), labels) == []
    wrong = {**labels, "train": np.r_[[3], labels["train"][1:]]}
    assert datasets_problems(str(small_build), wrong) == [f"{small_build}: load_dataset gives other train labels than the lists"]
    short = {**labels, "test": labels["test"][:-1]}
    found = datasets_problems(str(small_build), short)
    assert any("datasets reads 10000 examples for test from dataset_info, expected 9999" in p for p in found)
    assert any("load_dataset gives 10000 test rows, expected 9999" in p for p in found)
    with DatasetsView() as view:  # a crash in its process is a finding, never a pass
        assert "the datasets check failed" in view.check(small_build / "nowhere", labels)()[0]


def test_validate_with_load_dataset_reports_tampered_parquet_metadata(small_build, small_lists, tmp_path, monkeypatch):
    def retag(copy):
        path = copy / data_file("test")
        table = pq.read_table(path)
        meta = dict(table.schema.metadata)
        meta[b"huggingface"] = meta[b"huggingface"].replace(b'"IDK"', b'"idk"')
        pq.write_table(table.replace_schema_metadata(meta), path)

    copy = tampered(small_build, tmp_path, retag)
    monkeypatch.setenv("MNIST_IDK_LISTS_DIR", str(small_lists))
    result = CliRunner().invoke(main, ["validate", str(copy)])
    assert result.exit_code == 2 and "features in the Parquet metadata are" in result.output
