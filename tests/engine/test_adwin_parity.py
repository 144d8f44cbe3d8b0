"""ADWIN against river on many random streams and parameter sets, on every path.

Our ADWIN must agree with river's ``update`` + ``drift_detected`` bit for bit: the same
detections at the same positions and the same window (width, mean, sum of squares). Each
check runs twice when numba is installed: on the compiled loop and on the Python loop (the
path without numba), through ``update`` one value at a time, ``detect`` in random chunks,
and random mixes of both with reads, JSON checkpoints and pickles in between.
"""

from __future__ import annotations

import itertools
import json
import pickle

import numpy as np
import pytest

import aiwarden.engine.detectors._adwin as adwin_module
from aiwarden.engine.detectors import ADWIN
from aiwarden.engine.detectors._adwin_kernel import kernel
from aiwarden.errors import DataError

drift = pytest.importorskip("river.drift")

N_CASES = 40
PATHS = ["compiled", "python"]


def make(path: str, **params: object) -> ADWIN:
    """An ADWIN on the compiled loop or, as without numba, on the Python one."""
    if path == "compiled" and kernel() is None:
        pytest.skip("numba is not installed: the compiled path is not there to compare")
    detector = ADWIN(**params)  # type: ignore[arg-type]
    if path == "python":
        detector._run = None
    return detector


def restored(detector: ADWIN, path: str) -> ADWIN:
    """A JSON checkpoint of ``detector`` resumed on ``path``."""
    twin = ADWIN.from_state(json.loads(json.dumps(detector.state_dict())))
    if path == "python":
        twin._run = None
    return twin


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
        "clock": int(rng.choice([1, 2, 7, 32, 64, 1500])),
        "max_buckets": int(rng.integers(2, 10)),  # (river 0.26 panics at 1: Rust slice)
        "min_window_length": int(rng.integers(1, 30)),
        "grace_period": int(rng.integers(0, 200)),
    }


def river_run(params: dict[str, object], stream: np.ndarray) -> tuple[list[int], list[tuple]]:
    """river's detections, and its window (width, estimation, variance) after each value."""
    detector = drift.ADWIN(**params)
    hits, windows = [], []
    for i, x in enumerate(stream.tolist()):
        detector.update(x)
        if detector.drift_detected:
            hits.append(i)
        windows.append((detector.width, detector.estimation, detector.variance))
    return hits, windows


def window(detector: ADWIN) -> tuple[int, float, float]:
    """Width, mean and river's ``variance`` (the sum of squared deviations) of our window."""
    return detector.width, detector.estimation, detector.state_dict()["state"]["_variance"]


def case(number: int) -> tuple[np.random.Generator, np.ndarray, dict[str, object]]:
    rng = np.random.default_rng(1000 + number)
    return rng, random_stream(rng), random_params(rng)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("number", range(N_CASES))
def test_update_and_chunked_detect_match_river(number: int, path: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    rng, stream, params = case(number)
    want, windows = river_run(params, stream)

    one_by_one = make(path, **params)
    got = []
    for i, x in enumerate(stream.tolist()):
        one_by_one.update(x)
        if one_by_one.drift_detected:
            got.append(i)
    assert got == want, params
    assert window(one_by_one) == windows[-1]

    # Chunks cross clock ticks and detections; the compiled loop takes even short ones.
    monkeypatch.setattr(adwin_module, "_KERNEL_MIN", 1)
    inner = np.sort(rng.choice(np.arange(1, len(stream)), size=3, replace=False))
    cuts = np.concatenate([[0], inner, [len(stream)]])
    chunked = make(path, **params)
    hits = []
    for start, stop in itertools.pairwise(cuts):
        hits += [int(start) + i for i in chunked.detect(stream[start:stop])]
    assert hits == want, params
    assert chunked.state_dict() == one_by_one.state_dict()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("number", range(0, N_CASES, 3))
def test_mixed_calls_reads_and_checkpoints_match_river(number: int, path: str) -> None:
    """Random runs of single updates and batches of any length, with reads of the window,
    JSON checkpoints and pickles between them: the same flags at every position and the
    same window as river at every read."""
    rng, stream, params = case(number)
    want, windows = river_run(params, stream)
    detector = make(path, **params)
    got: list[int] = []
    at = 0
    while at < len(stream):
        step = int(rng.choice([1, 3, 40, 700, 5000]))
        part = stream[at : at + step]
        if rng.random() < 0.5:
            for i, x in enumerate(part.tolist(), start=at):
                detector.update(x)
                assert detector.drift_detected == (i in want), (i, params)
                if detector.drift_detected:
                    got.append(i)
        else:
            got += [at + i for i in detector.detect(part)]
        at += len(part)
        assert detector.n_seen == at
        roll = rng.random()
        if roll < 0.3:
            assert window(detector) == windows[at - 1], (at, params)
        elif roll < 0.5:
            detector = restored(detector, path)
        elif roll < 0.6:
            detector = pickle.loads(pickle.dumps(detector))
            if path == "python":
                detector._run = None
    assert got == want, params
    assert window(detector) == windows[-1]


def test_random_streams_do_fire() -> None:
    """The comparisons above are not vacuous: most random cases see several detections."""
    fired = sum(len(river_run(params, stream)[0]) > 0
                for _, stream, params in map(case, range(N_CASES)))
    assert fired >= N_CASES // 2


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("clock", [5, 32, 64])
def test_update_after_a_checkpoint_between_ticks_fires_on_the_tick(path: str,
                                                                   clock: int) -> None:
    """A detector saved and restored between two clock ticks buffers only up to the next
    tick, so a drift on it is seen on that very update, as river sees it."""
    rng = np.random.default_rng(clock)
    stream = np.concatenate([rng.normal(0, 1, 1000), rng.normal(3, 1, 1000)])
    params = {"clock": clock}
    want, _ = river_run(params, stream)
    first = make(path, **params)
    assert want and want[0] >= 1000
    head = want[0] - clock // 2 - 1  # between the two ticks before the first detection
    first.detect(stream[:head])
    assert first.state_dict()["state"]["_tick"] % clock
    resumed = restored(first, path)
    got = [i for i, x in enumerate(stream[head:].tolist(), start=head)
           if (resumed.update(x), resumed.drift_detected)[1]]
    assert got == [i for i in want if i >= head] and got


@pytest.mark.parametrize("path", PATHS)
def test_non_numbers_are_refused_and_the_stream_goes_on(path: str) -> None:
    """``update`` refuses NaN and infinities at once. A value that passes its cheap check but
    is no real number (a complex, an int past float's range) is refused at the next tick,
    named, and dropped; the values around it still count, as if it had never been sent."""
    stream = np.random.default_rng(3).normal(0, 1, 200)
    clean = make(path)
    for x in stream.tolist():
        clean.update(x)
    detector = make(path)
    for x in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(DataError):
            detector.update(x)
    assert detector.n_seen == 0
    raised = 0
    for i, x in enumerate(stream.tolist()):
        try:
            detector.update(x)
            if i == 10:
                detector.update(2j)  # type: ignore[arg-type]
            if i == 100:
                detector.update(10**400)
        except DataError as error:
            assert "2j" in str(error) or "1000000" in str(error)
            raised += 1
    assert raised == 2
    assert detector.state_dict()["state"] == clean.state_dict()["state"]
    detector.update("1.5")  # type: ignore[arg-type]  # what float() takes, as before
    detector.update(np.float32(0.25))  # type: ignore[arg-type]
    detector.update(np.True_)  # type: ignore[arg-type]
    detector.update(3)
    for x in (1.5, float(np.float32(0.25)), 1.0, 3.0):
        clean.update(x)
    assert detector.state_dict() == clean.state_dict()
