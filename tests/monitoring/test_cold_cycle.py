"""What the first alert cycle after a restart pays for: loading references and decoding
every partial it reads. Both got cheaper; neither may change what is read.

- a loaded reference takes its fingerprint from its own profile instead of hashing its
  schema and bins again, and that fingerprint is the real hash;
- bucket partials are LZ4-compressed now, and partials stored zlib-compressed before
  still read, alone and merged with new ones, through the store (SQLite and PostgreSQL).
"""

from __future__ import annotations

import time
import zlib

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from aiwarden.engine import Reference
from aiwarden.monitoring import bucket
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.profiles import append_partials, read_window
from aiwarden.store import models_repo
from aiwarden.store.tables import bucket_profiles


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    score = 1 / (1 + np.exp(-x))
    return pd.DataFrame({"x": x, "z": rng.lognormal(0, 1, n), "c": rng.choice(list("abc"), n),
                         "score": score, "pred": (score > 0.5).astype(int),
                         "y": (rng.random(n) < score).astype(int)})


def fitted() -> Reference:
    return Reference.fit(frame(1000, 0), target="y", prediction="pred", scores="score")


def test_a_loaded_reference_keeps_its_fingerprint_without_hashing_again() -> None:
    ref = fitted()
    stored = orjson.loads(orjson.dumps(ref.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))
    loaded = Reference.from_dict(stored)
    assert loaded.__dict__.get("_fingerprint") == ref.fingerprint  # known before asked
    stored["profile"]["reference"] = None  # as an older reference might lack it
    rehashed = Reference.from_dict(stored)
    assert "_fingerprint" not in rehashed.__dict__
    assert rehashed.fingerprint == ref.fingerprint  # the stored one is the real hash


def partial(ref: Reference, seed: int) -> BucketData:
    df = frame(300, seed).drop(columns="y")
    return BucketData(rows=len(df), profile=ref.profile(df),
                      latency=np.bincount([3, 3, 7], minlength=BucketData().latency.size),
                      errors=seed, quarantined=1, quarantine_reasons={"x": 1})


def zlib_blob(data: BucketData) -> bytes:
    """The blob as every partial was written before LZ4: the same payload, zlib level 1."""
    new = data.to_bytes()
    assert new[:4] == b"AWZ4"
    return zlib.compress(bucket._decompress(new), 1)


def same(a: BucketData, b: BucketData) -> None:
    assert (a.rows, a.errors, a.quarantined, a.quarantine_reasons) == (
        b.rows, b.errors, b.quarantined, b.quarantine_reasons)
    assert a.latency.tolist() == b.latency.tolist()
    assert a.profile.to_dict() == b.profile.to_dict()


def test_zlib_partials_written_before_lz4_read_the_same() -> None:
    ref = fitted()
    data = partial(ref, 1)
    new, old = data.to_bytes(), zlib_blob(data)
    assert old[:1] == b"\x78"
    same(BucketData.from_bytes(old), BucketData.from_bytes(new))
    assert BucketData.from_bytes(new).profile.columns["x"].count == 300


def test_old_and_new_partials_merge_in_one_window_from_the_store(monitor) -> None:
    """On SQLite and PostgreSQL: a window over a zlib partial stored before and an LZ4 one
    stored now reads as the merge of the two."""
    monitor.create_model("cold")
    monitor.upload_reference("cold", "v1", pa.Table.from_pandas(frame(1000, 0),
                                                                preserve_index=False),
                             {"target": "y", "prediction": "pred", "scores": ["score"]})
    ref, _ = monitor.window("cold", time.time() - 60, time.time())
    t0 = int(time.time() - 7200) // 3600 * 3600
    levels = monitor.levels
    with monitor.db.read() as conn:
        m = models_repo.get_model(conn, "cold")
        v = models_repo.get_version(conn, m)
    first, second = partial(ref, 2), partial(ref, 3)
    with monitor.db.write(m.id) as conn:
        conn.execute(bucket_profiles.insert().values(
            model_id=m.id, version_id=v.id, level=levels[0], start=t0, n_rows=first.rows,
            data=zlib_blob(first)))
        append_partials(conn, m.id, v.id, {t0 + levels[0]: second}, levels[:1])
    with monitor.db.read() as conn:
        got = read_window(conn, m.id, v.id, t0, t0 + 2 * levels[0], levels[:1])
        only_old = read_window(conn, m.id, v.id, t0, t0 + levels[0], levels[:1])
    same(got, BucketData.merge_all([first, second]))
    same(only_old, BucketData.from_bytes(first.to_bytes()))
