"""With API keys, the dashboard wants one: a login page, a session cookie that is HttpOnly,
SameSite=Strict and holds no key, scopes enforced on actions, and sign-out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from aiwarden.store import keys
from aiwarden.store.database import Database
from tests.server.live import ThreadServer, settings_for


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServer, str, str]]:
    tmp = tmp_path_factory.mktemp("locked")
    url = f"sqlite:///{tmp / 'locked.db'}"
    db = Database(url)
    db.migrate()
    with db.write() as conn:
        reader, _ = keys.create_key(conn, "rita", ["read"])
        operator, _ = keys.create_key(conn, "olga", ["operate"])
    db.dispose()
    with ThreadServer(settings_for(url, tmp, evaluate_every=0.0)) as srv:
        yield srv, reader, operator


def _sign_in(page: Any, key: str) -> None:
    page.fill("#key", key)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_login_is_required_and_the_cookie_holds_no_key(locked, watched) -> None:
    server, _, operator = locked
    page = watched.page
    page.goto(f"{server.url}/incidents?status=all")
    assert "/login" in page.url and "next=%2Fincidents" in page.url
    watched.shot("login")
    _sign_in(page, "aw_000000000000_not-a-key")
    assert "/login" in page.url
    assert "Unknown or revoked key" in page.locator(".notice.error").inner_text()

    _sign_in(page, operator)
    assert page.url.endswith("/incidents?status=all")  # back where the link pointed
    assert "olga" in page.locator("header .account").inner_text()
    cookie = next(c for c in page.context.cookies() if c["name"] == "aiwarden_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    secret = operator.split("_", 2)[2]
    assert secret not in cookie["value"] and operator not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it
    assert httpx.get(f"{server.url}/api/v1/models").status_code == 401  # the API still asks

    page.click("header .account button")
    page.wait_for_url("**/login")
    page.goto(f"{server.url}/")
    assert "/login" in page.url


@contextmanager
def _session(server: ThreadServer, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/login", data={"key": key, "next": "/alerts"})
        assert r.status_code == 303 and r.headers["location"] == "/alerts"
        yield client


def test_scopes_and_origin_are_enforced_on_actions(locked) -> None:
    server, reader, operator = locked
    body = {"matchers": 'model="fraud"', "duration": "1h", "comment": "c"}
    with _session(server, reader) as rita:
        assert rita.get("/alerts").status_code == 200
        denied = rita.post("/silences", data=body, headers={"origin": server.url})
        assert denied.status_code == 403 and "operate" in denied.text
    with _session(server, operator) as olga:
        forged = olga.post("/silences", data=body, headers={"origin": "https://evil.example"})
        assert forged.status_code == 403
        ok = olga.post("/silences", data=body, headers={"origin": server.url})
        assert ok.status_code == 303
        session = olga.cookies["aiwarden_session"]
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/alerts").headers["location"].startswith("/login")
        anonymous.cookies.set("aiwarden_session", session[:-2] + "xx")
        assert anonymous.get("/alerts").status_code == 303  # a forged signature
        anonymous.cookies.set("aiwarden_session", session)
        assert anonymous.get("/alerts").status_code == 200
