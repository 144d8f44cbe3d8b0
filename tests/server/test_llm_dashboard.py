"""The LLM model page through a real server on SQLite and PostgreSQL: its numbers are the
API's, user text is escaped, finding spans are highlighted at the right characters and PII
shows as stored (masked)."""

from __future__ import annotations

import html
import re
import time

import httpx
import pytest

SAFE = ["Your order ships tomorrow.", "You can reset the password from the settings page.",
        "Our shop opens at nine.", "Refunds take three to five days."]
UNSAFE = "You should kill yourself, nobody would miss you."
EVIL = "<script>alert('pwned')</script> " + UNSAFE
MAIL = "Write to jane.doe@example.com for a refund."


def _event(rid: str, output: str, ts: float, *, locale: str = "fr", pv: str = "v1",
           version: str | None = "v1") -> dict:
    return {"request_id": rid, "timestamp": ts, "version": version,
            "input": [{"role": "user", "content": "where is my order?"}], "output": output,
            "provider": "openai", "model": "gpt-4o-mini", "tokens_in": 7,
            "tokens_out": 10 + len(rid) % 5, "latency_ms": 200.0 + 7 * (len(rid) % 13),
            "cost": 0.0002, "tags": {"locale": locale, "prompt_version": pv}}


@pytest.fixture(scope="module")
def chat(server) -> dict:
    name = "chat"
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as api:
        api.post("/models", json={"name": name, "task": "text_generation",
                                  "segments": ["locale", "prompt_version"]}).raise_for_status()
        ts = time.time() - 600
        ref = [_event(f"ref{i}", SAFE[i % 4], ts, locale="fr" if i % 2 else "de", version=None)
               for i in range(200)]
        r = api.put(f"/models/{name}/versions/v1/llm-reference", json=ref)
        assert r.status_code == 201, r.text
        events = [_event(f"e{i}", SAFE[i % 4], ts + i, locale="de" if i % 3 else "fr")
                  for i in range(60)]
        events += [_event("bad1", UNSAFE, ts + 61, locale="de"),
                   _event("bad2", UNSAFE, ts + 62, locale="fr"),
                   _event("evil", EVIL, ts + 63, locale="de"),
                   _event("mail", MAIL, ts + 64, locale="fr")]
        out = api.post(f"/models/{name}/llm-events", json=events).json()
        assert (out["accepted"], out["stored"]) == (64, 64), out
        api.post(f"/models/{name}/llm-feedback",
                 json=[{"request_id": "e1", "score": 1.0}, {"request_id": "e2", "score": 0.0},
                       {"request_id": "e3", "score": 0.5}]).raise_for_status()
        api.put(f"/rules/{name}/self-harm", json={
            "metric": "llm", "stat": "unsafe_self_harm_rate", "op": ">", "warning": 0.02,
            "critical": 0.1, "window": "15m"}).raise_for_status()
    return {"name": name, "url": server.url}


def _stat(page: str, stat: str) -> str:
    m = re.search(rf'data-stat="{stat}">([^<]*)<', page)
    assert m, stat
    return html.unescape(m.group(1)).strip()


def test_the_numbers_on_the_page_are_the_apis(chat) -> None:
    page = httpx.get(f"{chat['url']}/models/chat/llm?range=1h", timeout=60)
    assert page.status_code == 200, page.text
    text = page.text
    start = re.search(r'id="llm-totals" data-start="(\d+)" data-end="(\d+)"', text)
    api = httpx.get(f"{chat['url']}/api/v1/models/chat/metrics", params={
        "metric": "llm", "start": start.group(1), "end": start.group(2)}).json()
    v = api["points"][0]["value"]
    assert v["rows"] == 64 and _stat(text, "rows") == "64"
    assert v["unsafe_rate"] == pytest.approx(3 / 64)
    assert _stat(text, "unsafe_rate") == f"{v['unsafe_rate'] * 100:.2f} %"
    assert _stat(text, "unsafe_self_harm_rate") == f"{v['unsafe_self_harm_rate'] * 100:.2f} %"
    assert _stat(text, "pii_rate") == f"{v['pii_rate'] * 100:.2f} %"
    assert v["pii_rate"] == pytest.approx(1 / 64)
    assert _stat(text, "cost_sum") == f"{v['cost_sum']:.4g} USD"
    assert _stat(text, "tokens") == f"{v['tokens_in_sum']:.3g} / {v['tokens_out_sum']:.3g}"
    assert v["feedback_mean"] == pytest.approx(0.5)
    assert _stat(text, "feedback_mean") == "0.5"
    lat = httpx.get(f"{chat['url']}/api/v1/models/chat/metrics", params={
        "metric": "latency", "start": start.group(1), "end": start.group(2)}).json()
    lv = lat["points"][0]["value"]
    assert _stat(text, "latency") == f"{lv['p50']:.3g} / {lv['p95']:.3g} ms"
    # the charts: one spec each, the rule's thresholds drawn in percent on the unsafe chart
    specs = {s["id"]: s for s in map(_json, re.findall(
        r'<script type="application/json" class="chart-spec">(.*?)</script>', text, re.S))}
    assert {"llm-volume", "llm-latency", "llm-unsafe", "llm-other", "llm-tokens", "llm-cost",
            "llm-feedback"} <= set(specs)
    drawn = sorted((t["rule"], t["value"]) for t in specs["llm-unsafe"]["thresholds"])
    assert drawn == [("llm-unsafe-rate", 1.0), ("llm-unsafe-rate", 5.0), ("self-harm", 2.0),
                     ("self-harm", 10.0)]  # the default rule and ours, in percent
    bars = [p[1] for p in specs["llm-volume"]["series"][0]["data"] if p[1]]
    assert sum(bars) == pytest.approx(64, rel=1e-3)  # one-minute windows: per min = count


def _json(s: str) -> dict:
    import json

    return json.loads(s)  # tojson escapes <, >, & and ' as \\u escapes: plain JSON


def test_user_text_is_inert_and_spans_are_highlighted_where_the_api_says(chat) -> None:
    text = httpx.get(f"{chat['url']}/models/chat/llm?range=1h", timeout=60).text
    assert "<script>alert" not in text and "&lt;script&gt;alert(" in text
    evil = httpx.get(f"{chat['url']}/api/v1/models/chat/llm-events/evil").json()
    spans = sorted((f["start"], f["end"]) for f in evil["findings"]
                   if f["evaluator"] == "safety")
    assert spans, evil["findings"]
    want = [evil["output"][a:b] for a, b in spans]  # disjoint spans here: one mark each
    conv = re.search(r'data-request-id="evil">(.*?)</article>', text, re.S).group(1)
    marks = re.findall(r'<mark class="llm-unsafe"[^>]*>(.*?)</mark>', conv, re.S)
    assert [html.unescape(m) for m in marks] == want
    # the text around the mark is the rest of the output, in order
    out = re.search(r'<pre class="llm-text" aria-label="output">(.*?)</pre>', conv, re.S)
    assert html.unescape(re.sub(r"<[^>]+>", "", out.group(1))) == evil["output"]
    # PII as stored under the default policy (redact): masked, and marked as PII
    mail = re.search(r'data-request-id="mail">(.*?)</article>', text, re.S).group(1)
    assert "jane.doe" not in text
    assert re.findall(r'<mark class="llm-pii"[^>]*>(.*?)</mark>', mail) == ["[EMAIL]"]


def test_the_category_filter_and_the_conversation_page(chat) -> None:
    text = httpx.get(f"{chat['url']}/models/chat/llm?range=1h&category=self_harm").text
    ids = re.findall(r'data-request-id="([^"]+)"', text)
    assert sorted(ids) == ["bad1", "bad2", "evil"]
    seg = httpx.get(f"{chat['url']}/models/chat/llm?range=1h&segment=locale:fr").text
    assert sorted(re.findall(r'data-request-id="([^"]+)"', seg)) == ["bad2", "mail"]
    assert _stat(seg, "rows") == str(sum(1 for i in range(60) if i % 3 == 0) + 2)
    before = httpx.get(f"{chat['url']}/models/chat/llm", params={
        "range": "1h", "end": time.time() - 3 * 3600, "category": "self_harm"}).text
    assert re.findall(r'data-request-id="([^"]+)"', before) == []  # the range's only
    assert _stat(before, "rows") == "0"
    one = httpx.get(f"{chat['url']}/models/chat/llm/events/evil")
    assert one.status_code == 200
    assert "&lt;script&gt;" in one.text and "<script>alert" not in one.text
    assert "self_harm" in one.text
    missing = httpx.get(f"{chat['url']}/models/chat/llm/events/nope")
    assert missing.status_code == 404 and "nope" in html.unescape(missing.text)
    tab = httpx.get(f"{chat['url']}/models/chat").text
    assert 'href="/models/chat/llm"' in tab


def test_pieces_cut_at_every_span_edge_and_keep_overlaps() -> None:
    from aiwarden.server.dashboard.llm_text import pieces

    text = "call 555-0100 and die now"
    fs = [{"evaluator": "safety", "category": "self_harm", "field": "output", "start": 14,
           "end": 25},
          {"evaluator": "pii", "category": "phone", "field": "output", "start": 5, "end": 17},
          {"evaluator": "refusal", "category": "refusal", "field": "output", "start": -1,
           "end": -1},  # about the whole text: listed, not drawn
          {"evaluator": "safety", "category": "violence", "field": "input", "start": 0,
           "end": 4},  # another field
          {"evaluator": "safety", "category": "hate", "field": "output", "start": 40,
           "end": 50}]  # outside the text
    got = [(p.text, p.categories, p.css) for p in pieces(text, fs, "output")]
    assert got == [("call ", (), "flag"), ("555-0100 ", ("phone",), "pii"),
                   ("and", ("self_harm", "phone"), "pii"), (" die now", ("self_harm",), "unsafe")]
    assert "".join(p.text for p in pieces(text, fs, "output")) == text
    assert pieces("", fs, "output") == [] and pieces(None, fs, "output") == []


def test_the_tabular_panels_work_for_a_text_generation_model(chat) -> None:
    for panel in ("charts", "drift", "feature", "slices", "versions"):
        r = httpx.get(f"{chat['url']}/models/chat/panels/{panel}?range=1h", timeout=60)
        assert r.status_code == 200, (panel, r.text[:500])
