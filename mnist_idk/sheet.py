"""Contact sheets: digits drawn large and crisp, captioned, so reviewers look rather than guess."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .curation import REASONS, Curation, Entry
from .errors import MnistIdkError
from .raw import Split

SCALE = 6  # 28 px -> 168 px, nearest neighbour so every pixel stays a sharp square
PAD = 4
CAPTION_LINES = 2
LINE_HEIGHT = 12
CARD_SHEET = Path("images") / "idk_examples.png"


@dataclass(frozen=True)
class Tile:
    image: np.ndarray  # (28, 28) uint8
    caption: Sequence[str]  # at most CAPTION_LINES short lines


def tile_box(position: int, columns: int, scale: int = SCALE) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the image part of tile ``position``; tests use it too."""
    side = 28 * scale
    row, column = divmod(position, columns)
    left = PAD + column * (side + PAD)
    top = PAD + row * (side + PAD + CAPTION_LINES * LINE_HEIGHT)
    return left, top, left + side, top + side


def render(tiles: Sequence[Tile], columns: int = 10, scale: int = SCALE) -> Image.Image:
    """One grayscale picture: white digits on black, captions below, laid out ``columns`` wide."""
    columns = max(1, min(columns, len(tiles)))
    rows = max(1, -(-len(tiles) // columns))
    side = 28 * scale
    width = PAD + columns * (side + PAD)
    height = PAD + rows * (side + PAD + CAPTION_LINES * LINE_HEIGHT)
    sheet = Image.new("L", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for position, tile in enumerate(tiles):
        left, top, right, bottom = tile_box(position, columns, scale)
        big = Image.fromarray(tile.image, "L").resize((side, side), Image.Resampling.NEAREST)
        sheet.paste(big, (left, top))
        for line_no, text in enumerate(tile.caption[:CAPTION_LINES]):
            draw.text((left, bottom + 1 + line_no * LINE_HEIGHT), text, fill="black", font=font)
    return sheet


def entry_caption(split: str, index: int, original: int, entry: Entry | None) -> list[str]:
    """``train 172: 9`` then ``IDK (ambiguous)`` when the image is listed."""
    lines = [f"{split} {index}: {original}"]
    if entry is not None:
        lines.append(f"{entry.label} ({entry.reason})")
    return lines


def listed_tiles(splits: Mapping[str, Split], curation: Curation) -> list[Tile]:
    """A tile for every listed image, train then test, in index order."""
    return [
        Tile(splits[split].images[e.index], entry_caption(split, e.index, e.original, e))
        for split in splits
        for e in curation.entries[split]
    ]


def save_png(image: Image.Image, path: Path) -> None:
    """Save without timestamps or other varying chunks, so equal sheets are equal bytes.

    Written beside ``path`` and renamed into place: an interrupted save leaves no half a PNG.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        image.save(partial, format="PNG", optimize=False, compress_level=6)  # 9: 2% smaller, 6x slower
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


CARD_PER_REASON = 10  # images per reason in the card's overview picture


def reason_sheet(reason: str) -> Path:
    return Path("images") / f"idk_{reason}.png"


def write_card_sheet(out: Path, splits: Mapping[str, Split], curation: Curation) -> list[Path]:
    """The card's pictures, shipped inside the build: an overview and one complete sheet per reason.

    The overview shows at most ``CARD_PER_REASON`` images of each reason, so it stays readable
    when hundreds of images are listed; the per-reason sheets show every one.
    """
    groups = grouped_tiles(splits, curation, "reason")
    overview = [tile for tiles in groups.values() for tile in tiles[:CARD_PER_REASON]]
    overview = overview or [Tile(np.zeros((28, 28), np.uint8), ["(no listed images)"])]
    paths = [out / CARD_SHEET]
    save_png(render(overview, columns=10, scale=5), paths[0])
    for reason, tiles in groups.items():
        paths.append(out / reason_sheet(reason))
        save_png(render(tiles, columns=10, scale=4), paths[-1])
    return paths


def index_tiles(split: Split, indices: Sequence[int], curation: Curation) -> list[Tile]:
    """Tiles for chosen images of one split, captioned with their list entry if they have one."""
    listed = curation.by_index(split.name)
    for index in indices:
        if not 0 <= index < len(split.labels):
            raise MnistIdkError(f"{split.name} has images 0..{len(split.labels) - 1}; there is no index {index}")
    return [
        Tile(split.images[i], entry_caption(split.name, i, int(split.labels[i]), listed.get(i))) for i in indices
    ]


PIXEL_LEVELS = " .:-=+*#%@"  # ink from none to full, in tenths
BRIDGE_INK = 57  # the bridge rule (curation_lists/README.md): 57 and more closes a bowl, about 50 or less leaves it open


def holes(image: np.ndarray, ink: int = BRIDGE_INK) -> int:
    """How many regions of background the ink encloses: pixels under ``ink``, joined side by side, not reaching the border.

    Ink joins diagonally too, so a bowl that touches a stroke only at a corner is closed. With
    ``ink=1`` any trace closes; with the default only ink the decision rules count as a bridge.
    """
    return len(enclosed(image, ink))


def enclosed(image: np.ndarray, ink: int = BRIDGE_INK) -> list[list[tuple[int, int]]]:
    """The holes themselves (as ``holes`` counts them): each the (row, column) pixels of one enclosed region.

    The background that reaches the border is grown with whole-array steps first, so the pixel
    by pixel walk below only visits the few pixels of the holes (``review forms`` runs this on
    every 8, 5, 3 and 2 of MNIST). Regions come in the order of their first pixel, row by row.
    """
    background = np.asarray(image) < ink
    outside = np.zeros_like(background)
    for edge in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):
        outside[edge] = background[edge]
    while True:
        grown = outside.copy()
        grown[1:] |= outside[:-1]
        grown[:-1] |= outside[1:]
        grown[:, 1:] |= outside[:, :-1]
        grown[:, :-1] |= outside[:, 1:]
        grown &= background
        if np.array_equal(grown, outside):
            break
        outside = grown
    inside = background & ~outside
    rows, columns = inside.shape
    seen = np.zeros_like(inside)
    regions = []
    for start in zip(*np.nonzero(inside)):
        if seen[start]:
            continue
        seen[start] = True
        stack, region = [start], []
        while stack:
            row, column = stack.pop()
            region.append((int(row), int(column)))
            for r, c in ((row - 1, column), (row + 1, column), (row, column - 1), (row, column + 1)):
                if 0 <= r < rows and 0 <= c < columns and inside[r, c] and not seen[r, c]:
                    seen[r, c] = True
                    stack.append((r, c))
        regions.append(region)
    return regions


def darkest_speck(image: np.ndarray) -> tuple[int, int, int] | None:
    """(value, row, column) of the darkest pixel inside the ink that encloses as a hole once it counts as background.

    The dark-hole rule reads such a speck in a blot as a loop when it is under about 100 and as no
    hole from 115 on; the bridge-rule holes themselves are not specks. None when no pixel of the ink
    is ever enclosed; a bridge-rule hole that only widens is no speck.
    """
    image = np.asarray(image)
    holes_now = {p for region in enclosed(image) for p in region}
    for ink in range(BRIDGE_INK + 1, 256):
        inside = [(int(image[p]), p) for region in enclosed(image, ink) if holes_now.isdisjoint(region)
                  for p in region if image[p] >= BRIDGE_INK]
        if inside:
            value, (row, column) = min(inside)
            return value, row, column
    return None


def pixel_grid(image: np.ndarray, caption: str) -> str:
    """The image as text, one character per pixel (``PIXEL_LEVELS``), rows and columns numbered.

    Whether a stroke closes a bowl often comes down to one row of pixels, which a picture scaled
    for the eye hides and this shows: the decision rules cite such rows. The caption adds how many
    holes the ink encloses by the bridge rule and, if fainter ink would close more, how faint (the
    weakest bridge), and the darkest speck inside the ink (pixels of 57 and more enclosed once they
    count as background), which the dark-hole rule weighs in thick 8s.
    """
    levels = np.minimum(image.astype(np.int32) * len(PIXEL_LEVELS) // 256, len(PIXEL_LEVELS) - 1)
    closed = holes(image)
    most, ink = max((holes(image, ink), ink) for ink in range(1, BRIDGE_INK))
    fainter = f"{most} if ink of {ink} or more counts" if most > closed else "no more with fainter ink"
    caption += f" | enclosed holes: {closed} with ink of {BRIDGE_INK} or more (the bridge rule); {fainter}"
    speck = darkest_speck(image)
    caption += (f"; darkest speck inside the ink: {speck[0]} at row {speck[1]}, column {speck[2]} (the dark-hole "
                "rule: under about 100 a hole, 115 and more none)" if speck else "; no speck inside the ink")
    lines = [caption, "   " + "".join(str(column % 10) for column in range(image.shape[1]))]
    lines += [f"{row:2d} " + "".join(PIXEL_LEVELS[v] for v in values) for row, values in enumerate(levels)]
    return "\n".join(lines)


def grouped_tiles(splits: Mapping[str, Split], curation: Curation, by: str) -> dict[str, list[Tile]]:
    """Every listed image, grouped by reason code or by original digit (groups in a fixed order)."""
    groups: dict[str, list[Tile]] = {}
    for name, split in splits.items():
        for entry in curation.entries[name]:
            key = entry.reason if by == "reason" else str(entry.original)
            tile = Tile(split.images[entry.index], entry_caption(name, entry.index, entry.original, entry))
            groups.setdefault(key, []).append(tile)
    order = list(REASONS) if by == "reason" else [str(d) for d in range(10)]
    return {key: groups[key] for key in order if key in groups}
