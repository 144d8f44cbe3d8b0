"""API keys end to end: created and revoked with the real CLI, checked by the real server.

Keys are made with ``aiwarden keys create`` in a child process, exactly as an operator
would, then used over HTTP. Servers run in a thread (scopes, revocation) or as an
``aiwarden server`` child process (binding rules, the open-server warning).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

import aiwarden
from aiwarden.store import keys
from aiwarden.store.database import Database
from tests.server.conftest import HINTS, json_rows, scored_frame
from tests.server.live import ProcessServer, ThreadServer, database_url, free_port, settings_for

REVOKE_WITHIN = 6.0  # seconds; the server re-reads a cached key every 2 s


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real ``aiwarden`` command in a child process (no AIWARDEN_* from the caller)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIWARDEN_")}
    return subprocess.run([sys.executable, "-m", "aiwarden.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def create_key(db: str, name: str, scopes: str) -> tuple[str, str]:
    """(full key, key id) from ``aiwarden keys create``."""
    out = cli("keys", "create", name, "--scopes", scopes, "--database-url", db)
    assert out.returncode == 0, out.stderr
    key, note = out.stdout.strip().splitlines()
    key_id = key.split("_")[1]
    assert note.startswith(f"# id {key_id}, scopes {scopes}")
    return key, key_id


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def wait_for(check: object, within: float) -> float:
    """Seconds until ``check()`` is true; fails after ``within``."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < within, f"not true within {within} s"
        time.sleep(0.1)
    return time.monotonic() - started


# -- storage ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_keys_are_stored_hashed(kind: str, tmp_path: Path) -> None:
    with database_url(kind, tmp_path) as db:
        key, key_id = create_key(db, "ci-ingest", "ingest")
        other, other_id = create_key(db, "dashboard", "read,admin")
        secrets = [key.split("_", 2)[2], other.split("_", 2)[2]]
        assert all(len(s) >= 32 for s in secrets)
        engine = create_engine(db)
        try:
            with engine.connect() as conn:
                rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM api_keys"))]
        finally:
            engine.dispose()
        assert {r["key_id"] for r in rows} == {key_id, other_id}
        assert {r["key_id"]: r["scopes"] for r in rows} == {key_id: "ingest",
                                                            other_id: "read,admin"}
        stored = " ".join(str(v) for r in rows for v in r.values())
        for full, secret in zip((key, other), secrets, strict=True):
            assert secret not in stored and full not in stored
        assert rows[0]["hash"] != rows[1]["hash"] and rows[0]["salt"] != rows[1]["salt"]
        if kind == "sqlite":  # nor anywhere in the database's files (WAL included)
            blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
            assert blob and not any(s.encode() in blob for s in secrets)

        store = Database(db)
        try:
            with store.read() as conn:
                info = keys.verify_key(conn, key)
                assert info is not None and info.scopes == ("ingest",)
                assert keys.verify_key(conn, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
                assert keys.verify_key(conn, f"aw_{key_id}_{secrets[1]}") is None  # swapped
        finally:
            store.dispose()


def test_keys_list_never_prints_secrets_and_shows_revocation(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'keys.db'}"
    made = [create_key(db, name, scopes) for name, scopes in
            [("svc-a", "ingest"), ("svc-b", "read"), ("ops", "admin")]]
    assert cli("keys", "revoke", made[1][1], "--database-url", db).stdout.strip() == \
        f"revoked {made[1][1]}"
    out = cli("keys", "list", "--database-url", db)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split() == ["id", "name", "scopes", "created", "revoked"]
    listed = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(listed) == {key_id for _, key_id in made}
    assert listed[made[0][1]][1:3] == ["svc-a", "ingest"] and listed[made[0][1]][-1] == "-"
    assert listed[made[1][1]][-1] != "-"  # revoked: a time
    for key, _ in made:
        assert key.split("_", 2)[2] not in out.stdout + out.stderr

    again = cli("keys", "revoke", made[1][1], "--database-url", db)
    unknown = cli("keys", "revoke", "nosuchkey", "--database-url", db)
    bad = cli("keys", "create", "x", "--scopes", "ingest,root", "--database-url", db)
    for res, code in ((again, 3), (unknown, 3), (bad, 2)):  # not found, not found, usage
        assert res.returncode == code
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert "nosuchkey" in unknown.stderr and "root" in bad.stderr


# -- scopes on a running server ----------------------------------------------------------------

MODEL = "auth-fraud"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServer, dict]]:
    tmp = tmp_path_factory.mktemp("auth")
    db = f"sqlite:///{tmp / 'auth.db'}"
    made = {scope: create_key(db, f"{scope}-key", scope) for scope in ("ingest", "read", "admin")}
    made["spare"] = create_key(db, "spare", "ingest,read")
    with ThreadServer(settings_for(db, tmp)) as srv:
        admin = bearer(made["admin"][0])
        with httpx.Client(base_url=srv.url + "/api/v1", timeout=60, headers=admin) as c:
            assert c.post("/models", json={"name": MODEL, "task": "binary"}).status_code == 201
            ref = scored_frame(500).to_csv(index=False).encode()
            assert c.put(f"/models/{MODEL}/versions/v1/reference", content=ref, params=HINTS,
                         headers={"Content-Type": "text/csv"}).status_code == 201
        yield srv, {"db": db, **made}


def _call(srv: ThreadServer, method: str, path: str, key: str | None, **kw: object
          ) -> httpx.Response:
    return httpx.request(method, f"{srv.url}/api/v1{path}", headers=bearer(key), timeout=60,
                         **kw)  # type: ignore[arg-type]


def _requests(tag: str) -> dict[str, tuple[str, str, dict]]:
    rows = json_rows(scored_frame(3, seed=9), time.time() - 60, prefix=f"{tag}-")
    return {
        "ingest predictions": ("POST", f"/models/{MODEL}/predictions", {"json": rows}),
        "ingest labels": ("POST", f"/models/{MODEL}/labels",
                          {"json": [{"prediction_id": f"{tag}-0", "label": 1}]}),
        "read metrics": ("GET", f"/models/{MODEL}/metrics", {"params": {"metric": "volume"}}),
        "read models": ("GET", "/models", {}),
        "read events": ("GET", f"/models/{MODEL}/events", {}),
        "admin create model": ("POST", "/models", {"json": {"name": f"auth-{tag}"}}),
        "admin new version": ("POST", f"/models/{MODEL}/versions", {"json": {"version": tag}}),
    }


@pytest.mark.parametrize("scope", ["ingest", "read", "admin"])
def test_each_scope_allows_exactly_its_calls(secured: tuple[ThreadServer, dict],
                                             scope: str) -> None:
    srv, made = secured
    key = made[scope][0]
    for what, (method, path, kw) in _requests(f"s-{scope}").items():
        res = _call(srv, method, path, key, **kw)
        allowed = scope == "admin" or what.startswith(scope)
        if allowed:
            assert res.is_success, (what, res.status_code, res.text)
        else:
            assert res.status_code == 403, (what, res.status_code, res.text)
            detail = res.json()["detail"]
            assert detail["error"] == "forbidden" and scope in detail["message"]


def test_ingest_key_lands_rows(secured: tuple[ThreadServer, dict]) -> None:
    srv, made = secured
    rows = json_rows(scored_frame(5, seed=1), time.time() - 30, prefix="landed-")
    res = _call(srv, "POST", f"/models/{MODEL}/predictions", made["ingest"][0], json=rows)
    assert res.status_code == 200 and res.json()["accepted"] == 5
    events = _call(srv, "GET", f"/models/{MODEL}/events", made["read"][0])
    assert events.status_code == 200
    ids = pq.read_table(io.BytesIO(events.content)).column("prediction_id").to_pylist()
    assert {f"landed-{i}" for i in range(5)} <= set(ids)


def test_sdk_sends_the_key_and_a_refused_key_is_not_retried(
        secured: tuple[ThreadServer, dict]) -> None:
    srv, made = secured
    rows = scored_frame(30, seed=2)
    for scope, want_sent in (("ingest", 30), ("read", 0)):
        client = aiwarden.Client(srv.url, api_key=made[scope][0], timeout=30)
        with client, client.logger(MODEL, batch_size=10, flush_interval=0.02,
                                   backoff=0.01) as wl:
            for i, r in enumerate(rows.itertuples()):
                assert wl.log(f"sdk-{scope}-{i}", {"x": r.x, "c": r.c}, prediction=r.pred,
                              scores=r.score)
            assert wl.flush(30)
            stats = wl.stats()
        assert (stats["sent"], stats["failed"]) == (want_sent, 30 - want_sent)
        if want_sent == 0:  # 403 is permanent: counted as failed at once, never retried
            assert stats["retries"] == 0 and "HTTP 403 forbidden" in stats["last_error"]
    with aiwarden.Client(srv.url, api_key=made["read"][0]) as reader:
        ids = reader.export_events(MODEL, time.time() - 3600, time.time() + 60).column(
            "prediction_id").to_pylist()
    assert {f"sdk-ingest-{i}" for i in range(30)} <= set(ids)
    assert not any(i.startswith("sdk-read-") for i in ids)


def test_missing_or_bad_key_is_401_on_loopback(secured: tuple[ThreadServer, dict]) -> None:
    srv, made = secured
    key = made["read"][0]
    key_id, secret = key.split("_", 2)[1:]
    for bad in (None, "", "nonsense", f"aw_{key_id}_{secret[:-2]}xx", f"aw_000000000000_{secret}"):
        res = _call(srv, "GET", "/models", bad)
        assert res.status_code == 401, (bad, res.text)
        assert res.headers["www-authenticate"] == "Bearer"
        assert res.json()["detail"]["error"] == "unauthorized"
    res = httpx.get(f"{srv.url}/api/v1/models", headers={"X-API-Key": key}, timeout=60)
    assert res.status_code == 200
    assert httpx.get(f"{srv.url}/healthz", timeout=60).status_code == 200  # health stays open


def test_revoked_key_stops_working_within_seconds(secured: tuple[ThreadServer, dict]) -> None:
    srv, made = secured
    key, key_id = made["spare"]
    assert _call(srv, "GET", "/models", key).status_code == 200  # cached as valid now
    res = cli("keys", "revoke", key_id, "--database-url", made["db"])
    assert res.returncode == 0, res.stderr
    took = wait_for(lambda: _call(srv, "GET", "/models", key).status_code == 401, REVOKE_WITHIN)
    assert took < REVOKE_WITHIN
    assert _call(srv, "POST", f"/models/{MODEL}/predictions", key,
                 json={"prediction_id": "after-revoke"}).status_code == 401
    assert _call(srv, "GET", "/models", made["read"][0]).status_code == 200  # others unaffected


# -- binding rules, with the real `aiwarden server` -------------------------------------------

def test_loopback_without_keys_runs_open_and_warns_then_locks(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'open.db'}"
    srv = ProcessServer(None, tmp_path, args=["--host", "127.0.0.1", "--database-url", db])
    try:
        srv.start()
        assert httpx.get(f"{srv.url}/api/v1/models", timeout=30).status_code == 200
        assert httpx.post(f"{srv.url}/api/v1/models", json={"name": "open-m"},
                          timeout=30).status_code == 201
        warning = [line for line in srv.log().splitlines() if "No API keys exist" in line]
        assert len(warning) == 1 and "WARNING" in warning[0]
        assert "open" in warning[0] and f"127.0.0.1:{srv.port}" in warning[0]

        key, key_id = create_key(db, "first", "read")  # from then on a key is required
        models = f"{srv.url}/api/v1/models"
        wait_for(lambda: httpx.get(models, timeout=30).status_code == 401, REVOKE_WITHIN)
        ok = httpx.get(models, headers=bearer(key), timeout=30)
        assert ok.status_code == 200 and [m["name"] for m in ok.json()] == ["open-m"]
        assert httpx.post(models, json={"name": "x"}, headers=bearer(key),
                          timeout=30).status_code == 403

        # revoking the only key must not silently reopen the API
        assert cli("keys", "revoke", key_id, "--database-url", db).returncode == 0
        revoked = time.monotonic()
        wait_for(lambda: httpx.get(models, headers=bearer(key), timeout=30).status_code == 401,
                 REVOKE_WITHIN)
        time.sleep(max(0.0, 2.5 - (time.monotonic() - revoked)))  # past the 2 s re-read
        assert httpx.get(models, timeout=30).status_code == 401
        assert httpx.get(models, headers=bearer(key), timeout=30).status_code == 401
    finally:
        srv.stop()


def test_all_interfaces_refused_without_a_key_then_served_with_one(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'public.db'}"
    port = free_port()
    refused = cli("server", "--host", "0.0.0.0", "--port", str(port),
                       "--database-url", db)
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    message = refused.stderr.strip().splitlines()[-1]
    assert "0.0.0.0" in message and "API key" in message and "refusing" in message.lower()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)

    key, _ = create_key(db, "ops", "admin")
    srv = ProcessServer(None, tmp_path, args=["--host", "0.0.0.0", "--database-url", db])
    try:
        srv.start()
        assert httpx.get(f"{srv.url}/api/v1/models", timeout=30).status_code == 401
        assert httpx.get(f"{srv.url}/api/v1/models", headers=bearer(key),
                         timeout=30).status_code == 200
        assert "No API keys exist" not in srv.log()
    finally:
        code = srv.stop()
    assert code in (0, -signal.SIGTERM), srv.log()[-2000:]  # uvicorn re-raises SIGTERM
    assert "Traceback" not in srv.log()


# -- failed authentications: one cost, a limit per client and per key id -----------------------

LIMIT = 3  # failures per address and per key id, per LIMIT_WINDOW seconds, on this server
LIMIT_WINDOW = 60.0


def test_failure_buckets_refill_and_spare_clean_addresses() -> None:
    """The limiter's rule with the time passed in: exact refill, per address and per key id."""
    from aiwarden.server.auth import FailureLimiter

    now = [1000.0]
    lim = FailureLimiter(limit=2, window=10.0, clock=lambda: now[0])
    assert lim.take("a", "k") == 0 and lim.take("a", "k") == 0
    assert lim.take("a", "k") == pytest.approx(5.0)  # one token back every 5 s
    assert lim.take("a", None) == pytest.approx(5.0)  # the address, whatever key it sends
    assert lim.take("b", "other") == 0  # another address, another key: untouched
    # key "k" is out of failures: a clean address is still checked, one that failed is not
    assert lim.take("c", "k") == 0
    assert lim.take("c", "k") == pytest.approx(5.0)
    lim.give_back("c", "k")  # that check succeeded: what it took comes back
    now[0] += 5.0
    assert lim.take("a", None) == 0 and lim.take("a", None) == pytest.approx(5.0)
    assert FailureLimiter(limit=0).take("a", "k") == 0  # 0 turns the limit off


def _from(address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127/8 address is loopback)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServer, str]]:
    tmp = tmp_path_factory.mktemp("limited")
    db = f"sqlite:///{tmp / 'limited.db'}"
    store = Database(db)
    store.migrate()
    with store.write() as conn:
        keys.create_key(conn, "first", ["read"])
    store.dispose()
    with ThreadServer(settings_for(db, tmp, auth_failures=LIMIT,
                                   auth_failure_window=LIMIT_WINDOW)) as srv:
        yield srv, db


def _fresh_key(db: str, name: str) -> str:
    """A key this server has never seen (so it is not in its cache)."""
    store = Database(db)
    try:
        with store.write() as conn:
            return keys.create_key(conn, name, ["read"])[0]
    finally:
        store.dispose()


def _models(client: httpx.Client, srv: ThreadServer, key: str | None) -> httpx.Response:
    return client.get(f"{srv.url}/api/v1/models", headers=bearer(key))


def _assert_limited(res: httpx.Response) -> int:
    assert res.status_code == 429, res.text
    assert res.json()["detail"]["error"] == "rate_limited"
    wait = int(res.headers["retry-after"])
    assert 1 <= wait <= LIMIT_WINDOW / LIMIT + 1
    return wait


def test_failures_beyond_the_limit_get_429_per_client(limited: tuple[ThreadServer, str]
                                                      ) -> None:
    srv, db = limited
    in_use, fresh = _fresh_key(db, "in-use"), _fresh_key(db, "fresh")
    with _from("127.0.0.11") as attacker, _from("127.0.0.12") as other:
        assert _models(attacker, srv, in_use).status_code == 200  # verified: now cached
        for i in range(LIMIT):  # distinct unknown ids: only the address limit applies
            assert _models(attacker, srv, f"aw_{i:012d}_guess").status_code == 401
        _assert_limited(_models(attacker, srv, "aw_999999999999_guess"))
        _assert_limited(_models(attacker, srv, "nonsense"))
        # the locked address: a key it already used works (no scrypt, nothing to limit);
        # a key not yet verified here waits like any other attempt from it
        assert _models(attacker, srv, in_use).status_code == 200
        _assert_limited(_models(attacker, srv, fresh))
        # a request without a key is a 401, not a guess
        assert _models(attacker, srv, None).status_code == 401
        # other clients are not affected, with a key new to the server or a wrong one
        assert _models(other, srv, fresh).status_code == 200
        assert _models(other, srv, "aw_000000000000_guess").status_code == 401


def test_a_key_id_under_attack_still_admits_its_holder(limited: tuple[ThreadServer, str]
                                                      ) -> None:
    """Guesses at one key id from several addresses lock the id for those addresses; the
    holder, from an address with no recent failure, still gets in."""
    srv, db = limited
    key = _fresh_key(db, "target")
    key_id = key.split("_")[1]
    wrong = f"aw_{key_id}_{'x' * 43}"
    guessers = [_from(f"127.0.0.{20 + i}") for i in range(LIMIT)]
    try:
        for g in guessers:  # one failure each: no address is out, the key id is
            assert _models(g, srv, wrong).status_code == 401
        _assert_limited(_models(guessers[0], srv, wrong))
        _assert_limited(_models(guessers[0], srv, key))  # even with the right secret
        assert _models(guessers[0], srv, _fresh_key(db, "unrelated")).status_code == 200
        with _from("127.0.0.30") as holder, _from("127.0.0.31") as newcomer:
            assert _models(holder, srv, key).status_code == 200
            assert _models(newcomer, srv, wrong).status_code == 401  # clean: checked
            _assert_limited(_models(newcomer, srv, wrong))  # no longer clean
    finally:
        for g in guessers:
            g.close()


def test_dashboard_sign_in_uses_the_same_limit(limited: tuple[ThreadServer, str]) -> None:
    srv, db = limited
    key = _fresh_key(db, "dash")
    with _from("127.0.0.40") as browser, _from("127.0.0.41") as other:
        def sign_in(client: httpx.Client, typed: str) -> httpx.Response:
            return client.post(f"{srv.url}/login", data={"key": typed, "next": "/"},
                               headers={"Origin": srv.url})

        for i in range(LIMIT):
            res = sign_in(browser, f"aw_{i:012d}_wrong")
            assert res.status_code == 200 and "Unknown or revoked key" in res.text
        res = sign_in(browser, key)
        assert res.status_code == 429 and 1 <= int(res.headers["retry-after"]) <= 21
        assert "Too many failed" in res.text and "aiwarden_session" not in res.cookies
        # the API shares the budget: the same client is out there too
        _assert_limited(_models(browser, srv, "aw_123456789012_wrong"))
        assert sign_in(other, key).status_code == 303  # another client signs in


def test_every_failed_check_costs_one_scrypt(limited: tuple[ThreadServer, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown ids, malformed tokens and revoked keys run scrypt like a wrong secret does, so
    the time of a 401 does not tell which ids exist (counted, not timed)."""
    srv, db = limited
    calls: list[str] = []
    real = keys._hash

    def counted(secret: str, salt: str) -> str:
        calls.append(salt)
        return real(secret, salt)

    monkeypatch.setattr(keys, "_hash", counted)
    known = _fresh_key(db, "known")
    key_id, secret = known.split("_", 2)[1:]
    revoked = _fresh_key(db, "revoked")
    store = Database(db)
    with store.write() as conn:
        assert keys.revoke_key(conn, revoked.split("_")[1])
    store.dispose()
    tokens = {"wrong secret": f"aw_{key_id}_{secret[::-1]}",
              "unknown id": f"aw_000000000000_{secret}", "malformed": "nonsense",
              "no secret": f"aw_{key_id}_", "revoked": revoked}
    for i, (what, token) in enumerate(tokens.items()):
        with _from(f"127.0.0.{50 + i}") as client:  # a fresh address each: no 429 here
            before = len(calls)
            assert _models(client, srv, token).status_code == 401, what
            assert len(calls) - before == 1, what
    with _from("127.0.0.60") as client:
        before = len(calls)
        assert _models(client, srv, known).status_code == 200
        assert _models(client, srv, known).status_code == 200  # cached: no second scrypt
        assert len(calls) - before == 1
