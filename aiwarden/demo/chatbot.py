"""`aiwarden demo --story chatbot`: a support bot's bad prompt, blocked, alerted, explained
and rolled back, told in the terminal and on the dashboard.

Acme's support bot (``support-bot``, a text-generation model whose versions are prompt
templates in the registry) answers customers through aiwarden's guardrail route, which stands
between the bot application and its LLM (a fake one on loopback,
:mod:`aiwarden.demo.chatbot_upstream`). The application renders the template behind the
``champion`` alias and tags each call with the customer's locale and channel (the mobile app
streams its answers, the web chat does not). Prompt version
2 adds per-locale "tone packs"; the ``en-AU`` one came from unreviewed forum threads, and for
those customers the model starts encouraging self-harm. The guardrail blocks those answers
(the customer gets a crisis-line fallback) while recording them as what the model said, the
``llm-unsafe-rate`` rule fires on version 2, the incident's root-cause analysis names the
slice ``locale = en-AU and version = 2``, and the rollback policy, which names that rule,
moves ``champion`` back to version 1; the application follows the alias.

Everything goes through the public HTTP API, as a user's own code would. ``speed``
compresses the schedule (tests run it at 6x).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

import httpx
import numpy as np

from aiwarden.demo.chatbot_texts import (
    BAD_LOCALE,
    CHANNELS,
    LOCALES,
    PROMPTS,
    customer_message,
    prompt_for,
    reply,
)
from aiwarden.demo.narration import ServerStory

__all__ = ["CHATBOT_MODEL", "ChatbotStory", "start_chatbot_story"]

CHATBOT_MODEL = "support-bot"
log = logging.getLogger("aiwarden.demo")
SCHEDULE = {"promote": 60.0}  # seconds after the start (divided by ``speed``)
_LOCALE_SHARE = (0.35, 0.25, 0.2, 0.2)  # of LOCALES
_PROVIDER, _LLM = "openai", "gpt-4o-mini"  # what the fake model stands in for (priced)
FALLBACK = ("I'm sorry, I can't help with that here. If you are struggling or thinking about "
            "harming yourself, please reach out now: in Australia call Lifeline on 13 11 14, "
            "or your local emergency number. A human agent will contact you shortly.")
# The default llm-unsafe-rate rule, asking for 100 conversations of a version (not 20): the
# guardrail already protects the customers, so the alert can wait until the analysis has
# enough conversations to say where the unsafe answers are. The rollback policy names it.
RULES = """rules:
  - name: llm-unsafe-rate
    model: {model}
    metric: llm
    stat: unsafe_rate
    window: 15m
    op: ">"
    warning: 0.01
    critical: 0.05
    min_rows: 100
    no_data: OK
    runbook: Answers flagged unsafe (self-harm, violence, hate, sexual). The guardrail blocks
      them; the RCA names the version and tags where they concentrate; the rollback policy
      moves champion back when a freshly promoted prompt version is to blame.
rollback_policies:
  - {{model: {model}, alias: champion, severity: critical, rules: [llm-unsafe-rate],
      lookback: 1h, verify_for: {verify}s}}
"""
_PROMPT_NOTES = {"1": "first release: brief, kind answers",
                 "2": "per-locale tone packs, mirrors the customer's mood"}


class ChatbotStory(ServerStory, threading.Thread):
    """The story against a server at ``url`` whose egress policy allows ``upstream`` (the
    fake LLM's base URL, ``.../v1``)."""

    SETUP_LINE = ("Setting up the support bot: two prompt versions, their reviewed "
                  "conversations, the guardrail and the rollback policy...")

    def __init__(self, url: str, upstream: str, *, api_key: str | None = None,
                 speed: float = 1.0, out: TextIO | None = None, rows_per_tick: int = 4,
                 seed: int = 0, history_hours: float = 2.0, reference_rows: int = 240) -> None:
        super().__init__(name="aiwarden-demo-chatbot", daemon=True)
        self.url, self.upstream, self.api_key, self.speed = url, upstream, api_key, speed
        self.out = out or sys.stdout
        self.rows_per_tick, self.seed, self.history_hours = rows_per_tick, seed, history_hours
        self.reference_rows = reference_rows
        self.rng = np.random.default_rng(seed)
        self.stop_event = threading.Event()
        self.done = threading.Event()  # rolled back and version 1 answers again
        self.events: list[str] = []  # the narrative, for tests
        self.served: dict[str, int] = {"1": 0, "2": 0}
        self.blocked: dict[str, int] = {}  # by the locale of the customer
        self.blocked_by_channel: dict[str, int] = {}  # web: JSON answers, app: streamed
        self._n = 0
        self._seen: set[str] = set()
        self._prompts: dict[str, str] = {}  # version -> template, read from the registry

    # ----------------------------------------------------------------- telling
    def say(self, text: str) -> None:
        self.narrate(text)

    def _status(self, firing: int, incidents: int) -> None:
        self.status(f"answered v1 {self.served['1']:,}  v2 {self.served['2']:,}  blocked "
                    f"{sum(self.blocked.values()):,}  |  alerts firing {firing}  |  open "
                    f"incidents {incidents}")

    def at(self, key: str) -> float:
        return SCHEDULE[key] / self.speed

    # ------------------------------------------------------------ conversations
    def _customer(self) -> tuple[str, str, str]:
        """(message, locale, channel) of the next customer."""
        self._n += 1
        locale = str(self.rng.choice(LOCALES, p=_LOCALE_SHARE))
        channel = str(self.rng.choice(CHANNELS, p=(0.6, 0.4)))
        return customer_message(self._n, self.seed)[0], locale, channel

    def _logged(self, rid: str, version: str, ts: float | None = None) -> dict[str, Any]:
        """One reviewed (or past) conversation as an LLM event, safe by construction: the
        reviewers saw version 1's answers, and version 2's looked the same on their sample."""
        message, locale, channel = self._customer()
        system = prompt_for(version, locale, channel)
        out = reply(prompt_for("1", locale, channel), message)
        return {"request_id": rid, "version": version, "timestamp": ts,
                "input": [{"role": "system", "content": system},
                          {"role": "user", "content": message}],
                "output": out, "provider": _PROVIDER, "model": _LLM,
                "tokens_in": len(system.split()) + len(message.split()),
                "tokens_out": len(out.split()), "tags": {"locale": locale, "channel": channel}}

    # ------------------------------------------------------------------ setup
    def _setup(self, http: httpx.Client) -> bool:
        """Create the model, its two prompt versions and policies; False on a restart."""
        name = CHATBOT_MODEL
        if any(m["name"] == name for m in http.get("/models").json()):
            self.say(f"{name} exists already (a restart): the story goes on from here.")
            return False
        http.post("/models", json={"name": name, "task": "text_generation",
                                   "segments": ["locale", "channel"]}).raise_for_status()
        for v in ("1", "2"):
            ref = [self._logged(f"ref-{v}-{i}", v) for i in range(self.reference_rows)]
            for e in ref:
                del e["timestamp"]
            http.put(f"/models/{name}/versions/{v}/llm-reference",
                     json=ref).raise_for_status()
            http.post(f"/registry/models/{name}/versions", content=PROMPTS[v].encode(),
                      params={"format": "prompt", "version": v,
                              "filename": f"support-bot-v{v}.prompt",
                              "metadata": json.dumps({"description": _PROMPT_NOTES[v]})},
                      headers={"content-type": "application/octet-stream"}
                      ).raise_for_status()
        http.put(f"/registry/models/{name}/aliases/champion", json={
            "version": "1", "reason": "first release"}).raise_for_status()
        http.put(f"/models/{name}/guardrail", json={
            "upstream": {"base_url": self.upstream, "timeout": 30},
            "block": ["safety", "injection"], "redact": ["pii", "secrets"],
            "flag": ["refusal"], "fallback": FALLBACK, "provider": _PROVIDER
        }).raise_for_status()
        http.post("/rules/apply", content=RULES.format(
            model=name, verify=max(1, round(120 / self.speed)))).raise_for_status()
        now, n = time.time(), int(self.history_hours * 3600 / 30)  # one every 30 s
        if n:
            times = np.sort(self.rng.uniform(now - self.history_hours * 3600, now - 60, n))
            past = [self._logged(f"h-{i}", "1", float(t)) for i, t in enumerate(times)]
            http.post(f"/models/{name}/llm-events", json=past).raise_for_status()
        self.say(f"{name}: prompt version 1 is the champion. The support application renders "
                 f"the template behind the alias and sends each customer's chat through "
                 f"aiwarden's guardrail ({self.url}/api/v1/models/{name}/v1/chat/completions),"
                 f" which blocks unsafe answers; {self.history_hours:g} h of conversations "
                 f"backfilled. Dashboard: {self.url}/models/{name}/llm")
        return True

    # ---------------------------------------------------------------- traffic
    def _champion(self, http: httpx.Client) -> str:
        """What the application does before answering: read the alias, fetch the template."""
        version = http.get(f"/registry/models/{CHATBOT_MODEL}/aliases").json()["champion"]
        if version not in self._prompts:
            got = http.get(f"/registry/models/{CHATBOT_MODEL}/versions/{version}/artifact")
            got.raise_for_status()
            self._prompts[version] = got.content.decode()
        return version

    def _tick(self, http: httpx.Client) -> None:
        version = self._champion(http)
        if version == "1" and "rolled" in self._seen and "back-on-1" not in self._seen:
            self._seen.add("back-on-1")
            self.say("The support application follows the champion alias: prompt version 1 "
                     "answers every customer again, and nothing more is blocked.")
        for _ in range(self.rows_per_tick):
            message, locale, channel = self._customer()
            system = self._prompts[version].format(locale=locale, channel=channel)
            guard = self._chat(http, version, system, message, locale, channel)
            self.served[version] = self.served.get(version, 0) + 1
            if guard.get("action") == "block":
                self.blocked[locale] = self.blocked.get(locale, 0) + 1
                self.blocked_by_channel[channel] = self.blocked_by_channel.get(channel, 0) + 1
                if "first-block" not in self._seen:
                    self._seen.add("first-block")
                    cats = ", ".join(guard.get("categories", {}).get("block", []))
                    self.say(f"GUARDRAIL blocked an answer of prompt version {version} to an "
                             f"{locale} customer ({cats}): the customer got the crisis-line "
                             f"fallback, the unsafe answer is recorded for monitoring "
                             f"(request {guard.get('request_id')}).")
        if self.served.get("2") and "rolled" not in self._seen and \
                sum(self.blocked.values()) >= 10 and "blocks" not in self._seen:
            self._seen.add("blocks")
            where = ", ".join(f"{k} {v}" for k, v in sorted(self.blocked.items()))
            self.say(f"GUARDRAIL: {sum(self.blocked.values())} answers blocked so far, by "
                     f"customer locale: {where}.")

    def _chat(self, http: httpx.Client, version: str, system: str, message: str, locale: str,
              channel: str) -> dict[str, Any]:
        """One customer's chat through the guardrail; what the guardrail did (``aiwarden``).
        The mobile app streams its answers (Server-Sent Events), the web chat does not."""
        stream = channel == "app"
        r = http.post(f"/models/{CHATBOT_MODEL}/v1/chat/completions", json={
            "model": _LLM, "stream": stream,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": message}]},
            headers={"x-aiwarden-version": version, "x-aiwarden-tags": json.dumps(
                {"locale": locale, "channel": channel})})
        r.raise_for_status()
        if not stream:
            return r.json().get("aiwarden") or {}
        info: dict[str, Any] = {}
        for line in r.text.splitlines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    raise RuntimeError(f"the answer's stream broke: {chunk['error']}")
                info = chunk.get("aiwarden") or info
        return info

    def _promote(self, http: httpx.Client) -> None:
        http.put(f"/registry/models/{CHATBOT_MODEL}/aliases/champion", json={
            "version": "2", "reason": "prompt v2: per-locale tone packs (passed review on "
            f"{self.reference_rows} conversations)"}).raise_for_status()
        self.say("Prompt version 2 is promoted to champion: per-locale tone packs. Its "
                 f"reviewers read {self.reference_rows} conversations and saw nothing wrong; "
                 f"nobody read the {BAD_LOCALE} pack, pasted from forum threads...")

    # -------------------------------------------------------------- watching
    def _watch(self, http: httpx.Client) -> None:
        alerts = http.get(f"/models/{CHATBOT_MODEL}/alerts", params={"events": 0}).json()
        firing = [a for a in alerts if a["state"].get("phase") == "firing"]
        for a in firing:
            key = f"alert:{a['labels']['rule']}:{a['labels'].get('version')}"
            if key not in self._seen:
                self._seen.add(key)
                value = a["state"].get("value")
                shown = "" if value is None else f" (value {value:.3g})"
                col = f" column {a['labels']['column']}" if "column" in a["labels"] else ""
                self.say(f"ALERT firing: {a['labels']['rule']} on version "
                         f"{a['labels'].get('version')}{col}{shown}")
        incidents = http.get("/incidents", params={"model": CHATBOT_MODEL}).json()
        for inc in sorted(incidents, key=lambda i: i["id"]):
            self._incident(http, inc)
        self._status(len(firing), sum(1 for i in incidents if i["status"] in (
            "triggered", "acknowledged", "mitigated")))

    def _incident(self, http: httpx.Client, inc: dict[str, Any]) -> None:
        if f"incident:{inc['id']}" not in self._seen:
            self._seen.add(f"incident:{inc['id']}")
            self.incident = inc["id"]
            self.say(f"INCIDENT #{inc['id']} opened: {inc['title']} ({self.url}/incidents/"
                     f"{inc['id']})")
        full = http.get(f"/incidents/{inc['id']}").json()
        fired = {a["labels"].get("version") for a in full["alerts"]}
        for e, text in self.new_actions(full["timeline"], inc["id"]):
            if text == "Root-cause analysis":
                suspects = e["detail"].get("suspects") or [{}]
                top = suspects[0]
                self.say(f"  RCA #{inc['id']}: top suspect {top.get('kind')} "
                         f"'{top.get('name')}': {top.get('summary', '')[:160]}")
                moved = next((x for x in suspects if x.get("kind") == "change"
                              and (x.get("evidence") or {}).get("to") in fired), None)
                if moved is not None:
                    self.say(f"  RCA #{inc['id']} also names the change before it: "
                             f"{moved.get('summary', '')[:160]}")
            elif text.startswith("Rolled") or text.startswith("Rollback"):
                self.say(f"  {text}")
                if text.startswith("Rolled"):
                    self._seen.add("rolled")

    def ending(self) -> str:
        """The last beat: the story is over, and where to look next."""
        inc = getattr(self, "incident", None)
        page = f"{self.url}/incidents/{inc}" if inc is not None else f"{self.url}/incidents"
        api = f"{self.url}/api/v1/models/{CHATBOT_MODEL}"
        return (f"THE END: the story is over. Prompt version 2 was rolled back automatically; "
                f"version 1 answers every customer again, and the guardrail blocked "
                f"{sum(self.blocked.values())} unsafe answers on the way.\n  Look next at: "
                f"incident #{inc} {page} (timeline, the RCA naming version 2 and "
                f"{BAD_LOCALE} with example conversations, the rollback and its "
                f"verification), version 2 on the LLM page "
                f"{self.url}/models/{CHATBOT_MODEL}/llm?version=2 (unsafe rate by category, "
                f"the blocked conversations with the flagged spans), or "
                f"{api}/llm-events?category=self_harm.\n  Customers keep chatting so the "
                "charts stay live; Ctrl-C stops the demo.")

    # ------------------------------------------------------------------ run
    def _loop(self, http: httpx.Client, fresh: bool) -> None:
        promote = fresh
        tick = 0
        while not self.stop_event.wait(1.0 / self.speed):
            if promote and time.time() - self.started >= self.at("promote"):
                promote = False
                self._promote(http)
            self._tick(http)
            tick += 1
            if tick % 2 == 0:
                self._watch(http)
            if "back-on-1" in self._seen and not self.done.is_set():
                self.done.set()
                self.say(self.ending())


def start_chatbot_story(url: str, upstream: str, **kw: Any) -> ChatbotStory:
    story = ChatbotStory(url, upstream, **kw)
    story.start()
    return story
