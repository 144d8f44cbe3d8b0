"""Out-of-core inputs: Arrow datasets, record-batch readers, polars LazyFrames, Parquet paths.

A source is read as a sequence of ``pyarrow.Table`` chunks of at most ``batch_rows`` rows,
so the engine holds one chunk (plus a bounded sample when fitting) whatever the input's
length. Only the columns asked for are read from a dataset or a Parquet file.

Re-readable sources (a dataset, a Parquet path, a LazyFrame: its query runs again) can
be read twice; a ``RecordBatchReader`` is one-shot. :func:`sample` keeps a uniform random
sample of ``k`` rows (bottom-k of one seeded key per row, so the same rows whatever the
chunk boundaries), in stream order; a stream of at most ``k`` rows is kept whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from aiwarden.errors import DataError

__all__ = ["STREAM_ROWS", "Source", "is_stream", "open_source", "sample"]

#: Rows per chunk: ~2 MB per float column, so 25 columns and their temporaries stay small.
STREAM_ROWS = 262_144


def is_stream(data: Any) -> bool:
    """True for the inputs profiled chunk by chunk (type checks only, in-memory types first:
    about a microsecond on every in-memory call)."""
    cls = type(data)
    if cls is pa.Table or cls is pa.RecordBatch or cls is list or cls is dict:
        return False
    module = cls.__module__
    if module.startswith("pandas"):
        return False
    if module.startswith("polars"):
        return cls.__name__ == "LazyFrame"
    if module.startswith("pyarrow"):
        return isinstance(data, pa.RecordBatchReader) or _is_dataset(data)
    return isinstance(data, str | os.PathLike)


def _is_dataset(data: Any) -> bool:
    import pyarrow.dataset as ds

    return isinstance(data, ds.Dataset)


@dataclass
class Source:
    """A chunked tabular input: its Arrow schema and a way to read it (again, if reusable)."""

    schema: pa.Schema
    reusable: bool
    kind: str
    _data: Any
    _used: bool = False

    @property
    def names(self) -> list[str]:
        return list(self.schema.names)

    def batches(self, columns: list[str] | None, batch_rows: int) -> Iterator[pa.Table]:
        """Chunks of ``batch_rows`` rows (the last one shorter), in order, holding ``columns``."""
        if self._used and not self.reusable:
            raise DataError(f"This {self.kind} was already read; a RecordBatchReader can be "
                            "read once (pass a dataset or a Parquet path to read it twice).")
        self._used = True
        # Small batches (a reader's, a Parquet file's small row groups) are gathered into
        # chunks of batch_rows: profiling pays a fixed cost per chunk and column.
        pending: list[pa.Table] = []
        rows = 0
        for batch in self._raw(columns, batch_rows):
            if batch.num_rows == 0:
                continue
            pending.append(batch if isinstance(batch, pa.Table)
                           else pa.Table.from_batches([batch]))
            rows += batch.num_rows
            while rows >= batch_rows:
                whole = _concat(pending) if len(pending) > 1 else pending[0]
                yield whole.slice(0, batch_rows)
                rest = whole.slice(batch_rows)
                pending, rows = ([rest] if rest.num_rows else []), rest.num_rows
        if rows:
            yield _concat(pending) if len(pending) > 1 else pending[0]

    def no_rows(self) -> DataError:
        """The error for an empty stream; a one-shot reader may have been read before."""
        if self.reusable:
            return DataError("The data has no rows.")
        return DataError(f"The data has no rows: this {self.kind} gave none (it can be read "
                         "once; one already read is empty).")

    def _raw(self, columns: list[str] | None, batch_rows: int) -> Iterator[Any]:
        data = self._data
        if self.kind == "LazyFrame":
            lf = data if columns is None else data.select(columns)
            for df in lf.collect_batches(chunk_size=batch_rows):
                yield df.to_arrow()
        elif self.kind == "RecordBatchReader":
            for batch in data:
                yield batch if columns is None else batch.select(columns)
        else:
            yield from _dataset_batches(data, columns, batch_rows)


def _dataset_batches(dataset: Any, columns: list[str] | None, batch_rows: int
                     ) -> Iterator[pa.RecordBatch]:
    """A dataset fragment by fragment, a Parquet file row group by row group.

    Arrow's dataset scanner keeps reading files ahead while the consumer computes: on 40
    Parquet files it held 1.2 GB of decoded batches, growing with the input. One fragment
    scanned at a time holds one row group. A filtered dataset does not give its fragments;
    only the scanner applies the filter, so it is read through the scanner.
    """
    import pyarrow.dataset as ds

    try:
        fragments = dataset.get_fragments()
    except ValueError:
        yield from dataset.to_batches(columns=columns, batch_size=batch_rows,
                                      batch_readahead=1, fragment_readahead=1)
        return
    for fragment in fragments:
        parts = (fragment.split_by_row_group()
                 if isinstance(fragment, ds.ParquetFileFragment) else [fragment])
        for part in parts:
            yield from part.to_batches(schema=dataset.schema, columns=columns,
                                       batch_size=batch_rows, batch_readahead=1,
                                       fragment_readahead=0)


def open_source(data: Any) -> Source:
    """Wrap a streamed input; a missing path or an unreadable file is a ``DataError``."""
    if isinstance(data, pa.RecordBatchReader):
        return Source(data.schema, False, "RecordBatchReader", data)
    if isinstance(data, str | os.PathLike):
        import pyarrow.dataset as ds

        path = os.fspath(data)
        if not os.path.exists(path):
            raise DataError(f"No Parquet file or directory at {path!r}.")
        try:
            data = ds.dataset(path, format="parquet")
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"Cannot read {path!r} as Parquet: {exc}") from exc
        return _checked(Source(data.schema, True, "Parquet dataset", data))
    if type(data).__name__ == "LazyFrame":
        if not hasattr(data, "collect_batches"):
            import polars as pl

            raise DataError("Streaming a LazyFrame needs LazyFrame.collect_batches, which "
                            f"polars {pl.__version__} lacks: upgrade polars (pip install "
                            "'aiwarden[polars]') or collect() it.")
        return _checked(Source(data.collect_schema().to_arrow(), True, "LazyFrame", data))
    return _checked(Source(data.schema, True, type(data).__name__, data))


def _checked(source: Source) -> Source:
    from aiwarden.engine._frame import _check_unique

    _check_unique(source.names)
    if not source.names:
        raise DataError("The data has no columns.")
    return source


def sample(source: Source, k: int, *, batch_rows: int, seed: int,
           columns: list[str] | None = None,
           between: Callable[[], None] | None = None) -> tuple[pa.Table, int]:
    """A uniform sample of ``k`` rows in stream order, and the stream's row count.

    Each row gets a key from one seeded generator (one draw per row, so chunking does not
    change the keys); the ``k`` smallest keys win. Candidates below the current k-th key
    are buffered and compacted once they outnumber the sample, so memory is O(k + chunk).
    ``between`` is called before each chunk (it may raise to stop the read).
    """
    rng = np.random.default_rng(seed)
    kept: list[pa.Table] = []
    keys: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    pending = 0
    threshold = np.inf
    n = 0
    for table in source.batches(columns, batch_rows):
        if between is not None:
            between()
        m = table.num_rows
        key = rng.random(m)
        take = key < threshold
        if take.all():
            kept.append(table)
            keys.append(key)
            rows.append(np.arange(n, n + m))
        elif take.any():
            kept.append(table.filter(pa.array(take)))
            keys.append(key[take])
            rows.append(np.flatnonzero(take) + n)
        n += m
        pending += int(take.sum())
        if pending > 2 * k:
            kept, keys, rows, threshold = _compact(kept, keys, rows, k)
            pending = k
    if n == 0:
        raise source.no_rows()
    if n > k:
        kept, keys, rows, _ = _compact(kept, keys, rows, k)
    table = _concat(kept)
    order = np.argsort(np.concatenate(rows), kind="stable")
    if np.any(order != np.arange(len(order))):
        table = table.take(pa.array(order))
    return table, n


def _concat(tables: list[pa.Table]) -> pa.Table:
    try:
        return pa.concat_tables(tables)
    except pa.ArrowInvalid:  # chunks typed differently (e.g. an all-null first chunk)
        return pa.concat_tables(tables, promote_options="permissive")


def _compact(kept: list[pa.Table], keys: list[np.ndarray], rows: list[np.ndarray], k: int
             ) -> tuple[list[pa.Table], list[np.ndarray], list[np.ndarray], float]:
    """Keep the ``k`` smallest keys; the largest of them is the new entry threshold."""
    key, row = np.concatenate(keys), np.concatenate(rows)
    if len(key) <= k:
        return kept, keys, rows, np.inf
    best = np.argpartition(key, k - 1)[:k]
    best.sort()  # stream order within the kept table
    table = _concat(kept).take(pa.array(best))
    return [table], [key[best]], [row[best]], float(key[best].max())
