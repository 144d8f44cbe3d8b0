"""The prediction page and the feature-importance panel through a real server (SQLite and
PostgreSQL): the logged row with its label, the waterfall's steps adding up from the base
value to the output with the $4 purchase's ``amount`` first, LIME by the method switch,
the service's refusal shown as a message (not a 500), and the window's importance."""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.explain_seed import explainable

pytest.importorskip("shap")


@pytest.fixture(scope="module")
def site(server: Any) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=120) as api, \
            httpx.Client(base_url=server.url, timeout=120) as web:
        yield web, explainable(api)


def _spec(text: str, cid: str) -> dict[str, Any]:
    for block in re.findall(r'<script type="application/json" class="chart-spec">(.*?)'
                            r"</script>", text, re.S):
        spec = json.loads(block)
        if spec["id"] == cid:
            return spec
    raise AssertionError(f"no chart {cid!r} on the page")


def test_the_prediction_page_explains_the_logged_row(site) -> None:
    web, m = site
    r = web.get(f"/models/{m['name']}/predictions/p0")
    assert r.status_code == 200, r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    text = r.text
    spec = _spec(text, "waterfall")
    names = spec["categories"]
    assert names[0] == "base value" and names[1] == "amount" and names[-1] == "output"
    assert set(names[1:-1]) == {"amount", "age", "noise"}
    steps = spec["steps"]
    for a, b in itertools.pairwise(steps[1:-1]):  # each starts where the last one ended
        assert b["from"] == pytest.approx(a["to"], abs=1e-5)
    assert steps[-2]["to"] == pytest.approx(steps[-1]["to"], abs=1e-5)  # reaches the output
    assert steps[1]["kind"] == "down" and steps[1]["value"] == pytest.approx(4.0)
    api = web.post(f"/api/v1/models/{m['name']}/explain", json={"prediction_ids": ["p0"]})
    want = api.json()["explanations"][0]  # the page draws what the REST API answers
    assert steps[0]["to"] == pytest.approx(want["base_value"], rel=1e-4)
    assert steps[-1]["to"] == pytest.approx(want["output"], rel=1e-4)
    assert [s["to"] - s["from"] for s in steps[1:-1]] == pytest.approx(
        [c["contribution"] for c in want["contributions"]], rel=1e-3, abs=1e-5)
    assert spec["note"] == f"SHAP ({want['method']}), largest first"
    space = {"margin": "margin (raw score before the link)"}.get(want["output_space"],
                                                                 want["output_space"])
    assert f'id="output-space">{space}<' in text and 'id="explained-class">1<' in text
    table = text.split('id="contributions"')[1].split("</table>")[0]
    assert re.findall(r'data-feature="([^"]+)"', table)[0] == "amount"
    assert "<th scope=\"row\">amount</th><td class=\"n\">4</td>" in table
    row = text.split('id="logged-row"')[1].split("</section>")[0]
    assert "version <b>1</b>" in row and "not joined yet" in row

    labelled = web.get(f"/models/{m['name']}/predictions/p1").text
    assert 'id="row-label">1<' in labelled


def test_lime_by_the_method_switch(site) -> None:
    web, m = site
    text = web.get(f"/models/{m['name']}/predictions/p0", params={"method": "lime"}).text
    assert 'id="explain-method">lime<' in text
    assert "LIME condition" in text and "amount &lt;=" in text
    spec = _spec(text, "waterfall")
    assert spec["note"] == "LIME, largest first"
    assert spec["steps"][-1]["to"] == pytest.approx(  # the residual step closes the gap
        spec["steps"][-2]["to"], abs=1e-5)
    bad = web.get(f"/models/{m['name']}/predictions/p0", params={"method": "magic"})
    assert bad.status_code == 422 and "method: expected one of" in html.unescape(bad.text)


def test_an_unexplainable_version_is_a_message_not_an_error(site) -> None:
    web, m = site
    r = web.get(f"/models/{m['name']}/predictions/u0")
    assert r.status_code == 200, r.text
    msg = html.unescape(r.text.split('id="explain-error">')[1].split("</p>")[0])
    assert "Version '2' of" in msg and "has no registered model" in msg
    assert "version <b>2</b>" in r.text  # the row is still shown
    # explained by version 1 instead, from the page's version selector
    r = web.get(f"/models/{m['name']}/predictions/u0", params={"version": "1"})
    assert "explain-error" not in r.text and _spec(r.text, "waterfall")
    missing = web.get(f"/models/{m['name']}/predictions/nope")
    assert missing.status_code == 404 and "never accepted" in missing.text
    found = web.get(f"/models/{m['name']}/predictions", params={"id": " p0 "},
                    follow_redirects=False)
    assert found.status_code == 303
    assert found.headers["location"] == f"/models/{m['name']}/predictions/p0"


def test_the_importance_panel_and_the_model_page_form(site) -> None:
    web, m = site
    page = web.get(f"/models/{m['name']}", params={"version": "1"}).text
    assert 'id="explain-form"' in page and "/explain/importance?version=1" in page
    r = web.get(f"/models/{m['name']}/explain/importance",
                params={"version": "1", "range": "24h"}, headers={"hx-request": "true"})
    assert r.status_code == 200, r.text
    spec = _spec(r.text, "importance")
    assert spec["categories"][0].startswith("amount (ref #1)")
    bars, ref = spec["series"]
    assert bars["lower"][0] <= bars["data"][0] <= bars["upper"][0]
    assert ref["type"] == "marker" and ref["data"][0] > 0
    assert "nDCG <b>" in r.text and "61" not in r.text.split("logged rows")[0][-8:]
    assert "60 logged rows" in r.text
    refused = web.get(f"/models/{m['name']}/explain/importance", params={"version": "2"})
    assert refused.status_code == 200
    assert "has no registered model" in html.unescape(refused.text)


def test_a_quarantined_id_accepted_since_links_to_its_page(site) -> None:
    web, m = site
    row = {"prediction_id": "q1", "version": "1", "prediction": 0, "scores": 0.2,
           "features": {"amount": "four", "age": 30.0, "noise": 0.0}}
    other = {**row, "prediction_id": "q2"}
    r = web.post(f"/api/v1/models/{m['name']}/predictions", json=[row, other])
    assert r.json()["quarantined"] == 2, r.text
    fixed = {**row, "features": {**row["features"], "amount": 4.0}}  # sent again, corrected
    assert web.post(f"/api/v1/models/{m['name']}/predictions",
                    json=[fixed]).json()["accepted"] == 1
    text = web.get(f"/models/{m['name']}/quarantine").text
    assert f'href="/models/{m["name"]}/predictions/q1"' in text
    assert "/predictions/q2" not in text  # never accepted: no page to open


def test_a_server_without_shap_says_which_extra_to_install(site, monkeypatch) -> None:
    """The server runs in this process: hiding shap from its import makes the engine's own
    MissingExtraError, shown on the page beside the row (p7: not cached by another test)."""
    import sys

    web, m = site
    monkeypatch.setitem(sys.modules, "shap", None)
    r = web.get(f"/models/{m['name']}/predictions/p7")
    assert r.status_code == 200, r.text
    msg = html.unescape(r.text.split('id="explain-error">')[1].split("</p>")[0])
    assert "shap, which is not installed" in msg and "aiwarden[explain]" in msg
    assert 'id="row-features"' in r.text


def test_another_sites_request_shows_the_row_without_computing(site) -> None:
    """A link in an alert opens the page; an ``<img>`` on any site must not spend the server's
    CPU: from another site the row is shown and the explanation waits for a click here."""
    web, m = site
    url = f"/models/{m['name']}/predictions/p1"
    for dest in ("image", "document"):
        r = web.get(url, headers={"sec-fetch-site": "cross-site", "sec-fetch-dest": dest})
        assert r.status_code == 200, r.text
        assert 'id="explain-deferred"' in r.text and 'class="chart-spec"' not in r.text
        assert 'id="row-label">1<' in r.text  # the logged row is still shown
    here = web.get(url, headers={"sec-fetch-site": "same-origin"})
    assert 'id="explain-deferred"' not in here.text and _spec(here.text, "waterfall")
