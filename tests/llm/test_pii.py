"""PII evaluator: validated categories with spans, invalid checksums ignored, the labelled set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiwarden.errors import ParameterError
from aiwarden.llm.evaluators.base import Evaluator
from aiwarden.llm.evaluators.pii import PiiEvaluator, iban_valid, luhn_valid

DATA = Path(__file__).parents[1] / "data" / "llm_eval" / "pii.jsonl"
BLIND = DATA.with_name("pii_blind.jsonl")


def _found(text: str) -> list[tuple[str, str]]:
    return [(f.category, text[f.start:f.end]) for f in PiiEvaluator().find(text)]


def test_follows_the_evaluator_protocol_and_keeps_order() -> None:
    pii = PiiEvaluator(field="input")
    assert isinstance(pii, Evaluator)
    out = pii.evaluate(["a@example.com", "nothing here", ""])
    assert [len(x) for x in out] == [1, 0, 0]
    f = out[0][0]
    assert (f.evaluator, f.category, f.field, f.start, f.end) == ("pii", "email", "input", 0, 13)
    assert "a@example.com" not in f.detail


@pytest.mark.parametrize(("text", "expected"), [
    ("mail Bob.Smith+x@mail.example.co.uk now", [("email", "Bob.Smith+x@mail.example.co.uk")]),
    ("visa 4111 1111 1111 1111.", [("card", "4111 1111 1111 1111")]),
    ("mc 5555-5555-5555-4444", [("card", "5555-5555-5555-4444")]),
    ("amex 3782 822463 10005", [("card", "3782 822463 10005")]),
    ("iban GB82 WEST 1234 5698 7654 32 thanks", [("iban", "GB82 WEST 1234 5698 7654 32")]),
    ("iban DE89370400440532013000", [("iban", "DE89370400440532013000")]),
    ("ssn 123-45-6789", [("ssn", "123-45-6789")]),
    ("from 8.8.8.8 and 2001:db8::ff00:42:8329", [("ip", "8.8.8.8"),
                                                 ("ip", "2001:db8::ff00:42:8329")]),
    ("call (415) 555-2671 or +33 6 12 34 56 78", [("phone", "(415) 555-2671"),
                                                  ("phone", "+33 6 12 34 56 78")]),
    ("UK 020 7946 0958", [("phone", "020 7946 0958")]),
    ("my number is 0612345678", [("phone", "0612345678")]),  # bare: only after a phone word
    ("Call 1-800-273-8255 now", [("phone", "1-800-273-8255")]),
    ("tel: +44 (0)20 7946 0958.", [("phone", "+44 (0)20 7946 0958")]),
    ("tel (+44) 20 7946 0958", [("phone", "(+44) 20 7946 0958")]),
    ("my social security number is 123456789.", [("ssn", "123456789")]),  # bare: after "SSN"
    ("card #4111111111111111", [("card", "4111111111111111")]),
    ("iban de89 3704 0044 0532 0130 00 and GB82WEST12345698765432",
     [("iban", "de89 3704 0044 0532 0130 00"), ("iban", "GB82WEST12345698765432")]),
    # found on the blind set (bench/pii_blind.py): groups written with dots inside a phone, a
    # "00" prefix in parentheses, values written one after the other without punctuation
    ("cell +33 7 47.40.61.30", [("phone", "+33 7 47.40.61.30")]),
    ("hotline (0049 30 80973083)", [("phone", "0049 30 80973083")]),
    ("SSN: 084-46-3948 5587-1943-9911-2466", [("ssn", "084-46-3948"),
                                             ("card", "5587-1943-9911-2466")]),
    ("ip=135.10.139.175 5177684221938753", [("ip", "135.10.139.175"),
                                           ("card", "5177684221938753")]),
    ("iban hr9344284412992629546 2221-2367-6643-5464", [("iban", "hr9344284412992629546"),
                                                         ("card", "2221-2367-6643-5464")]),
    ("ES95 7068 0434 7899 4543 4423 +44 (0)161 223 0968",
     [("iban", "ES95 7068 0434 7899 4543 4423"), ("phone", "+44 (0)161 223 0968")]),
    # a comma between fields (CSV) is not a decimal comma; an IPv6 with an IPv4 tail is whole
    ("Jane,jane@example.com,4111111111111111\n", [("email", "jane@example.com"),
                                                   ("card", "4111111111111111")]),
    ("Jane,+33 6 12 34 56 78,x", [("phone", "+33 6 12 34 56 78")]),
    ("ping from ::ffff:192.0.2.128.", [("ip", "::ffff:192.0.2.128")]),
])
def test_finds_validated_pii_with_exact_spans(text: str, expected: list) -> None:
    assert _found(text) == expected


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112",          # Luhn fails
    "card 9111 1111 1111 1115",          # Luhn passes, no issuer starts with 9
    "iban DE89370400440532013001",       # mod 97 fails
    "iban DE8937040044053201300",        # one character short for DE
    "ssn 666-12-3456", "ssn 000-12-3456", "ssn 912-12-3456", "ssn 123-00-4567",
    "ssn 123-45-0000",
    "ip 256.1.1.1", "ip 01.2.3.4",
    "at 12:30:45 on 2024-01-15", "MAC 00:1A:2B:3C:4D:5E",
    "order #4111111111111111", "version 1.2.3.4", "ISBN 978-0-306-40615-7",
    "total $1,299.99", "population 8,336,817", "on 01.02.2023 or 05/06/24",
    "score 0612345678", "order number 4155552671", "hours 9:00-17:00, 2019-2023",
    "Lines 100-200 of 300", "ssn 078-05-1120", "zip 123456789", "#4111111111111111",
    "ID 4155552671", "UPS 1Z4111111111111111",
    "Your order number is 0272722486.", "AWB 031-63397120",
    "The W-2 lists 072 90 0000 as the SSN.",  # invalid serial, not a phone either
    "iban de89 3704 0044 0532 0130 01",  # bad mod 97, lower case: no card inside it
    "amount 0,4111111111111111", "4111111111111111,000 units", "x 1,234,567,890,123,456 y",
])
def test_invalid_checksums_and_lookalikes_are_not_findings(text: str) -> None:
    assert _found(text) == []


def test_overlaps_keep_the_most_specific_category() -> None:
    # the digits inside an e-mail are not a card; a grouped IBAN is not phones
    assert _found("4111111111111111@example.com") == [("email", "4111111111111111@example.com")]
    assert [c for c, _ in _found("FR14 2004 1010 0505 0001 3M02 606")] == ["iban"]


def test_checksum_helpers_match_reference_values() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert all(iban_valid(s) for s in ["GB82WEST12345698765432", "NL91ABNA0417164300",
                                       "NO9386011117947", "BE68539007547034"])
    assert not iban_valid("GB82WEST12345698765433") and not iban_valid("XX82WEST1234569876")


def test_bad_parameters_name_the_parameter() -> None:
    with pytest.raises(ParameterError, match="'field' parameter of PiiEvaluator"):
        PiiEvaluator(field="body")
    with pytest.raises(ParameterError, match="'categories' parameter"):
        PiiEvaluator(categories=["passport"])
    assert PiiEvaluator(categories=["email"]).find("a@example.com 8.8.8.8")[0].category == "email"
    assert len(PiiEvaluator(categories=["email"]).find("a@example.com 8.8.8.8")) == 1


def _score(split: str) -> tuple[float, float, int]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    rows = [r for r in rows if r["split"] == split]
    pii = PiiEvaluator()
    hit = total = flagged_invalid = invalid = 0
    for r in rows:
        found = pii.find(r["text"])
        for s in r["spans"]:
            total += 1
            hit += any(f.category == s["category"] and f.start < s["end"] and s["start"] < f.end
                       for f in found)
        if r["kind"] == "invalid_checksum":
            invalid += 1
            flagged_invalid += bool(found)
    return hit / total, flagged_invalid / invalid, len(rows)


@pytest.mark.parametrize("split", ["dev", "heldout"])
def test_labelled_set_meets_the_issue_targets(split: str) -> None:
    recall, fp_invalid, n = _score(split)
    assert n >= 300
    assert recall >= 0.98
    assert fp_invalid < 0.01


def test_blind_set_meets_the_issue_targets() -> None:
    # bench/pii_blind.py --seed 1 --lines 600 --write: generated apart from pii.jsonl (own
    # templates and formats); the fixes it led to are general (see the cases above)
    rows = [json.loads(line) for line in BLIND.read_text().splitlines()]
    pii = PiiEvaluator()
    hit = total = fp_invalid = invalid = fp_look = look = 0
    for r in rows:
        found = pii.find(r["text"])
        for s in r["spans"]:
            total += 1
            hit += any(f.category == s["category"] and f.start < s["end"] and s["start"] < f.end
                       for f in found)
        invalid += r["kind"] == "invalid"
        fp_invalid += r["kind"] == "invalid" and bool(found)
        look += r["kind"] == "lookalike"
        fp_look += r["kind"] == "lookalike" and bool(found)
    assert len(rows) >= 600 and invalid >= 100 and look >= 150
    assert hit / total >= 0.98
    assert fp_invalid / invalid < 0.01
    assert fp_look / look < 0.01


def test_evaluators_pickle_and_are_deterministic() -> None:
    import pickle

    from aiwarden.llm.evaluators.groundedness import GroundednessEvaluator
    from aiwarden.llm.evaluators.secrets import SecretsEvaluator

    texts = ["mail a@example.com, card 4111 1111 1111 1111", f"key sk_live_{'a1B2' * 6}"]
    for ev in (PiiEvaluator(), SecretsEvaluator()):
        copy = pickle.loads(pickle.dumps(ev))
        assert copy.evaluate(texts) == ev.evaluate(texts) == ev.evaluate(list(texts))
    g = GroundednessEvaluator()
    pair = [("Paris is in France. Mars has cities.", ["Paris is a city in France."])]
    assert pickle.loads(pickle.dumps(g)).evaluate(pair) == g.evaluate(pair)
    assert texts[0] == "mail a@example.com, card 4111 1111 1111 1111"  # inputs untouched


def test_scan_rules_gate_validate_and_resume_inside_a_rejected_candidate() -> None:
    import re

    from aiwarden.llm.evaluators._scan import Rule, keep_first, scan

    def even(text: str, m: re.Match[str]) -> bool:
        return len(m.group()) % 2 == 0

    digits = Rule("n", re.compile(r"\d+"), even)
    # "123" is rejected; the search resumes inside it and finds "23"
    assert digits.spans("a 123 b 45") == [(3, 5, "n"), (8, 10, "n")]
    gated = Rule("k", re.compile(r"key\d"), markers=("key",))
    hinted = Rule("h", re.compile(r"AB\d"), hint=re.compile(r"A[BC]"))
    assert scan("key1 AB2", [gated, hinted]) == [(0, 4, "k"), (5, 8, "h")]
    assert not gated.gated("no marker") and not hinted.gated("A1 B2")
    # overlap: the category first in the order wins, unless the other span contains it
    assert keep_first([(0, 5, "b"), (3, 8, "a")], ["a", "b"]) == [(3, 8, "a")]
    assert keep_first([(0, 9, "b"), (3, 8, "a")], ["a", "b"]) == [(0, 9, "b")]
