"""Score a model's predictions file against a release: the one agreed way to report on MNIST-IDK.

A predictions file is CSV or Parquet with columns ``mnist_index`` and ``prediction`` (``0``-``9``
or ``IDK``; ``10``, the dataset's class id for IDK, is accepted too), optionally ``confidence``
(a number, higher = surer), and exactly one row per image of the split, in any order. Every
defect is reported with the file and the CSV line (or Parquet row, counted from 0), all at
once, before anything is scored. The figures themselves come from ``mnist_idk.metrics``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import MnistIdkError
from .metrics import CLASSES, IDK_CLASS, Scores

REQUIRED = ("mnist_index", "prediction")
OPTIONAL = ("confidence",)
SHOWN_PROBLEMS = 20  # more than this and the rest are counted, not listed


@dataclass(frozen=True)
class Predictions:
    """One model's answers in ``mnist_index`` order: class ids 0..10 and confidences (or None)."""

    path: Path
    predicted: np.ndarray
    confidence: np.ndarray | None


def _class_id(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value) if 0 <= value <= IDK_CLASS else None
    if isinstance(value, str):
        if value in CLASSES:
            return CLASSES.index(value)
        return IDK_CLASS if value == "10" else None
    return None


def _index(value) -> int | None:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and value == value.strip():
        return int(value)
    return None


def _number(value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _rows(path: Path) -> tuple[list[str], list[tuple[str, list]]]:
    """(column names, [(where, values)]) from a CSV or Parquet file; ``where`` is 'line N' / 'row N'."""
    if not path.is_file():
        raise MnistIdkError(f"{path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the user
            raise MnistIdkError(f"{path}: not a readable Parquet file ({exc})") from None
        columns = table.column_names
        values = [table[name].to_pylist() for name in columns]
        return columns, [(f"row {i}", [column[i] for column in values]) for i in range(table.num_rows)]
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MnistIdkError(f"{path}: not UTF-8 text (byte offset {exc.start}); expected CSV or .parquet") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise MnistIdkError(f"{path}:1: empty file; expected a header {','.join(REQUIRED)}[,confidence]")
    rows = [(f"line {reader.line_num}", row) for row in reader]
    return [name.strip() for name in header], rows


def read_predictions(path: Path, size: int, split: str = "test") -> Predictions:
    """Parse and check a predictions file for a split of ``size`` images; every defect in one error."""
    path = Path(path)
    columns, rows = _rows(path)
    missing = [name for name in REQUIRED if name not in columns]
    unknown = [name for name in columns if name not in REQUIRED + OPTIONAL]
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if missing or unknown or duplicated:
        got = ",".join(columns) or "nothing"
        raise MnistIdkError(f"{path}:1: columns are {got!r}, expected mnist_index,prediction and optionally confidence"
                            + (f" (missing {', '.join(missing)})" if missing else "")
                            + (f" (unknown {', '.join(map(repr, unknown))})" if unknown else "")
                            + (f" (repeated {', '.join(duplicated)})" if duplicated else ""))
    at = {name: columns.index(name) for name in columns}
    has_confidence = "confidence" in at
    predicted = np.full(size, -1, np.int64)
    confidence = np.full(size, np.nan) if has_confidence else None
    seen: dict[int, str] = {}
    problems: list[str] = []
    for where, row in rows:
        sep = ":" if where.startswith("line") else ": "
        place = f"{path}{sep}{where.removeprefix('line ')}"
        if len(row) != len(columns):
            problems.append(f"{place}: {len(row)} fields, expected {len(columns)} ({','.join(columns)})")
            continue
        index = _index(row[at["mnist_index"]])
        label = _class_id(row[at["prediction"]])
        if index is None or not 0 <= index < size:
            problems.append(f"{place}: mnist_index {row[at['mnist_index']]!r} is not an integer in 0..{size - 1} "
                            f"(the {split} split has {size} images)")
            index = None
        elif index in seen:
            problems.append(f"{place}: mnist_index {index} is listed twice (also {seen[index]})")
            index = None
        else:
            seen[index] = where
        if label is None:
            problems.append(f"{place}: prediction {row[at['prediction']]!r} is not a class; expected 0-9 or IDK")
        number = None
        if has_confidence:
            number = _number(row[at["confidence"]])
            if number is None:
                problems.append(f"{place}: confidence {row[at['confidence']]!r} is not a finite number")
        if index is not None and label is not None:
            predicted[index] = label
            if has_confidence and number is not None:
                confidence[index] = number
    if len(rows) != size:
        problems.append(f"{path}: {len(rows)} rows, but the {split} split has {size} images; "
                        "expected one row per image")
    absent = sorted(set(range(size)) - set(seen))
    if absent:
        shown = ", ".join(map(str, absent[:10])) + (", ..." if len(absent) > 10 else "")
        problems.append(f"{path}: {len(absent)} image(s) of the {split} split have no row: mnist_index {shown}")
    if problems:
        more = len(problems) - SHOWN_PROBLEMS
        listed = problems[:SHOWN_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
        raise MnistIdkError(f"{len(problems)} problem(s) in the predictions:\n" + "\n".join(listed))
    return Predictions(path, predicted, confidence)


def _figure(value: float | None, count: str = "", interval: tuple[float, float] | None = None) -> str:
    text = ("n/a" if value is None else f"{value:.4f}") + (f"  ({count})" if count else "")
    return text + (f"  95% interval {interval[0]:.4f}-{interval[1]:.4f}" if interval else "")


def format_table(scores: Scores, title: str) -> str:
    """The human summary: headline figures, then the confusion matrix."""
    confusion = np.asarray(scores.confusion)
    tp = int(confusion[IDK_CLASS, IDK_CLASS])
    digit_correct = int(np.trace(confusion) - tp)
    lines = [
        title,
        f"  accuracy on digits        {_figure(scores.digit_accuracy, f'{digit_correct}/{scores.digit_images}')}",
        f"  IDK precision             "
        f"{_figure(scores.idk_precision, f'{tp}/{scores.idk_predicted}', scores.idk_precision_interval)}",
        f"  IDK recall                "
        f"{_figure(scores.idk_recall, f'{tp}/{scores.idk_images}', scores.idk_recall_interval)}",
        f"  IDK F1                    {_figure(scores.idk_f1)}",
        f"  accuracy, all 11 classes  {_figure(scores.accuracy)}",
    ]
    curve = scores.risk_coverage
    if curve is None:
        lines.append("  (no confidence column: no risk-coverage figures)")
    else:
        lines.append(f"  AURC (lower is better)    {curve.aurc:.5f}")
        for coverage, accuracy in curve.selective_accuracy.items():
            lines.append(f"  {'selective accuracy @' + format(float(coverage), '.0%'):<26}{accuracy:.4f}")
    width = max(6, len(str(confusion.max())) + 1)
    lines += ["", "confusion matrix (rows: curated label, columns: prediction)",
              "     " + "".join(f"{name:>{width}}" for name in CLASSES)]
    lines += [f"{name:>4} " + "".join(f"{count:>{width}}" for count in row) for name, row in zip(CLASSES, confusion)]
    return "\n".join(lines)


def write_json(scores: Scores, path: Path, **about) -> None:
    """Every figure (the curve at every k included) and what was scored, as JSON."""
    from .suggest import replace_atomically

    data = {**about, "scores": scores.to_dict(curve=True)}
    replace_atomically(Path(path), lambda temporary: temporary.write_text(json.dumps(data, indent=1) + "\n", "utf-8"))


def plot(scores: Scores, path: Path, title: str) -> None:
    """The risk-coverage curve as a PNG, drawn with Pillow (no plotting library needed)."""
    from PIL import Image, ImageDraw, ImageFont

    from .suggest import replace_atomically

    curve = scores.risk_coverage
    if curve is None:
        raise MnistIdkError("--plot needs a confidence column in the predictions")
    width, height, left, right, top, bottom = 720, 480, 70, 20, 50, 50
    coverage, risk = np.asarray(curve.coverage), np.asarray(curve.risk)
    ceiling = max(float(risk.max()) * 1.1, 0.01)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()

    def xy(c: float, r: float) -> tuple[float, float]:
        return (left + c * (width - left - right), height - bottom - r / ceiling * (height - top - bottom))

    for tick in np.linspace(0, 1, 6):
        x, _ = xy(tick, 0)
        draw.line([x, top, x, height - bottom], fill=(225, 225, 225))
        draw.text((x - 10, height - bottom + 6), f"{tick:.0%}", fill="black", font=font)
    for tick in np.linspace(0, ceiling, 6):
        _, y = xy(0, tick)
        draw.line([left, y, width - right, y], fill=(225, 225, 225))
        draw.text((4, y - 6), f"{tick:.3f}", fill="black", font=font)
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    step = max(1, len(coverage) // 2000)
    points = [xy(c, r) for c, r in zip(coverage[::step], risk[::step])] + [xy(coverage[-1], risk[-1])]
    draw.line(points, fill=(200, 30, 30), width=2)
    draw.text((left, 12), f"{title}   AURC {curve.aurc:.5f}", fill="black", font=font)
    draw.text((width // 2 - 40, height - 22), "coverage", fill="black", font=font)
    draw.text((4, top - 20), "risk (error rate)", fill="black", font=font)
    replace_atomically(Path(path), lambda temporary: image.save(temporary, format="PNG"))
