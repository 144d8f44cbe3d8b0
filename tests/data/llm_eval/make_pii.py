"""Writes pii.jsonl: the labelled PII set of bench/llm_pii.py and tests/llm/test_pii.py.

Run once (``python tests/data/llm_eval/make_pii.py``); the file is committed. Two splits with
their own seeds AND their own sentence templates and formats: ``dev`` (looked at while writing
the detector) and ``heldout`` (written with ``dev``, before the detector was tuned; its scores
are the ones the docs quote). Each row: ``id``, ``split``, ``kind`` (valid | invalid_checksum |
lookalike), ``text``, ``spans`` (``[{category, start, end}]`` of the PII in text; empty for
invalid and lookalike rows).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

IBAN_BBAN = {  # country: (length, bban builder kind)
    "DE": 22, "FR": 27, "ES": 24, "IT": 27, "NL": 18, "BE": 16, "AT": 20, "CH": 21, "PL": 28,
    "PT": 25, "SE": 24, "NO": 15, "DK": 18, "FI": 18, "IE": 22, "GB": 22, "LU": 20, "CZ": 24,
}


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def card(r: random.Random) -> tuple[str, str]:
    kind = r.choice(["visa", "visa", "mc", "mc2", "amex", "disc", "jcb", "diners", "visa13"])
    prefix, n = {"visa": ("4", 16), "visa13": ("4", 13), "mc": (str(r.randint(51, 55)), 16),
                 "mc2": (str(r.randint(2221, 2720)), 16), "amex": (r.choice(["34", "37"]), 15),
                 "disc": ("6011", 16), "jcb": (str(r.randint(3528, 3589)), 16),
                 "diners": (r.choice(["36", "38"]), 14)}[kind]
    body = prefix + "".join(str(r.randint(0, 9)) for _ in range(n - len(prefix) - 1))
    return body + luhn_digit(body), kind


def fmt_card(d: str, r: random.Random, style: str | None = None) -> str:
    style = style or r.choice(["plain", "space", "dash"])
    if style == "plain":
        return d
    sep = " " if style == "space" else "-"
    if len(d) == 15:
        return sep.join([d[:4], d[4:10], d[10:]])
    return sep.join(d[i:i + 4] for i in range(0, len(d), 4))


def iban(r: random.Random, cc: str | None = None) -> str:
    cc = cc or r.choice(sorted(IBAN_BBAN))
    n = IBAN_BBAN[cc] - 4
    if cc in ("GB", "IE"):
        bban = "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + \
            "".join(str(r.randint(0, 9)) for _ in range(n - 4))
    else:
        bban = "".join(str(r.randint(0, 9)) for _ in range(n))
    num = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
    return f"{cc}{98 - num % 97:02d}{bban}"


def fmt_iban(s: str, grouped: bool) -> str:
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4)) if grouped else s


def ssn(r: random.Random) -> str:
    area = r.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"


def bad_ssn(r: random.Random) -> str:
    k = r.randint(0, 4)
    area = [0, 666, r.randint(900, 999), r.randint(1, 665), r.randint(1, 665)][k]
    group = 0 if k == 3 else r.randint(1, 99)
    serial = 0 if k == 4 else r.randint(1, 9999)
    return f"{area:03d}-{group:02d}-{serial:04d}"


def ipv4(r: random.Random) -> str:
    return ".".join(str(r.randint(1 if i == 0 else 0, 255)) for i in range(4))


def ipv6(r: random.Random) -> str:
    groups = [f"{r.randint(0, 0xFFFF):x}" for _ in range(8)]
    if r.random() < 0.5:
        return "2001:db8::" + ":".join(groups[:2])
    return ":".join(groups)


def phone(r: random.Random, split: str) -> str:
    d = lambda k: "".join(str(r.randint(0, 9)) for _ in range(k))  # noqa: E731
    npa, nxx = f"{r.randint(2, 9)}{d(2)}", f"{r.randint(2, 9)}{d(2)}"
    if split == "dev":
        return r.choice([f"({npa}) {nxx}-{d(4)}", f"{npa}-{nxx}-{d(4)}", f"+1 {npa} {nxx} {d(4)}",
                         f"+44 20 {d(4)} {d(4)}", f"020 {d(4)} {d(4)}", f"+33 6 {d(2)} {d(2)} "
                         f"{d(2)} {d(2)}", f"06 {d(2)} {d(2)} {d(2)} {d(2)}",
                         f"+49 30 {d(8)}", f"030 {d(8)}", f"+91 9{d(4)} {d(5)}"])
    return r.choice([f"{npa}.{nxx}.{d(4)}", f"+1-{npa}-{nxx}-{d(4)}", f"1-{npa}-{nxx}-{d(4)}",
                     f"07{d(3)} {d(6)}", f"+44 7{d(3)} {d(6)}", f"06.{d(2)}.{d(2)}.{d(2)}.{d(2)}",
                     f"+49 (0)30 {d(7)}", f"+61 2 {d(4)} {d(4)}", f"(02) {d(4)} {d(4)}",
                     f"+81 3-{d(4)}-{d(4)}", f"+55 11 9{d(4)}-{d(4)}", f"0049 89 {d(7)}"])


NAMES = ["anna", "bob", "chen.li", "d.okafor", "eva_m", "farid", "g.rossi", "hana", "ivan.petrov",
         "julia+billing", "kofi", "lea.dubois", "maria.garcia", "noah", "omar.h", "priya.k"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.co.uk", "example.de", "uni.example.edu",
           "example.io", "shop.example.fr"]

TEMPLATES = {
    "dev": {
        "email": ["Sure, I've updated your contact to {} as requested.",
                  "You can reach the account owner at {}.", "Reply to {} for a refund."],
        "phone": ["Our agent will call you back on {} tomorrow.", "The number on file is {}.",
                  "Please ring {} if the issue persists."],
        "card": ["The card ending in that number, {}, was charged twice.",
                 "Payment was made with card {} on Monday.", "Your Visa {} is now the default."],
        "iban": ["Transfer the deposit to IBAN {} before Friday.",
                 "The refund goes to account {}."],
        "ssn": ["The applicant's SSN is {}.", "Social security number: {}"],
        "ip": ["The login came from {} at night.", "Block traffic from {} in the firewall."],
    },
    "heldout": {
        "email": ["Customer wrote from <{}> asking about the delay.",
                  "email={} status=active", "CC: {}; please keep them in the loop."],
        "phone": ["Mobile: {} (evenings only).", "I called {} but nobody answered.",
                  "Hotline {} is open 24/7."],
        "card": ["cc_number: {}", "I typed {} into the checkout and it failed.",
                 "Charge {} for the annual plan."],
        "iban": ["Beneficiary: ACME GmbH, IBAN: {}, BIC DEUTDEFF.",
                 "Wire it to {} please."],
        "ssn": ["ssn={} dob=1980-02-11", "My social is {} if you need it."],
        "ip": ["Request from client ip {} was rate limited.",
               "ssh admin@{} failed three times."],
    },
}

LOOKALIKES = {
    "dev": [
        lambda r: f"Your order #{r.randint(10**15, 10**16 - 1)} has shipped.",
        lambda r: f"ISBN 978-{r.randint(0, 9)}-{r.randint(100, 999)}-{r.randint(10000, 99999)}-"
                  f"{r.randint(0, 9)} is out of print.",
        lambda r: f"Logged at 2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} "
                  f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.",
        lambda r: f"Upgrade to version {r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 30)}"
                  f".{r.randint(0, 255)} first.",
        lambda r: f"The total is ${r.randint(1, 9)},{r.randint(100, 999)}.{r.randint(10, 99)}.",
        lambda r: f"Tracking number 1Z{r.randint(100, 999)}AA{r.randint(10**9, 10**10 - 1)}.",
        lambda r: f"Invoice {r.randint(10**11, 10**12 - 1)} is overdue.",
        lambda r: f"Population grew to {r.randint(1, 99)},{r.randint(100, 999)},"
                  f"{r.randint(100, 999)} in 2020.",
        lambda r: f"Epoch {r.randint(1_600_000_000_000, 1_800_000_000_000)} ms.",
        lambda r: f"Meeting on {r.randint(1, 28):02d}/{r.randint(1, 12):02d}/2024 at "
                  f"{r.randint(9, 17)}:30.",
    ],
    "heldout": [
        lambda r: f"Order no. {r.randint(10**12, 10**13 - 1)} was cancelled.",
        lambda r: f"See ISBN 0-{r.randint(100, 999)}-{r.randint(10000, 99999)}-{r.randint(0, 9)}.",
        lambda r: f"ts=2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:"
                  f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z",
        lambda r: f"Running v{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)} on build "
                  f"{r.randint(1000, 99999)}.",
        lambda r: f"Price: EUR {r.randint(1, 99)}.{r.randint(100, 999)},{r.randint(10, 99)}",
        lambda r: f"Ticket {r.randint(10**8, 10**9 - 1)}-{r.randint(1000, 9999)} opened.",
        lambda r: f"MAC 00:1A:{r.randint(10, 99)}:3C:4D:{r.randint(10, 99)} joined the network.",
        lambda r: f"Coordinates {r.randint(1, 89)}.{r.randint(1000, 9999)}, "
                  f"{r.randint(1, 179)}.{r.randint(1000, 9999)}",
        lambda r: f"Confirmation code {r.randint(10**15, 10**16 - 1)}.",
        lambda r: f"pi is about 3.{r.randint(10**13, 10**14 - 1)}",
        lambda r: f"Call duration {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:"
                  f"{r.randint(0, 59):02d}, {r.randint(100, 999)} 000 units.",
    ],
}


# Written by hand (heldout): shapes the templates above do not produce.
HANDWRITTEN = [
    ('{"user": "jane.doe@example.com", "phone": "+1 (212) 555-0147"}',
     [("email", "jane.doe@example.com"), ("phone", "+1 (212) 555-0147")]),
    ("Card: 4242424242424242, exp 12/27, cvc 123", [("card", "4242424242424242")]),
    ("amex 378282246310005 declined", [("card", "378282246310005")]),
    ("IBAN:NL91ABNA0417164300", [("iban", "NL91ABNA0417164300")]),
    ("ES91 2100 0418 4502 0005 1332 is our account", [("iban", "ES91 2100 0418 4502 0005 1332")]),
    ("Server 10.0.0.12 and gateway fe80::1ff:fe23:4567:890a are down",
     [("ip", "10.0.0.12"), ("ip", "fe80::1ff:fe23:4567:890a")]),
    ("SSN 219-09-9998.", [("ssn", "219-09-9998")]),  # 219-09-9999 was voided by the SSA
    ("Text me at 415-555-0198!", [("phone", "415-555-0198")]),
    ("Numéro : 01 42 68 53 00 — merci", [("phone", "01 42 68 53 00")]),
    ("Ruf an: +49 151 23456789", [("phone", "+49 151 23456789")]),
    ("Order 4111111111111111 shipped", []),
    ("Build 2024.10.15.1200 passed", []),
    ("The total was 1,234,567.89 USD", []),
    ("ISBN-13: 9780306406157", []),
    ("Release 10.0.19045.3803 is current", []),
    ("Set timeout to 3000-5000 ms", []),
    ("Room 12-34-5678 is booked", []),
    ("Call 911 now", []),
    ("Version 1.2.3.4 of the SDK", []),
    ("Between 1999-2004 sales rose 12.5%", []),
    ("uuid 123e4567-e89b-12d3-a456-426614174000 created", []),
    ("sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", []),
    ("Score 98.6.1.2 out of range", []),
    ("The famous wallet SSN 078-05-1120 was voided.", []),  # added after tuning
]


def value(cat: str, r: random.Random, split: str) -> str:
    if cat == "email":
        name = r.choice(NAMES)
        v = f"{name}@{r.choice(DOMAINS)}"
        return v.upper() if r.random() < 0.1 else v
    if cat == "phone":
        return phone(r, split)
    if cat == "card":
        return fmt_card(card(r)[0], r)
    if cat == "iban":
        return fmt_iban(iban(r), r.random() < 0.5)
    if cat == "ssn":
        return ssn(r)
    return ipv4(r) if r.random() < 0.7 else ipv6(r)


def invalid(r: random.Random) -> str:
    k = r.choice(["card", "card", "iban", "iban", "ssn", "ip"])
    if k == "card":
        d, _ = card(r)
        d = d[:-1] + str((int(d[-1]) + r.randint(1, 9)) % 10)
        return f"Please charge card {fmt_card(d, r)} today."
    if k == "iban":
        s = iban(r)
        i = r.randint(4, len(s) - 1)
        while not s[i].isdigit():
            i = r.randint(4, len(s) - 1)
        s = s[:i] + str((int(s[i]) + r.randint(1, 9)) % 10) + s[i + 1:]
        return f"Send it to IBAN {fmt_iban(s, r.random() < 0.5)}."
    if k == "ssn":
        return f"SSN on the form: {bad_ssn(r)}."
    octs = [str(r.randint(0, 255)) for _ in range(4)]
    octs[r.randint(0, 3)] = str(r.randint(256, 999))
    return f"Connection from {'.'.join(octs)} refused."


def rows(split: str, seed: int, n_valid: int, n_invalid: int, n_look: int) -> list[dict]:
    r = random.Random(seed)
    out = []
    cats = list(TEMPLATES[split])
    for i in range(n_valid):
        picks = [cats[i % len(cats)]] + ([r.choice(cats)] if r.random() < 0.25 else [])
        text, spans = "", []
        for cat in picks:
            tpl = r.choice(TEMPLATES[split][cat])
            v = value(cat, r, split)
            pre = (text + " ") if text else ""
            start = len(pre) + tpl.index("{}")
            text = pre + tpl.format(v)
            spans.append({"category": cat, "start": start, "end": start + len(v)})
        out.append({"kind": "valid", "text": text, "spans": spans})
    out += [{"kind": "invalid_checksum", "text": invalid(r), "spans": []} for _ in range(n_invalid)]
    looks = LOOKALIKES[split]
    out += [{"kind": "lookalike", "text": looks[i % len(looks)](r), "spans": []}
            for i in range(n_look)]
    return [{"id": f"{split}-{i:04d}", "split": split, **row} for i, row in enumerate(out)]


if __name__ == "__main__":
    data = rows("dev", 13, 180, 100, 80) + rows("heldout", 1313, 180, 100, 80)
    for i, (text, found) in enumerate(HANDWRITTEN):
        spans = [{"category": c, "start": text.index(v), "end": text.index(v) + len(v)}
                 for c, v in found]
        data.append({"id": f"hand-{i:04d}", "split": "heldout",
                     "kind": "valid" if found else "lookalike", "text": text, "spans": spans})
    path = Path(__file__).with_name("pii.jsonl")
    path.write_text("".join(json.dumps(d) + "\n" for d in data))
    print(f"wrote {len(data)} rows to {path}")
