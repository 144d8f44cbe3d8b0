"""``start=-1`` (a typo of ``-1h``) is a 422 naming ``start``, not a window from 1969 or a
500 from a sampler seeded with a negative time; a window that really starts before 1970
(an ISO date) is read like any other."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from aiwarden.errors import ParameterError
from aiwarden.monitoring.seeded_sample import sample_positions, window_rng
from aiwarden.monitoring.windows import parse_instant
from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ThreadServer, database_url, settings_for


@pytest.mark.parametrize("text", ["-1", "-5", "-1.5", "-1e3", "-0", "-1.3e-171"])
def test_a_negative_epoch_in_text_is_refused_naming_the_parameter(text: str) -> None:
    with pytest.raises(ParameterError, match=r"not negative.*'-1h'") as err:
        parse_instant(text, "start")
    assert err.value.field == "start"
    assert abs(parse_instant("-1h", "start") - (time.time() - 3600)) < 5  # the intended one


def test_seeds_take_windows_before_1970_and_keep_positive_ones() -> None:
    assert np.array_equal(window_rng(3, -86400.0, 10).integers(0, 10**9, 5),
                          window_rng(3, 2**64 - 86400, 10).integers(0, 10**9, 5))
    # positive parts seed as numpy's own list seed did before
    assert np.array_equal(sample_positions(1000, 10, (7, 1_700_000_000, 1_700_003_600)),
                          np.sort(np.random.default_rng([7, 1_700_000_000, 1_700_003_600])
                                  .choice(1000, 10, replace=False)))


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    tmp: Path = tmp_path_factory.mktemp("instants")
    with database_url("sqlite", tmp) as url, ThreadServer(settings_for(url, tmp)) as srv, \
            httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as client:
        register_model(client, "m")
        rows = json_rows(scored_frame(400, seed=3), time.time() - 1800)
        client.post("/models/m/predictions", json=rows).raise_for_status()
        yield client


@pytest.mark.parametrize("path,params", [
    ("/models/m/metrics", {"metric": "multivariate_drift"}),
    ("/models/m/metrics", {"metric": "drift"}),
    ("/models/m/rca", {}),
])
def test_start_minus_one_is_a_422_naming_start(http: httpx.Client, path: str,
                                               params: dict) -> None:
    got = http.get(path, params={**params, "start": "-1", "end": "now"})
    assert got.status_code == 422, got.text
    assert got.json()["detail"]["field"] == "start"
    assert "'-1h'" in got.json()["detail"]["message"]


def test_a_window_from_1960_is_read(http: httpx.Client) -> None:
    got = http.get("/models/m/metrics", params={"metric": "multivariate_drift",
                                                "start": "1960-01-01T00:00:00Z", "end": "now"})
    assert got.status_code == 200, got.text
    assert got.json()  # the window holds the 400 rows logged half an hour ago
