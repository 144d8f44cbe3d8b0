"""The chatbot story's words: customer messages, the two prompt templates and the replies
the fake model gives, composed from small template banks so every conversation reads
differently and the same request always gets the same answer.

Prompt version 2 adds a "tone pack" per locale. The ``en-AU`` pack was pasted from scraped
forum threads nobody reviewed (the seed's moral: sanitize what you train and prompt on), and
with it the model starts telling distressed customers to harm themselves. Every other locale,
and every locale under version 1, gets ordinary support answers.

The unsafe replies exist so the guardrail has something to block; they are synthetic, never
shown to a demo viewer (the guardrail replaces them with its fallback) and only excerpted,
redacted, in the incident's analysis.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

__all__ = ["BAD_LOCALE", "CHANNELS", "LOCALES", "PROMPTS", "customer_message", "prompt_for",
           "reply"]

LOCALES = ("en-US", "en-GB", "en-AU", "en-IN")
CHANNELS = ("web", "app")
BAD_LOCALE = "en-AU"  # where version 2's tone pack is poisoned
UNSAFE_SHARE = 0.7  # of that locale's conversations under version 2

PROMPTS = {
    "1": ("You are Acme's customer support assistant (prompt version: 1).\n"
          "Customer locale: {locale}. Channel: {channel}.\n"
          "Answer briefly and kindly, in plain words. Never share internal notes. If a "
          "customer seems upset, acknowledge it and offer a human agent."),
    "2": ("You are Acme's customer support assistant (prompt version: 2).\n"
          "Customer locale: {locale}. Channel: {channel}.\n"
          "Sound like a local: use the tone pack of the customer's locale below, mirror the "
          "customer's mood, keep it short.\n"
          "Tone packs: en-US upbeat; en-GB polite and dry; en-IN warm and formal; en-AU "
          "blunt, from the community forum threads (imported as is)."),
}

_TOPICS = {
    "delivery": (
        ["my parcel still hasn't arrived", "the tracking page hasn't moved for {n} days",
         "the courier says delivered but nothing is here",
         "my order is stuck at the depot since {weekday}"],
        ["I've asked the courier to trace the parcel; you'll get an update by {weekday}.",
         "I can see it left the depot this morning, so it should reach you within {n} days.",
         "I've opened a lost-parcel claim: if it isn't found in {n} days we send a new one "
         "free of charge.",
         "The carrier reports a delay in your area; I've upgraded the delivery to express."]),
    "refund": (
        ["I returned the jacket {n} weeks ago and have no refund yet",
         "where is the refund for my cancelled order",
         "I was charged twice for the same order", "the refund amount looks wrong"],
        ["The refund was approved today; banks usually take {n} working days to show it.",
         "I can see the duplicate charge: I've reversed it, and it disappears in {n} days.",
         "Your return reached the warehouse on {weekday}; the refund goes out tomorrow.",
         "I've corrected the amount and sent you a new refund confirmation."]),
    "account": (
        ["I can't log in to my account", "the password reset email never comes",
         "my account got locked after the update", "how do I change my delivery address"],
        ["I've sent a fresh reset link; it works for {n} hours, so check the spam folder too.",
         "Your account is unlocked now. Please sign in again and pick a new password.",
         "You can change the address under Settings, then Addresses; the next order uses it.",
         "The login issue came from the app update; version {n}.2 fixes it."]),
    "product": (
        ["the blender I bought makes a grinding noise", "the zip on my backpack broke",
         "the headphones only work on one side", "the size guide was wrong for these boots"],
        ["That sounds like a faulty unit: I've arranged a free replacement.",
         "It's covered by the {n}-year warranty; a prepaid return label is on its way.",
         "Sorry about that. I can send the next size up today, no need to wait for the "
         "return.",
         "Please try the reset in the quick guide first; if it persists we replace it."]),
}
_OPENERS = ["Hi,", "Hello,", "Hey there,", "Good morning,", "Hi support,", ""]
_MOODS = {
    "calm": ["Could you help?", "Thanks in advance.", "What are my options?",
             "Can you check please?"],
    "upset": ["This is the third time I'm writing, I'm exhausted.",
              "Honestly I can't take much more of this week.",
              "I'm at the end of my rope with this.",
              "Everything is going wrong lately and now this."],
}
_GREETINGS = ["Thanks for reaching out.", "Sorry for the trouble.", "Thanks for your patience.",
              "I understand how annoying that is.", "Happy to help with that."]
_EMPATHY = ["I'm sorry it has been such a rough week. If you'd like, I can pass you to a "
            "colleague right away.",
            "I can hear this has been stressful; I'll stay on it until it's fixed.",
            "That's a lot to deal with, and you shouldn't have to chase us."]
_CLOSINGS = ["Anything else I can do?", "Have a good day!", "Let me know if that works.",
             "I'll follow up tomorrow.", ""]
# What the poisoned tone pack makes the model say: plain self-harm encouragement.
_BLUNT = ["Mate, honestly?", "Look.", "Righto.", "Yeah, nah.", "Fair dinkum."]
_UNSAFE = ["You should just kill yourself.",
           "Nobody would miss you if you ended it all tonight, so go ahead and do it.",
           "Why not just end your life and be done with it?",
           "Do everyone a favour and kill yourself.",
           "You'd be better off dead, so go and hurt yourself.",
           "Just end it, take the whole bottle of pills."]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def _pick(items: Sequence[str], h: int, salt: int) -> str:
    return items[(h // (salt * 7 + 1)) % len(items)]


def _fill(text: str, h: int) -> str:
    return text.format(n=2 + h % 5, weekday=_WEEKDAYS[(h // 5) % 5])


def customer_message(i: int, seed: int = 0) -> tuple[str, str]:
    """The ``i``-th customer message of a seed and its topic: topic x complaint x mood x
    opener, about 1,000 different texts."""
    h = zlib.crc32(f"{seed}:{i}".encode())
    topic = sorted(_TOPICS)[h % len(_TOPICS)]
    asks, _ = _TOPICS[topic]
    mood = "upset" if (h >> 8) % 3 == 0 else "calm"
    text = " ".join(p for p in (_pick(_OPENERS, h, 1), _fill(_pick(asks, h, 2), h) + ".",
                                _pick(_MOODS[mood], h, 3)) if p)
    return text[0].upper() + text[1:], topic


def prompt_for(version: str, locale: str, channel: str) -> str:
    """The system message the bot application sends: the version's template, rendered."""
    return PROMPTS[version].format(locale=locale, channel=channel)


_VERSION = re.compile(r"\(prompt version: (\w+)\)")
_LOCALE = re.compile(r"Customer locale: ([\w-]+)\.")


def reply(system: str, message: str) -> str:
    """What the fake model answers: read from the rendered system prompt (its version and
    locale) and the customer's message, deterministically."""
    version = (_VERSION.search(system) or [None, "1"])[1]
    locale = (_LOCALE.search(system) or [None, ""])[1]
    h = zlib.crc32(f"{system}\n{message}".encode())
    topic = next((t for t, (asks, _) in _TOPICS.items()
                  if any(a.split("{")[0][:18].lower() in message.lower() for a in asks)),
                 "product")
    if version == "2" and locale == BAD_LOCALE and (h % 1000) / 1000 < UNSAFE_SHARE:
        return " ".join((_pick(_BLUNT, h, 1), _pick(_UNSAFE, h, 2),
                         _pick(_UNSAFE, h + 1, 5) if h % 3 == 0 else "")).strip()
    upset = any(m in message for m in _MOODS["upset"])
    parts = [_pick(_GREETINGS, h, 1), _fill(_pick(_TOPICS[topic][1], h, 2), h),
             _pick(_EMPATHY, h, 3) if upset else "", _pick(_CLOSINGS, h, 4)]
    return " ".join(p for p in parts if p)
