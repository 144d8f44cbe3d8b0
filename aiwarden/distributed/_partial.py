"""Partial profiles as bytes, and the local engine's chunking of a Parquet dataset."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from aiwarden.engine import Profile, Reference
from aiwarden.engine._streaming import STREAM_ROWS
from aiwarden.errors import DataError

__all__ = ["Piece", "dumps", "finish", "loads", "plan_chunks", "profile_piece"]


def dumps(profile: Profile) -> bytes:
    """A profile as JSON bytes: ``to_dict`` is exact (ints stay ints, floats round-trip)."""
    return json.dumps(profile.to_dict(), separators=(",", ":")).encode()


def loads(data: bytes) -> Profile:
    return Profile.from_dict(json.loads(data))


@dataclass(frozen=True)
class Piece:
    """Rows ``start:stop`` of one Parquet row group."""

    path: str
    row_group: int
    start: int
    stop: int


def _row_groups(path: str) -> tuple[pa.Schema, list[tuple[str, int, int]]]:
    """Every (file, row group, rows) in the order the local engine reads them."""
    import pyarrow.dataset as ds

    if not os.path.exists(path):
        raise DataError(f"No Parquet file or directory at {path!r}.")
    try:
        dataset = ds.dataset(path, format="parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"Cannot read {path!r} as Parquet: {exc}") from exc
    groups = []
    for fragment in dataset.get_fragments():
        for i, rg in enumerate(fragment.metadata.to_dict()["row_groups"]):
            groups.append((fragment.path, i, int(rg["num_rows"])))
    return dataset.schema, groups


def plan_chunks(path: str | os.PathLike[str], batch_rows: int = STREAM_ROWS
                ) -> tuple[pa.Schema, list[tuple[int, list[Piece]]]]:
    """The dataset's schema and its chunks of ``batch_rows`` rows as (first row, pieces).

    These are the chunks ``Reference.profile(path)`` profiles one at a time, so a task per
    chunk gives the local engine's counts exactly, duplicates (counted within a chunk)
    included.
    """
    schema, groups = _row_groups(os.fspath(path))
    chunks: list[tuple[int, list[Piece]]] = []
    pieces: list[Piece] = []
    first = filled = offset = 0
    for file, rg, rows in groups:
        start = 0
        while start < rows:
            take = min(rows - start, batch_rows - filled)
            pieces.append(Piece(file, rg, start, start + take))
            start += take
            filled += take
            if filled == batch_rows:
                chunks.append((first, pieces))
                first, pieces, filled = first + filled, [], 0
        offset += rows
    if pieces:
        chunks.append((first, pieces))
    if not chunks:
        raise DataError("The data has no rows.")
    return schema, chunks


def read_pieces(pieces: list[Piece], columns: list[str]) -> pa.Table:
    import pyarrow.parquet as pq

    tables = []
    files: dict[str, Any] = {}
    for p in pieces:
        f = files.get(p.path) or files.setdefault(p.path, pq.ParquetFile(p.path))
        t = f.read_row_group(p.row_group, columns=columns)
        tables.append(t.slice(p.start, p.stop - p.start))
    try:
        return pa.concat_tables(tables)
    except pa.ArrowInvalid:
        return pa.concat_tables(tables, promote_options="permissive")


def profile_piece(ref: Reference, table: pa.Table, offset: int, check_duplicates: bool
                  ) -> bytes:
    """One chunk's profile (single-threaded: the cluster's workers are the parallelism)."""
    return dumps(ref.profile(table, check_duplicates=check_duplicates, n_threads=1)
                 .shifted(offset))


def finish(ref: Reference, parts: list[Profile], names: list[str]) -> Profile:
    """Merge the partials; columns outside the schema are counted as the local engine does."""
    merged = Profile.merge_all(parts)
    n = merged.n_rows
    return replace(merged, extra_columns={c: n for c in names if c not in ref.schema_})
