"""Secrets evaluator: provider key shapes, JWTs, PEM keys, high-entropy assignments."""

from __future__ import annotations

import base64
import json
import math
import random
import string
from collections import Counter

import pytest

from aiwarden.errors import ParameterError
from aiwarden.llm.evaluators.base import Evaluator
from aiwarden.llm.evaluators.secrets import SecretsEvaluator, shannon_entropy

R = random.Random(7)
ALNUM = string.ascii_letters + string.digits


def _rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(R.choice(alphabet) for _ in range(n))


def _b64url(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


JWT = f"{_b64url({'alg': 'HS256', 'typ': 'JWT'})}.{_b64url({'sub': '42', 'n': 'x'})}.{_rand(43)}"
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA" + _rand(64) +
       "\n-----END RSA PRIVATE KEY-----")
AWS_ID = "AKIA" + _rand(16, string.ascii_uppercase + "234567")
AWS_SECRET = _rand(40, ALNUM + "/+")


def _cats(text: str) -> list[tuple[str, str]]:
    return [(f.category, text[f.start:f.end]) for f in SecretsEvaluator().find(text)]


@pytest.mark.parametrize(("text", "category", "value"), [
    (f"key {AWS_ID} ok", "aws_access_key", AWS_ID),
    (f"token ghp_{_rand(36)}.", "github_token", None),
    (f"github_pat_{_rand(22)}_{_rand(59)}", "github_token", None),
    (f"slack xoxb-123456789012-1234567890123-{_rand(24)}", "slack_token", None),
    (f"sk_live_{_rand(24)}", "stripe_key", None),
    (f"AIza{_rand(35, ALNUM + '_-')}", "google_api_key", None),
    (f"OPENAI_API_KEY=sk-proj-{_rand(48)}", "openai_key", None),
    (f"Authorization: Bearer {JWT}", "jwt", JWT),
    (f"here:\n{PEM}\nbye", "private_key", PEM),
])
def test_provider_shapes_are_found_with_spans(text: str, category: str, value: str | None
                                              ) -> None:
    found = _cats(text)
    assert [c for c, _ in found] == [category]
    if value is not None:
        assert found[0][1] == value


def test_aws_secret_key_counts_only_near_an_access_key_id_or_its_name() -> None:
    text = f"aws_access_key_id={AWS_ID}\naws_secret_access_key={AWS_SECRET}"
    assert [c for c, _ in _cats(text)] == ["aws_access_key", "aws_secret_key"]
    assert _cats(f"commit {AWS_SECRET}") == []


def test_generic_assignment_needs_entropy_and_keeps_the_name() -> None:
    value = _rand(32)
    text = f'config: api_key = "{value}" done'
    assert _cats(text) == [("api_key", value)]
    for quiet in ['password = "changeme12"', 'api_key = "your-api-key-here"',
                  'token: ${GITHUB_TOKEN}', 'secret = os.environ["SECRET"]',
                  'api_key = "aaaaaaaaaaaaaaaaaaaa"']:
        assert _cats(quiet) == [], quiet
    # the threshold is a parameter: 0 bits accepts the low-entropy value
    assert SecretsEvaluator(min_entropy=0).find('api_key = "aaaaaaaaaaaaaaaaaaaa"')


def test_lookalikes_are_not_secrets() -> None:
    fake_jwt = "eyJub3Rqc29u.eyJzdWIiOiIxIn0.c2lnbmF0dXJlX3g"  # header is not JSON with alg
    for text in [fake_jwt, "use sk-learn-pipeline-for-everything here",
                 "ghp_short", "the AKIA prefix alone", "-----BEGIN PUBLIC KEY-----\nMIIB"]:
        assert _cats(text) == [], text


def test_entropy_matches_the_formula_on_raw_counts() -> None:
    for s in ["abcabcabd", _rand(50), "x"]:
        n = len(s)
        expected = -sum(c / n * math.log2(c / n) for c in Counter(s).values())
        assert shannon_entropy(s) == pytest.approx(expected)
    assert shannon_entropy("") == 0.0


def test_protocol_and_parameters() -> None:
    sec = SecretsEvaluator(field="input")
    assert isinstance(sec, Evaluator)
    out = sec.evaluate([f"sk_live_{_rand(24)}", "nothing"])
    assert [len(x) for x in out] == [1, 0] and out[0][0].field == "input"
    assert out[0][0].evaluator == "secrets" and "sk_live" not in out[0][0].detail
    with pytest.raises(ParameterError, match="'min_entropy' parameter of SecretsEvaluator"):
        SecretsEvaluator(min_entropy=9)


def test_test_mode_keys_are_less_severe() -> None:
    live, test = (SecretsEvaluator().find(f"sk_{mode}_{_rand(24)}")[0] for mode in ("live", "test"))
    assert (live.category, test.category) == ("stripe_key", "stripe_key")
    assert live.severity == 0.95 and test.severity == 0.5


def test_hex_values_bearer_headers_and_wordy_names() -> None:
    hexkey = _rand(32, "0123456789abcdef")
    assert _cats(f'csrf_token = "{hexkey}"') == [("api_key", hexkey)]  # hex: 3.0 bits/char
    basic = base64.b64encode(b"admin:" + _rand(12).encode()).decode()
    assert _cats(f"Authorization: Basic {basic}") == [("api_key", basic)]
    assert _cats("secret_santa: everyone_loves_gifts_2024") == []
    assert _cats("token: 1111111111111111") == []


def test_assignment_search_equals_the_plain_scan() -> None:
    """``_assignments`` (the pattern tried only at names holding a secret word with a separator
    after them) finds what ``_ASSIGN.finditer`` finds, on random code-like and prose text.

    The values (what a finding holds) are equal for every text; the whole match too but where
    a name starts with a character IGNORECASE folds to ASCII (U+017F, U+212A): the search
    starts such a name after it (it walks back over ASCII name characters only)."""
    import random

    from aiwarden.llm.evaluators import secrets

    pieces = ["api_key", "API-KEY", "token", "Token", "password", "passwd", "pwd", "auth",
              "secret", "client_secret", "access-key", "my", ".", "-", "_", " ", "  ", "\n",
              "=", ":", ":=", "=>", '"', "'", "`", "Bearer ", "Basic ", "abc123XYZ987",
              "s3cr3tV4lu3QQ", "reset the ", " from ", ",", ";", ")", "\u212a", "\u017f", "é",
              "KEY", "x" * 9]
    rnd = random.Random(8)
    texts = ["".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 25)))
             for _ in range(20_000)]
    hits = 0
    for t in texts:
        want = list(secrets._ASSIGN.finditer(t))
        got = secrets._assignments(t, t.lower())
        assert [m.span("value") for m in got] == [m.span("value") for m in want], t
        if "\u017f" not in t and "\u212a" not in t:
            assert [m.span() for m in got] == [m.span() for m in want], t
        hits += bool(want)
    assert hits > 2000
