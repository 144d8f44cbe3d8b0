"""A Spark DataFrame profiled partition by partition with ``mapInArrow`` (the caller has a
DataFrame, so ``aiwarden[spark]`` is installed)."""

from __future__ import annotations

from typing import Any

from aiwarden.engine import Profile, Reference

__all__ = ["profile_spark"]


def profile_spark(ref: Reference, df: Any, *, check_duplicates: bool = True) -> Profile:
    """``ref.profile`` of a Spark DataFrame: one partial profile per partition, merged here.

    Each partition's Arrow batches are profiled one by one on the executor (only the
    schema's columns are selected), merged there, and sent back as one row of bytes (with
    the partition's id, so the driver merges in partition order). Counts equal the local
    engine's on the same rows; ``duplicates`` counts repeats within each Arrow batch (Spark's
    ``spark.sql.execution.arrow.maxRecordsPerBatch``, 10,000 by default), as the local
    engine counts them within a chunk. Example rows are positions in partition order
    (each partition's profile is shifted by the rows of the partitions before it), which is
    the row order of a DataFrame read from files.
    """
    import pyarrow as pa

    from aiwarden.distributed._partial import dumps, finish, loads

    names = list(df.columns)
    wanted = [c.name for c in ref.schema_.columns if c.name in set(names)] or names[:1]
    payload = ref  # pickled once into the closure Spark ships to the executors

    def run(batches: Any) -> Any:
        from pyspark import TaskContext

        parts: list[Profile] = []
        n = 0
        for batch in batches:
            if batch.num_rows == 0:
                continue
            table = pa.Table.from_batches([batch])
            parts.append(payload.profile(table, check_duplicates=check_duplicates,
                                         n_threads=1).shifted(n))
            n += batch.num_rows
            if len(parts) >= 64:
                parts = [Profile.merge_all(parts)]
        if parts:
            pid = TaskContext.get().partitionId()
            yield pa.RecordBatch.from_pydict(
                {"partition": [pid], "profile": [dumps(Profile.merge_all(parts))]},
                schema=pa.schema([("partition", pa.int32()), ("profile", pa.binary())]))

    rows = (df.select(*wanted)
            .mapInArrow(run, "partition int, profile binary")
            .collect())
    if not rows:
        from aiwarden.errors import DataError

        raise DataError("The data has no rows.")
    rows.sort(key=lambda r: r["partition"])
    parts = []
    offset = 0
    for r in rows:
        part = loads(bytes(r["profile"]))
        parts.append(part.shifted(offset))
        offset += part.n_rows
    return finish(ref, parts, names)
