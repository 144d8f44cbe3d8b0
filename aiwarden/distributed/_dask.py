"""A Parquet dataset profiled on a ``dask.distributed`` cluster, one task per chunk."""

from __future__ import annotations

import os
from typing import Any

from aiwarden.engine import Profile, Reference
from aiwarden.engine._streaming import STREAM_ROWS
from aiwarden.errors import ParameterError

__all__ = ["profile_dask"]


def _task(ref: Reference, pieces: list[Any], offset: int, columns: list[str],
          check_duplicates: bool) -> bytes:
    from aiwarden.distributed._partial import profile_piece, read_pieces

    return profile_piece(ref, read_pieces(pieces, columns), offset, check_duplicates)


def _same(value: Any) -> Any:
    return value


def profile_dask(ref: Reference, path: str | os.PathLike[str], client: Any, *,
                 batch_rows: int = STREAM_ROWS, check_duplicates: bool = True) -> Profile:
    """``ref.profile(path)`` computed on ``client``'s workers; every count is the same.

    The driver reads only the Parquet footers and plans the local engine's chunks (row
    groups sliced and gathered into ``batch_rows`` rows); each worker reads its chunk's row
    groups itself (the path must be readable from the workers) and returns the chunk's
    profile as bytes. Results are taken in input order (example rows keep their order)
    and merged in blocks of 64 as the local engine does, so even the rounding of the
    moments is the same.
    """
    from aiwarden.distributed._partial import finish, loads, plan_chunks

    if not isinstance(batch_rows, int) or batch_rows < 1:
        raise ParameterError("The 'batch_rows' parameter of profile_dask must be a positive "
                             f"int. Got {batch_rows!r} instead.")
    schema, chunks = plan_chunks(path, batch_rows)
    names = list(schema.names)
    wanted = [c.name for c in ref.schema_.columns if c.name in set(names)] or names[:1]
    # a task's result, not scattered data: if a worker holding it dies the scheduler computes
    # it again, where a scattered value is lost with its worker and every chunk's task fails
    # ("lost dependencies", seen once on a loaded CI box)
    shared = client.submit(_same, ref, pure=False)
    futures = [client.submit(_task, shared, pieces, first, wanted, check_duplicates,
                             pure=False) for first, pieces in chunks]
    parts: list[Profile] = []
    for future in futures:
        parts.append(loads(future.result()))
        future.release()
        if len(parts) >= 64:
            parts = [Profile.merge_all(parts)]
    return finish(ref, parts, names)
