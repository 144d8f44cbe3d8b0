"""Artifact file names through a real server: any script, no header injection, no paths.

A non-Latin-1 name once answered 500 on download and a name with CR/LF dropped the
connection; names are now cleaned at registration and sent per RFC 6266.
"""

from __future__ import annotations

from urllib.parse import unquote

import httpx
import pytest

from aiwarden.registry.records import clean_filename
from tests.registry.models import fitted, skops_bytes
from tests.server.live import ThreadServer


@pytest.fixture(scope="module")
def api(server: ThreadServer) -> httpx.Client:
    with httpx.Client(base_url=server.url + "/api/v1/registry", timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def artifact() -> bytes:
    return skops_bytes(fitted(seed=5))


def _download(api: httpx.Client, model: str, version: str) -> httpx.Response:
    r = api.get(f"/models/{model}/versions/{version}/artifact")
    assert r.status_code == 200, r.text
    return r


def _star_name(header: str) -> str:
    """The exact name from ``filename*=UTF-8''...`` (RFC 8187)."""
    star = header.split("filename*=", 1)[1]
    charset, _, encoded = star.split("'", 2)
    assert charset == "UTF-8"
    return unquote(encoded, encoding="utf-8", errors="strict")


@pytest.mark.parametrize("name", ["modèle_日本.skops", "Модель v2.skops", "plain.skops"])
def test_any_script_downloads_under_its_exact_name(api: httpx.Client, artifact: bytes,
                                                   name: str) -> None:
    model = f"names-{abs(hash(name)) % 10_000}"
    r = api.post(f"/models/{model}/versions", files={"artifact": (name, artifact)})
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == name
    down = _download(api, model, "1")
    assert down.content == artifact
    header = down.headers["content-disposition"]
    assert header.startswith('attachment; filename="')
    assert _star_name(header) == name
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and fallback.endswith(".skops")
    if name == "modèle_日本.skops":
        assert fallback == "modele__.skops"  # accents folded, other letters replaced


def test_cr_lf_in_the_name_cannot_split_the_header(api: httpx.Client, artifact: bytes) -> None:
    evil = "evil\r\nSet-Cookie: session=stolen\r\nX-Injected: 1.skops"
    r = api.post("/models/crlf/versions", params={"filename": evil}, content=artifact,
                 headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    stored = r.json()["filename"]
    assert "\r" not in stored and "\n" not in stored
    assert stored == "evilSet-Cookie: session=stolenX-Injected: 1.skops"
    down = _download(api, "crlf", "1")  # the connection stays up and answers
    assert "set-cookie" not in down.headers and "x-injected" not in down.headers
    assert _star_name(down.headers["content-disposition"]) == stored
    assert down.content == artifact


def test_path_parts_and_control_characters_are_dropped(api: httpx.Client,
                                                       artifact: bytes) -> None:
    r = api.post("/models/pathy/versions", files={
        "artifact": ("../../etc/cron.d/x\u202egpj.skops", artifact)})
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "xgpj.skops"
    assert _star_name(_download(api, "pathy", "1").headers["content-disposition"]) == \
        "xgpj.skops"
    r = api.post("/models/pathy/versions", params={"filename": "C:\\models\\m\tb.skops"},
                 content=artifact, headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "mb.skops"


def test_a_name_stored_before_the_fix_still_downloads(server: ThreadServer, api: httpx.Client,
                                                      artifact: bytes) -> None:
    """Rows written by an older version may hold any name: the header is cleaned again."""
    from sqlalchemy import update

    from aiwarden.store.tables import model_artifacts

    r = api.post("/models/legacy/versions", files={"artifact": ("ok.skops", artifact)})
    assert r.status_code == 201, r.text
    db = server.server.config.app.state.monitor.db
    with db.write() as conn:
        conn.execute(update(model_artifacts).where(model_artifacts.c.sha256 == r.json()[
            "sha256"]).values(filename="a/b/ünï\r\ncode.skops"))
    header = _download(api, "legacy", "1").headers["content-disposition"]
    assert _star_name(header) == "ünïcode.skops"


def test_clean_filename_edges() -> None:
    assert clean_filename(None) is None
    assert clean_filename("  ..  ") is None
    assert clean_filename("dir/") is None
    assert clean_filename("x" * 400 + ".skops") == "x" * 255
    assert clean_filename("e\u0301.onnx") == "\u00e9.onnx"  # one normal form
