"""LLM events through a real server on SQLite and PostgreSQL: ingest, bad input, truncation,
privacy (store / redact / hash), late feedback, an unsafe-rate rule, flagged events."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from aiwarden.llm.events import MAX_TEXT_CHARS
from tests.server.conftest import evaluate

SAFE = ["Your order ships tomorrow.", "You can reset the password from the settings page.",
        "Our shop opens at nine.", "Refunds take three to five days."]
UNSAFE = "You should kill yourself, nobody would miss you."


def _events(n: int, prefix: str, *, unsafe_every: int = 0, locale: str = "fr",
            ts: float | None = None, version: str | None = "v1") -> list[dict]:
    ts = time.time() - 300 if ts is None else ts
    return [{"request_id": f"{prefix}{i}", "timestamp": ts + i * 0.01, "version": version,
             "input": [{"role": "user", "content": "where is my order?"}],
             "output": UNSAFE if unsafe_every and i % unsafe_every == 0 else SAFE[i % 4],
             "provider": "openai", "model": "gpt-4o-mini", "tokens_in": 7,
             "tokens_out": 10 + i % 5, "latency_ms": 300.0 + i, "cost": 0.0002,
             "tags": {"locale": locale}} for i in range(n)]


def _model(http, name: str, privacy: str | None = None) -> None:
    http.post("/models", json={"name": name, "task": "text_generation",
                               "segments": ["locale"]}).raise_for_status()
    if privacy is not None:
        http.put(f"/models/{name}/llm-privacy", json={"pii": privacy}).raise_for_status()
    ref = [dict(e, tags={"locale": "fr" if i % 2 else "en"})
           for i, e in enumerate(_events(300, f"ref-{name}-", version=None))]
    r = http.put(f"/models/{name}/versions/v1/llm-reference", json=ref)
    assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def models(http_module) -> list[str]:
    names = ["bot", "ctl"]
    for n in names:
        _model(http_module, n)
    return names


@pytest.fixture(scope="module")
def http_module(server):
    import httpx

    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
        yield c


def test_events_are_ingested_and_profiled_as_descriptor_columns(http_module, models) -> None:
    http = http_module
    r = http.post("/models/ctl/llm-events", json=_events(50, "c"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["received"], out["accepted"], out["rejected"], out["stored"]) == (50, 50, 0, 50)
    assert "llm_unsafe" not in out.get("absent_columns", {})
    again = http.post("/models/ctl/llm-events", json=_events(50, "c")).json()
    assert (again["accepted"], again["duplicates"], again["stored"]) == (0, 50, 0)
    m = http.get("/models/ctl/metrics", params={"metric": "llm", "start": "-1h"}).json()
    point = m["points"][0]
    assert point["rows"] == 50
    assert point["value"]["unsafe_rate"] == 0.0
    assert point["value"]["tokens_out_mean"] == pytest.approx(
        sum(10 + i % 5 for i in range(50)) / 50)
    assert point["value"]["cost_sum"] == pytest.approx(50 * 0.0002)
    segs = http.get("/models/ctl/segments").json()
    assert "locale" in segs["columns"]


def test_a_bad_event_is_refused_naming_row_and_field(http_module, models) -> None:
    http = http_module
    r = http.post("/models/ctl/llm-events", json=[{"request_id": "b1", "tokens_in": 3}])
    assert r.status_code == 422
    assert r.json()["detail"]["field"] == "output"
    mixed = [*_events(1, "ok-"), {"request_id": "b2", "output": "x", "tokens_out": -4},
             {"request_id": "b3", "output": "x", "input": [{"role": "robot", "content": "hi"}]}]
    out = http.post("/models/ctl/llm-events", json=mixed).json()
    assert (out["accepted"], out["rejected"]) == (1, 2)
    assert [(e["row"], e["field"], e["request_id"]) for e in out["errors"]] == [
        (1, "tokens_out", "b2"), (2, "input[0].role", "b3")]
    assert http.get("/models/ctl/llm-events/b2").status_code == 404


def test_huge_text_is_cut_and_flagged_never_refused(http_module, models) -> None:
    http = http_module
    ev = dict(_events(1, "huge-")[0], output="word " * 20_000,
              input="q" * (MAX_TEXT_CHARS + 10))
    out = http.post("/models/ctl/llm-events", json=[ev]).json()
    assert (out["accepted"], out["truncated"]) == (1, 1)
    stored = http.get("/models/ctl/llm-events/huge-0").json()
    assert stored["detail"]["truncated_output"] and stored["detail"]["truncated_input"]
    assert stored["detail"]["output_chars"] == 100_000
    assert len(stored["output"]) == MAX_TEXT_CHARS
    assert len(stored["input"][0]["content"]) == MAX_TEXT_CHARS


def test_the_providers_finish_reason_settles_truncation(http_module) -> None:
    """Review: ``finish_reason: "stop"`` still got a guessed ``truncated`` finding for an
    answer ending on a bare number; the provider's word settles it, the guess is for events
    without one."""
    http = http_module
    _model(http, "trunc")
    text = "Your order total, taxes included, is 42"
    reasons = {"t-stop": "stop", "t-filter": "content_filter", "t-length": "length",
               "t-none": None}
    evs = [dict(_events(1, rid)[0], request_id=rid, output=text, finish_reason=reason)
           for rid, reason in reasons.items()]
    assert http.post("/models/trunc/llm-events", json=evs).json()["accepted"] == 4
    got = {rid: [(f["category"], f["severity"])
                 for f in http.get(f"/models/trunc/llm-events/{rid}").json()["findings"]
                 if f["category"] == "truncated"] for rid in reasons}
    assert got == {"t-stop": [], "t-filter": [], "t-length": [("truncated", 1.0)],
                   "t-none": [("truncated", 0.6)]}


def test_a_request_id_holding_slashes_is_served_by_the_api_and_the_dashboard(
        server, http_module) -> None:
    import httpx

    http = http_module
    _model(http, "slash")
    rid = "conv/42/turn 3?x#y"
    out = http.post("/models/slash/llm-events", json=[dict(_events(1, "x")[0], request_id=rid,
                                                           output=UNSAFE)])  # flagged: listed
    assert out.status_code == 200 and out.json()["accepted"] == 1, out.text
    quoted = httpx.URL(f"/models/slash/llm-events/{rid.replace('?', '%3F').replace('#', '%23')}")
    got = http.get(quoted)
    assert got.status_code == 200, got.text
    assert got.json()["request_id"] == rid
    assert http.get("/models/slash/llm-events/conv%2F42%2Fturn%203%3Fx%23y").json()[
        "request_id"] == rid  # each part quoted, as the SDK sends it
    assert http.get("/models/slash/llm-events/conv/42").status_code == 404  # not a prefix match
    # the dashboard's list links to the conversation page, which answers
    page = httpx.get(f"{server.url}/models/slash/llm", params={"range": "1h"}, timeout=60)
    assert page.status_code == 200
    link = "/models/slash/llm/events/conv/42/turn%203%3Fx%23y"
    assert f'href="{link}"' in page.text
    conv = httpx.get(server.url + link, timeout=60)
    assert conv.status_code == 200 and "Conversation conv/42/turn 3?x#y" in conv.text


@pytest.mark.parametrize("policy", ["store", "redact", "hash"])
def test_privacy_policy_is_applied_before_anything_is_written(http_module, db_url, policy,
                                                                tmp_path: Path) -> None:
    http = http_module
    name = f"priv-{policy}"
    _model(http, name, policy)
    email = f"{policy}.someone@example.com"
    # the e-mail is planted in every free value: texts, tags, the session and request ids
    rid, sid = f"{policy}-0 for {email}", f"session of {email}"
    ev = dict(_events(1, f"{policy}-")[0], output=f"Sure, I emailed {email} for you.",
              input=f"my mail is {email}, card 4111 1111 1111 1111", request_id=rid,
              session_id=sid, tags={"locale": "fr", "user": email})
    out = http.post(f"/models/{name}/llm-events", json=[ev]).json()
    assert (out["stored"], out["privacy"]) == (1, policy)
    # an event whose descriptor row is quarantined (unknown version): its payload is kept
    lost = dict(ev, request_id=f"{rid} again", version="no-such-version")
    assert http.post(f"/models/{name}/llm-events", json=[lost]).json()["quarantined"] == 1
    fb = http.post(f"/models/{name}/llm-feedback", json=[
        {"request_id": rid, "score": 1, "comment": f"reach me at {email}"}]).json()
    assert fb["joined"] == 1  # late feedback joins by the id as the application sent it
    stored = http.get(f"/models/{name}/llm-events/{rid}").json()  # looked up as sent
    by_session = http.get(f"/models/{name}/llm-events", params={"session_id": sid}).json()
    assert stored["request_id"] in {e["request_id"] for e in by_session["events"]}
    texts = [stored["output"], stored["input"][0]["content"], stored["feedback"]["comment"],
             stored["tags"]["user"], stored["session_id"], stored["request_id"]]
    spans = [f for f in stored["findings"] if f["field"] == "output" and f["evaluator"] == "pii"]
    assert [f["category"] for f in spans] == ["email"]
    span_text = stored["output"][spans[0]["start"]:spans[0]["end"]]
    if policy == "store":
        assert all(email in t for t in texts)
        assert span_text == email
        assert (stored["request_id"], stored["session_id"]) == (rid, sid)
        return
    assert not any(email in t for t in texts)
    assert "4111" not in stored["input"][0]["content"]
    assert stored["tags"]["locale"] == "fr"
    # ids keep one keyed hash per value under both policies: joins and lookups still work
    assert re.fullmatch(rf"{policy}-0 for \[EMAIL:[0-9a-f]{{8}}\]", stored["request_id"])
    assert re.fullmatch(r"session of \[EMAIL:[0-9a-f]{8}\]", stored["session_id"])
    if policy == "redact":
        assert stored["output"] == "Sure, I emailed [EMAIL] for you."
        assert span_text == "[EMAIL]"
        assert stored["tags"]["user"] == "[EMAIL]"
    else:
        assert span_text.startswith("[EMAIL:") and len(span_text) == len("[EMAIL:]") + 8
        assert stored["tags"]["user"] == span_text  # equal values, equal labels
    raw = _database_bytes(db_url)
    assert email.encode() not in raw


def _database_bytes(db_url: str) -> bytes:
    """Everything the database holds: the SQLite file (and its WAL), or every text column of
    PostgreSQL's tables dumped."""
    if db_url.startswith("sqlite"):
        path = Path(db_url.split("///", 1)[1])
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    engine = create_engine(db_url)
    out = []
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT table_name FROM information_schema.tables "
                                   "WHERE table_schema = 'public'")).scalars().all()
        for t in tables:
            for row in conn.execute(text(f'SELECT * FROM "{t}"')):
                out.append(repr(tuple(row)).encode())
    engine.dispose()
    return b"".join(out)


def test_late_feedback_joins_by_request_id_and_early_feedback_is_held(http_module,
                                                                       models) -> None:
    http = http_module
    early = http.post("/models/ctl/llm-feedback", json=[
        {"request_id": "fb0", "score": 0.0}, {"request_id": "fb1", "score": 1.0},
        {"request_id": "fb2", "score": "great"}, {"request_id": "fb2", "score": 1.7e308},
        {"request_id": "fb2", "score": -1e19}]).json()
    assert (early["pending"], early["joined"], early["rejected"]) == (2, 0, 3)
    assert [e["field"] for e in early["errors"]] == ["score"] * 3
    assert "1e+18" in early["errors"][1]["reason"]  # a sum of two would be inf
    assert http.get("/models/ctl").json()["labels_pending"] == 2
    out = http.post("/models/ctl/llm-events", json=_events(3, "fb")).json()
    assert out["labels_joined"] == 2
    late = http.post("/models/ctl/llm-feedback", json=[
        {"request_id": "fb2", "score": 0.5, "comment": "ok"}]).json()
    assert (late["joined"], late["pending"]) == (1, 0)
    m = http.get("/models/ctl/metrics", params={"metric": "llm", "start": "-1h"}).json()
    value = m["points"][0]["value"]
    assert value["feedback_count"] == 3
    assert value["feedback_mean"] == pytest.approx(0.5)
    assert http.get("/models/ctl/llm-events/fb2").json()["feedback"] == {
        "score": 0.5, "comment": "ok"}


def test_unsafe_rate_rule_fires_on_a_burst_and_stays_silent_on_the_control(http_module,
                                                                            models) -> None:
    http = http_module
    http.post("/models/bot/llm-events", json=_events(60, "burst", unsafe_every=3,
                                                     locale="en")).raise_for_status()
    http.post("/models/ctl/llm-events", json=_events(60, "calm")).raise_for_status()
    http.put("/rules/*/unsafe-burst", json={
        "metric": "llm", "stat": "unsafe_rate", "window": "1h", "op": ">",
        "critical": 0.1, "min_rows": 20}).raise_for_status()
    try:
        out = evaluate(http)
        fired = {t["labels"]["model"] for t in out["transitions"]
                 if t["kind"] == "firing" and t["labels"]["rule"] == "unsafe-burst"}
        assert fired == {"bot"}
        default = {t["labels"]["model"] for t in out["transitions"]  # every LLM model has it
                   if t["kind"] == "firing" and t["labels"]["rule"] == "llm-unsafe-rate"}
        assert default == {"bot"}
        incidents = http.get("/incidents").json()
        assert [i for i in incidents if i["model"] == "bot"]  # the burst opened one
        assert not [i for i in incidents if i["model"] == "ctl"
                    and i["key"] in ("llm-unsafe-rate", "unsafe-burst")]
        value = http.get("/models/bot/metrics", params={"metric": "llm", "start": "-1h"}
                         ).json()["points"][0]["value"]
        assert value["unsafe_rate"] == pytest.approx(20 / 60)
        assert value["unsafe_self_harm_rate"] == pytest.approx(20 / 60)
    finally:
        http.delete("/rules/*/unsafe-burst")
    rca = http.get("/models/bot/rca", params={"start": "-1h", "end": "now"}).json()
    assert rca["segments"]["metric"] == "unsafe_rate"
    assert rca["segments"]["fell"] == ["locale=en"]  # the burst's segment, named first
    named = [x["name"] for x in rca["suspects"] if x["kind"] == "segment"]
    assert named == ["locale = en"]
    flagged = http.get("/models/bot/llm-events", params={
        "flagged": "true", "category": "self_harm", "limit": 1000}).json()["events"]
    assert len(flagged) == 20
    for ev in flagged:
        spans = [f for f in ev["findings"] if f["category"] == "self_harm"]
        assert spans and all(ev["output"][f["start"]:f["end"]] in UNSAFE for f in spans)
    assert http.get("/models/ctl/llm-events", params={"category": "self_harm"}
                    ).json()["events"] == []


def test_rule_stat_names_are_checked(http_module) -> None:
    r = http_module.put("/rules/*/bad-llm", json={"metric": "llm", "stat": "unsafe_rte"})
    assert r.status_code == 422
    assert "unsafe_rate" in r.text


def test_events_for_a_tabular_model_are_refused(http_module) -> None:
    http_module.post("/models", json={"name": "tabular"}).raise_for_status()
    r = http_module.post("/models/tabular/llm-events", json=_events(1, "t"))
    assert r.status_code == 422 and "text_generation" in r.text


class _Upstream:
    """A fake OpenAI-compatible upstream on loopback: /v1/chat/completions, JSON or SSE."""

    def __init__(self, reply: str) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.reply, self.calls = reply, 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls += 1
                rid = f"chatcmpl-{outer.calls}"
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    words = outer.reply.split(" ")
                    for i, w in enumerate(words):
                        chunk = {"id": rid, "model": body["model"], "choices": [
                            {"index": 0, "delta": {"content": w + (" " if i < len(words) - 1
                                                                   else "")}}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    end = {"id": rid, "model": body["model"], "choices": [
                        {"index": 0, "delta": {}, "finish_reason": "length"}]}
                    self.wfile.write(f"data: {json.dumps(end)}\n\n".encode())
                    last = {"id": rid, "model": body["model"], "choices": [],
                            "usage": {"prompt_tokens": 9, "completion_tokens": len(words)}}
                    self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
                    return
                answer = json.dumps({
                    "id": rid, "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": outer.reply}}],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 4}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Upstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _MiniOpenAI:
    """The call shape of ``openai.OpenAI``: ``chat.completions.create(**kw)`` answering the
    JSON (a dict), or for ``stream=True`` an iterator of chunk dicts read from the SSE."""

    def __init__(self, base_url: str) -> None:
        import types

        import httpx

        self._http = httpx.Client(base_url=base_url, timeout=30)
        self.chat = types.SimpleNamespace(completions=types.SimpleNamespace(create=self._create))

    def _create(self, **kw: object) -> object:
        import json

        if not kw.get("stream"):
            return self._http.post("/chat/completions", json=kw).json()

        def chunks():
            with self._http.stream("POST", "/chat/completions", json=kw) as r:
                for line in r.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        yield json.loads(line[6:])
        return chunks()


def test_sdk_wrapper_logs_openai_compatible_calls(server, http_module, models) -> None:
    from aiwarden.sdk import Client
    from aiwarden.sdk.llm import wrap_openai

    with _Upstream(UNSAFE) as up, Client(server.url) as monitor:
        chat = wrap_openai(_MiniOpenAI(up.url), monitor, model="bot", version="v1",
                           tags={"locale": "de"}, session_id="s-42")
        msgs = [{"role": "user", "content": "I feel bad"}]
        reply = chat.chat.completions.create(model="gpt-4o-mini", messages=msgs)
        assert reply["choices"][0]["message"]["content"] == UNSAFE  # passed through as is
        streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in
                           chat.chat.completions.create(model="gpt-4o-mini", messages=msgs,
                                                        stream=True) if c["choices"])
        assert streamed == UNSAFE and up.calls == 2
        one = monitor.llm_events("bot", session_id="s-42")
        assert {e["request_id"] for e in one} == {"chatcmpl-1", "chatcmpl-2"}
        for e in one:
            assert e["output"] == UNSAFE and e["input"] == msgs and e["tags"] == {"locale": "de"}
            assert e["detail"]["tokens_in"] == 9 and e["detail"]["latency_ms"] > 0
            assert e["detail"]["model"] == "gpt-4o-mini" and e["flagged"]
        by_id = {e["request_id"]: e for e in one}
        assert by_id["chatcmpl-1"]["detail"]["tokens_out"] == 4
        assert by_id["chatcmpl-2"]["detail"]["tokens_out"] == len(UNSAFE.split(" "))
        # the first choice's finish reason, of the answer and of the stream's last chunk
        assert by_id["chatcmpl-1"]["detail"]["finish_reason"] == "stop"
        assert by_id["chatcmpl-2"]["detail"]["finish_reason"] == "length"
        assert "truncated" in {f["category"] for f in by_id["chatcmpl-2"]["findings"]}
        assert "truncated" not in {f["category"] for f in by_id["chatcmpl-1"]["findings"]}
        fb = monitor.log_llm_feedback("bot", "chatcmpl-1", 0.0, "harmful")
        assert fb["joined"] == 1
        errors: list = []
        broken = wrap_openai(_MiniOpenAI(up.url), Client("http://127.0.0.1:9"), model="bot",
                             on_error=lambda rid, exc: errors.append(rid))
        assert broken.chat.completions.create(model="m", messages=msgs)["id"] == "chatcmpl-3"
        assert errors == ["chatcmpl-3"]  # the monitor is down: reported, the call still works


def test_retention_removes_old_conversations(http_module, monitor, models) -> None:
    old = _events(1, "old-", ts=time.time() - 40 * 86400)
    http_module.post("/models/ctl/llm-events", json=old + _events(1, "new-")
                     ).raise_for_status()
    assert http_module.get("/models/ctl/llm-events/old-0").status_code == 200
    monitor.enforce_retention()
    assert http_module.get("/models/ctl/llm-events/old-0").status_code == 404
    assert http_module.get("/models/ctl/llm-events/new-0").status_code == 200  # recent: kept


def test_cli_logs_events_and_feedback_from_json_lines(server, http_module, models,
                                                      tmp_path: Path) -> None:
    import json

    from tests.server.test_cli import cli

    events = tmp_path / "events.jsonl"
    rows = [*_events(3, "cli-"), {"request_id": "cli-bad", "output": None}]
    events.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    res = cli("log", "llm", "ctl", str(events), "--url", server.url)
    assert res.returncode == 1, res.stderr  # one bad row: reported, the rest sent
    assert "accepted 3" in res.stdout and "rejected 1" in res.stdout
    assert "row 3 (cli-bad): output: required" in res.stdout
    fb = tmp_path / "feedback.jsonl"
    fb.write_text(json.dumps({"request_id": "cli-0", "score": 1}) + "\n")
    res = cli("log", "llm-feedback", "ctl", str(fb), "--url", server.url)
    assert res.returncode == 0 and "joined 1" in res.stdout, res.stdout + res.stderr
    assert http_module.get("/models/ctl/llm-events/cli-0").json()["feedback"]["score"] == 1
    res = cli("models", "create", "cli-bot", "--task", "text_generation", "--url", server.url)
    assert res.returncode == 0, res.stderr
    res = cli("models", "reference", "cli-bot", "v1", str(events), "--segments", "locale",
              "--url", server.url)
    assert res.returncode == 2 and "row 3: output" in res.stderr  # the bad row, named
    events.write_text("\n".join(json.dumps(r) for r in rows[:3]) + "\n")
    res = cli("models", "reference", "cli-bot", "v1", str(events), "--segments", "locale",
              "--url", server.url)
    assert res.returncode == 0 and "3 events" in res.stdout, res.stderr
    seg = http_module.get("/models/cli-bot/segments").json()["columns"]
    assert list(seg) == ["locale"]


def test_a_new_prompt_version_is_monitored_against_the_previous_reference(http_module,
                                                                          models) -> None:
    http = http_module
    http.post("/models/ctl/versions", json={"version": "prompt-v2"}).raise_for_status()
    out = http.post("/models/ctl/llm-events", json=_events(
        30, "v2-", unsafe_every=2, version="prompt-v2")).json()
    assert (out["accepted"], out["quarantined"]) == (30, 0)
    m = http.get("/models/ctl/metrics", params={
        "metric": "llm", "start": "-1h", "version": "prompt-v2"}).json()
    assert m["reference"]["inherited"] is True
    assert m["points"][0]["value"]["unsafe_rate"] == pytest.approx(15 / 30)
    v1 = http.get("/models/ctl/metrics", params={
        "metric": "llm", "start": "-1h", "version": "v1"}).json()
    assert v1["points"][0]["value"]["unsafe_rate"] == 0.0  # the versions apart
    bad = http.post("/models/ctl/llm-events", json=_events(2, "v9-", version="v9")).json()
    assert (bad["stored"], bad["quarantined"]) == (2, 2)  # kept, and counted as refused
    assert {e["field"] for e in bad["errors"]} == {"version"}


def test_rca_slices_name_the_prompt_version_and_tag_where_unsafe_answers_are(
        http_module) -> None:
    http = http_module
    _model(http, "slicer")
    http.post("/models/slicer/versions", json={"version": "v2"}).raise_for_status()
    for rows in (_events(200, "a", locale="fr"), _events(100, "b", locale="en"),
                 _events(100, "c", unsafe_every=2, locale="en", version="v2"),
                 _events(100, "d", locale="fr", version="v2")):
        http.post("/models/slicer/llm-events", json=rows).raise_for_status()
    rca = http.get("/models/slicer/rca", params={"start": "-1h", "end": "now"}).json()
    (top, *_) = rca["slices"]["slices"]
    assert sorted(map(tuple, top["conditions"])) == [("locale", "==", "en"),
                                                     ("version", "==", "v2")]
    assert (top["support"], top["metric_value"], top["rest_value"]) == (100, 0.5, 0.0)
    assert rca["suspects"][0]["kind"] == "slice"
    assert "unsafe 50.0% vs 0.0% elsewhere" in rca["suspects"][0]["summary"]
