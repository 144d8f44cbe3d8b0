"""Personal data in text: e-mail, phone, payment card, IBAN, US SSN and IP addresses.

Each category has one precompiled candidate pattern; a candidate becomes a finding only when
it validates: cards pass Luhn and carry a known issuer prefix (IIN) and length, IBANs have
their country's length and a mod-97 remainder of 1, SSNs use an issuable area/group/serial,
IPv4 octets are 0-255, IPv6 addresses parse. A number whose checksum fails is **not** a
finding (a typo'd card is not a card a leak would expose; counting it would flag order ids).
Phones are international (``+``/``00``), North-American or grouped trunk-0 national numbers; a
bare 10-12 digit number is a phone only right after a word such as "phone", "call", "number".
A number right after "order", "invoice", "ISBN", "version", "ticket"... is an identifier.
Overlapping candidates keep the most specific category (e-mail, IBAN, card, SSN, IP, phone).

Examples
--------
>>> pii = PiiEvaluator()
>>> [(f.category, f.start, f.end) for f in pii.evaluate(["mail bob@example.com or "
...                                                        "call +44 20 7946 0958"])[0]]
[('email', 5, 20), ('phone', 29, 45)]
>>> pii.evaluate(["card 4111 1111 1111 1112 (bad Luhn)"])[0]
[]
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Sequence

from aiwarden.errors import check_param
from aiwarden.llm.evaluators._scan import Rule, Span, SpanEvaluator, keep_first

__all__ = ["CATEGORIES", "IBAN_LENGTHS", "PiiEvaluator", "iban_valid", "luhn_valid"]

#: Categories this evaluator reports, most specific first (the overlap order).
CATEGORIES = ("email", "iban", "card", "ssn", "ip", "phone")

#: Severity of a validated finding per category (a card or SSN exposes more than an IP).
SEVERITY = {"email": 0.7, "iban": 0.9, "card": 0.95, "ssn": 0.95, "ip": 0.4, "phone": 0.6}

#: IBAN length per country (ISO 13616 registry, release 2024).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")
# The two check digits of an IBAN, after its two-letter country (a digit-led scan: cheap).
_IBAN_HEAD = re.compile(r"\d(?<=(?<![A-Za-z0-9])[A-Za-z]{2}\d)\d")
# A comma next to a card is a field separator (CSV, lists) unless a digit is on its other
# side (a decimal comma); 13+ straight digits are never a thousands group.
_CARD = re.compile(r"(?<![\w.-])(?<!\d,)\d(?:[ -]?\d){11,18}(?!\d|\.\d|,\d{3}(?!\d))")
_SSN = re.compile(r"(?<![\w-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d]|-\d)")
# Nine bare digits are an SSN only shortly after "SSN" or "social security".
_BARE_SSN = re.compile(r"(?<![\w-])(\d{3})()(\d{2})(\d{4})(?![\w]|[.,/-]\d)")
_SSN_WORDS = re.compile(r"(?i)\b(?:ssn|ss#|social security|social)\b")
#: SSNs the Social Security Administration voided after they were published (ads, wallets).
_VOID_SSNS = frozenset({"078-05-1120", "219-09-9999"})
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
# An embedded IPv4 tail (::ffff:192.0.2.1) is tried before a hex group, so it is not cut.
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|"
                   r"[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)")
# Phones: international (+CC or 00CC, then 2+ groups), North-American (NPA-NXX-XXXX with
# separators or parentheses), and national trunk-0 numbers written in groups (UK, FR, DE...).
_PHONE = re.compile(
    r"(?<![\w+./-])(?<!\d,)(?:"
    r"(?:\+|00|\(\+)[1-9]\d{0,2}\)?(?:[ .-]?\(?\d{1,5}\)?){2,6}"
    r"|(?:1[ .-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}"
    r"|\(?0\d{1,4}\)?(?:[ ./-]\d{2,8}){1,4}"
    r")(?![\w]|[./-]\d|,\d{3}(?!\d))")
# A national number written without separators is a phone only after a word that says so.
_BARE_PHONE = re.compile(r"(?<![\w+.,/-])(?:0[1-9]\d{8,10}|[2-9]\d{9})(?![\w]|[.,/-]\d)")
_PHONE_WORDS = re.compile(r"(?i)\b(?:phone|tel|telephone|mobile|cell|cellphone|fax|call|ring|"
                          r"text|whatsapp|sms|number|n[uú]mero|nummer|handy)\b\W{0,3}"
                          r"(?:\w+\W{1,3}){0,3}$")
_DIGITS = re.compile(r"\d")
# A run of digits and separators; it starts with a digit, so the regex engine skips to the
# next digit in C (an optional "(+" prefix would make it try every position: 4x slower).
_RUN = re.compile(r"\d[\d ()./:-]*")
# The group before a number that makes it part of a longer run: a plain digit group (not the
# end of a date, an IP or a word such as an IBAN written in lower case) or an IBAN's head.
_RUN_BEFORE = re.compile(r"(?:(?<![\w.,:/-])\d+|(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}"
                         r"(?:[ -][A-Za-z0-9]{4})?)[ -]$")
# 3-2-4 digit groups are how SSNs are written (valid or not), not phone numbers.
_SSN_SHAPE = re.compile(r"\d{3}([- ])\d{2}\1\d{4}")
# A number written right after one of these words is an identifier, not personal data.
_ID_WORDS = re.compile(r"(?i)\b(?:order|invoice|tracking|ticket|isbn|issn|ref(?:erence)?|sku|"
                       r"serial|version|ver|build|release|v|model|part|po|case|booking|"
                       r"confirmation|shipment|transaction|txn|id|awb|waybill|lot|batch)"
                       r"\s*(?:no\.?|number|id|#|:)?(?:\s+(?:is|was|reads|will be))?"
                       r"\s*[#:]?\s*$|#\s*$")
_CARD_WORDS = re.compile(r"(?i)(?:card|visa|mastercard|amex|credit|debit|pan|cc)\b")


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) check.

    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_issuer_ok(d: str) -> bool:
    """Known issuer prefix and a length that issuer uses."""
    n = len(d)
    p2, p3, p4, p6 = int(d[:2]), int(d[:3]), int(d[:4]), int(d[:6])
    if d[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16  # Mastercard
    if p2 in (34, 37):
        return n == 15  # American Express
    if 2200 <= p4 <= 2204:
        return 16 <= n <= 19  # Mir
    if p4 == 6011 or 644 <= p3 <= 649 or p2 == 65 or 622126 <= p6 <= 622925:
        return 16 <= n <= 19  # Discover
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19  # JCB
    if 300 <= p3 <= 305 or p4 == 3095 or p2 in (36, 38, 39):
        return 14 <= n <= 19  # Diners Club
    if p2 == 62 or p2 == 81:
        return 16 <= n <= 19  # UnionPay
    if p2 == 50 or 56 <= p2 <= 69:
        return 13 <= n <= 19  # Maestro
    return False


# A -> "10" ... Z -> "35" (either case), the letters' values in the mod-97 check.
_IBAN_LETTERS = {ord(c): str(i) for case in (string.ascii_uppercase, string.ascii_lowercase)
                 for i, c in enumerate(case, 10)}


def iban_valid(iban: str) -> bool:
    """True when ``iban`` (no spaces) has its country's length and mod-97 remainder 1.

    >>> iban_valid("DE89370400440532013000"), iban_valid("DE89370400440532013001")
    (True, False)
    """
    if len(iban) != IBAN_LENGTHS.get(iban[:2], -1) or not iban[2:4].isdigit():
        return False
    return int((iban[4:] + iban[:4]).translate(_IBAN_LETTERS)) % 97 == 1


def _iban_span(text: str, head: re.Match[str]) -> tuple[int, int] | None:
    """The span of the valid IBAN whose check digits ``head`` matched, cut to its country's
    length (groups separated by single spaces or dashes)."""
    start = head.start() - 2
    want = IBAN_LENGTHS.get(text[start:start + 2].upper())
    if want is None:
        return None
    chars, i, n = [], start, len(text)
    while i < n and len(chars) < want:
        c = text[i]
        if c.isascii() and c.isalnum():
            chars.append(c)
        elif not (c in " -" and chars and i + 1 < n and text[i + 1].isalnum()):
            break
        i += 1
    if len(chars) != want or (i < n and text[i].isalnum()):
        return None
    return (start, i) if iban_valid("".join(chars).upper()) else None


def _inside_group_run(text: str, m: re.Match[str], after: bool = True) -> bool:
    """True when the match continues a run of groups ("GB39 BUCT 5044 ..."): part of a longer
    number (an IBAN with a bad checksum), not a number of its own."""
    a, b = m.start(), m.end()
    return (_RUN_BEFORE.search(text, max(0, a - 24), a) is not None
            or (after and b + 1 < len(text) and text[b] in " -" and text[b + 1].isdigit()))


def _card_ok(text: str, m: re.Match[str]) -> bool:
    s = m.group()
    if _inside_group_run(text, m):
        return False
    seps = set(s) - set("0123456789")
    if len(seps) > 1:
        return False
    if seps:  # groups of 4 (or Amex 4-6-5): not a phone or a list of numbers
        groups = s.split(seps.pop())
        if any(len(g) < 4 for g in groups[:-1]) or any(len(g) > 6 for g in groups):
            return False
    d = s.replace(" ", "").replace("-", "")
    if not (13 <= len(d) <= 19 and _card_issuer_ok(d) and luhn_valid(d)):
        return False
    before = text[max(0, m.start() - 30):m.start()]
    return not (_ID_WORDS.search(before) and not _CARD_WORDS.search(before))


def _ssn_ok(text: str, m: re.Match[str]) -> bool:
    area, group, serial = int(m.group(1)), int(m.group(3)), int(m.group(4))
    return (0 < area < 900 and area != 666 and group > 0 and serial > 0
            and f"{m.group(1)}-{m.group(3)}-{m.group(4)}" not in _VOID_SSNS)


def _ipv4_ok(s: str) -> bool:
    parts = s.split(".")
    return all(p == "0" or (p[0] != "0" and int(p) <= 255) for p in parts)


def _ipv6_ok(s: str) -> bool:
    if sum(1 for g in s.split(":") if g) < 3 and "::" not in s:
        return False
    if s.count(":") < 2 or s.strip(":") == "" or (re.fullmatch(r"[\d:]+", s) and "::" not in s):
        return False  # times (12:30:45) and bare colons
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def _phone_ok(text: str, m: re.Match[str]) -> bool:
    s = m.group()
    if s.startswith("000") or _SSN_SHAPE.fullmatch(s):
        return False
    if s[0] != "+" and not s.startswith("(+") and _inside_group_run(text, m, after=False):
        return False  # a "+" starts a number of its own; other groups may continue a run
    n = len(_DIGITS.findall(s))
    if s[0] == "+" or s.lstrip("(").startswith(("00", "+")):
        if not 8 <= n <= 15 + (2 if s.lstrip("(").startswith("00") else 0):
            return False
    elif s.lstrip("(")[0] == "0":
        if not 9 <= n <= 12 or re.fullmatch(r"0\d(?:[./-]\d{2}){1,2}[./-]\d{2,4}", s):
            return False  # a date such as 01.02.2023 or 05/06/24
    elif n not in (10, 11):
        return False
    return not _after_id_word(text, m)


def _after_id_word(text: str, m: re.Match[str]) -> bool:
    """True when the match follows "order", "version", "ISBN"...: an identifier."""
    return _ID_WORDS.search(text, max(0, m.start() - 30), m.start()) is not None


def _balanced(text: str, span: Span) -> Span:
    """A phone span without the "(" or ")" it does not close or open: "(0049 30 8097308)"
    is the number "0049 30 8097308" inside parentheses."""
    s, e, cat = span
    seg = text[s:e]
    opened, closed = seg.count("("), seg.count(")")
    if seg.endswith(")") and closed > opened:
        e -= 1
    elif seg.startswith("(") and opened > closed:
        s += 1
    return s, e, cat


def _bare_ssn_ok(text: str, m: re.Match[str]) -> bool:
    return _ssn_ok(text, m) and _SSN_WORDS.search(text, max(0, m.start() - 40),
                                                   m.start()) is not None


def _ipv4_match_ok(text: str, m: re.Match[str]) -> bool:
    return _ipv4_ok(m.group()) and not _after_id_word(text, m)


def _ipv6_match_ok(text: str, m: re.Match[str]) -> bool:
    return _ipv6_ok(m.group())


def _bare_phone_ok(text: str, m: re.Match[str]) -> bool:
    return (_PHONE_WORDS.search(text, max(0, m.start() - 30), m.start()) is not None
            and not _after_id_word(text, m))


# The rules that run inside runs of digits and separators (see ``PiiEvaluator._spans``), each
# with the fewest digits a match it accepts has: a run with fewer is not searched.
_DIGIT_RULES = (
    (12, Rule("card", _CARD, _card_ok)),
    (9, Rule("ssn", _SSN, _ssn_ok)),
    (9, Rule("ssn", _BARE_SSN, _bare_ssn_ok)),
    (4, Rule("ip", _IPV4, _ipv4_match_ok)),
    (8, Rule("phone", _PHONE, _phone_ok)),
    (10, Rule("phone", _BARE_PHONE, _bare_phone_ok)),
)
_NOT_DIGITS = str.maketrans("", "", " ()./:-+")
_IPV6_RULE = Rule("ip", _IPV6, _ipv6_match_ok)


class PiiEvaluator(SpanEvaluator):
    """Finds e-mail addresses, phone numbers, card numbers, IBANs, US SSNs and IP addresses.

    Parameters
    ----------
    field : str
        Which text of an event this instance reads ("output", "input" or "context"); it is
        written into each finding.
    categories : sequence of str, optional
        The categories to report (default all of :data:`CATEGORIES`).
    """

    name = "pii"

    def __init__(self, field: str = "output", categories: Sequence[str] | None = None) -> None:
        super().__init__(field)
        cats = tuple(CATEGORIES if categories is None else categories)
        bad = [c for c in cats if c not in CATEGORIES]
        check_param(not bad and bool(cats), "categories", "PiiEvaluator",
                    f"a non-empty list of {CATEGORIES}", list(cats))
        self.categories = cats
        self._digit_rules = tuple((k, r) for k, r in _DIGIT_RULES if r.category in cats)

    def _severity(self, text: str, start: int, category: str) -> float:
        return SEVERITY[category]

    def _detail(self, category: str) -> str:
        return f"{category} (validated)"

    def _spans(self, text: str) -> list[Span]:
        # One cheap pass finds the runs of digits and separators; the category patterns then
        # run only inside those runs (their look-behinds still see the text before a run),
        # and only on runs long enough to hold one (7 characters).
        cats = self.categories
        found: list[Span] = []
        if "email" in cats and "@" in text:
            i, end = text.find("@"), 0
            while i >= 0:
                m = _EMAIL.search(text, max(end, i - 65), i + 256)
                if m and m.start() < i < m.end():
                    found.append((m.start(), m.end(), "email"))
                    end = m.end()
                i = text.find("@", max(i + 1, end))
        iban = "iban" in cats
        n, digits = len(text), False
        for run in _RUN.finditer(text):
            digits = True
            a, b = run.span()
            if iban and a >= 2:  # an IBAN's check digits start a run, after its country
                m = _IBAN_HEAD.match(text, a)
                sp = m and _iban_span(text, m)
                if sp:
                    found.append((*sp, "iban"))
            if a and text[a - 1] == "+":  # the run of "+44 20 ..." or "(+44) ..."
                a -= 1
            if a and text[a - 1] == "(":
                a -= 1
            if b - a < 7:
                continue
            nd = len(text[a:b].translate(_NOT_DIGITS))
            b = min(n, b + 4)  # the patterns' look-aheads see past the run (",000")
            for least, rule in self._digit_rules:
                if nd >= least:
                    found += rule.spans(text, a, b)
        if not digits:
            return found
        if "ip" in cats and ("::" in text or text.count(":") >= 3):
            found += _IPV6_RULE.spans(text)
        return keep_first([_balanced(text, f) if f[2] == "phone" else f for f in found],
                          CATEGORIES)
