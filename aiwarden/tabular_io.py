"""Reading tables from files or request bodies: Parquet, CSV, JSON (rows, lines or columns),
Arrow IPC. One set of readers serves the CLI, the offline report and the server.

Any failure is a :class:`~aiwarden.errors.DataError` that names the file (or body) and the
reason, so commands print one line and the server answers 422, never a traceback.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import pyarrow as pa

from aiwarden.errors import DataError

__all__ = ["ARROW", "CSV", "JSON", "PARQUET", "SUFFIXES", "decoded_size", "read_file",
           "read_parquet", "read_rows", "read_table", "write_parquet"]

PARQUET = "application/vnd.apache.parquet"
ARROW = "application/vnd.apache.arrow.stream"
CSV = "text/csv"
JSON = "application/json"
SUFFIXES: dict[str, str] = {
    ".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json",
    ".ndjson": "json", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow",
}
_MEDIA = {
    PARQUET: "parquet", "application/x-parquet": "parquet", "application/parquet": "parquet",
    ARROW: "arrow", "application/vnd.apache.arrow.file": "arrow", "application/x-arrow": "arrow",
    CSV: "csv", JSON: "json", "application/x-ndjson": "json", "application/jsonl": "json",
}
Source = Path | bytes


def read_file(path: str | Path) -> pa.Table:
    """A table from a file, its format chosen by extension."""
    p = Path(path)
    kind = SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise DataError(f"Cannot read {str(p)!r}: unknown extension {p.suffix or '(none)'!r}; "
                        f"use one of {', '.join(sorted(SUFFIXES))}.")
    if not p.exists():
        raise DataError(f"Cannot read {str(p)!r}: no such file.")
    if not p.is_file():
        raise DataError(f"Cannot read {str(p)!r}: not a regular file.")
    return _read(kind, p, repr(str(p)))


def read_rows(path: str | Path) -> list[dict[str, Any]] | None:
    """A JSON/JSON Lines file of row objects, each kept as written (nested ``features``,
    ``scores``, ``tags`` stay objects: the row format of docs/api.md); None when the file
    is another format or a JSON object of columns (read it with :func:`read_file`)."""
    p = Path(path)
    if SUFFIXES.get(p.suffix.lower()) != "json" or not p.is_file():
        return None
    data = p.read_bytes()
    head = data[:4096].lstrip()
    try:
        if head.startswith(b"["):
            doc = json.loads(data)
        elif head.startswith(b"{") and b"\n{" not in data.strip():
            doc = json.loads(data)
            if isinstance(doc, dict) and doc and all(isinstance(v, list) for v in doc.values()):
                return None  # columns
            doc = [doc]
        else:
            doc = [json.loads(line) for line in data.splitlines() if line.strip()]
    except ValueError as exc:
        raise DataError(f"Cannot read {str(p)!r} as json: {exc}") from None
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise DataError(f"Cannot read {str(p)!r}: expected a list of objects, one per row.")
    if not doc:
        raise DataError(f"Cannot use {str(p)!r}: it has no rows.")
    return doc


def read_table(body: bytes, media_type: str | None) -> pa.Table:
    """A table from request bytes; an absent or generic media type is sniffed."""
    if not body:
        raise DataError("The body is empty.", "body")
    media = (media_type or "").split(";")[0].strip().lower()
    kind = _MEDIA.get(media)
    if kind is None:
        if media not in ("", "application/octet-stream"):
            raise DataError(f"Unsupported content type {media_type!r}: send Parquet ({PARQUET}),"
                            f" Arrow IPC ({ARROW}), CSV ({CSV}) or JSON ({JSON}).",
                            "content-type")
        kind = _sniff(body)
    return _read(kind, body, "the body")


def decoded_size(body: bytes, media_type: str | None) -> tuple[int, int] | None:
    """(rows, bytes) a table body decodes to, read from its metadata alone, so a bound can
    refuse it before decoding: a 455 KB Parquet of 50 M constant rows decodes to 800 MB
    (and the ingest of it to 12 GB). Parquet: the footer's row count and column widths;
    Arrow IPC: each batch's length and (decompressed) buffer sizes; CSV: its line count and
    size. None when it cannot tell (JSON, or a malformed body the full read reports)."""
    if not body:
        return None
    media = (media_type or "").split(";")[0].strip().lower()
    kind = _MEDIA.get(media) or (_sniff(body) if media in ("", "application/octet-stream")
                                 else None)
    try:
        if kind == "parquet":
            return _parquet_size(body)
        if kind == "arrow":
            return _ipc_size(body)
    except (OSError, ValueError, TypeError, IndexError, struct.error, pa.ArrowException):
        return None
    if kind == "csv":
        return body.count(b"\n") + 1, len(body)
    return None


def _parquet_size(body: bytes) -> tuple[int, int]:
    """Rows, and decoded bytes: fixed-width columns at their width per row, variable-width
    ones at their uncompressed size plus an 8-byte offset per row (dictionary and RLE pages
    are small even uncompressed, so the footer's byte sizes alone would miss a bomb)."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(io.BytesIO(body))
    rows = int(meta.num_rows)
    schema = meta.schema.to_arrow_schema()
    total = 0
    for field in schema:
        try:
            width = max(field.type.bit_width // 8, 1)
        except ValueError:  # strings, lists, structs: no fixed width
            width = 8
        total += rows * width
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            col = group.column(c)
            if col.physical_type == "BYTE_ARRAY":
                total += int(col.total_uncompressed_size)
    return rows, total


def _ipc_size(body: bytes) -> tuple[int, int]:
    """Sums over the record (and dictionary) batches of an IPC stream: their lengths and
    buffer sizes, a compressed buffer counted at the decompressed size it declares."""
    start = 8 if body[:6] == b"ARROW1" else 0  # a file holds a stream after its magic
    rows = total = 0
    for message in pa.ipc.MessageReader.open_stream(pa.BufferReader(body[start:])):
        if message.type not in ("record batch", "dictionary batch"):
            continue
        meta = message.metadata.to_pybytes()
        header = _fb_table(meta, _fb_root(meta), 2)  # Message.header
        if header is None:
            continue
        batch = header if message.type == "record batch" else _fb_table(meta, header, 1)
        if batch is None:
            continue
        length = _fb_scalar(meta, batch, 0, "<q")
        if message.type == "record batch":
            rows += length
        compressed = _fb_field(meta, batch, 3) is not None
        data = message.body.to_pybytes() if compressed and message.body is not None else b""
        vec = _fb_table(meta, batch, 2)  # RecordBatch.buffers: a vector of 16-byte structs
        if vec is None:
            continue
        (count,) = struct.unpack_from("<I", meta, vec)
        for i in range(count):
            offset, size = struct.unpack_from("<qq", meta, vec + 4 + 16 * i)
            if compressed and size >= 8:
                (raw,) = struct.unpack_from("<q", data, offset)  # -1: stored uncompressed
                size = size - 8 if raw < 0 else raw
            total += max(size, 0)
    return rows, total


def _fb_root(buf: bytes) -> int:
    return int(struct.unpack_from("<I", buf, 0)[0])


def _fb_field(buf: bytes, table: int, index: int) -> int | None:
    """The position of a flatbuffer table's field ``index``, or None when absent."""
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    vsize = struct.unpack_from("<H", buf, vtable)[0]
    if 4 + 2 * index >= vsize:
        return None
    off = struct.unpack_from("<H", buf, vtable + 4 + 2 * index)[0]
    return table + off if off else None


def _fb_table(buf: bytes, table: int, index: int) -> int | None:
    """The position a table's offset field (a sub-table or vector) points to."""
    pos = _fb_field(buf, table, index)
    return None if pos is None else pos + struct.unpack_from("<I", buf, pos)[0]


def _fb_scalar(buf: bytes, table: int, index: int, fmt: str) -> int:
    pos = _fb_field(buf, table, index)
    return 0 if pos is None else int(struct.unpack_from(fmt, buf, pos)[0])


def _read(kind: str, src: Source, what: str) -> pa.Table:
    try:
        table = _READERS[kind](src)
    except (OSError, ValueError, TypeError, pa.ArrowException) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"Cannot read {what} as {kind}: {reason}", "body") from None
    if table.num_columns == 0 or table.num_rows == 0:
        raise DataError(f"Cannot use {what}: it has no "
                        f"{'columns' if table.num_columns == 0 else 'rows'}.", "body")
    return table


def _sniff(body: bytes) -> str:
    if body[:4] == b"PAR1":
        return "parquet"
    if body[:6] == b"ARROW1" or body[:4] == b"\xff\xff\xff\xff":
        return "arrow"
    return "json" if body.lstrip()[:1] in (b"[", b"{") else "csv"


def _file_like(src: Source) -> Any:
    return src if isinstance(src, Path) else io.BytesIO(src)


def _read_parquet(src: Source) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(_file_like(src), memory_map=isinstance(src, Path))


def _read_csv(src: Source) -> pa.Table:
    import pyarrow.csv as pcsv

    try:
        return _blank_as_missing(pcsv.read_csv(_file_like(src)))
    except pa.ArrowInvalid as exc:
        if "conversion error" not in str(exc).lower():
            raise
        # Arrow types columns from the first block; a later value of another type (a
        # corrupted record) fails the read. pandas keeps such a column as text, and the
        # engine then counts its unparsable values as invalid instead of losing them.
        import pandas as pd

        return pa.Table.from_pandas(pd.read_csv(_file_like(src), low_memory=False),
                                    preserve_index=False)


def _blank_as_missing(table: pa.Table) -> pa.Table:
    """A blank cell of a text column is missing, as pandas and most tools read it (Arrow
    keeps it as ""): a CSV stores what every other channel stores for a missing value.
    Only blanks: "NA" or "null" written in a text column stay text ("NA" is Namibia)."""
    import pyarrow.compute as pc

    for i, f in enumerate(table.schema):
        if not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)):
            continue
        col = table.column(i)
        blank = pc.equal(col, "")
        if pc.any(blank).as_py():
            table = table.set_column(i, f.name, pc.if_else(blank, pa.scalar(None, f.type), col))
    return table


def _read_json(src: Source) -> pa.Table:
    data = src.read_bytes() if isinstance(src, Path) else src
    head = data[:4096].lstrip()
    if head.startswith(b"["):
        return _records(json.loads(data))
    if head.startswith(b"{") and b"\n{" not in data.strip():  # one object: columns or a row
        doc = json.loads(data)
        if isinstance(doc, dict) and doc and all(isinstance(v, list) for v in doc.values()):
            return pa.table(doc)
        return _records([doc])
    import pyarrow.json as pjson

    try:
        if not head.startswith(b"{"):  # pyarrow's reader crashes the process on a leading
            raise pa.ArrowInvalid("not JSON lines of objects")  # null (pyarrow 26)
        return pjson.read_json(io.BytesIO(data))
    except pa.ArrowInvalid:
        # Mixed types in one field (a string among numbers, a corrupted record) or NaN
        # literals: parse line by line, keeping such a field as text for the engine to judge.
        rows = []
        for number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise ValueError(f"line {number}: {exc}") from exc
        return _records(rows)


def _records(rows: Any) -> pa.Table:
    import pandas as pd

    from aiwarden.engine._frame import to_table

    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError("expected a list of objects, one per row")
    if not rows:
        return pa.table({})
    return to_table(pd.DataFrame.from_records(rows), allow_empty=True)


def _read_arrow(src: Source) -> pa.Table:
    if isinstance(src, Path):
        import pyarrow.feather as feather

        with pa.memory_map(str(src)) as mm:
            table = _ipc(mm)
        return table if table is not None else feather.read_table(src)  # Feather v1
    # a body is read as the stream its bytes hold (a file's stream follows its magic), so
    # what decoded_size measured is what gets decoded, whatever a file's footer claims
    start = 8 if src[:6] == b"ARROW1" else 0
    try:
        return pa.ipc.open_stream(pa.BufferReader(src[start:])).read_all()
    except pa.ArrowInvalid:
        raise ValueError("not an Arrow IPC stream or file") from None


def _ipc(source: Any) -> pa.Table | None:
    try:
        return pa.ipc.open_file(source).read_all()
    except pa.ArrowInvalid:
        source.seek(0)
    try:
        return pa.ipc.open_stream(source).read_all()
    except pa.ArrowInvalid:
        return None


_READERS = {"parquet": _read_parquet, "csv": _read_csv, "json": _read_json, "arrow": _read_arrow}


def read_parquet(blob: bytes, columns: list[str] | None = None) -> pa.Table:
    """A stored Parquet blob; ``columns`` that the blob lacks are skipped, not an error
    (rows stored before a schema gained a column)."""
    import pyarrow.parquet as pq

    f = pq.ParquetFile(io.BytesIO(blob))
    if columns is not None:
        present = set(f.schema_arrow.names)
        columns = [c for c in columns if c in present]
    return f.read(columns=columns)


def write_parquet(table: pa.Table) -> bytes:
    """Fast zstd Parquet. No dictionary pages: unique ids dominate event batches, and
    zstd alone writes them 3x faster and smaller than dictionary encoding does."""
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", compression_level=1, use_dictionary=False)
    return sink.getvalue()
