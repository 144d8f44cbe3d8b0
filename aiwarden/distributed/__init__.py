"""Profiling a dataset on a cluster: partial profiles per piece, merged by addition.

:func:`profile_dask` profiles a Parquet dataset on a ``dask.distributed`` cluster, one task
per chunk of the local engine (so every count equals ``Reference.profile(path)``,
duplicates included); :func:`profile_spark` profiles a Spark DataFrame partition by
partition with ``mapInArrow``. Both send each partial profile back as bytes
(:func:`dumps`/:func:`loads`) and merge them on the caller. The engine never imports
these modules; ``dask`` and ``pyspark`` are imported only when called.
"""

from __future__ import annotations

from aiwarden.distributed._dask import profile_dask
from aiwarden.distributed._partial import dumps, loads, plan_chunks
from aiwarden.distributed._spark import profile_spark

__all__ = ["dumps", "loads", "plan_chunks", "profile_dask", "profile_spark"]
