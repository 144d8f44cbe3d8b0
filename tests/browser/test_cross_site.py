"""A real page on another site, in a real browser, tries what a malicious page would try
against an open aiwarden server on loopback: every request reaches the server and is
refused, and nothing changes. The foreign site is served from another loopback port under
a name of its own (Chromium maps ``evil.test`` to 127.0.0.1), so the browser sends exactly
the headers it sends for a page on the internet."""

from __future__ import annotations

import base64
import http.server
import json
import os
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import CHROMIUM
from tests.server.live import ThreadServer, free_port, settings_for


class _Runs:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.marker),))


_PAGE = """<!doctype html><html><body><h1>Win a prize</h1>
<form id="dash" method="POST" action="{target}/silences">
  <input name="model" value="fraud-detector"><input name="hours" value="99999">
  <input name="comment" value="pwned">
</form>
<script>
const T = {target_json};
const pkl = Uint8Array.from(atob({pickle_json}), c => c.charCodeAt(0));
async function attack() {{
  const out = [];
  const fd = new FormData();
  fd.append("artifact", new Blob([pkl]), "model.pkl");
  const tries = [
    [T + "/api/v1/registry/models/x/versions?trust=true",
        {{method: "POST", mode: "no-cors", body: fd}}],
    [T + "/api/v1/silences", {{method: "POST", mode: "no-cors",
        body: JSON.stringify({{matchers: {{model: "fraud-detector"}}, hours: 99999}}),
        headers: {{"Content-Type": "text/plain"}}}}],
    [T + "/api/v1/models", {{method: "POST", mode: "no-cors", body: '{{"name": "planted"}}'}}],
    [T + "/api/v1/models/fraud-detector/aliases/champion", {{method: "PUT",
        body: JSON.stringify({{version: "2"}}), headers: {{"Content-Type": "application/json"}}}}],
    [T + "/api/v1/models", {{method: "GET"}}],
  ];
  for (const [url, init] of tries) {{
    try {{ const r = await fetch(url, init); out.push([url, r.type, r.status]); }}
    catch (e) {{ out.push([url, "error", String(e)]); }}
  }}
  window.results = out;
  window.fetched = true;
}}
attack();
</script></body></html>"""


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("xsite-browser")
    with ThreadServer(settings_for(f"sqlite:///{tmp / 'x.db'}", tmp, evaluate_every=0.0)) as s:
        httpx.post(f"{s.url}/api/v1/models", json={"name": "fraud-detector"}).raise_for_status()
        yield s


@pytest.fixture(scope="module")
def evil_browser(playwright: Any) -> Iterator[Any]:
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
        "--no-sandbox", "--disable-dev-shm-usage",
        "--host-resolver-rules=MAP evil.test 127.0.0.1"])
    yield b
    b.close()


@pytest.fixture
def foreign_site(target: ThreadServer, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """http://evil.test:<port>/ serving the attack page; yields its URL and the marker path
    the page's pickle would create if it ever ran."""
    marker = tmp_path / "pickle-ran"
    page = _PAGE.format(target=target.url, target_json=json.dumps(target.url),
                        pickle_json=json.dumps(base64.b64encode(
                            pickle.dumps(_Runs(marker))).decode())).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://evil.test:{port}/", marker
    srv.shutdown()
    srv.server_close()


def test_a_foreign_page_changes_nothing(evil_browser: Any, target: ThreadServer,
                                        foreign_site: tuple[str, Path]) -> None:
    url, marker = foreign_site
    context = evil_browser.new_context()
    page = context.new_page()
    seen: list[tuple[str, str, int]] = []
    page.on("response", lambda r: seen.append((r.request.method, r.url, r.status))
            if r.url.startswith(target.url) else None)
    page.goto(url)
    page.wait_for_function("() => window.fetched === true", timeout=30_000)
    results = page.evaluate("() => window.results")
    # the cross-origin PUT dies at its preflight and the GET answer is unreadable (no CORS)
    by_url = {u.split(target.url, 1)[1]: (kind, status) for u, kind, status in results}
    assert by_url["/api/v1/models/fraud-detector/aliases/champion"][0] == "error"
    assert by_url["/api/v1/models"][0] in ("error", "opaque")
    with page.expect_navigation():
        page.evaluate("() => document.getElementById('dash').submit()")
    context.close()

    posts = [(m, u.split(target.url, 1)[1], s) for m, u, s in seen if m == "POST"]
    assert {p for _, p, _ in posts} >= {"/api/v1/registry/models/x/versions?trust=true",
                                        "/api/v1/silences", "/api/v1/models", "/silences"}
    assert all(status == 403 for _, _, status in posts), posts  # reached us, refused
    assert not marker.exists()  # the pickle never ran
    with httpx.Client(base_url=target.url + "/api/v1") as c:
        assert c.get("/silences").json() in ([], {"silences": []})
        assert c.get("/registry/models").json() == []
        assert [m["name"] for m in c.get("/models").json()] == ["fraud-detector"]


def test_a_rebound_name_cannot_read_the_api(evil_browser: Any, target: ThreadServer) -> None:
    """DNS rebinding: a page's own name now resolves to 127.0.0.1, so the browser calls the
    API same-origin under that name; the server does not answer to it."""
    context = evil_browser.new_context()
    page = context.new_page()
    response = page.goto(f"http://evil.test:{target.settings.port}/api/v1/models")
    assert response is not None and response.status == 421
    assert "host_not_allowed" in page.content()
    context.close()
