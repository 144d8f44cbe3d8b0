"""The egress policy (aiwarden/egress.py) and the receivers that go through it.

Real sockets throughout: the endpoints are tests/alerting/receivers.py servers on
127.0.0.1, and host names are mapped by the policy's resolver hook, so "a name that
resolves to a denied address" is exactly what production would see from DNS.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from aiwarden.alerting.notifiers import (
    Deliverer,
    DeliveryAttempt,
    EmailReceiver,
    Notification,
    WebhookReceiver,
    receiver_from_config,
)
from aiwarden.alerting.notify import shown_error
from aiwarden.egress import EgressDenied, EgressPolicy, classify, parse_ip
from aiwarden.errors import ParameterError
from tests.alerting.receivers import LOOPBACK, SMTPServer, WebhookServer, self_signed_cert

BODY_SECRET = "remote-body-s3cret-7c1d"

DENIED = {
    "127.0.0.1": "a loopback address", "127.8.9.10": "a loopback address",
    "::1": "a loopback address", "0.0.0.0": "an unspecified address",
    "::": "an unspecified address",
    "169.254.169.254": "a cloud metadata address", "169.254.170.2": "a cloud metadata address",
    "fd00:ec2::254": "a cloud metadata address", "100.100.100.200": "a cloud metadata address",
    "169.254.1.1": "a link-local address", "fe80::1": "a link-local address",
    "fe80::1%eth0": "a link-local address",
    "10.0.0.5": "a private address", "172.16.0.1": "a private address",
    "172.31.255.255": "a private address", "192.168.1.1": "a private address",
    "fd12:3456::1": "a private address", "fc00::1": "a private address",
    "100.64.0.1": "a shared (CGNAT) address", "100.127.255.254": "a shared (CGNAT) address",
    "224.0.0.1": "a multicast address", "239.255.255.250": "a multicast address",
    "ff02::1": "a multicast address",
    "240.0.0.1": "a reserved address", "255.255.255.255": "a reserved address",
    "192.0.2.10": "a reserved address", "198.18.0.1": "a reserved address",
    "2001:db8::1": "a reserved address",
    # IPv6 forms carrying an IPv4 address are judged by that address
    "::ffff:127.0.0.1": "a loopback address", "::ffff:10.0.0.5": "a private address",
    "::ffff:169.254.169.254": "a cloud metadata address",
    "::ffff:a9fe:a9fe": "a cloud metadata address",
    "64:ff9b::a9fe:a9fe": "a cloud metadata address",  # NAT64
    "2002:a00:5::1": "a private address",  # 6to4 of 10.0.0.5
    "::127.0.0.1": "a loopback address",  # deprecated IPv4-compatible
    # the spellings inet_aton (and so the system resolver) reads as IPv4
    "2130706433": "a loopback address", "0177.0.0.1": "a loopback address",
    "0x7f.0.0.1": "a loopback address", "0x7f000001": "a loopback address",
    "127.1": "a loopback address", "017700000001": "a loopback address",
    "2852039166": "a cloud metadata address", "0xa9.0xfe.0xa9.0xfe": "a cloud metadata address",
    "0251.0376.0251.0376": "a cloud metadata address", "[::1]": "a loopback address",
    "127.0.0.1.": "a loopback address", "169.254.169.254.": "a cloud metadata address",
}
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "93.184.216.34"]


def note() -> Notification:
    return Notification(title="Drift on fraud", model="fraud", severity="critical")


def mapped(table: dict[str, Sequence[str]]) -> Callable[[str, int], Sequence[str]]:
    """A resolver we control: names not in ``table`` do not resolve."""
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise OSError(f"{host} does not resolve")
        return table[host]
    return resolve


def once() -> Deliverer:
    return Deliverer(max_attempts=1, base_delay=0.01, max_delay=0.02, seed=0)


@pytest.fixture
def endpoint() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


# -- the decision --------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "why"), sorted(DENIED.items()))
def test_denied_by_default(address: str, why: str) -> None:
    assert classify(address) == why
    policy = EgressPolicy()
    assert policy.denial(address) == why
    with pytest.raises(EgressDenied, match=f"^egress denied: .* is {re.escape(why)}$"):
        policy.check_address(address)
    bare = address.strip("[]")
    host = f"[{bare}]" if ":" in bare else bare
    with pytest.raises(EgressDenied):  # the same at configuration time, in any spelling
        policy.check_url(f"http://{host}/x")


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert classify(address) is None and EgressPolicy().denial(address) is None


def test_odd_spellings_parse_as_the_resolver_reads_them() -> None:
    assert str(parse_ip("2130706433")) == str(parse_ip("0177.0.0.1")) == "127.0.0.1"
    assert str(parse_ip("0xa9.0xfe.0xa9.0xfe")) == "169.254.169.254"
    assert parse_ip("hooks.example.com") is None and parse_ip("deadbeef") is None
    assert parse_ip("1e100.net") is None


def test_allowlist_opens_exactly_what_it_lists() -> None:
    policy = EgressPolicy("127.0.0.1, [::1]:8025, 10.0.0.0/8:443, hooks.internal, "
                          "*.corp.example, 169.254.0.0/16")
    assert policy.allow == ("127.0.0.1", "[::1]:8025", "10.0.0.0/8:443", "hooks.internal",
                            "*.corp.example", "169.254.0.0/16")
    assert policy.denial("127.0.0.1", port=1) is None
    assert policy.denial("::ffff:127.0.0.1", port=1) is None  # the mapped form of it
    assert policy.denial("127.0.0.2") == "a loopback address"
    assert policy.denial("::1", port=8025) is None
    assert policy.denial("::1", port=8026) == "a loopback address"
    assert policy.denial("10.2.3.4", port=443) is None
    assert policy.denial("10.2.3.4", port=80) == "a private address"
    assert policy.denial("10.2.3.4", "hooks.internal", 80) is None
    assert policy.denial("10.2.3.4", "a.b.corp.example", 80) is None
    assert policy.denial("10.2.3.4", "corp.example.evil", 80) == "a private address"
    assert policy.denial("169.254.1.1") is None
    # metadata needs an entry naming that exact address: not a network, not a name
    assert policy.denial("169.254.169.254") == "a cloud metadata address"
    assert policy.denial("169.254.169.254", "hooks.internal", 80) == "a cloud metadata address"
    assert EgressPolicy("169.254.169.254").denial("169.254.169.254") is None
    assert EgressPolicy.from_env().allow == ()


@pytest.mark.parametrize("entry", ["foo bar", "10.0.0.0/8:x", "[::1", "host:0",
                                   "host:70000", "a/b", "http://x"])
def test_bad_allowlist_entries_are_refused_naming_the_setting(entry: str) -> None:
    with pytest.raises(ParameterError, match="'egress_allow' setting") as err:
        EgressPolicy(entry)
    assert err.value.field == "egress_allow"


def test_names_resolve_once_and_only_allowed_addresses_are_used() -> None:
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return {"mixed.test": ["10.0.0.5", "8.8.8.8"], "inner.test": ["10.0.0.5"],
                "meta.test": ["169.254.169.254"]}[host]

    policy = EgressPolicy(resolver=resolver)
    assert policy.resolve("mixed.test", 80) == ["8.8.8.8"]  # the private one is dropped
    with pytest.raises(EgressDenied, match=r"10\.0\.0\.5 is a private address"):
        policy.resolve("inner.test", 80)
    with pytest.raises(EgressDenied, match=r"169\.254\.169\.254 is a cloud metadata address"):
        EgressPolicy("hooks.test, meta.test", resolver=resolver).resolve("meta.test", 80)
    with pytest.raises(EgressDenied, match="cloud metadata name"):
        policy.resolve("metadata.google.internal", 80)
    assert calls == ["mixed.test", "inner.test", "meta.test"]  # metadata names never asked


@pytest.mark.parametrize("url", ["gopher://127.0.0.1:70/x", "file:///etc/passwd",
                                 "ftp://example.com/", "dict://example.com:11211/"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(EgressDenied, match="scheme other than http/https"):
        EgressPolicy("0.0.0.0/0, ::/0").check_url(url)
    with pytest.raises(ParameterError) as err:
        receiver_from_config({"type": "webhook", "name": "w", "url": url}, LOOPBACK)
    assert err.value.field == "url"


# -- configuration time --------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/iam", "http://10.0.0.5:8080/hook",
    "http://[::ffff:169.254.169.254]/", "http://2130706433:8080/", "http://0177.0.0.1/",
    "http://[fd00:ec2::254]/", "http://metadata.google.internal/computeMetadata/v1/",
    "http://localhost:8080/", "https://[::1]/", "http://100.64.0.1/",
])
def test_a_receiver_with_a_denied_literal_target_is_refused(url: str) -> None:
    for kind in ("webhook", "slack"):
        r = receiver_from_config({"type": kind, "name": "x", "url": url})
        with pytest.raises(ParameterError, match="refused by the egress policy") as err:
            r.check_egress()
        assert err.value.field == "url" and "/hook" not in str(err.value)
    pd = receiver_from_config({"type": "pagerduty", "name": "p", "routing_key": "k" * 32,
                               "url": url})
    with pytest.raises(ParameterError):
        pd.check_egress()
    receiver_from_config({"type": "webhook", "name": "x", "url": url},
                         EgressPolicy("0.0.0.0/0, ::/0, 169.254.169.254, fd00:ec2::254, "
                                      "metadata.google.internal")).check_egress()


@pytest.mark.parametrize("url", ["http://hooks.test:99999/", "http://hooks.test:port/",
                                 "http://[::1/", "http://[zz]/", "http://a b/",
                                 "hTTpS://\U0001f60d\u00c0]"])
def test_malformed_urls_are_refused_not_crashed_on(url: str) -> None:
    with pytest.raises(ParameterError) as err:
        receiver_from_config({"type": "webhook", "name": "x", "url": url})
    assert err.value.field == "url"
    if "hooks.test" in url:
        with pytest.raises(EgressDenied, match="invalid port"):
            EgressPolicy().check_url(url)
    elif "]" in url:  # the long fuzz: a guardrail upstream "https://x]" was a 500
        with pytest.raises(EgressDenied, match="not a valid URL"):
            EgressPolicy().check_url(url)


def test_a_host_httpx_cannot_encode_is_refused() -> None:
    """The long fuzz: a guardrail upstream "https://\u00ba/v1" was stored, then every chat
    through it was a 500 (httpx: invalid IDNA host)."""
    with pytest.raises(EgressDenied, match="not a valid URL"):
        EgressPolicy("0.0.0.0/0, ::/0").check_url("https://\u00ba/v1")


def test_email_host_is_checked_naming_the_field() -> None:
    for host in ("127.0.0.1", "169.254.169.254", "10.1.2.3", "0x7f.1", "localhost"):
        r = EmailReceiver(name="m", host=host, sender="a@example.com", to="b@example.com")
        with pytest.raises(ParameterError, match="'host' field") as err:
            r.check_egress()
        assert err.value.field == "host"
    EmailReceiver(name="m", host="127.0.0.1", port=2525, sender="a@example.com",
                  to="b@example.com", egress=EgressPolicy("127.0.0.1:2525")).check_egress()
    with pytest.raises(ParameterError):
        EmailReceiver(name="m", host="127.0.0.1", port=25, sender="a@example.com",
                      to="b@example.com", egress=EgressPolicy("127.0.0.1:2525")).check_egress()


def test_egress_is_not_a_config_key() -> None:
    with pytest.raises(ParameterError, match=r"'egress' field .* is not known") as err:
        receiver_from_config({"type": "webhook", "name": "w", "url": "http://h.test/",
                              "egress": "0.0.0.0/0"})
    assert err.value.field == "egress"


# -- connect time --------------------------------------------------------------------------

def test_a_name_resolving_to_a_denied_address_is_refused_on_connect(
        endpoint: WebhookServer) -> None:
    policy = EgressPolicy(resolver=mapped({"hooks.test": ["127.0.0.1"]}))
    r = WebhookReceiver(name="ops", url=endpoint.url(host="hooks.test"), egress=policy)
    r.check_egress()  # a name passes configuration: it is judged when resolved
    [attempt] = once().deliver_now(r, note())
    assert (attempt.ok, attempt.final, attempt.status) == (False, True, None)
    assert attempt.error == "egress denied: 127.0.0.1 is a loopback address"
    assert endpoint.requests == []  # nothing reached the socket


def test_the_checked_address_is_the_one_connected_to(endpoint: WebhookServer) -> None:
    # hooks.test exists only in this resolver, so a delivery proves the vetted address was
    # used and the name was never handed to the system resolver.
    policy = EgressPolicy("127.0.0.1", resolver=mapped({"hooks.test": ["127.0.0.1"]}))
    r = WebhookReceiver(name="ops", url=endpoint.url(host="hooks.test"), egress=policy)
    [attempt] = once().deliver_now(r, note())
    assert attempt.ok and attempt.status == 200
    [got] = endpoint.delivered
    assert got.headers["host"] == f"hooks.test:{endpoint.port}"  # Host kept


def test_localhost_is_judged_by_what_it_resolves_to(endpoint: WebhookServer) -> None:
    url = endpoint.url(host="localhost")
    [denied] = once().deliver_now(WebhookReceiver(name="a", url=url), note())
    assert denied.error is not None and denied.error.startswith("egress denied: ")
    assert endpoint.requests == []
    [sent] = once().deliver_now(WebhookReceiver(name="b", url=url, egress=LOOPBACK), note())
    assert sent.ok and len(endpoint.delivered) == 1


def test_https_keeps_sni_and_certificate_checks_on_the_name(tmp_path: Path) -> None:
    pem = self_signed_cert(tmp_path, names="DNS:hooks.test")
    if pem is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    trust = ssl.create_default_context(cafile=str(pem[0]))
    policy = EgressPolicy("127.0.0.1", resolver=mapped({"hooks.test": ["127.0.0.1"]}))
    with WebhookServer(tls=pem) as tls_hook:
        with httpx.Client(transport=policy.http_transport(verify=trust)) as client:
            r = client.post(tls_hook.url(host="hooks.test"), json={"a": 1})
        assert r.status_code == 200  # the certificate names hooks.test, not 127.0.0.1
        assert tls_hook.delivered[0].headers["host"] == f"hooks.test:{tls_hook.port}"
        with httpx.Client(transport=policy.http_transport(verify=trust)) as client, \
                pytest.raises(httpx.ConnectError, match=r"(?i)certificate|hostname"):
            client.post(tls_hook.url(host="127.0.0.1"))  # not a name the cert holds


def test_redirects_are_not_followed(endpoint: WebhookServer) -> None:
    endpoint.fail(1, status=302)
    endpoint.headers["Location"] = "http://169.254.169.254/latest/meta-data/"
    [attempt] = Deliverer(max_attempts=3, base_delay=0.01, seed=0).deliver_now(
        WebhookReceiver(name="ops", url=endpoint.url(), egress=LOOPBACK), note())
    assert (attempt.ok, attempt.status, attempt.final) == (False, 302, True)
    assert attempt.error == "HTTP 302 from receiver (redirects are not followed)"
    assert len(endpoint.requests) == 1


def test_the_far_end_body_is_never_kept(endpoint: WebhookServer) -> None:
    endpoint.fail(2, status=500)
    endpoint.error_body = f"<html>{BODY_SECRET} stack trace</html>".encode()
    seen: list[DeliveryAttempt] = []
    attempts = Deliverer(max_attempts=2, base_delay=0.01, seed=0, on_attempt=seen.append
                         ).deliver_now(WebhookReceiver(name="ops", url=endpoint.url(),
                                                       egress=LOOPBACK), note())
    assert [(a.status, a.error) for a in attempts] == [
        (500, "HTTP 500 from receiver"),
        (500, "HTTP 500 from receiver (gave up after 2 tries in 0s)")]
    assert BODY_SECRET not in str([a.to_dict() for a in seen])


def test_smtp_connects_only_to_checked_addresses_and_keeps_no_reply_text(
        tmp_path: Path) -> None:
    pem = self_signed_cert(tmp_path, names="DNS:mail.test")
    if pem is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    resolver = mapped({"mail.test": ["127.0.0.1"]})
    with SMTPServer(cert=pem[0], key=pem[1]) as smtp:
        def mail(policy: EgressPolicy) -> EmailReceiver:
            return EmailReceiver(name="mail", host="mail.test", port=smtp.port,
                                 security="starttls", ca_file=str(pem[0]),
                                 sender="a@example.com", to="b@example.com", egress=policy)

        [denied] = once().deliver_now(mail(EgressPolicy(resolver=resolver)), note())
        assert denied.error == "egress denied: 127.0.0.1 is a loopback address"
        assert denied.final and smtp.messages == []
        # allowed: connects to 127.0.0.1, and STARTTLS verifies the name mail.test
        allowed = mail(EgressPolicy(f"127.0.0.1:{smtp.port}", resolver=resolver))
        [sent] = once().deliver_now(allowed, note())
        assert sent.ok and len(smtp.messages) == 1
        smtp.box.reject = f"550 5.7.1 {BODY_SECRET}"
        [refused] = once().deliver_now(allowed, note())
        assert (refused.status, refused.error) == (550, "SMTP 550 from receiver")


def test_old_stored_reply_texts_are_cut_on_the_way_out() -> None:
    assert shown_error(f"HTTP 500: {BODY_SECRET}") == "HTTP 500 from receiver"
    assert shown_error(f"HTTP 503: {BODY_SECRET}\nmore (gave up after 3 tries in 9s)") == \
        "HTTP 503 from receiver (gave up after 3 tries in 9s)"
    assert shown_error(f"SMTP 550: 5.1.1 {BODY_SECRET}") == "SMTP 550 from receiver"
    assert shown_error("HTTP 503") == "HTTP 503 from receiver"
    for kept in ("connection refused", "HTTP 500 from receiver", None,
                 "egress denied: 10.0.0.5 is a private address"):
        assert shown_error(kept) == kept
