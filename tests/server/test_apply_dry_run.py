"""``POST /rules/apply?dry_run=true`` validates exactly as the apply does: a receiver the
apply refuses is refused by the dry run with the same answer, and neither writes anything."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.server.live import ThreadServer, settings_for


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    """A server with the default egress policy (test servers otherwise allow loopback)."""
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("data"),
                                   egress_allow="")) as srv:
        yield srv


_ROUTE = "route: {receiver: %s}\n"


def _file(model: str, receiver: str) -> str:
    return (f"rules:\n  - {{name: drift-x, model: {model}, metric: drift, column: x, "
            f"critical: 1}}\nreceivers:\n  - {receiver}\n" + _ROUTE % "hook")


BAD_RECEIVERS = {
    "loopback target": '{type: webhook, name: hook, url: "http://127.0.0.1:9/x"}',
    "metadata address": '{type: webhook, name: hook, url: "http://169.254.169.254/latest"}',
    "no url": "{type: webhook, name: hook}",
    "unknown type": '{type: carrier-pigeon, name: hook, url: "https://hooks.example.com/x"}',
}


def _state(http: httpx.Client, model: str) -> tuple[list, dict]:
    rules = [r for r in http.get("/rules").json() if r["model"] == model]
    return rules, http.get("/notifications/config").json()


@pytest.mark.parametrize("case", sorted(BAD_RECEIVERS))
def test_a_receiver_the_apply_refuses_is_refused_by_the_dry_run(http: httpx.Client,
                                                                case: str) -> None:
    model = f"dr-{uuid.uuid4().hex[:6]}"
    body = _file(model, BAD_RECEIVERS[case])
    before = _state(http, model)
    dry = http.post("/rules/apply", params={"dry_run": "true"}, content=body)
    real = http.post("/rules/apply", content=body)
    assert real.status_code == 422, real.text
    assert dry.status_code == real.status_code
    assert dry.json() == real.json()  # same error, same field, same message
    assert dry.json()["detail"]["field"].startswith("receivers[0]")
    assert _state(http, model) == before  # the apply wrote no rule before refusing


def test_a_route_to_an_undefined_receiver_is_refused_both_ways(http: httpx.Client) -> None:
    model = f"dr-{uuid.uuid4().hex[:6]}"
    body = _file(model, '{type: webhook, name: other, url: "https://hooks.example.com/x"}')
    dry = http.post("/rules/apply", params={"dry_run": "true"}, content=body)
    real = http.post("/rules/apply", content=body)
    assert (dry.status_code, real.status_code) == (422, 422)
    assert dry.json() == real.json() and dry.json()["detail"]["field"] == "route"


def test_a_valid_file_dry_runs_without_writing_then_applies(http: httpx.Client) -> None:
    model = f"dr-{uuid.uuid4().hex[:6]}"
    body = _file(model, '{type: webhook, name: hook, url: "https://hooks.example.com/x"}')
    before = _state(http, model)
    dry = http.post("/rules/apply", params={"dry_run": "true"}, content=body)
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] and dry.json()["notifications"] == ["receivers", "route"]
    assert dry.json()["created"] == [f"{model}/drift-x"]
    assert _state(http, model) == before
    real = http.post("/rules/apply", content=body)
    assert real.status_code == 200, real.text
    rules, config = _state(http, model)
    assert [r["name"] for r in rules] == ["drift-x"]
    assert [r["name"] for r in config["receivers"]] == ["hook"]
