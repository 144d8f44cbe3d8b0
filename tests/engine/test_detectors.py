"""Stream drift detectors: exact agreement with river, pinned indices, conformance."""

from __future__ import annotations

import doctest
import importlib
import inspect
import math
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from aiwarden.engine.detectors import (
    ADWIN,
    DDM,
    DETECTORS,
    DriftDetector,
    PageHinkley,
    make_detector,
)
from aiwarden.errors import DataError, ParameterError

# --------------------------------------------------------------------------- streams


def gaussian_segments(seed: int, means: list[float], length: int, sd: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(mu, sd, length) for mu in means])


def bernoulli_segments(seed: int, rates: list[float], length: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([(rng.random(length) < p).astype(np.float64) for p in rates])


STREAMS: dict[str, Callable[[int], np.ndarray]] = {
    "mean_shift": lambda seed: gaussian_segments(seed, [0.0, 1.0], 3000),
    "up_down": lambda seed: gaussian_segments(seed, [0.0, 2.0, -1.0, 0.5], 1500, sd=0.5),
    "no_drift": lambda seed: gaussian_segments(seed, [0.0], 6000),
    "offset_scale": lambda seed: gaussian_segments(seed, [1e4, 1e4 + 30.0], 2500, sd=10.0),
}
BINARY_STREAMS: dict[str, Callable[[int], np.ndarray]] = {
    "rate_jump": lambda seed: bernoulli_segments(seed, [0.1, 0.3], 3000),
    "rate_steps": lambda seed: bernoulli_segments(seed, [0.05, 0.2, 0.05, 0.4], 1500),
    "no_drift": lambda seed: bernoulli_segments(seed, [0.2], 6000),
}
SEEDS = [0, 1, 2]

# Our class, river's class path, parameter sets (river's names and defaults).
ADWIN_PARAMS = [
    {},
    {"delta": 0.1, "clock": 1},
    {"max_buckets": 2, "min_window_length": 1, "grace_period": 0, "clock": 4},
    {"delta": 1e-5, "clock": 64, "max_buckets": 9, "min_window_length": 20, "grace_period": 100},
    {"delta": 0.3, "clock": 1, "max_buckets": 9, "min_window_length": 1, "grace_period": 0},
]
PH_PARAMS = [
    {},
    {"mode": "up", "threshold": 10.0},
    {"mode": "down", "threshold": 20.0, "delta": 0.05, "alpha": 0.99},
    {"min_instances": 1, "threshold": 5.0, "alpha": 1.0},
]
DDM_PARAMS = [
    {},
    {"warm_start": 0},
    {"warm_start": 100, "warning_threshold": 1.5, "drift_threshold": 2.5},
]


def river_class(ours: type[DriftDetector]) -> type:
    drift = pytest.importorskip("river.drift")
    return {ADWIN: drift.ADWIN, PageHinkley: drift.PageHinkley, DDM: drift.binary.DDM}[ours]


def flags_by_update(detector: Any, stream: np.ndarray) -> list[tuple[bool, bool]]:
    """(drift, warning) after every update; works for ours and river's detectors."""
    out = []
    for x in stream.tolist():
        detector.update(x)
        out.append((detector.drift_detected, getattr(detector, "warning_detected", False)))
    return out


def hits(flags: list[tuple[bool, bool]]) -> list[int]:
    return [i for i, (drift, _) in enumerate(flags) if drift]


def comparison_cases() -> list[object]:
    cases = []
    for cls, param_sets, streams in [
        (ADWIN, ADWIN_PARAMS, {**STREAMS, "binary_rate_jump": BINARY_STREAMS["rate_jump"]}),
        (PageHinkley, PH_PARAMS, STREAMS),
        (DDM, DDM_PARAMS, BINARY_STREAMS),
    ]:
        for k, params in enumerate(param_sets):
            for stream_name in streams:
                cases.append(
                    pytest.param(
                        cls, params, streams[stream_name], id=f"{cls.__name__}-p{k}-{stream_name}"
                    )
                )
    return cases


# ------------------------------------------------------------------ agreement with river


@pytest.mark.parametrize(("cls", "params", "make_stream"), comparison_cases())
def test_detection_indices_match_river(
    cls: type[DriftDetector], params: dict, make_stream: Callable[[int], np.ndarray]
) -> None:
    river_cls = river_class(cls)
    for seed in SEEDS:
        stream = make_stream(seed)
        expected = flags_by_update(river_cls(**params), stream)
        assert flags_by_update(cls(**params), stream) == expected, f"seed {seed}"
        assert cls(**params).detect(stream) == hits(expected), f"seed {seed}"


def test_river_comparison_is_not_vacuous() -> None:
    """The shifted streams above do fire, several times for the multi-step ones."""
    assert len(ADWIN().detect(STREAMS["up_down"](0))) >= 3
    assert len(PageHinkley(threshold=10.0).detect(STREAMS["up_down"](0))) >= 3
    assert len(DDM().detect(BINARY_STREAMS["rate_steps"](0))) >= 2


def test_adwin_window_state_matches_river_bit_for_bit() -> None:
    river_adwin = river_class(ADWIN)(clock=1, delta=0.05)
    ours = ADWIN(clock=1, delta=0.05)
    n_drifts = 0
    for x in gaussian_segments(3, [0.0, 0.7, 0.0], 2000).tolist():
        river_adwin.update(x)
        ours.update(x)
        assert ours.width == river_adwin.width
        assert ours.estimation == river_adwin.estimation
        n_drifts += ours.drift_detected
    assert n_drifts >= 2


# ------------------------------------------------------------------------ pinned values

PINNED_STREAM = gaussian_segments(42, [0.0, 1.5, 0.0], 2000, sd=1.0)
PINNED_ERRORS = bernoulli_segments(42, [0.1, 0.35, 0.1], 2000)


def test_pinned_detection_indices() -> None:
    assert ADWIN().detect(PINNED_STREAM) == [2015, 4031]
    assert PageHinkley(threshold=100.0).detect(PINNED_STREAM) == [2061, 4041]
    assert DDM().detect(PINNED_ERRORS) == [2361, 3264]


def test_ddm_fires_on_first_error_after_error_free_warm_start() -> None:
    stream = np.array([0.0] * 40 + [1.0] + [0.0] * 10)
    detector = DDM()
    assert detector.detect(stream) == [40]
    assert DDM(warm_start=50).detect(stream) == []


# ------------------------------------------------------------- documented false alarms


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_detection_on_stationary_streams(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 100_000
    assert ADWIN().detect(rng.normal(0.0, 1.0, n)) == []
    assert ADWIN().detect((rng.random(n) < 0.1).astype(float)) == []
    assert PageHinkley().detect(rng.normal(0.0, 0.1, n)) == []
    assert DDM().detect((rng.random(n) < 0.3).astype(float)) == []


def test_page_hinkley_defaults_false_alarm_on_unit_noise_as_documented() -> None:
    n_alarms = len(PageHinkley().detect(np.random.default_rng(0).normal(0.0, 1.0, 100_000)))
    assert 30 <= n_alarms <= 120  # "fires every ~1,600 values" with sigma = 1


# --------------------------------------------------------------------------- conformance


def conformance_stream(name: str) -> np.ndarray:
    if name == "ddm":
        return bernoulli_segments(5, [0.1, 0.4, 0.1, 0.5], 800)
    return gaussian_segments(5, [0.0, 3.0, 0.0, 3.0], 800, sd=0.5)


@pytest.fixture(params=sorted(DETECTORS))
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_registry_and_factory(name: str) -> None:
    cls = DETECTORS[name]
    assert issubclass(cls, DriftDetector)
    detector = make_detector(name)
    assert type(detector) is cls
    assert repr(detector).startswith(f"{cls.__name__}(")
    assert set(DETECTORS) == {"adwin", "ddm", "page_hinkley"}


def test_make_detector_unknown_name_lists_valid_names() -> None:
    with pytest.raises(
        ParameterError,
        match=re.escape(
            "The 'name' parameter of make_detector must be one of 'adwin', 'ddm', "
            "'page_hinkley'. Got 'cusum' instead."
        ),
    ):
        make_detector("cusum")
    with pytest.raises(ParameterError, match="'name' parameter of make_detector"):
        make_detector(["adwin"])  # type: ignore[arg-type]
    assert make_detector("adwin", delta=0.01).delta == 0.01
    with pytest.raises(ParameterError, match=r"'params' parameter of make_detector .+'clock'"):
        make_detector("adwin", clocks=3)


def test_every_threshold_is_a_constructor_parameter(name: str) -> None:
    cls = DETECTORS[name]
    signature = inspect.signature(cls.__init__)
    names = [p for p in signature.parameters if p != "self"]
    detector = cls()
    assert list(detector.params) == names
    assert all(detector.params[p] == signature.parameters[p].default for p in names)
    clone = cls(**detector.params)
    stream = conformance_stream(name)
    assert clone.detect(stream) == detector.detect(stream)


def test_update_returns_none_and_flags_are_read_only(name: str) -> None:
    detector = make_detector(name)
    assert detector.update(1.0) is None
    assert detector.drift_detected is False
    assert detector.n_seen == 1
    with pytest.raises(AttributeError):
        detector.drift_detected = True  # type: ignore[misc]
    with pytest.raises(AttributeError):
        detector.n_seen = 0  # type: ignore[misc]


def test_deterministic_and_detect_equals_update_loop(name: str) -> None:
    stream = conformance_stream(name)
    first = make_detector(name).detect(stream)
    assert first, "the conformance stream must fire"
    assert make_detector(name).detect(stream) == first
    assert hits(flags_by_update(make_detector(name), stream)) == first
    # drift_detected is True exactly on the update that fired, then clears.
    detector = make_detector(name)
    detector.detect(stream[: first[0] + 1])
    assert detector.drift_detected
    detector.update(stream[first[0] + 1])
    assert not detector.drift_detected


def test_chunked_detect_equals_whole(name: str) -> None:
    stream = conformance_stream(name)
    whole = make_detector(name).detect(stream)
    detector = make_detector(name)
    found: list[int] = []
    for start in range(0, len(stream), 333):
        found += [start + i for i in detector.detect(stream[start : start + 333])]
    assert found == whole
    assert detector.n_seen == len(stream)
    assert detector.detect([]) == []
    assert detector.n_seen == len(stream)


@pytest.mark.parametrize("where", ["mid_window", "on_drift"])
def test_pickle_mid_stream_continues_identically(name: str, where: str) -> None:
    stream = conformance_stream(name)
    first = make_detector(name).detect(stream)
    cut = first[0] + 1 if where == "on_drift" else first[0] + 250
    detector = make_detector(name)
    detector.detect(stream[:cut])
    clone = pickle.loads(pickle.dumps(detector))
    assert clone.drift_detected == detector.drift_detected == (where == "on_drift")
    assert clone.n_seen == detector.n_seen == cut
    rest = stream[cut:]
    assert flags_by_update(clone, rest) == flags_by_update(detector, rest)
    assert clone.n_seen == len(stream)


def test_reset_forgets_everything(name: str) -> None:
    stream = conformance_stream(name)
    fresh = make_detector(name).detect(stream)
    detector = make_detector(name)
    detector.detect(stream[: fresh[0] + 1])
    assert detector.drift_detected
    detector.reset()
    assert detector.n_seen == 0
    assert detector.drift_detected is False
    assert getattr(detector, "warning_detected", False) is False
    assert detector.detect(stream) == fresh


def test_ddm_warning_zone_precedes_drift() -> None:
    flags = flags_by_update(DDM(), PINNED_ERRORS)
    drift_at = hits(flags)[0]
    assert flags[drift_at] == (True, False)  # a drift update never reports a warning
    assert flags[drift_at - 1] == (False, True)


BAD_PARAMS: dict[str, dict[str, list[object]]] = {
    "adwin": {
        "delta": [0, 1.0, -0.5, math.nan, math.inf, "0.1", True],
        "clock": [0, -3, 1.5, True, "32"],
        "max_buckets": [0, 2.0],
        "min_window_length": [0, None],
        "grace_period": [-1, 10.5],
    },
    "page_hinkley": {
        "min_instances": [0, 30.0],
        "delta": [-0.1, math.inf],
        "threshold": [0, -1.0, math.nan],
        "alpha": [0.0, 1.01, False],
        "mode": ["sideways", None, "UP"],
    },
    "ddm": {
        "warm_start": [-1, 30.0],
        "warning_threshold": [0.0, 3.5, math.nan],
        "drift_threshold": [0.0, -2.0, "3"],
    },
}


def test_bad_parameters_give_the_template_message(name: str) -> None:
    cls = DETECTORS[name]
    assert set(BAD_PARAMS[name]) == set(cls().params)
    for param, values in BAD_PARAMS[name].items():
        for value in values:
            pattern = (
                rf"^The '{param}' parameter of {cls.__name__} must be .+\. "
                rf"Got {re.escape(repr(value))} instead\.$"
            )
            with pytest.raises(ParameterError, match=pattern):
                cls(**{param: value})


def test_template_message_text() -> None:
    with pytest.raises(ParameterError) as info:
        ADWIN(delta=0)
    assert (
        str(info.value)
        == "The 'delta' parameter of ADWIN must be a float in (0, 1). Got 0 instead."
    )
    with pytest.raises(ParameterError) as info:
        DDM(warning_threshold=4.0)
    assert str(info.value) == (
        "The 'warning_threshold' parameter of DDM must be a float in (0, 3]. Got 4.0 instead."
    )


def test_bad_values_are_data_errors(name: str) -> None:
    detector = make_detector(name)
    for bad in (math.nan, math.inf):
        with pytest.raises(DataError):
            detector.update(bad)
        with pytest.raises(DataError):
            detector.detect([0.0, bad])
    with pytest.raises(DataError, match="1-D"):
        detector.detect(np.zeros((3, 2)))
    with pytest.raises(DataError):
        detector.detect(["a", "b"])
    assert detector.n_seen == 0  # nothing was half-consumed


def test_ddm_needs_binary_outcomes() -> None:
    with pytest.raises(DataError, match="0/1"):
        DDM().update(0.5)
    with pytest.raises(DataError, match="0/1"):
        DDM().detect([0, 1, 2])
    assert DDM().detect([True, False, True]) == []
    DDM().update(np.True_)


def test_inputs_of_any_numeric_kind(name: str) -> None:
    stream = conformance_stream(name)
    expected = make_detector(name).detect(stream)
    assert make_detector(name).detect(stream.tolist()) == expected
    assert make_detector(name).detect(iter(stream.tolist())) == expected
    assert make_detector(name).detect(stream.astype(np.float32).astype(np.float64)) == (
        make_detector(name).detect(stream.astype(np.float32))
    )


# ------------------------------------------------------------------------ docs & purity

MODULES = [
    "aiwarden.engine.detectors",
    "aiwarden.engine.detectors._base",
    "aiwarden.engine.detectors._adwin",
    "aiwarden.engine.detectors._page_hinkley",
    "aiwarden.engine.detectors._ddm",
]


@pytest.mark.parametrize("module_name", MODULES)
def test_module_doctests(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def test_engine_does_not_import_river_at_runtime() -> None:
    code = (
        "import sys, aiwarden.engine.detectors as d; "
        "d.ADWIN().detect([0.0, 1.0] * 100); "
        "assert not any(m == 'river' or m.startswith('river.') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
