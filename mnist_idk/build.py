"""Build MNIST-IDK: raw IDX files + one version of the lists -> Parquet shards and a dataset card.

The output is what ``Dataset.push_to_hub`` would upload (``data/{split}-00000-of-00001.parquet``
and ``README.md``), plus the card's picture and ``croissant.json``, so the Hub and
``datasets.load_dataset`` read it with no loading script.
It is built in a temporary directory beside the target, validated, and only then renamed into
place: a failed build leaves the previous output as it was.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from . import curation
from .curation import Curation
from .errors import MnistIdkError
from .features import arrow_schema, data_file, label_id
from .png import Encoder
from .raw import SPLIT_SIZES, SPLITS, Split, load_split_streaming
from .staging import make_staging, replace_dir
from .workspace import Workspace

if TYPE_CHECKING:  # annotations only: pyarrow is imported after the encoding pool forks
    import pyarrow as pa

DEFAULT_OUT = Path("build") / "mnist_idk"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    out: Path
    curation: Curation
    rows: dict[str, int]


def relabel(split: Split, curation: Curation) -> tuple[np.ndarray, list[str | None]]:
    """Final label ids and reasons per row: raw labels, overridden by the list's rows."""
    labels = split.labels.astype(np.int64)
    reasons: list[str | None] = [None] * len(labels)
    for entry in curation.entries[split.name]:
        labels[entry.index] = label_id(entry.label)
        reasons[entry.index] = entry.reason
    return labels, reasons


def split_table(split: Split, curation: Curation, pngs: "pa.Array") -> "pa.Table":
    """The split as an Arrow table with exactly the storage types the published features prescribe."""
    import pyarrow as pa

    from . import parquet

    labels, reasons = relabel(split, curation)
    schema = arrow_schema()
    images = pa.StructArray.from_arrays([pngs, pa.nulls(len(pngs), pa.string())], ["bytes", "path"])
    columns = [
        images,
        parquet.numbers(labels, pa.int64()),
        parquet.numbers(split.labels, pa.int64()),
        parquet.numbers(np.arange(len(labels)), pa.int32()),
        parquet.strings(reasons),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def write_parquet(table: "pa.Table", path: Path) -> int:
    """Write as ``datasets``' own Parquet writer would (row groups, page index, CDC as on the Hub)."""
    from . import parquet

    path.parent.mkdir(parents=True, exist_ok=True)
    return parquet.write(table, table.schema, path)


def build(
    ws: Workspace,
    out: Path = DEFAULT_OUT,
    version: str | None = None,
    workers: int | None = None,
    validate: bool = True,
    progress: Progress = lambda message: None,
) -> BuildResult:
    """Build the dataset into ``out`` atomically; validate it first unless told not to.

    ``version`` defaults to the workspace's (working lists in a checkout, else the newest release).
    """
    out = Path(out)
    version = version or ws.default_version()
    ws.version_dir(version)  # an unknown release or missing working lists fail before anything is written
    created_parent = not out.parent.exists()
    staging = make_staging(out)
    view = None
    try:
        if validate:
            from .datasets_view import DatasetsView

            view = DatasetsView()  # imports datasets in its own process while we encode
        # The encoding processes are the bottleneck; everything else happens while they work:
        # images are handed to them while the raw files are still being gunzipped, and the
        # small test split goes first so its Parquet file is written while train encodes.
        order = sorted(SPLITS, key=SPLIT_SIZES.get)
        loaded: dict[str, Split] = {}
        pngs = {}
        with Encoder(workers) as encoder:
            for name in order:
                progress(f"{name}: reading and verifying the raw files, encoding PNGs")
                waiters = []
                loaded[name] = load_split_streaming(name, ws.raw_dir, lambda batch: waiters.append(encoder.submit_packed(batch)))
                pngs[name] = waiters
            # Imported only now, while the PNGs are encoded (the pool forks at the first batch).
            from . import card, croissant, parquet, sheet
            splits = {name: loaded[name] for name in SPLITS}
            chosen = curation.load(ws, version, {name: s.labels for name, s in splits.items()})
            progress("drawing the contact sheet of listed images")
            sheet.write_card_sheet(staging, splits, chosen)
            num_bytes = {}
            for name in order:
                progress(f"{name}: writing Parquet")
                parts = [wait() for wait in pngs[name]]
                images = parquet.packed_binaries(b"".join(p[0] for p in parts), np.concatenate([p[1] for p in parts]))
                table = split_table(splits[name], chosen, images)
                num_bytes[name] = write_parquet(table, staging / data_file(name))
        progress("writing the dataset card")
        card.write_card(ws, staging, splits, chosen, {name: num_bytes[name] for name in SPLITS})
        croissant.write(ws, staging, chosen.version)
        if validate:
            from .validate import validate_build

            progress("validating the build against the raw files")
            problems = validate_build(ws, staging, version=chosen.version, splits=splits, view=view)
            if problems:
                raise MnistIdkError(f"{out}: the build does not validate:\n" + "\n".join(problems))
        replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_parent and not any(out.parent.iterdir()):
            out.parent.rmdir()
        raise
    finally:
        if view is not None:
            view.__exit__(None, None, None)
    return BuildResult(out, chosen, {name: len(s.labels) for name, s in splits.items()})
