"""Quarantined rows through a real server (SQLite and PostgreSQL): listed with field and
reason, corrected and replayed, released as they are, dropped; each row counted once,
also when a replay is retried or two servers replay the same rows at the same time."""

from __future__ import annotations

import io
import threading
import time
import uuid
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ProcessServer, ThreadServer


def _metric(http: httpx.Client, name: str, metric: str) -> dict[str, Any]:
    r = http.get(f"/models/{name}/metrics", params={"metric": metric})
    assert r.status_code == 200, r.text
    (point,) = r.json()["points"]
    return point["value"]


def _events(http: httpx.Client, name: str) -> Any:
    r = http.get(f"/models/{name}/events", params={"start": "-1h"})
    assert r.status_code == 200, r.text
    return pq.read_table(io.BytesIO(r.content)).to_pandas()


def _listed(http: httpx.Client, name: str, **params: Any) -> dict[str, dict[str, Any]]:
    r = http.get(f"/models/{name}/quarantine", params=params)
    assert r.status_code == 200, r.text
    return {q["prediction_id"] or "": q for q in r.json()}


def _model_with_bad_rows(http: httpx.Client, n: int = 20) -> tuple[str, list[dict]]:
    name = f"qr-{uuid.uuid4().hex[:8]}"
    register_model(http, name, scored_frame(1000))
    rows = json_rows(scored_frame(n, seed=3), time.time() - 300)
    rows[3]["features"]["x"] = "abc"
    rows[7]["timestamp"] = "yesterday"
    del rows[11]["prediction_id"]
    rows[15]["features"]["x"] = [1, 2]
    res = http.post(f"/models/{name}/predictions", json=rows).json()
    assert (res["accepted"], res["quarantined"]) == (n - 4, 4)
    return name, rows


def _replay(http: httpx.Client, name: str, what: str = "replay", **body: Any) -> dict:
    r = http.post(f"/models/{name}/quarantine/{what}", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_listed_and_shown_with_field_and_reason(http: httpx.Client) -> None:
    name, rows = _model_with_bad_rows(http)
    listed = _listed(http, name)
    assert {k: q["field"] for k, q in listed.items()} == {
        "p3": "features.x", "p7": "timestamp", "": "prediction_id", "p15": "features.x"}
    assert "'abc'" in listed["p3"]["reason"] and "'yesterday'" in listed["p7"]["reason"]
    assert set(_listed(http, name, field="features.x")) == {"p3", "p15"}
    shown = http.get(f"/models/{name}/quarantine/rows/{listed['p3']['id']}").json()
    assert shown["row"] == rows[3] and shown["field"] == "features.x"
    assert http.get(f"/models/{name}/quarantine/rows/999999999").status_code == 404
    newest = max(q["id"] for q in listed.values())
    assert len(_listed(http, name, before=newest)) == 3  # the next page


def test_a_corrected_row_enters_the_profiles_once(http: httpx.Client) -> None:
    name, _ = _model_with_bad_rows(http)
    qid = _listed(http, name)["p3"]["id"]
    assert _metric(http, name, "volume") == {"rows": 16, "quarantined": 4, "labels": 0}

    out = _replay(http, name, ids=[qid], set={"features.x": 1.5})
    assert (out["accepted"], out["replayed"], out["still_quarantined"]) == (1, [qid], [])
    assert "p3" not in _listed(http, name)
    assert _metric(http, name, "volume") == {"rows": 17, "quarantined": 3, "labels": 0}
    assert _metric(http, name, "quality")["quarantine_reasons"] == {
        "features.x": 1, "timestamp": 1, "prediction_id": 1}
    events = _events(http, name)
    assert (events.prediction_id == "p3").sum() == 1
    assert events.set_index("prediction_id").loc["p3", "x"] == 1.5

    again = _replay(http, name, ids=[qid], set={"features.x": 1.5})  # a retry
    assert (again["accepted"], again["replayed"], again["gone"]) == (0, [], [qid])
    assert _metric(http, name, "volume") == {"rows": 17, "quarantined": 3, "labels": 0}


def test_still_bad_stays_with_the_new_reason_then_release(http: httpx.Client) -> None:
    name, rows = _model_with_bad_rows(http)
    listed = _listed(http, name)
    qid = listed["p15"]["id"]
    # corrected, but wrongly: validated again, quarantined with the new reason
    out = _replay(http, name, ids=[qid], set={"features.x": "twelve"})
    (still,) = out["still_quarantined"]
    assert still["id"] == qid and still["field"] == "features.x"
    assert "'twelve'" in still["reason"] and out["accepted"] == 0
    now = _listed(http, name)["p15"]
    assert now["id"] == still["new_id"] != qid and "'twelve'" in now["reason"]
    assert _metric(http, name, "volume")["quarantined"] == 4  # moved, not added

    # released as it is: the bad value read as missing
    out = _replay(http, name, "release", ids=[now["id"]])
    assert (out["accepted"], out["replayed"]) == (1, [now["id"]])
    assert _events(http, name).set_index("prediction_id").loc["p15", "x"] != \
        _events(http, name).set_index("prediction_id").loc["p15", "x"]  # NaN: missing
    # the timestamp: released with the time it arrived; the row keeps its own timestamp
    out = _replay(http, name, "release", ids=[listed["p7"]["id"]])
    assert out["accepted"] == 1
    # no prediction id: cannot be released, stays; corrected, it goes in
    out = _replay(http, name, "release", ids=[listed[""]["id"]])
    (still,) = out["still_quarantined"]
    assert still["field"] == "prediction_id" and "cannot release" in still["reason"]
    nid = _listed(http, name)[""]["id"]
    fixed = {**rows[11], "prediction_id": "p11"}
    out = _replay(http, name, ids=[nid], rows=[{"id": nid, "row": fixed}])
    assert (out["accepted"], out["replayed"]) == (1, [nid])
    assert _listed(http, name) == {"p3": _listed(http, name)["p3"]}
    assert _metric(http, name, "volume") == {"rows": 19, "quarantined": 1, "labels": 0}
    assert sorted(_events(http, name).prediction_id) == sorted(
        f"p{i}" for i in range(20) if i != 3)


def test_drop_deletes_the_row_and_keeps_the_count(http: httpx.Client) -> None:
    name, _ = _model_with_bad_rows(http)
    qid = _listed(http, name)["p3"]["id"]
    r = http.post(f"/models/{name}/quarantine/drop", json={"ids": [qid, 999999999]})
    assert r.json() == {"dropped": [qid], "gone": [999999999]}
    assert "p3" not in _listed(http, name)
    assert _metric(http, name, "volume")["quarantined"] == 4
    assert _replay(http, name, ids=[qid])["gone"] == [qid]


def test_a_row_of_an_unknown_version_replays_once_the_version_exists(
        http: httpx.Client) -> None:
    name = f"qv-{uuid.uuid4().hex[:8]}"
    register_model(http, name, scored_frame(1000))
    row = json_rows(scored_frame(1, seed=4), time.time() - 60, prefix="v2-")[0]
    row["version"] = "v2"
    assert http.post(f"/models/{name}/predictions", json=[row]).json()["quarantined"] == 1
    (q,) = _listed(http, name).values()
    assert q["field"] == "version"
    assert _replay(http, name, ids=[q["id"]])["still_quarantined"][0]["field"] == "version"
    http.post(f"/models/{name}/versions", json={"version": "v2"}).raise_for_status()
    (q,) = _listed(http, name).values()
    out = _replay(http, name, ids=[q["id"]])
    assert out["accepted"] == 1
    assert list(_events(http, name).version) == ["v2"]


def test_bad_requests_name_the_field(http: httpx.Client) -> None:
    name, _ = _model_with_bad_rows(http)
    for body, field in (({"ids": []}, "ids"), ({"ids": [1], "rows": {"x": {}}}, "rows"),
                        ({"ids": [0]}, "ids"), ({"ids": [2**63]}, "ids"), ({"id": 1}, None)):
        r = http.post(f"/models/{name}/quarantine/replay", json=body)
        assert r.status_code == 422, (body, r.text)
        if field:
            assert r.json()["detail"]["field"].startswith(field)
    assert http.post("/models/nope/quarantine/replay", json={"ids": [1]}).status_code == 404
    # the document says integer: text is not a row id (schemathesis found "7" accepted),
    # nor a boolean; 7.0 is one, as JSON Schema reads it (a strict parse refused it)
    for bad in ("7", True, 1.5):
        r = http.post(f"/models/{name}/quarantine/release", json={"ids": [bad]})
        assert r.status_code == 422 and r.json()["detail"]["field"].startswith("ids"), r.text
    assert http.post(f"/models/{name}/quarantine/drop", json={"ids": [999999997.0]}).json()[
        "gone"] == [999999997]
    # a corrected row named only in rows is replayed too
    assert _replay(http, name, ids=[999999998], rows=[{"id": 999999999, "row": {}}])["gone"] == [
        999999998, 999999999]
    assert http.get(f"/models/{name}/quarantine/replay").status_code == 405
    # a corrected row that reaches no schema column: refused, and it stays as it was
    qid = _listed(http, name)["p3"]["id"]
    out = _replay(http, name, ids=[qid], rows=[{"id": qid, "row": {"prediction_id": "p3",
                                                                   "colour": "red"}}])
    (refused,) = out["refused"]
    assert refused["id"] == qid and "None of the columns sent" in refused["reason"]
    assert _listed(http, name)["p3"]["id"] == qid


def test_two_server_processes_replaying_the_same_rows_count_each_once(
        db_url: str, server: ThreadServer, http: httpx.Client,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    name = f"qc-{uuid.uuid4().hex[:8]}"
    register_model(http, name, scored_frame(1000))
    rows = json_rows(scored_frame(60, seed=5), time.time() - 400, prefix="c")
    for r in rows[::2]:
        r["features"]["x"] = "bad"
    http.post(f"/models/{name}/predictions", json=rows).raise_for_status()
    ids = [q["id"] for q in _listed(http, name, limit=1000).values()]
    assert len(ids) == 30
    results: list[dict] = []
    other = ProcessServer(db_url, tmp_path_factory.mktemp("second")).start()  # a 2nd process
    try:
        urls = [server.url, other.url] * 2  # two servers, each asked twice at once

        def go(url: str) -> None:
            with httpx.Client(base_url=url + "/api/v1", timeout=120) as c:
                results.append(_replay(c, name, ids=ids, set={"features.x": 0.25}))

        threads = [threading.Thread(target=go, args=(u,)) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.stop()
    assert len(results) == 4
    replayed = [i for r in results for i in r["replayed"]]
    assert sorted(replayed) == sorted(ids)  # each row by exactly one of the four
    assert sum(r["accepted"] for r in results) == 30
    assert _metric(http, name, "volume") == {"rows": 60, "quarantined": 0, "labels": 0}
    events = _events(http, name)
    assert len(events) == 60 and events.prediction_id.is_unique
    assert _listed(http, name) == {}


def _cli(server: ThreadServer, capsys: pytest.CaptureFixture[str], *argv: str
         ) -> tuple[int, str, str]:
    from aiwarden.cli import main

    code = main([*argv, "--url", server.url])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_cli_lists_shows_replays_releases_and_drops(
        server: ThreadServer, http: httpx.Client, capsys: pytest.CaptureFixture[str],
        tmp_path: Any) -> None:
    import json

    name, rows = _model_with_bad_rows(http)
    ids = {k: q["id"] for k, q in _listed(http, name).items()}
    code, out, err = _cli(server, capsys, "quarantine", "list", name)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["id", "received", "(UTC)"] and len(lines) == 5
    assert any(str(ids["p3"]) in line and "features.x" in line and "'abc'" in line
               for line in lines)
    code, out, _ = _cli(server, capsys, "quarantine", "list", name, "--field", "timestamp",
                        "--json")
    assert [q["prediction_id"] for q in json.loads(out)] == ["p7"]
    code, out, _ = _cli(server, capsys, "quarantine", "show", name, str(ids["p3"]))
    assert code == 0 and "reason: expected a number" in out and '"x": "abc"' in out

    # corrected with --set: accepted, exit 0
    code, out, _ = _cli(server, capsys, "quarantine", "replay", name, str(ids["p3"]),
                        "--set", "features.x=2.5")
    assert code == 0 and out.startswith("1 of 1 row(s) left quarantine: 1 accepted")
    # still bad: exit 1 (a check found something) and the new id named
    code, out, _ = _cli(server, capsys, "quarantine", "replay", name, str(ids["p15"]))
    new = _listed(http, name)["p15"]["id"]
    assert code == 1 and f"still quarantined: {ids['p15']} (now {new})" in out
    # a corrected row from a file
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({**rows[11], "prediction_id": "p11"}))
    code, out, _ = _cli(server, capsys, "quarantine", "replay", name, str(ids[""]),
                        "--row", str(fixed), "-o", "json")
    assert code == 0 and json.loads(out)["replayed"] == [ids[""]]
    # release everything refused for a field; drop what is left
    code, out, _ = _cli(server, capsys, "quarantine", "release", name, "--all", "--field",
                        "features.x")
    assert code == 0 and "1 accepted" in out
    code, out, _ = _cli(server, capsys, "quarantine", "drop", name, "--all")
    assert code == 0 and out.strip() == "dropped 1 row(s)"
    assert _listed(http, name) == {}
    assert _metric(http, name, "volume") == {"rows": 19, "quarantined": 1, "labels": 0}
    # a retried replay of a row gone: nothing happens, said so
    code, out, _ = _cli(server, capsys, "quarantine", "replay", name, str(ids["p3"]))
    assert code == 0 and "not in quarantine" in out and str(ids["p3"]) in out
    # usage and not found
    assert _cli(server, capsys, "quarantine", "replay", name)[0] == 2
    code, _, err = _cli(server, capsys, "quarantine", "replay", name, "1", "--set", "x")
    assert code == 2 and "PATH=VALUE" in err
    code, _, err = _cli(server, capsys, "quarantine", "show", name, "999999999")
    assert code == 3 and err.count("\n") == 1
    assert _cli(server, capsys, "quarantine", "list", "no-such-model")[0] == 3


def test_the_dashboard_page_replays_releases_and_drops_same_origin_only(
        server: ThreadServer, http: httpx.Client) -> None:
    name, _ = _model_with_bad_rows(http)
    ids = {k: q["id"] for k, q in _listed(http, name).items()}
    with httpx.Client(base_url=server.url, timeout=60) as web:
        page = web.get(f"/models/{name}/quarantine")
        assert page.status_code == 200
        for qid in ids.values():
            assert f'data-quarantine="{qid}"' in page.text
        assert "expected a number, got &#39;abc&#39;" in page.text  # escaped, as sent
        assert f'/models/{name}/quarantine"' in web.get(f"/models/{name}").text  # linked
        only = web.get(f"/models/{name}/quarantine", params={"field": "timestamp"}).text
        assert f'data-quarantine="{ids["p7"]}"' in only
        assert f'data-quarantine="{ids["p3"]}"' not in only

        own = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
        form = {"id": [str(ids["p3"])], "action": "replay", "path": "features.x",
                "value": "4.5"}
        foreign = web.post(f"/models/{name}/quarantine", data=form,
                           headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403 and "p3" in _listed(http, name)
        done = web.post(f"/models/{name}/quarantine", data=form, headers=own)
        assert done.status_code == 303
        shown = web.get(done.headers["location"]).text
        assert "Replay: 1 of 1 row(s) left quarantine (1 accepted" in shown
        assert "p3" not in _listed(http, name)
        assert _events(http, name).set_index("prediction_id").loc["p3", "x"] == 4.5

        done = web.post(f"/models/{name}/quarantine", headers=own, data={
            "id": [str(ids["p15"]), str(ids["p7"])], "action": "release"})
        assert "Release: 2 of 2 row(s) left quarantine" in web.get(
            done.headers["location"]).text
        done = web.post(f"/models/{name}/quarantine", headers=own, data={
            "id": [str(ids[""])], "action": "drop"})
        assert "Dropped 1 row(s)." in web.get(done.headers["location"]).text
        assert _listed(http, name) == {}
        assert _metric(http, name, "volume") == {"rows": 19, "quarantined": 1, "labels": 0}
        bad = web.post(f"/models/{name}/quarantine", headers=own, data={"action": "replay"})
        assert bad.status_code == 422 and "tick at least one row" in bad.text


def test_a_bulk_row_replays_like_a_json_row(http: httpx.Client) -> None:
    """Parquet columns named features.x are stored with that name; the replay reads them."""
    import pandas as pd

    from aiwarden.sdk._payload import to_parquet

    name = f"qb-{uuid.uuid4().hex[:8]}"
    register_model(http, name, scored_frame(1000))
    cur = scored_frame(6, seed=8)
    flat = pd.DataFrame({"prediction_id": [f"b{i}" for i in range(6)],
                         "timestamp": time.time() - 200 + pd.RangeIndex(6),
                         "features.x": [repr(float(v)) for v in cur.x], "features.c": cur.c,
                         "score": cur.score, "pred": cur.pred})
    flat.loc[2, "features.x"] = "oops"
    import pyarrow as pa

    r = http.post(f"/models/{name}/predictions",
                  content=to_parquet(pa.Table.from_pandas(flat, preserve_index=False)),
                  headers={"content-type": "application/vnd.apache.parquet"})
    assert r.json()["quarantined"] == 1, r.text
    (q,) = _listed(http, name).values()
    out = _replay(http, name, ids=[q["id"]], set={"features.x": 3.25})
    assert out["accepted"] == 1, out
    got = _events(http, name).set_index("prediction_id").loc["b2"]
    assert got["x"] == 3.25 and got["c"] == cur.c[2]


def test_a_row_kept_before_migration_0012_leaves_the_serving_versions_count(
        http: httpx.Client, db_url: str) -> None:
    """Rows stored before 0012 carry version_id 0: taken out of the serving version."""
    from sqlalchemy import update

    from aiwarden.store.database import Database
    from aiwarden.store.tables import quarantine

    name, _ = _model_with_bad_rows(http)
    qid = _listed(http, name)["p3"]["id"]
    db = Database(db_url)
    with db.write() as conn:
        conn.execute(update(quarantine).where(quarantine.c.id == qid).values(version_id=0))
    db.dispose()
    assert _replay(http, name, ids=[qid], set={"features.x": 1.0})["accepted"] == 1
    assert _metric(http, name, "volume") == {"rows": 17, "quarantined": 3, "labels": 0}


def test_replays_that_both_read_the_rows_before_either_claims_count_each_once(
        http: httpx.Client, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The interleaving that matters, made certain: two replays (own database engines, as
    two processes have) each read the rows, and only then does either take the model's
    lock. The first takes the rows; the second finds them gone."""
    from aiwarden.monitoring import quarantine as q
    from aiwarden.monitoring.service import Monitor
    from aiwarden.store.database import Database

    name, _ = _model_with_bad_rows(http)
    listed = _listed(http, name)
    ids = [listed["p3"]["id"], listed["p15"]["id"]]
    both_read = threading.Barrier(2, timeout=60)
    real = q.ingest_predictions

    def after_both_read(*args: Any, **kw: Any) -> Any:
        both_read.wait()  # each has read its rows outside the lock; neither claimed them
        return real(*args, **kw)

    monkeypatch.setattr(q, "ingest_predictions", after_both_read)
    monitors = [Monitor(Database(db_url)) for _ in range(2)]
    results: list[Any] = []

    def go(mon: Monitor) -> None:
        results.append(q.replay(mon, name, ids, sets={"features.x": 0.5}))

    threads = [threading.Thread(target=go, args=(m,)) for m in monitors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for m in monitors:
        m.db.dispose()
    assert sorted(len(r.replayed) for r in results) == [0, 2]
    assert sorted(i for r in results for i in r.replayed) == sorted(ids)
    assert sorted(i for r in results for i in r.gone) == sorted(ids)
    assert _metric(http, name, "volume") == {"rows": 18, "quarantined": 2, "labels": 0}
    assert (_events(http, name).prediction_id.isin(["p3", "p15"])).sum() == 2
