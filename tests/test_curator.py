"""The curator's tools: contact sheets, diff, release, and the GitHub workflows that run them."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
import yaml
from click.testing import CliRunner
from PIL import Image

from mnist_idk import curation, diff, sheet
from mnist_idk.cli import main
from mnist_idk.errors import MnistIdkError
from mnist_idk.release import release

from conftest import RAW, REPO, workspace

HEADER = "index,original,label,reason,note\n"


def write_lists(root, train_rows, test_rows=()):
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.csv").write_text(HEADER + "".join(train_rows), "utf-8")
    (root / "test.csv").write_text(HEADER + "".join(test_rows), "utf-8")
    return root


@pytest.fixture
def lists(tmp_path, real_splits):
    """A lists root with release v1.0.0 = {train 0, train 2}; working lists equal to it."""
    root = write_lists(tmp_path / "lists", ["0,5,IDK,ambiguous,a 5 or a 3\n", "2,4,IDK,deformed,broken\n"])
    labels = {name: split.labels for name, split in real_splits.items()}
    release(workspace(root), "v1.0.0", "first", labels, datetime.date(2026, 1, 2))
    return root, labels


def test_show_draws_each_image_upscaled_and_captioned(tmp_path, real_splits, monkeypatch):
    monkeypatch.setenv("MNIST_IDK_LISTS_DIR", str(write_lists(tmp_path / "lists", ["1,0,IDK,noisy,smudge\n"])))
    out = tmp_path / "look.png"
    result = CliRunner().invoke(main, ["show", "train", "1", "7", "59999", "--out", str(out), "--columns", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    picture = np.asarray(Image.open(out).convert("L"))
    for position, index in enumerate([1, 7, 59999]):
        left, top, right, bottom = sheet.tile_box(position, columns=2)
        expected = np.kron(real_splits["train"].images[index], np.ones((sheet.SCALE, sheet.SCALE), np.uint8))
        np.testing.assert_array_equal(picture[top:bottom, left:right], expected)
    captions = [t.caption for t in sheet.index_tiles(real_splits["train"], [1, 7], curation.load(
        workspace(tmp_path / "lists"), "working"))]
    assert captions == [["train 1: 0", "IDK (noisy)"], [f"train 7: {real_splits['train'].labels[7]}"]]


def test_show_writes_under_build_by_default_and_never_half_a_png(tmp_path, real_splits, monkeypatch):
    monkeypatch.setenv("MNIST_IDK_LISTS_DIR", str(write_lists(tmp_path / "lists", ["1,0,IDK,noisy,smudge\n"])))
    monkeypatch.setenv("MNIST_IDK_RAW_DIR", str(RAW))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["show", "train", "7"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(Path("build") / "show.png")
    assert (tmp_path / "build" / "show.png").is_file() and not (tmp_path / "show.png").exists()
    before = (tmp_path / "build" / "show.png").read_bytes()

    def broken_save(image, fp, *args, **kwargs):  # the disk fills up halfway through
        Path(fp).write_bytes(b"\x89PNG half")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    result = CliRunner().invoke(main, ["show", "train", "1"])
    assert result.exit_code != 0
    assert (tmp_path / "build" / "show.png").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "build").iterdir()) == ["show.png"]


def test_show_pixels_prints_every_pixel_as_its_ink_level(tmp_path, real_splits, monkeypatch):
    monkeypatch.setenv("MNIST_IDK_LISTS_DIR", str(write_lists(tmp_path / "lists", ["1,0,IDK,noisy,smudge\n"])))
    result = CliRunner().invoke(main, ["show", "train", "1", "7", "--out", str(tmp_path / "p.png"), "--pixels"])
    assert result.exit_code == 0, result.output
    blocks = result.stdout.split("\n\n")
    assert blocks[0].strip() == str(tmp_path / "p.png")
    for block, index in zip(blocks[1:], [1, 7]):
        caption, ruler, *rows = block.strip("\n").split("\n")
        assert caption.startswith(f"train {index}: {real_splits['train'].labels[index]}")
        assert ruler == "   " + "0123456789" * 2 + "01234567" and len(rows) == 28
        assert [row[:3] for row in rows] == [f"{r:2d} " for r in range(28)]
        read = np.array([[sheet.PIXEL_LEVELS.index(c) for c in row[3:]] for row in rows])
        image = real_splits["train"].images[index].astype(int)
        np.testing.assert_array_equal(read == 0, image < 26)  # no ink where there is none, and only there
        assert (read[image == 255] == 9).all() and (np.abs(read - image / 25.6) <= 1).all()
    assert "IDK (noisy)" in blocks[1]
    for block, index in zip(blocks[1:], [1, 7]):
        image = real_splits["train"].images[index]
        assert f"enclosed holes: {sheet.holes(image)} with ink of 57 or more (the bridge rule); " \
            in block.strip("\n").split("\n")[0]


def test_pixel_grid_says_how_faint_a_closing_bridge_is():
    """A bowl closed through a pixel of 43 is open by the rule, and the caption says 43 would close it."""
    image = np.zeros((8, 8), np.uint8)
    image[2:6, 2:6] = 255
    image[3:5, 3:5] = 0
    image[2, 3] = 43
    assert sheet.pixel_grid(image, "x").split("\n")[0] == \
        "x | enclosed holes: 0 with ink of 57 or more (the bridge rule); 1 if ink of 43 or more counts; " \
        "no speck inside the ink"
    image[2, 3] = 255
    assert sheet.pixel_grid(image, "x").split("\n")[0] == \
        "x | enclosed holes: 1 with ink of 57 or more (the bridge rule); no more with fainter ink; " \
        "no speck inside the ink"


def test_darkest_speck_is_the_grey_pixel_a_blot_encloses():
    """The dark-hole rule's speck: the darkest pixel of the ink that is enclosed once it counts as background."""
    blot = np.zeros((9, 9), np.uint8)
    blot[1:8, 1:8] = 255
    blot[4, 4], blot[3, 5] = 116, 97
    assert sheet.darkest_speck(blot) == (97, 3, 5)
    blot[3, 5] = 255
    assert sheet.darkest_speck(blot) == (116, 4, 4)
    assert "darkest speck inside the ink: 116 at row 4, column 4" in sheet.pixel_grid(blot, "x")
    blot[4, 4] = 255
    blot[1, 4] = 60  # grey on the edge touches the background: not enclosed, no speck
    assert sheet.darkest_speck(blot) is None


def test_darkest_speck_on_real_eights(real_splits):
    """Train 54656's lower blot keeps a speck of 116 (no hole: 115 and more); train 17756's keeps 97 (a loop)."""
    assert sheet.darkest_speck(real_splits["train"].images[54656])[0] == 116
    assert sheet.darkest_speck(real_splits["train"].images[17756])[0] == 97


def test_holes_counts_what_the_bridge_rule_closes():
    """A bowl closed through a pixel of 57 or more is a hole; one of about 50 or less is open; a diagonal touch closes."""
    closed = np.zeros((8, 8), np.uint8)
    closed[2:6, 2:6] = 255
    closed[3:5, 3:5] = 0
    assert sheet.holes(closed) == 1 and sheet.holes(np.zeros((8, 8), np.uint8)) == 0
    for bridge, expected in ((255, 1), (57, 1), (56, 0), (40, 0)):
        gapped = closed.copy()
        gapped[2, 3] = bridge  # a pixel of the ring, between the hole and the outside
        assert sheet.holes(gapped) == expected, bridge
        assert sheet.holes(gapped, 1) == 1  # any trace of ink closes it
    # ink joins at corners: a ring whose corner pixels are missing still encloses its middle
    diamond = np.zeros((7, 7), np.uint8)
    for r, c in ((1, 3), (2, 2), (2, 4), (3, 1), (3, 5), (4, 2), (4, 4), (5, 3)):
        diamond[r, c] = 200
    assert sheet.holes(diamond) == 1
    two = np.zeros((8, 12), np.uint8)
    two[1:7, 1:11] = 255
    two[3:5, 3:5] = 0
    two[3:5, 7:9] = 0
    assert sheet.holes(two) == 2


def walked_holes(image: np.ndarray, ink: int) -> list[list[tuple[int, int]]]:
    """The plain definition, as an oracle: walk every background region pixel by pixel, keep those
    that never touch the border (row-major order of first pixels, depth-first within a region)."""
    background = image < ink
    rows, columns = background.shape
    seen = np.zeros_like(background)
    regions = []
    for start in zip(*np.nonzero(background)):
        if seen[start]:
            continue
        seen[start] = True
        stack, region, touches = [start], [], False
        while stack:
            row, column = stack.pop()
            region.append((int(row), int(column)))
            touches |= row in (0, rows - 1) or column in (0, columns - 1)
            for r, c in ((row - 1, column), (row + 1, column), (row, column - 1), (row, column + 1)):
                if 0 <= r < rows and 0 <= c < columns and background[r, c] and not seen[r, c]:
                    seen[r, c] = True
                    stack.append((r, c))
        if not touches:
            regions.append(region)
    return regions


def test_enclosed_finds_exactly_the_regions_a_pixel_walk_finds_on_real_digits(real_splits):
    """The whole-array growth of the outside is only a shortcut: same regions, same order, same pixels."""
    images = real_splits["train"].images
    for index in range(0, 60000, 97):  # 619 digits of every kind
        for ink in (57, 120):
            assert sheet.enclosed(images[index], ink) == walked_holes(images[index], ink), (index, ink)


@settings(max_examples=300, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.sampled_from([0, 40, 57, 255])))
def test_enclosed_matches_the_pixel_walk_on_any_image(image):
    assert sheet.enclosed(image) == walked_holes(image, sheet.BRIDGE_INK)


def test_show_rejects_an_index_outside_the_split(tmp_path):
    result = CliRunner().invoke(main, ["show", "test", "10000", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "no index 10000" in result.output
    assert not (tmp_path / "x.png").exists()


def test_sheet_groups_listed_images_by_reason_and_digit(lists, tmp_path, monkeypatch):
    root, _ = lists
    monkeypatch.setenv("MNIST_IDK_LISTS_DIR", str(root))
    runner = CliRunner()
    by_reason = runner.invoke(main, ["sheet", "--version", "v1.0.0", "--out-dir", str(tmp_path / "r")])
    assert by_reason.exit_code == 0, by_reason.output
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["reason-ambiguous.png", "reason-deformed.png"]
    by_digit = runner.invoke(main, ["sheet", "--by", "digit", "--split", "train", "--out-dir", str(tmp_path / "d")])
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["digit-4.png", "digit-5.png"], by_digit.output


def test_diff_finds_added_removed_relabelled_and_note_changes(tmp_path):
    old = write_lists(tmp_path / "old", ["0,5,IDK,ambiguous,a\n", "2,4,IDK,deformed,b\n", "3,1,IDK,noisy,c\n"])
    new = write_lists(tmp_path / "new", ["2,4,IDK,outlier,b\n", "3,1,IDK,noisy,c; clearer\n", "5,2,IDK,noisy,d\n"],
                      ["0,7,IDK,deformed,e\n"])
    found = diff.diff(diff.read_side(workspace(), str(old / "train.csv")),
                      diff.read_side(workspace(), str(new / "train.csv")))
    assert [(d.index, d.kind) for d in found] == [(0, "removed"), (2, "relabelled"), (3, "note"), (5, "added")]
    assert diff.summary(found) == "1 added, 1 removed, 1 relabelled, 1 note changed"
    # The sheet's captions read before -> after; a removal goes back to its MNIST digit.
    assert [diff.caption(d)[1] for d in found] == ["IDK (ambiguous) -> 5", "IDK (deformed) -> IDK (outlier)",
                                                   "IDK (noisy) -> IDK (noisy)", "2 -> IDK (noisy)"]
    assert diff.caption(found[0])[0] == "removed: train 0"
    assert diff.summary(found + [d for d in found if d.kind == "note"]) == \
        "1 added, 1 removed, 1 relabelled, 2 notes changed"
    both = diff.diff(diff.read_side(workspace(old), "working"), diff.read_side(workspace(new), "working"))
    assert [(d.split, d.index) for d in both][-1] == ("test", 0)
    markdown = diff.to_markdown(found)
    assert markdown.splitlines()[0].startswith("| change | split | index")
    assert len(markdown.splitlines()) == 2 + len(found)
    result = CliRunner().invoke(main, ["diff", str(old / "train.csv"), str(new / "train.csv"),
                                       "--sheet", str(tmp_path / "d.png")])
    assert result.exit_code == 0, result.output
    assert "relabelled" in result.output and Image.open(tmp_path / "d.png").size[0] > 0


def test_diff_against_a_git_revision(tmp_path):
    root = write_lists(tmp_path / "repo" / "curation_lists", ["0,5,IDK,ambiguous,a\n"])
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "-q"], cwd=root.parent, check=True)
    subprocess.run([*git, "add", "."], cwd=root.parent, check=True)
    subprocess.run([*git, "commit", "-qm", "lists"], cwd=root.parent, check=True)
    write_lists(root, ["0,5,IDK,ambiguous,a\n", "9,4,IDK,noisy,new\n"])
    found = diff.diff(diff.read_side(workspace(root), "HEAD"), diff.read_side(workspace(root), "working"))
    assert [(d.index, d.kind) for d in found] == [(9, "added")]
    with pytest.raises(MnistIdkError, match="not a release"):
        diff.read_side(workspace(root), "no-such-branch")


def test_release_freezes_lists_records_digests_and_writes_the_changelog(lists):
    root, labels = lists
    assert curation.lint(workspace(root), labels) == []
    (root / "train.csv").write_text(HEADER + "0,5,IDK,ambiguous,a 5 or a 3\n4,9,IDK,noisy,x\n", "utf-8")
    target = release(workspace(root), "1.1.0", "Adds one.", labels, datetime.date(2026, 2, 3))
    assert target == root / "releases" / "v1.1.0"
    assert (target / "train.csv").read_bytes() == (root / "train.csv").read_bytes()
    assert curation.check_release_sums(target) == []
    changelog = (root / "CHANGELOG.md").read_text("utf-8")
    assert changelog.index("## v1.1.0 (2026-02-03)") < changelog.index("## v1.0.0 (2026-01-02)")
    section = changelog.split("## v1.1.0")[1].split("## v1.0.0")[0]
    assert "Adds one." in section and "1 added, 1 removed" in section
    assert "| added | train | 4 | 9 |" in section and "| removed | train | 2 | 4 |" in section


@pytest.mark.parametrize(
    ("version", "train", "error"),
    [
        ("1.0.0", "0,5,IDK,ambiguous,a 5 or a 3\n", "already exists"),
        ("0.9.0", "0,5,IDK,ambiguous,a 5 or a 3\n", "not greater"),
        ("1.0.1", "0,5,IDK,ambiguous,a 5 or a 3\n4,9,IDK,noisy,x\n", "patch release"),
        ("1.1.0", "0,5,IDK,ambiguous,a 5 or a 3\n2,4,IDK,deformed,broken\n", "nothing to release"),
        ("1.1.0", "0,6,IDK,ambiguous,wrong original\n", "original"),
        ("banana", "0,5,IDK,ambiguous,x\n", "vX.Y.Z"),
    ],
)
def test_release_refuses_and_leaves_nothing_behind(lists, version, train, error):
    root, labels = lists
    (root / "train.csv").write_text(HEADER + train, "utf-8")
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    changelog = (root / "CHANGELOG.md").read_bytes()
    with pytest.raises(MnistIdkError, match=error):
        release(workspace(root), version, "", labels)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == before
    assert (root / "CHANGELOG.md").read_bytes() == changelog


def test_a_note_only_change_may_be_a_patch_release(lists):
    root, labels = lists
    (root / "train.csv").write_text(HEADER + "0,5,IDK,ambiguous,a 5 or a 3\n2,4,IDK,deformed,broken stroke\n")
    assert release(workspace(root), "v1.0.1", "", labels).name == "v1.0.1"


def test_lint_catches_an_edited_released_file(lists, monkeypatch):
    root, _ = lists
    released = root / "releases" / "v1.0.0" / "train.csv"
    released.write_text(released.read_text("utf-8").replace("a 5 or a 3", "a 5 or an 8"), "utf-8")
    monkeypatch.setenv("MNIST_IDK_LISTS_DIR", str(root))
    result = CliRunner().invoke(main, ["lint", "--no-raw"])
    assert result.exit_code == 2
    assert f"{released}:0: released file changed" in result.output


def test_cli_release_command(lists, monkeypatch):
    root, _ = lists
    monkeypatch.setenv("MNIST_IDK_LISTS_DIR", str(root))
    (root / "train.csv").write_text(HEADER + "0,5,IDK,ambiguous,a 5 or a 3\n")
    result = CliRunner().invoke(main, ["release", "1.0.1", "-m", "x"])
    assert result.exit_code == 2 and "patch release" in result.output
    result = CliRunner().invoke(main, ["release", "2.0.0", "-m", "Removes train 2."])
    assert result.exit_code == 0, result.output
    assert workspace(root).released_versions() == ["v1.0.0", "v2.0.0"]


def tool(name):
    """The tool installed next to this Python (the test extra), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name) or name


@pytest.mark.parametrize("command", [["actionlint"], ["zizmor", "--offline", "--no-progress"]])
def test_workflows_pass_actionlint_and_zizmor(command):
    workflows = sorted(str(p) for p in (REPO / ".github" / "workflows").glob("*.yml"))
    assert len(workflows) == 3
    result = subprocess.run([tool(command[0]), *command[1:], *workflows], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_relabel_prs_run_without_secrets_or_write_access():
    text = (REPO / ".github" / "workflows" / "curation.yml").read_text("utf-8")
    workflow = yaml.safe_load(text)
    assert list(workflow[True]) == ["pull_request"]  # YAML 1.1 reads the key `on` as True
    assert workflow["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in workflow["jobs"].values())
    assert "secrets." not in text


def test_relabel_prs_may_add_a_release_but_never_change_a_released_file(tmp_path):
    """The curation workflow's guard step, run as written in a repository with an origin and a PR branch."""
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "curation.yml").read_text("utf-8"))
    step = next(s for s in workflow["jobs"]["review"]["steps"] if s.get("name") == "Released files never change")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main"]
    base, pr = tmp_path / "base", tmp_path / "pr"
    release = base / "curation_lists" / "releases" / "v1.0.0"
    release.mkdir(parents=True)
    (release / "train.csv").write_text("index,original,label,reason,note\n", "utf-8")
    subprocess.run([*git, "init", "-q", str(base)], check=True)
    subprocess.run([*git, "-C", str(base), "add", "."], check=True)
    subprocess.run([*git, "-C", str(base), "commit", "-qm", "v1.0.0"], check=True)
    subprocess.run([*git, "clone", "-q", str(base), str(pr)], check=True)

    def guard():
        return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=pr, capture_output=True, text=True,
                              env={**os.environ, "BASE_REF": "main"}, timeout=60)

    added = pr / "curation_lists" / "releases" / "v1.1.0" / "train.csv"
    added.parent.mkdir()
    added.write_text("index,original,label,reason,note\n", "utf-8")
    (pr / "curation_lists" / "train.csv").write_text("index,original,label,reason,note\n1,0,IDK,noisy,a smudge\n")
    subprocess.run([*git, "-C", str(pr), "add", "."], check=True)
    subprocess.run([*git, "-C", str(pr), "commit", "-qm", "a new release"], check=True)
    assert guard().returncode == 0
    (pr / "curation_lists" / "releases" / "v1.0.0" / "train.csv").write_text("index,original,label,reason,note\n1,0,IDK,noisy,x\n")
    subprocess.run([*git, "-C", str(pr), "commit", "-qam", "edit a release"], check=True)
    refused = guard()
    assert refused.returncode == 1 and "curation_lists/releases/v1.0.0/train.csv" in refused.stdout, refused.stdout
