"""ADWIN against river on many random streams and parameter sets, on every path.

Three ways through our ADWIN must agree with river's ``update`` + ``drift_detected`` bit for
bit: ``update`` one value at a time, ``detect`` in the Python loop, and ``detect`` in the
numba-compiled loop (when numba is installed), the latter two fed in random chunks so the
window crosses batch boundaries, with the window left identical on both batch paths.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import aiwarden.engine.detectors._adwin as adwin_module
from aiwarden.engine.detectors import ADWIN
from aiwarden.engine.detectors._adwin_kernel import kernel

drift = pytest.importorskip("river.drift")

N_CASES = 40


def random_stream(rng: np.random.Generator) -> np.ndarray:
    """Segments of shifting mean and spread: Gaussian, 0/1, heavy-tailed, flat or offset."""
    parts = []
    for _ in range(int(rng.integers(1, 6))):
        n = int(rng.integers(200, 2500))
        kind = rng.integers(0, 5)
        if kind == 0:
            parts.append(rng.normal(rng.normal(0, 2), rng.uniform(0.05, 3), n))
        elif kind == 1:
            parts.append((rng.random(n) < rng.uniform(0.01, 0.6)).astype(float))
        elif kind == 2:
            parts.append(rng.standard_t(2.0, n) * rng.uniform(0.1, 5))
        elif kind == 3:
            parts.append(np.full(n, float(rng.integers(-3, 4))))
        else:
            parts.append(1e6 + rng.normal(rng.uniform(0, 50), 10.0, n))
    return np.concatenate(parts)


def random_params(rng: np.random.Generator) -> dict[str, object]:
    return {
        "delta": float(rng.choice([1e-5, 0.002, 0.05, 0.3])),
        "clock": int(rng.choice([1, 2, 7, 32, 64])),
        "max_buckets": int(rng.integers(2, 10)),  # (river 0.26 panics at 1: Rust slice)
        "min_window_length": int(rng.integers(1, 30)),
        "grace_period": int(rng.integers(0, 200)),
    }


def river_hits(params: dict[str, object], stream: np.ndarray) -> list[int]:
    detector = drift.ADWIN(**params)
    out = []
    for i, x in enumerate(stream.tolist()):
        detector.update(x)
        if detector.drift_detected:
            out.append(i)
    return out


def chunked_detect(params: dict[str, object], stream: np.ndarray, cuts: np.ndarray,
                   kernel_min: int, monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], ADWIN]:
    monkeypatch.setattr(adwin_module, "_KERNEL_MIN", kernel_min)
    detector = ADWIN(**params)
    hits = []
    for start, stop in itertools.pairwise(cuts):
        hits += [int(start) + i for i in detector.detect(stream[start:stop])]
    return hits, detector


@pytest.mark.parametrize("case", range(N_CASES))
def test_every_path_matches_river_bit_for_bit(case: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1000 + case)
    stream, params = random_stream(rng), random_params(rng)
    want = river_hits(params, stream)

    one_by_one = ADWIN(**params)
    got = []
    for i, x in enumerate(stream.tolist()):
        one_by_one.update(x)
        if one_by_one.drift_detected:
            got.append(i)
    assert got == want, params

    inner = np.sort(rng.choice(np.arange(1, len(stream)), size=3, replace=False))
    cuts = np.concatenate([[0], inner, [len(stream)]])
    python_hits, python_det = chunked_detect(params, stream, cuts, 10**12, monkeypatch)
    assert python_hits == want, params
    if kernel() is None:
        pytest.skip("numba is not installed: the compiled path is not there to compare")
    compiled_hits, compiled_det = chunked_detect(params, stream, cuts, 1, monkeypatch)
    assert compiled_hits == want, params
    assert compiled_det.state_dict() == python_det.state_dict() == one_by_one.state_dict()


def test_random_streams_do_fire() -> None:
    """The comparison above is not vacuous: most random cases see several detections."""
    fired = 0
    for case in range(N_CASES):
        rng = np.random.default_rng(1000 + case)
        stream, params = random_stream(rng), random_params(rng)
        fired += len(river_hits(params, stream)) > 0
    assert fired >= N_CASES // 2


def test_compiled_detect_resumes_a_python_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """A window built by ``update`` (lists), continued by the compiled ``detect`` (arrays),
    then by ``update`` again, fires where river does."""
    if kernel() is None:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(adwin_module, "_KERNEL_MIN", 1)
    rng = np.random.default_rng(5)
    stream = np.concatenate([rng.normal(0, 1, 3000), rng.normal(1.2, 1, 3000),
                             rng.normal(0, 1, 3000)])
    want = river_hits({}, stream)
    detector, got = ADWIN(), []
    for i, x in enumerate(stream[:2500].tolist()):
        detector.update(x)
        if detector.drift_detected:
            got.append(i)
    got += [2500 + i for i in detector.detect(stream[2500:7000])]
    for i, x in enumerate(stream[7000:].tolist(), start=7000):
        detector.update(x)
        if detector.drift_detected:
            got.append(i)
    assert got == want
    assert len(want) >= 2


@pytest.mark.parametrize("clock", [8, 32, 64])
def test_buffered_update_reads_like_the_unbuffered_one(clock: int) -> None:
    """With numba, ``update`` buffers up to the next clock tick; reading the window
    (``width``, ``estimation``, ``n_seen``, ``state_dict``) or switching to ``detect`` midway
    gives what the Python path gives at that point, and detections stay river's."""
    rng = np.random.default_rng(clock)
    stream = np.concatenate([rng.normal(0, 1, 2000), rng.normal(1.5, 1, 2000),
                             (rng.random(2000) < 0.3).astype(float)])
    params = {"clock": clock, "grace_period": 20}
    want = river_hits(params, stream)
    buffered, plain = ADWIN(**params), ADWIN(**params)
    plain._lazy = False  # the per-value Python update, as without numba
    if kernel() is not None:
        assert buffered._lazy
    got = []
    for i, x in enumerate(stream[:5000].tolist()):
        buffered.update(x)
        plain.update(x)
        assert buffered.drift_detected == plain.drift_detected
        if buffered.drift_detected:
            got.append(i)
        if i % 97 == 0:
            assert buffered.n_seen == plain.n_seen == i + 1
            assert (buffered.width, buffered.estimation) == (plain.width, plain.estimation)
        if i % 1001 == 0:
            assert buffered.state_dict() == plain.state_dict()
    got += [5000 + i for i in buffered.detect(stream[5000:])]
    assert got == want
    assert len(want) >= 2
    resumed = ADWIN.from_state(buffered.state_dict())
    assert resumed.detect(stream[:3000]) == buffered.detect(stream[:3000])
