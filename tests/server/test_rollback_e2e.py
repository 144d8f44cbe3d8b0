"""Automated and manual rollback through the real server (SQLite and PostgreSQL).

A freshly promoted version whose predictions fail fires a critical rule; the policy moves
the champion alias back to the previous version, the alias history says why, the incident
timeline records the rollback, and after ``verify_for`` the rule is checked again on the
restored version and the verdict lands on the timeline too.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from aiwarden.sdk import ApiError, Client
from tests.alerting.receivers import WebhookServer
from tests.registry.models import fitted
from tests.server.conftest import evaluate, json_rows, scored_frame


def _two_versions(c: Client, name: str) -> None:
    c.register_version(name, fitted(seed=0))
    c.promote(name, "1", reason="first release")
    c.register_version(name, fitted(seed=1, C=0.1))
    c.promote(name, "2", reason="better AUC offline")


def _traffic(http, name: str, version: str, failed: int, prefix: str,
             ago: float = 200) -> None:
    rows = json_rows(scored_frame(100, seed=len(prefix)), time.time() - ago, prefix=prefix,
                     spacing=ago / 200)
    for r in rows:
        r["version"] = version
    for r in rows[:failed]:
        r["error"] = "model crashed"
    res = http.post(f"/models/{name}/predictions", json=rows).json()
    assert res["accepted"] == 100, res


def _timeline(http, name: str) -> list[dict]:
    (inc,) = [i for i in http.get("/incidents", params={"model": name}).json()]
    return http.get(f"/incidents/{inc['id']}").json()["timeline"]


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookServer]:
    with WebhookServer() as h:
        yield h


def test_a_failing_fresh_version_is_rolled_back_and_the_rollback_verified(http, server, hook
                                                                          ) -> None:
    name = f"rb-{uuid.uuid4().hex[:6]}"
    with Client(server.url) as c:
        _two_versions(c, name)
        c.set_rollback_policy(name, severity="critical", lookback="1h", verify_for="15s",
                              rules=["crashes"])  # longer than the checks below take on a
    # loaded box: with 1 s the verification ran before version 1's traffic came ("no data")
    http.post("/rules/apply", content=f"""
receivers:
  - {{type: webhook, name: hook, url: "{hook.url()}"}}
route: {{receiver: hook, group_by: [model, rule], group_wait: 1s}}
rules:
  - {{name: crashes, model: {name}, metric: errors, window: 15m, critical: 0.2, no_data: OK}}
""").raise_for_status()
    _traffic(http, name, "1", failed=0, prefix="a")  # the old version was fine
    _traffic(http, name, "2", failed=40, prefix="b")  # the new one fails 40 % of the time
    out = evaluate(http)
    rolled_by = time.time()  # the rollback happened in that evaluation
    fired = [t for t in out["transitions"] if t["labels"]["model"] == name
             and t["kind"] == "firing"]
    assert [(t["labels"]["rule"], t["labels"]["version"]) for t in fired] == [("crashes", "2")]
    aliases = http.get(f"/registry/models/{name}/aliases").json()
    assert aliases["champion"] == "1"
    (last, *_) = http.get(f"/registry/models/{name}/aliases/champion/history").json()
    assert (last["from_version"], last["to_version"], last["kind"], last["actor"]) == (
        "2", "1", "rollback", "aiwarden")
    assert "crashes" in last["reason"] and "0.4" in last["reason"]
    timeline = _timeline(http, name)
    rolled = [e for e in timeline if e["kind"] == "action"
              and e["detail"].get("text", "").startswith(f"Rolled {name}@champion back")]
    assert len(rolled) == 1 and rolled[0]["detail"]["to_version"] == "1"
    assert len(http.get("/rollbacks/pending").json()) >= 1
    # the RCA lists the promotion (a suspect) and the rollback (a change) among recent changes
    rca = http.get(f"/models/{name}/rca").json()
    moves = [(c["move"], c["from"], c["to"]) for c in rca["changes"] if c["kind"] == "alias"]
    assert moves == [("promote", None, "1"), ("promote", "1", "2"), ("rollback", "2", "1")]
    promoted = [x for x in rca["suspects"] if x["name"] == "alias:champion"]
    assert promoted and "1 -> 2" in promoted[0]["summary"]
    # after the automatic rollback, "back" would redeploy version 2: nothing offers it
    (inc,) = http.get("/incidents", params={"model": name}).json()
    page = httpx.get(f"{server.url}/incidents/{inc['id']}").text
    assert "Roll back champion" not in page and "1 → 2" not in page
    assert ("No rollback of champion: champion was already rolled back from version 2 to 1 "
            "by aiwarden; going back again would redeploy version 2.") in page
    assert httpx.get(f"{server.url}/incidents/{inc['id']}/rollback",
                     params={"alias": "champion"}).status_code == 409
    versions = httpx.get(f"{server.url}/models/{name}/panels/versions",
                         headers={"HX-Request": "true"}).text
    assert "Roll back to 2" not in versions  # the model page offers it no more either
    with Client(server.url) as c:
        with pytest.raises(ApiError) as refused:
            c.rollback(name, reason="second thoughts")
        assert refused.value.status == 409 and "redeploy version 2" in str(refused.value)
    assert http.get(f"/registry/models/{name}/aliases").json()["champion"] == "1"
    # version 1 serves again; only rows stamped after the rollback count, so on a fast run
    # wait until the first of these (a failed one) is stamped after it
    time.sleep(max(0.0, rolled_by + 0.6 - time.time()))
    _traffic(http, name, "1", failed=2, prefix="d", ago=0.5)
    # after verify_for, the maintenance tick checks the rule again on version 1
    deadline = time.monotonic() + 20
    while not (verdicts := [e for e in _timeline(http, name) if e["kind"] == "action"
                            and e["detail"].get("outcome")]):
        assert time.monotonic() < deadline, "the rollback was never verified"
        time.sleep(0.3)
    assert [v["detail"]["outcome"] for v in verdicts] == ["recovered"]
    assert verdicts[0]["detail"]["value"] == 0.02
    assert not [p for p in http.get("/rollbacks/pending").json() if p["model"] == name]
    # the receivers heard of the alert, of the rollback and of its verdict
    deadline = time.monotonic() + 20
    want = [f"Rollback: Rolled {name}@champion back from version 2 to 1",
            "Rollback verified: crashes on version 1"]
    while not all(any(w in r.body.decode() for r in hook.delivered) for w in want):
        assert time.monotonic() < deadline, [r.body[:200] for r in hook.delivered]
        time.sleep(0.2)


def test_an_old_promotion_is_not_rolled_back_and_a_person_can_roll_back(http, server
                                                                        ) -> None:
    name = f"rb-{uuid.uuid4().hex[:6]}"
    with Client(server.url) as c:
        _two_versions(c, name)
        c.set_rollback_policy(name, lookback="1s")
        time.sleep(1.2)  # version 2 is now "old": an alert on it needs a person
        http.post("/rules/apply", content=f"rules:\n  - {{name: crashes, model: {name}, "
                  "metric: errors, window: 15m, critical: 0.2}\n").raise_for_status()
        _traffic(http, name, "2", failed=50, prefix="c")
        evaluate(http)
        assert c.resolve_alias(name, "champion")["version"] == "2"
        (inc,) = http.get("/incidents", params={"model": name}).json()
        page = httpx.get(f"{server.url}/incidents/{inc['id']}").text
        assert "Roll back champion: 2 → 1…" in page  # the one move that makes sense...
        assert ("Requests served through champion get version 1 again instead of 2, which "
                "anonymous set") in page  # ...and what it does
        with_cli = subprocess.run(
            [sys.executable, "-m", "aiwarden.cli", "rollback", name, "--reason",
             "on-call: crashes since the deploy", "--url", server.url],
            capture_output=True, text=True, timeout=60)
        assert with_cli.returncode == 0, with_cli.stderr
        assert f"{name}@champion: 2 -> 1 (rollback)" in with_cli.stdout
        assert c.resolve_alias(name, "champion")["version"] == "1"
        try:
            c.rollback(name, "again", to="1")
        except ApiError as exc:
            assert exc.status == 409
        else:
            raise AssertionError("rolling back to where the alias already points must fail")
    actions = [e for e in _timeline(http, name) if e["kind"] == "action"]
    assert any(e["detail"].get("reason") == "on-call: crashes since the deploy"
               for e in actions)


def test_policies_are_validated_and_named_fields_are_refused(http) -> None:
    name = f"rb-{uuid.uuid4().hex[:6]}"
    http.post("/models", json={"name": name}).raise_for_status()
    bad = http.put(f"/models/{name}/rollback-policy", json={"lookback": "soon"})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "lookback"
    bad = http.put(f"/models/{name}/rollback-policy", json={"severity": "fatal"})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "severity"
    ok = http.put(f"/models/{name}/rollback-policy", json={"rules": ["a"]}).json()
    assert ok["alias"] == "champion" and ok["rules"] == ["a"]
    assert http.get("/models/nope/rollback-policy").status_code == 404
    assert http.delete(f"/models/{name}/rollback-policy").json() == {"status": "deleted"}


def test_a_rule_file_declares_rollback_policies(http) -> None:
    name = f"rb-{uuid.uuid4().hex[:6]}"
    http.post("/models", json={"name": name}).raise_for_status()
    text = f"""rules: []
rollback_policies:
  - {{model: {name}, severity: warning, lookback: 30m, rules: [crashes]}}
"""
    dry = http.post("/rules/apply", params={"dry_run": "true"}, content=text).json()
    assert dry["rollback_policies"] == [name]
    assert http.get(f"/models/{name}/rollback-policy").status_code == 404  # dry run
    assert http.post("/rules/apply", content=text).json()["rollback_policies"] == [name]
    got = http.get(f"/models/{name}/rollback-policy").json()
    assert (got["severity"], got["lookback"], got["rules"]) == ("warning", "30m", ["crashes"])
    bad = http.post("/rules/apply", content=text.replace("30m", "half an hour"))
    assert bad.status_code == 422
    assert bad.json()["detail"]["field"] == "rollback_policies[0].lookback"


def test_unversioned_events_and_queries_follow_the_champion(http, server) -> None:
    """A newer registered version is a candidate until promoted: the serving version (the
    champion) takes events that name no version and answers queries that name none."""
    name = f"rb-{uuid.uuid4().hex[:6]}"
    with Client(server.url) as c:
        c.register_version(name, fitted(seed=0))
        c.register_version(name, fitted(seed=1, C=0.1))
        c.promote(name, "1", reason="first release")  # 2 stays a candidate
    rows = json_rows(scored_frame(50, seed=3), time.time() - 100, prefix="u")
    assert http.post(f"/models/{name}/predictions", json=rows).json()["accepted"] == 50
    vol = http.get(f"/models/{name}/metrics", params={"metric": "volume", "start": "-1h"}).json()
    assert vol["version"] == "1" and vol["points"][0]["value"]["rows"] == 50
    two = http.get(f"/models/{name}/metrics", params={"metric": "volume", "start": "-1h",
                                                      "version": "2"}).json()
    assert two["points"][0]["value"]["rows"] == 0
