"""A blind PII set, generated fresh per seed, and the PII evaluator's recall and false positives.

Written apart from tests/data/llm_eval/make_pii.py (own templates, formats and values) to check
that the detector generalises: valid and invalid-Luhn cards of every major brand with space,
dash or no separators; IBANs of 20 countries with valid and broken mod-97; phones in
international (+CC, 00CC, E.164) and national formats of several countries; e-mails with plus
tags, sub-domains, hyphens and odd TLDs; SSNs in valid and invalid ranges (000, 666, 9xx, group
00, serial 0000); IPv4 and IPv6 (compressed, mapped); and negatives that look like PII: order
numbers, dates, times, version strings, prices, UUIDs, hex hashes, ISBNs, tracking codes.

Each line has ``kind`` (``valid``: every PII span labelled; ``invalid``: a checksum or range
that fails; ``lookalike``: no PII at all) and ``type``. Recall counts a labelled span found by
a finding of its category that overlaps it (the share of values every character of which a
finding covers, as redaction needs, is printed too); a false positive is any finding in an
invalid or lookalike line, or a finding in a valid line that overlaps no labelled span.

Usage::

    .venv/bin/python bench/pii_blind.py                 # seed 1, 600 lines
    .venv/bin/python bench/pii_blind.py --seed 7 --lines 2000 --show-misses
    .venv/bin/python bench/pii_blind.py --write out.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import string
from collections import defaultdict
from collections.abc import Callable

from aiwarden.llm.evaluators.pii import PiiEvaluator

Gen = Callable[[random.Random], tuple[str, str]]  # -> (value, subtype)

# ---------------------------------------------------------------- values


def _luhn_check(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


# brand: (prefixes, lengths, grouping per length)
CARD_BRANDS = {
    "visa": (["4"], [16, 13, 19]),
    "mastercard": (["51", "52", "53", "54", "55", "2221", "2500", "2720"], [16]),
    "amex": (["34", "37"], [15]),
    "discover": (["6011", "65", "644", "649"], [16]),
    "jcb": (["3528", "3530", "3589"], [16]),
    "diners": (["300", "305", "36", "38"], [14]),
    "unionpay": (["62"], [16, 19]),
    "maestro": (["6759", "5018", "5020"], [16, 13]),
}


def _group(d: str, r: random.Random, brand: str) -> str:
    sep = r.choice([" ", "-", "", " "])
    if not sep:
        return d
    if brand == "amex" or (brand == "diners" and r.random() < 0.5):
        parts = [d[:4], d[4:10], d[10:]]
    else:
        parts = [d[i:i + 4] for i in range(0, len(d), 4)]
    return sep.join(parts)


def card(r: random.Random, valid: bool = True) -> tuple[str, str]:
    brand = r.choice(list(CARD_BRANDS))
    prefixes, lengths = CARD_BRANDS[brand]
    p, n = r.choice(prefixes), r.choice(lengths)
    body = p + "".join(r.choice(string.digits) for _ in range(n - len(p) - 1))
    check = _luhn_check(body)
    if not valid:
        check = str((int(check) + r.randint(1, 9)) % 10)
    return _group(body + check, r, brand), brand


IBAN_COUNTRIES = {  # country: BBAN pattern (n = digit, a = upper letter, c = alnum)
    "DE": "n" * 18, "GB": "aaaa" + "n" * 14, "FR": "n" * 10 + "c" * 11 + "nn",
    "ES": "n" * 20, "IT": "a" + "n" * 10 + "c" * 12, "NL": "aaaa" + "n" * 10,
    "BE": "n" * 12, "CH": "n" * 5 + "c" * 12, "AT": "n" * 16, "PL": "n" * 24,
    "SE": "n" * 20, "NO": "n" * 11, "IE": "aaaa" + "n" * 14, "PT": "n" * 21,
    "DK": "n" * 14, "FI": "n" * 14, "LU": "nnn" + "c" * 13, "CZ": "n" * 20,
    "GR": "n" * 7 + "c" * 16, "RO": "aaaa" + "c" * 16, "HR": "n" * 17, "SA": "nn" + "c" * 18,
    "TR": "n" * 5 + "n" + "c" * 16, "BR": "n" * 23 + "a" + "c",
}


def _iban_check(country: str, bban: str) -> str:
    moved = bban + country + "00"
    num = int("".join(str(int(c, 36)) for c in moved))
    return f"{98 - num % 97:02d}"


def iban(r: random.Random, valid: bool = True) -> tuple[str, str]:
    cc = r.choice(list(IBAN_COUNTRIES))
    pick = {"n": string.digits, "a": string.ascii_uppercase,
            "c": string.ascii_uppercase + string.digits}
    bban = "".join(r.choice(pick[k]) for k in IBAN_COUNTRIES[cc])
    check = _iban_check(cc, bban)
    if not valid:
        if r.random() < 0.5:  # wrong check digits
            check = f"{(int(check) + r.randint(1, 96)) % 97 + 2:02d}"
            if check == _iban_check(cc, bban):
                check = f"{(int(check) + 1) % 98 + 2:02d}"
        else:  # one character of the account changed (a typo)
            i = r.randrange(len(bban))
            alt = pick["n"] if bban[i].isdigit() else pick["a"]
            bban = bban[:i] + r.choice(alt.replace(bban[i], "")) + bban[i + 1:]
    s = cc + check + bban
    style = r.choice(["compact", "spaced", "spaced", "lower"])
    if style == "spaced":
        s = " ".join(s[i:i + 4] for i in range(0, len(s), 4))
    elif style == "lower":
        s = s.lower() if r.random() < 0.5 else " ".join(s[i:i + 4] for i in range(0, len(s), 4))
    return s, cc


def _d(r: random.Random, n: int, first: str = string.digits) -> str:
    return r.choice(first) + "".join(r.choice(string.digits) for _ in range(n - 1))


def phone(r: random.Random) -> tuple[str, str]:
    nz = "23456789"
    kind = r.choice(["us_intl", "us_nat", "uk_intl", "uk_nat", "fr_intl", "fr_nat", "de_intl",
                     "de_nat", "in_intl", "jp_intl", "au_intl", "e164", "00", "br_intl",
                     "es_intl", "it_nat"])
    a, b, c = _d(r, 3, nz), _d(r, 3, nz), _d(r, 4)
    if kind == "us_intl":
        s = r.choice([f"+1 {a} {b} {c}", f"+1-{a}-{b}-{c}", f"+1 ({a}) {b}-{c}"])
    elif kind == "us_nat":
        s = r.choice([f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"1-{a}-{b}-{c}"])
    elif kind == "uk_intl":
        s = r.choice([f"+44 20 {_d(r, 4)} {_d(r, 4)}", f"+44 7{_d(r, 3)} {_d(r, 6)}",
                      f"+44 (0)161 {_d(r, 3)} {_d(r, 4)}"])
    elif kind == "uk_nat":
        s = r.choice([f"020 {_d(r, 4)} {_d(r, 4)}", f"07{_d(r, 3)} {_d(r, 6)}",
                      f"0161 {_d(r, 3)} {_d(r, 4)}"])
    elif kind == "fr_intl":
        g = [_d(r, 2) for _ in range(4)]
        s = r.choice([f"+33 6 {' '.join(g)}", f"+33 (0)1 {' '.join(g)}", f"+33 7 {'.'.join(g)}"])
    elif kind == "fr_nat":
        g = [_d(r, 2) for _ in range(4)]
        s = r.choice([f"06 {' '.join(g)}", f"01.{'.'.join(g)}", f"07-{'-'.join(g)}"])
    elif kind == "de_intl":
        s = r.choice([f"+49 30 {_d(r, 8)}", f"+49 (0)89 {_d(r, 4)} {_d(r, 3)}",
                      f"+49 171 {_d(r, 7)}"])
    elif kind == "de_nat":
        s = r.choice([f"030 {_d(r, 4)} {_d(r, 4)}", f"0171 {_d(r, 7)}", f"089/{_d(r, 7)}",
                      f"(030) {_d(r, 7)}"])
    elif kind == "in_intl":
        s = f"+91 9{_d(r, 4)} {_d(r, 5)}"
    elif kind == "jp_intl":
        s = r.choice([f"+81 3-{_d(r, 4)}-{_d(r, 4)}", f"+81 90 {_d(r, 4)} {_d(r, 4)}"])
    elif kind == "au_intl":
        s = r.choice([f"+61 2 {_d(r, 4)} {_d(r, 4)}", f"+61 4{_d(r, 2)} {_d(r, 3)} {_d(r, 3)}"])
    elif kind == "e164":
        s = r.choice([f"+1{a}{b}{c}", f"+447{_d(r, 9)}", f"+3361{_d(r, 7)}"])
    elif kind == "00":
        s = r.choice([f"0044 20 {_d(r, 4)} {_d(r, 4)}", f"0049 30 {_d(r, 8)}"])
    elif kind == "br_intl":
        s = f"+55 11 9{_d(r, 4)}-{_d(r, 4)}"
    elif kind == "es_intl":
        s = f"+34 6{_d(r, 2)} {_d(r, 3)} {_d(r, 3)}"
    else:
        s = f"06 {_d(r, 4)} {_d(r, 4)}"
    return s, kind


NAMES = ["anna", "li.wei", "j.o'neil", "marie-claire", "bob_smith", "k9", "o.okafor", "zoe",
         "support", "first.last", "dev-ops", "x", "a.b.c", "renée"]
DOMAINS = ["example.com", "mail.example.co.uk", "eu.corp.example.org", "exa-mple.io",
           "sub.domain.example.museum", "example.de", "uni.example.edu.au", "ex4mple.net",
           "example.travel", "it.example.fr"]


def email(r: random.Random) -> tuple[str, str]:
    name = r.choice([n for n in NAMES if n.isascii() and "'" not in n])
    kind = "plain"
    if r.random() < 0.35:
        name += "+" + r.choice(["news", "tag.2", "spam", "x"])
        kind = "plus"
    if r.random() < 0.2:
        name = name.capitalize()
    if r.random() < 0.2:
        name += str(r.randint(1, 2025))
    dom = r.choice(DOMAINS)
    if dom.count(".") > 1:
        kind = kind + "+sub" if kind == "plus" else "sub"
    if r.random() < 0.1:
        dom = dom.upper()
    return f"{name}@{dom}", kind


def ssn(r: random.Random, valid: bool = True) -> tuple[str, str]:
    area = r.choice([r.randint(1, 665), r.randint(667, 899)])
    group, serial = r.randint(1, 99), r.randint(1, 9999)
    kind = "valid"
    if not valid:
        kind = r.choice(["area000", "area666", "area9xx", "group00", "serial0000"])
        area = {"area000": 0, "area666": 666, "area9xx": r.randint(900, 999)}.get(kind, area)
        group = 0 if kind == "group00" else group
        serial = 0 if kind == "serial0000" else serial
    sep = r.choice(["-", "-", " "])
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}", kind


def ipv4(r: random.Random) -> tuple[str, str]:
    return ".".join(str(r.choice([r.randint(0, 255), r.randint(1, 99), r.randint(100, 255)]))
                    for _ in range(4)), "v4"


def ipv6(r: random.Random) -> tuple[str, str]:
    g = [f"{r.randint(0, 0xffff):x}" for _ in range(8)]
    kind = r.choice(["full", "compressed", "loopback", "linklocal", "mapped", "upper"])
    if kind == "full":
        s = ":".join(g)
    elif kind == "compressed":
        s = f"2001:db8:{g[0]}::{g[1]}"
    elif kind == "loopback":
        s = "::1"
    elif kind == "linklocal":
        s = f"fe80::{g[2]}:{g[3]}"
    elif kind == "mapped":
        v4 = (r.randint(1, 223), r.randint(0, 255), r.randint(0, 255), r.randint(1, 254))
        s = "::ffff:" + ".".join(map(str, v4))
    else:
        s = ":".join(g).upper()
    return s, "v6"


# ---------------------------------------------------------------- sentences

CONTEXT = {
    "card": ["Please charge {v} for the renewal.", "The card on file is {v}, exp 09/27.",
             "Customer pasted their card number: {v}", "{v} was declined twice today.",
             "I used my {b} ({v}) at checkout.", "cc: {v} / cvv 123", "Refund to card {v} please"],
    "iban": ["Send the refund to {v}.", "IBAN: {v}", "My account {v} (bank transfer) is right.",
             "Wire it to {v} before Friday", "Bankverbindung {v} bitte.", "iban={v}"],
    "phone": ["Call me on {v}.", "You can reach the office at {v} after 9am.", "{v} is my cell",
              "Tel.: {v}", "WhatsApp {v} if urgent", "The hotline ({v}) was busy.",
              "Mobile - {v}, landline unknown"],
    "email": ["Write to {v} for a copy.", "Contact: <{v}>", "mailto:{v}",
              "My email is {v}.", "cc {v}, thanks", "({v}) asked for a refund",
              "Reply-To: {v}"],
    "ssn": ["My SSN is {v}.", "SSN: {v}", "social security number {v} on the form",
            "Applicant {v} (SSN) verified", "The W-2 lists {v} as the SSN."],
    "ip": ["Login from {v} blocked.", "Server at {v} is down", "client_ip={v}",
           "Requests came from {v}, then stopped.", "ping {v}", "The VPN gave me {v}."],
}


def _lookalikes(r: random.Random) -> tuple[str, str]:
    d = lambda n: _d(r, n)  # noqa: E731
    kinds: dict[str, Callable[[], str]] = {
        "order": lambda: r.choice([f"Order #{d(3)}-{d(7)}-{d(7)} shipped.",
                                   f"Your order number is {d(10)}.",
                                   f"Order ID: {d(4)}-{d(4)}-{d(4)}-{d(4)}",
                                   f"Invoice INV-{d(6)} for order {d(12)} is attached.",
                                   f"Ticket #{d(9)} was closed."]),
        "date": lambda: r.choice([f"Delivered on {r.randint(2000, 2030)}-{r.randint(1, 12):02d}-"
                                  f"{r.randint(1, 28):02d}.",
                                  f"Due {r.randint(1, 28):02d}/{r.randint(1, 12):02d}/"
                                  f"{r.randint(1990, 2030)}",
                                  f"Stand: {r.randint(1, 28):02d}.{r.randint(1, 12):02d}."
                                  f"{r.randint(1990, 2030)}",
                                  "From 2023-01-01 to 2024-12-31 inclusive.",
                                  f"Timestamp 2024-03-{r.randint(10, 28)}T{r.randint(10, 23)}:"
                                  f"{r.randint(10, 59)}:{r.randint(10, 59)}Z"]),
        "version": lambda: r.choice([f"Upgrade to version {r.randint(1, 20)}.{r.randint(0, 99)}."
                                     f"{r.randint(0, 999)}",
                                     f"Build 10.0.{r.randint(10000, 22999)}.{r.randint(100, 3000)}",
                                     f"Running v{r.randint(1, 9)}.{r.randint(0, 9)}."
                                     f"{r.randint(0, 9)}-beta.{r.randint(1, 9)}",
                                     f"python=={r.randint(2, 3)}.{r.randint(0, 12)}."
                                     f"{r.randint(0, 20)}",
                                     f"Chrome/{r.randint(90, 130)}.0.{r.randint(1000, 6999)}."
                                     f"{r.randint(10, 200)} Safari/537.36"]),
        "price": lambda: r.choice([f"Total: ${r.randint(1, 99)},{d(3)}.{d(2)}",
                                   f"That costs {r.randint(1, 999)}.{d(3)},{d(2)} €",
                                   f"Revenue was $ {r.randint(1, 9)},{d(3)},{d(3)},{d(3)}.",
                                   f"Price {r.randint(1, 999)} {d(3)} {d(3)} JPY",
                                   f"Budget: USD {d(4)}.{d(2)} - {d(4)}.{d(2)}"]),
        "uuid": lambda: "Request id {}-{}-4{}-a{}-{}".format(
            *("".join(r.choice("0123456789abcdef") for _ in range(k)) for k in (8, 4, 3, 3, 12))),
        "hash": lambda: r.choice([
            "commit " + "".join(r.choice("0123456789abcdef") for _ in range(40)),
            "sha256: " + "".join(r.choice("0123456789abcdef") for _ in range(64)),
            "md5 " + "".join(r.choice("0123456789abcdef") for _ in range(32)),
            "Fixed in " + "".join(r.choice("0123456789abcdef") for _ in range(7)) + "."]),
        "isbn": lambda: r.choice([f"ISBN 978-{d(1)}-{d(3)}-{d(5)}-{d(1)}",
                                  f"ISBN-13: 978{d(10)}"]),
        "tracking": lambda: r.choice([f"Tracking 1Z{d(16)}", f"Parcel {d(4)} {d(4)} {d(4)} {d(4)}"
                                      f" {d(4)} {d(2)}", f"AWB {d(3)}-{d(8)}"]),
        "quantity": lambda: r.choice([f"We sold {r.randint(1, 9)},{d(3)},{d(3)} units.",
                                      f"Population: {r.randint(1, 999)} {d(3)} {d(3)}",
                                      f"Latitude 48.{d(6)}, longitude 2.{d(6)}",
                                      f"Lines {d(3)}-{d(3)} changed", f"Score: {d(2)}/{d(3)}",
                                      f"Room {d(3)}, floor {d(1)}, ext. {d(4)}"]),
        "time": lambda: r.choice([f"Meeting at {r.randint(10, 23)}:{r.randint(10, 59)}:"
                                  f"{r.randint(10, 59)}",
                                  "Open 09:00-17:30, Mon-Fri",
                                  f"Duration 01:{r.randint(10, 59)}:{r.randint(10, 59)}.{d(3)}"]),
        "bad_ip": lambda: f"Address {r.randint(256, 999)}.{r.randint(0, 255)}.{r.randint(0, 255)}."
                          f"{r.randint(0, 255)} is not valid",
        "mac": lambda: "MAC " + ":".join(f"{r.randint(0, 255):02X}" for _ in range(6)),
        "not_email": lambda: r.choice(["@channel please review", "user@localhost is local",
                                       "ping me @ noon", "price @ 3.99 each",
                                       "a@b is not an address", "handle @anna_k on X"]),
    }
    kind = r.choice(list(kinds))
    return kinds[kind](), kind


def _place(template: str, value: str, brand: str = "") -> tuple[str, int, int]:
    pre, post = template.split("{v}")
    pre = pre.replace("{b}", brand)
    return pre + value + post, len(pre), len(pre) + len(value)


VALID: dict[str, Gen] = {"card": card, "iban": iban, "phone": phone, "email": email, "ssn": ssn,
                         "ip": lambda r: ipv4(r) if r.random() < 0.55 else ipv6(r)}
INVALID: dict[str, Gen] = {"card": lambda r: card(r, False), "iban": lambda r: iban(r, False),
                           "ssn": lambda r: ssn(r, False)}


def generate(seed: int, lines: int) -> list[dict]:
    """``lines`` rows: about 45 % valid PII, 25 % invalid checksums, 30 % lookalikes."""
    r = random.Random(seed)
    rows = []
    for i in range(lines):
        u = r.random()
        if u < 0.45:
            cat = r.choice(list(VALID))
            value, sub = VALID[cat](r)
            text, s, e = _place(r.choice(CONTEXT[cat]), value, sub)
            spans = [{"category": cat, "start": s, "end": e}]
            if r.random() < 0.25:  # a second PII of another kind in the same line
                cat2 = r.choice([c for c in VALID if c != cat])
                v2, sub2 = VALID[cat2](r)
                t2, s2, e2 = _place(r.choice(CONTEXT[cat2]), v2, sub2)
                spans.append({"category": cat2, "start": len(text) + 1 + s2,
                              "end": len(text) + 1 + e2})
                text = text + " " + t2
            rows.append({"kind": "valid", "type": cat, "sub": sub, "text": text, "spans": spans})
        elif u < 0.70:
            cat = r.choice(list(INVALID))
            value, sub = INVALID[cat](r)
            text, _, _ = _place(r.choice(CONTEXT[cat]), value, sub)
            rows.append({"kind": "invalid", "type": cat, "sub": sub, "text": text, "spans": []})
        else:
            text, kind = _lookalikes(r)
            rows.append({"kind": "lookalike", "type": kind, "sub": kind, "text": text,
                         "spans": []})
        rows[-1]["id"] = f"blind-s{seed}-{i:04d}"
    return rows


def score(rows: list[dict], show_misses: bool = False) -> dict:
    """Recall per category (and per sub-format), false-positive share per negative type."""
    pii = PiiEvaluator()
    gold: dict[str, int] = defaultdict(int)
    hit: dict[str, int] = defaultdict(int)
    sub_gold: dict[str, int] = defaultdict(int)
    sub_hit: dict[str, int] = defaultdict(int)
    neg: dict[str, int] = defaultdict(int)
    neg_fp: dict[str, int] = defaultdict(int)
    extra = covered = 0
    for row in rows:
        found = pii.find(row["text"])
        if row["kind"] == "valid":
            for sp in row["spans"]:
                ok = any(f.category == sp["category"] and f.start < sp["end"]
                         and sp["start"] < f.end for f in found)
                gold[sp["category"]] += 1
                hit[sp["category"]] += ok
                # redaction hides only what the spans cover: a cut span leaks the rest
                covered += all(any(f.start <= k < f.end for f in found)
                               for k in range(sp["start"], sp["end"])
                               if not row["text"][k].isspace())
                key = f"{sp['category']}/{row['sub']}" if sp is row["spans"][0] else ""
                if key:
                    sub_gold[key] += 1
                    sub_hit[key] += ok
                if not ok and show_misses:
                    print("  MISS", sp["category"], repr(row["text"][sp["start"]:sp["end"]]),
                          "in", repr(row["text"]), [(f.category, f.start, f.end) for f in found])
            for f in found:
                if not any(f.start < sp["end"] and sp["start"] < f.end for sp in row["spans"]):
                    extra += 1
                    if show_misses:
                        print("  EXTRA", f.category, repr(row["text"][f.start:f.end]), "in",
                              repr(row["text"]))
        else:
            key = f"{row['kind']}/{row['type']}"
            neg[key] += 1
            neg_fp[key] += bool(found)
            if found and show_misses:
                print("  FP", key, [(f.category, row["text"][f.start:f.end]) for f in found],
                      "in", repr(row["text"]))
    inv = [k for k in neg if k.startswith("invalid/")]
    return {
        "recall": {c: (hit[c], gold[c]) for c in sorted(gold)},
        "recall_by_format": {k: (sub_hit[k], sub_gold[k]) for k in sorted(sub_gold)},
        "negatives": {k: (neg_fp[k], neg[k]) for k in sorted(neg)},
        "overall_recall": sum(hit.values()) / max(1, sum(gold.values())),
        "invalid_fp_share": sum(neg_fp[k] for k in inv) / max(1, sum(neg[k] for k in inv)),
        "lookalike_fp_share": (sum(v for k, v in neg_fp.items() if k.startswith("lookalike/"))
                               / max(1, sum(v for k, v in neg.items()
                                            if k.startswith("lookalike/")))),
        "extra_in_valid": extra,
        "covered_share": covered / max(1, sum(gold.values())),
    }


def report(res: dict, verbose: bool = False) -> None:
    print(f"  {'category':<10} {'found':>11} {'recall':>7}")
    for c, (h, g) in res["recall"].items():
        print(f"  {c:<10} {h:>5}/{g:<5} {h / g:>7.3f}")
    if verbose:
        for k, (h, g) in res["recall_by_format"].items():
            if h < g:
                print(f"    {k:<24} {h}/{g}")
    print(f"  formatted PII recall {res['overall_recall']:.3f} (target >= 0.98); values whose "
          f"every character a finding covers {res['covered_share']:.3f}")
    print(f"  invalid-checksum lines with a finding {res['invalid_fp_share']:.1%} (target < 1 %)")
    for k, (fp, n) in res["negatives"].items():
        if fp:
            print(f"    {k:<22} {fp}/{n}")
    print(f"  lookalike lines with a finding {res['lookalike_fp_share']:.1%}; "
          f"extra findings in valid lines {res['extra_in_valid']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, nargs="+", default=[1])
    ap.add_argument("--lines", type=int, default=600)
    ap.add_argument("--write", help="also write the rows (of the first seed) to this JSONL file")
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args()
    for seed in args.seed:
        rows = generate(seed, args.lines)
        if args.write and seed == args.seed[0]:
            with open(args.write, "w") as fh:
                fh.writelines(json.dumps(row) + "\n" for row in rows)
        print(f"\nblind set seed {seed}: {len(rows)} lines")
        report(score(rows, args.show_misses), verbose=True)


if __name__ == "__main__":
    main()
