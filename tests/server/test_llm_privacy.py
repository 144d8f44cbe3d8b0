"""Privacy through a real server: with a model's PII policy ``redact`` or ``hash``, no planted
PII value of any type (e-mail, phone, card, IBAN, SSN, IPv4, IPv6, and an API key) reaches the
database, the server's logs or the dashboard, wherever the event carried it: the output, the
input messages (system and user), the retrieved context, the tags, a feedback comment, the
reference prompts. A ``store`` model in the same database keeps its own planted values, so the
scan is shown to find what is there."""

from __future__ import annotations

import random
import string
import time
from pathlib import Path

import httpx
import pytest

from aiwarden.monitoring import llm_privacy
from tests.server.live import ProcessServer
from tests.server.test_llm_events import _database_bytes

TYPES = ("email", "phone", "card", "iban", "ssn", "ipv4", "ipv6", "secret")
WHERE = ("output", "system", "user", "context", "tag", "session", "comment", "reference")
# Free values that are not texts: the tags and the session id.
FREE = ("tag", "session")


def _luhn(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def _iban(r: random.Random) -> str:
    bban = "".join(r.choice(string.digits) for _ in range(18))
    check = 98 - int(bban + "131400") % 97  # D=13, E=14, check digits 00
    s = f"DE{check:02d}{bban}"
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def _values(where: str, seed: int) -> dict[str, str]:
    """One valid value of each type for one place in the event, unique to (place, seed)."""
    r = random.Random(f"{where}-{seed}")
    d = lambda n: "".join(r.choice(string.digits) for _ in range(n))  # noqa: E731
    card = _luhn("4" + d(14))
    return {
        "email": f"{where}.person{seed}+t@mail.example.org",
        "phone": f"+44 20 {d(4)} {d(4)}",
        "card": " ".join(card[i:i + 4] for i in range(0, 16, 4)),
        "iban": _iban(r),
        "ssn": f"{r.randint(100, 599)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
        "ipv4": f"203.0.{r.randint(100, 254)}.{r.randint(2, 254)}",
        "ipv6": f"2001:db8:{r.randint(4096, 65535):x}::{r.randint(4096, 65535):x}",
        "secret": "ghp_" + "".join(r.choice(string.ascii_letters + string.digits)
                                   for _ in range(36)),
    }


def _sentence(v: dict[str, str]) -> str:
    return (f"Write to {v['email']} or call {v['phone']}. Card {v['card']}, IBAN {v['iban']}, "
            f"SSN {v['ssn']}, seen from {v['ipv4']} and {v['ipv6']}; token {v['secret']}.")


def _event(model: str, i: int) -> tuple[dict, dict[str, dict[str, str]]]:
    vals = {w: _values(f"{model}-{w}", i) for w in WHERE if w not in ("comment", "reference")}
    vals["session"] = {"email": vals["session"]["email"]}  # an id holding an e-mail
    ev = {"request_id": f"{model}-{i}", "version": "v1", "timestamp": time.time() - 60,
          "output": "Sure. " + _sentence(vals["output"]),
          "input": [{"role": "system", "content": "Customer file: " + _sentence(vals["system"])},
                    {"role": "user", "content": "Hi, " + _sentence(vals["user"])}],
          "context": ["Policy: refunds in 5 days.", "CRM note: " + _sentence(vals["context"])],
          "tags": {"locale": "fr", **{f"customer_{t}": v for t, v in vals["tag"].items()}},
          "session_id": vals["session"]["email"],
          "provider": "openai", "model": "gpt-4o-mini", "tokens_in": 40, "tokens_out": 30}
    return ev, vals


def _forms(value: str) -> list[bytes]:
    """The value as written, without separators, and its JSON-escaped form."""
    bare = value.replace(" ", "").replace("-", "")
    return [value.encode(), bare.encode(), value.replace("+", "\\u002b").encode()]


def _plant(url: str) -> dict:
    """Three models (store, redact, hash) with PII planted everywhere an event holds text;
    what the API and the dashboard then show of them."""
    out: dict = {"values": {}}
    with httpx.Client(base_url=url + "/api/v1", timeout=60) as api:
        for policy in ("store", "redact", "hash"):
            name = f"pv-{policy}"
            api.post("/models", json={"name": name, "task": "text_generation"}
                     ).raise_for_status()
            api.put(f"/models/{name}/llm-privacy", json={"pii": policy}).raise_for_status()
            ref_vals = _values(f"{name}-reference", 0)
            ref = [{"request_id": f"ref-{name}-{i}", "output": "Fine.",
                    "input": [{"role": "user", "content": "Me: " + _sentence(ref_vals)}],
                    "tags": {"locale": "fr"}} for i in range(30)]
            r = api.put(f"/models/{name}/versions/v1/llm-reference", json=ref)
            assert r.status_code == 201, r.text
            values = {"reference": ref_vals}
            events = []
            for i in range(3):
                ev, vals = _event(name, i)
                events.append(ev)
                values |= {f"{w}{i}": v for w, v in vals.items()}
            r = api.post(f"/models/{name}/llm-events", json=events)
            assert r.status_code == 200, r.text
            assert (r.json()["stored"], r.json()["privacy"]) == (3, policy)
            comment = _values(f"{name}-comment", 0)
            fb = api.post(f"/models/{name}/llm-feedback", json=[
                {"request_id": f"{name}-0", "score": 0, "comment": _sentence(comment)}])
            assert fb.status_code == 200, fb.text
            values["comment"] = comment
            out["values"][policy] = values
            out[policy] = {
                "event": api.get(f"/models/{name}/llm-events/{name}-0").json(),
                "api": [api.get(f"/models/{name}/llm-events/{name}-{i}").text for i in range(3)]
                + [api.get(f"/models/{name}/llm-events", params={"start": "-1h"}).text,
                   api.get(f"/models/{name}/segments").text],
                "pages": [httpx.get(f"{url}/models/{name}/llm?range=1h", timeout=60).text,
                          httpx.get(f"{url}/models/{name}/llm/events/{name}-0",
                                    timeout=60).text,
                          httpx.get(f"{url}/models/{name}", timeout=60).text]}
    return out


@pytest.fixture(scope="module")
def planted(server) -> dict:
    return _plant(server.url)


def _leaks(blob: bytes, values: dict[str, dict[str, str]], tags: bool | None = False
           ) -> list[str]:
    """The planted values found in ``blob`` (``tags``: False leaves the free values (tags,
    session id) out, True looks only at them, None at all)."""
    low = blob.lower()
    return [f"{where}/{t}: {v}" for where, vals in values.items() for t, v in vals.items()
            if (tags is None or where.startswith(FREE) == tags)
            and any(f.lower() in low for f in _forms(v))]


def test_store_keeps_the_values_so_the_scans_can_find_them(planted, db_url) -> None:
    # a scan that finds nothing proves nothing: the store model's values are all there
    raw = _database_bytes(db_url)
    values = planted["values"]["store"]
    assert len(_leaks(raw, values, tags=None)) == sum(len(v) for v in values.values())
    out = planted["store"]["event"]["output"]
    assert values["output0"]["email"] in out and values["output0"]["card"] in out


@pytest.mark.parametrize("policy", ["redact", "hash"])
def test_no_planted_value_reaches_the_database(planted, db_url, policy) -> None:
    # the thread server's database: the SQLite file (and its WAL), or PostgreSQL dumped
    raw = _database_bytes(db_url)
    assert _leaks(raw, planted["values"][policy]) == []
    ev = planted[policy]["event"]
    label = "[EMAIL]" if policy == "redact" else "[EMAIL:"
    # each text was kept, with the values replaced (not dropped wholesale)
    assert label in ev["output"] and ev["output"].startswith("Sure. Write to ")
    assert all(label in m["content"] for m in ev["input"])
    assert label in ev["context"][1] and ev["context"][0] == "Policy: refunds in 5 days."
    assert label in ev["feedback"]["comment"]
    for cat in ("PHONE", "CARD", "IBAN", "SSN", "IP", "GITHUB_TOKEN"):
        assert f"[{cat}" in ev["output"], cat
    assert ev["tags"]["locale"] == "fr"


@pytest.mark.parametrize("policy", ["redact", "hash"])
def test_no_planted_value_reaches_the_api_or_the_dashboard(planted, policy) -> None:
    values = planted["values"][policy]
    for body in planted[policy]["api"] + planted[policy]["pages"]:
        assert _leaks(body.encode(), values) == []
    assert any("[EMAIL" in p for p in planted[policy]["pages"][:2])  # the pages show texts
    store = planted["store"]
    assert any(_leaks(p.encode(), planted["values"]["store"]) for p in store["pages"])


def test_a_server_logging_at_debug_writes_no_planted_value(tmp_path: Path) -> None:
    # aiwarden server as a child process at log level debug, on a SQLite file: its log (all
    # its processes write to it) and the database file's bytes are scanned
    db = tmp_path / "privacy.db"
    srv = ProcessServer(f"sqlite:///{db}", tmp_path,
                        extra_env={"AIWARDEN_LOG_LEVEL": "debug"}).start()
    try:
        planted = _plant(srv.url)
    finally:
        srv.stop()
    log = srv.log()
    assert "DEBUG" in log  # the log is at debug level and was written
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("privacy.db*"))
    for policy in ("redact", "hash"):
        values = planted["values"][policy]
        assert _leaks(log.encode(), values, tags=None) == [], policy
        assert _leaks(raw, values) == [], policy
    assert _leaks(raw, planted["values"]["store"])  # the scan finds what is there


@pytest.mark.xfail(not hasattr(llm_privacy, "protect_events"), strict=True,
                   reason="tag values and session ids are stored and profiled as sent until "
                   "the LLM ingest protects them (llm_privacy.protect_events, with "
                   "aiwarden.llm.redact.redact_tags)")
@pytest.mark.parametrize("policy", ["redact", "hash"])
def test_no_planted_tag_or_session_value_reaches_the_database_or_the_api(planted, db_url,
                                                                         policy) -> None:
    values = planted["values"][policy]
    assert _leaks(_database_bytes(db_url), values, tags=True) == []
    for body in planted[policy]["api"] + planted[policy]["pages"]:
        assert _leaks(body.encode(), values, tags=True) == []
