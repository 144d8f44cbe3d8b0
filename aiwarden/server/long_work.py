"""Bounds on long request work: a width limit, and work that stops when its client leaves.

A reference fit holds a worker thread for seconds per thousand columns. Without these a
client could send 100,000 columns, hang up, and leave the server fitting for minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import pyarrow as pa
from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from aiwarden.errors import Cancelled
from aiwarden.server.errors import HttpError
from aiwarden.tabular_io import decoded_size

__all__ = ["ClientGone", "TooManyColumns", "TooMuchData", "check_decoded", "check_rows",
           "check_width", "until_disconnect", "width_of"]

T = TypeVar("T")


class TooManyColumns(HttpError):
    status, kind = 413, "too_many_columns"


class TooMuchData(HttpError):
    status, kind = 413, "too_much_data"


def check_rows(rows: int, settings: Any, field: str = "body") -> None:
    """Refuse more rows in one body than the ``max_rows`` setting (0: no bound)."""
    limit = settings.max_rows
    if limit and rows > limit:
        raise TooMuchData(f"The body holds {rows:,} rows; this server accepts at most "
                          f"{limit:,} per request (max_rows, environment AIWARDEN_MAX_ROWS): "
                          "send smaller batches.", field)


def check_decoded(body: bytes, media_type: str | None, settings: Any) -> None:
    """Refuse a table body whose metadata says it decodes to more rows or bytes than the
    server allows, before decoding anything (the body limit counts compressed bytes)."""
    size = decoded_size(body, media_type)
    if size is None:
        return
    rows, nbytes = size
    check_rows(rows, settings)
    limit = int(settings.max_decoded_mb * 2**20)
    if limit and nbytes > limit:
        raise TooMuchData(f"The body decodes to {nbytes / 2**20:,.0f} MB; this server "
                          f"decodes at most {settings.max_decoded_mb:g} MB per request "
                          "(max_decoded_mb, environment AIWARDEN_MAX_DECODED_MB): send "
                          "smaller batches.", "body")


class ClientGone(HttpError):
    """Nobody reads this answer; the status (nginx's 499) only shows in access logs."""

    status, kind = 499, "client_closed_request"


def check_width(columns: int, limit: int, field: str = "columns", what: str = "data") -> None:
    """Refuse data (or a schema) wider than the ``max_columns`` setting (0: no bound)."""
    if limit and columns > limit:
        raise TooManyColumns(
            f"The {what} has {columns} columns; this server accepts at most {limit}. Drop "
            f"columns you do not monitor, or raise the limit with the max_columns setting "
            f"(environment AIWARDEN_MAX_COLUMNS).", field)


def width_of(body: bytes, media_type: str | None) -> int | None:
    """The column count of a table body, read from its header alone where the format has
    one (decoding 100,000 columns takes seconds; their count, a fraction of one). None
    when it cannot tell: the full read then reports what is wrong with the body."""
    media = (media_type or "").split(";")[0].strip().lower()
    head = body[:8]
    try:
        if "parquet" in media or head[:4] == b"PAR1":
            import pyarrow.parquet as pq

            return int(pq.read_metadata(io.BytesIO(body)).num_columns)
        if "arrow" in media or head[:6] == b"ARROW1" or head[:4] == b"\xff\xff\xff\xff":
            opener = pa.ipc.open_file if head[:6] == b"ARROW1" else pa.ipc.open_stream
            return len(opener(pa.BufferReader(body)).schema)
        if "json" in media or body.lstrip()[:1] in (b"[", b"{"):
            doc = orjson.loads(body)
            rows = [doc] if isinstance(doc, dict) else doc  # as tabular_io reads it
            names: set[str] = set()
            for row in rows if isinstance(rows, list) else []:
                if isinstance(row, dict):
                    names.update(row)
            return len(names)
        first = body.split(b"\n", 1)[0].decode("utf-8", errors="replace")
        return len(next(csv.reader([first]), []))
    except (ValueError, TypeError, OSError, pa.ArrowException):
        return None


Work = Callable[[Callable[[], bool]], T]


async def until_disconnect(request: Request, work: Work[T], *, poll: float = 0.2) -> T:
    """Run ``work(should_stop)`` on a worker thread; ``should_stop()`` turns True when the
    client disconnects (or this request is cancelled), and the work is expected to raise
    :class:`~aiwarden.errors.Cancelled` soon after.

    ``app.state.wrap_long_work`` (unset in a real server) may wrap the work: tests use it
    to hold the work until the disconnect is seen, which no timing can guarantee."""
    stop = threading.Event()
    wrap: Callable[[Work[T]], Work[T]] | None = getattr(request.app.state, "wrap_long_work",
                                                         None)
    run = work if wrap is None else wrap(work)
    task: asyncio.Future[Any] = asyncio.ensure_future(run_in_threadpool(run, stop.is_set))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll)
            if done:
                return task.result()
            if await request.is_disconnected():
                stop.set()
                with contextlib.suppress(Cancelled):
                    await task  # the thread notices between columns; wait so it is free
                raise ClientGone("The client disconnected; the work was stopped.")
    finally:
        stop.set()
