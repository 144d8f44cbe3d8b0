"""Egress policy: which addresses aiwarden may open outbound connections to.

Every outbound call of the product (notification receivers today, upstream model calls
later) goes through one :class:`EgressPolicy`, because a URL or host name taken from config
is a request forgery (SSRF) primitive: pointed at 127.0.0.1, 10/8 or 169.254.169.254 it
turns aiwarden into a proxy into the network it runs in. Denied by default: loopback,
link-local, private (RFC 1918, fc00::/7, site-local), shared CGNAT 100.64/10, unspecified,
multicast, reserved and other special-purpose ranges, and cloud metadata endpoints (by
address and by name). An allowlist (``AIWARDEN_EGRESS_ALLOW``) opens specific ones::

    127.0.0.1            an address (any port)       10.0.0.0/8       a network
    [::1]:8025, 10.1.2.3:25   an address, one port   hooks.internal   a host name
    *.corp.example       a domain and its subdomains smtp.internal:587  a name, one port

Metadata addresses are opened only by an entry naming that exact address, never by a
wider network or a host name.

The check runs on the *resolved* addresses at connect time: a name is resolved once,
every address it resolves to is checked, and the connection goes only to an address that
passed (never to the name again), so DNS rebinding cannot slip past. IPv4-mapped, NAT64, 6to4
and Teredo IPv6 forms are judged by the IPv4 address they carry; decimal, octal and hex
IPv4 spellings (``2130706433``, ``0177.0.0.1``) are parsed as the resolver would.

Errors::

    AiwardenError
    ├── ParameterError   an allowlist entry, or a target refused at configuration time
    └── EgressDenied     a connection refused at connect time (``address``, ``reason``)
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from aiwarden.errors import AiwardenError, ParameterError

__all__ = ["ENV", "EgressDenied", "EgressPolicy", "EgressTransport", "classify", "parse_ip"]

ENV = "AIWARDEN_EGRESS_ALLOW"
IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
    "169.254.170.2",  # AWS ECS task metadata
    "169.254.169.123",  # AWS time sync
    "100.100.100.200",  # Alibaba Cloud
    "fd00:ec2::254",  # AWS (IPv6)
))
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog",
                            "instance-data", "instance-data.ec2.internal",
                            "metadata.azure.internal"})
_PRIVATE = tuple(ipaddress.ip_network(n) for n in
                 ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10"))
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAME = re.compile(r"(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


class EgressDenied(AiwardenError):
    """A connection the policy refuses; the message is fixed text plus the address."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"egress denied: {address} is {reason}", "egress_allow")
        self.address, self.reason = address, reason


def parse_ip(host: str) -> IP | None:
    """``host`` as an IP address when it is one in any spelling a resolver accepts, else None.

    ``[::1]``, ``fe80::1%eth0``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and
    ``127.0.0.1.`` all count.
    """
    text = host.strip().strip("[]")
    text = text[:-1] if text.endswith(".") and not text.endswith("..") else text  # FQDN dot
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    if text and re.fullmatch(r"(0[xX][0-9a-fA-F]*|[0-9]+)(\.(0[xX][0-9a-fA-F]*|[0-9]+)){0,3}",
                             text):
        try:  # inet_aton reads the classic decimal / octal / hex / short forms
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, NAT64, 6to4, Teredo, compatible)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def classify(address: str | IP) -> str | None:
    """Why ``address`` is denied by default ("a private address"), or None when public."""
    ip = parse_ip(address) if isinstance(address, str) else address
    if ip is None:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            why = classify(inner)
            if why is not None or ip.ipv4_mapped is not None:
                return why
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (("an unspecified address", ip.is_unspecified), ("a loopback address",
              ip.is_loopback), ("a link-local address", ip.is_link_local),
              ("a multicast address", ip.is_multicast),
              ("a shared (CGNAT) address", ip in _CGNAT),
              ("a private address", any(ip in net for net in _PRIVATE)),
              ("a reserved address", ip.is_reserved or not ip.is_global))
    return next((why for why, hit in checks if hit), None)


@dataclass(frozen=True)
class _Entry:
    text: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    name: str | None
    port: int | None

    def matches(self, ip: IP, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is None:  # a name never opens a metadata address
            return ip not in METADATA_ADDRESSES and _name_matches(self.name or "", host)
        forms = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            forms.append(ip.ipv4_mapped)
        return any(f.version == self.network.version and f in self.network
                   and (f not in METADATA_ADDRESSES or self.network.num_addresses == 1)
                   for f in forms)


def _name_matches(pattern: str, host: str) -> bool:
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) or host == pattern[2:]
    return host == pattern


def _parse_entry(text: str) -> _Entry:
    bad = ParameterError(f"The 'egress_allow' setting must be a comma-separated list of "
                         f"networks, addresses or host names, each optionally with :port. "
                         f"Got {text!r} instead.", "egress_allow")
    host, port = text, None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise bad
        if rest:
            if not rest.startswith(":"):
                raise bad
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if port is not None and (not port.isdigit() or not 0 < int(port) < 65536):
        raise bad
    try:
        net = ipaddress.ip_network(host, strict=False)
    except ValueError:
        net = None
        literal = parse_ip(host)
        if literal is not None:
            net = ipaddress.ip_network(literal)
    name = None if net is not None else host.lower().rstrip(".")
    if net is None and not _NAME.fullmatch(name or ""):
        raise bad
    return _Entry(text, net, name, int(port) if port is not None else None)


def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class EgressPolicy:
    """Deny-by-default outbound policy with an allowlist.

    Parameters
    ----------
    allow : allowlist entries (see the module docstring), or one comma-separated string.
    resolver : ``(host, port) -> addresses``; the system resolver when None. Tests and
        deployments with their own name service plug in here; its answers are checked
        exactly like the system's.
    """

    allow: tuple[str, ...] | str = ()
    resolver: Resolver | None = field(default=None, compare=False)
    _entries: tuple[_Entry, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        items = self.allow.split(",") if isinstance(self.allow, str) else list(self.allow)
        entries = tuple(_parse_entry(t.strip()) for t in items if t and t.strip())
        object.__setattr__(self, "allow", tuple(e.text for e in entries))
        object.__setattr__(self, "_entries", entries)

    @classmethod
    def from_env(cls) -> EgressPolicy:
        """The policy ``AIWARDEN_EGRESS_ALLOW`` describes (deny-by-default when unset)."""
        return cls(os.environ.get(ENV, ""))

    # -- decisions --------------------------------------------------------------------------

    def denial(self, address: str | IP, host: str | None = None, port: int = 0) -> str | None:
        """Why a connection to ``address`` (reached as ``host``:``port``) is refused, or None."""
        ip = parse_ip(address) if isinstance(address, str) else address
        why = classify(ip) if ip is not None else "not an IP address"
        if why is None or ip is None:
            return why
        if any(e.matches(ip, host or str(ip), port) for e in self._entries):
            return None
        return why

    def check_address(self, address: str | IP, host: str | None = None, port: int = 0) -> None:
        """Raise :class:`EgressDenied` unless a connection to ``address`` is allowed."""
        why = self.denial(address, host, port)
        if why is not None:
            raise EgressDenied(str(address), why)

    def _check_name(self, host: str, port: int) -> None:
        """Metadata names are refused unless a name entry lists them."""
        name = host.lower().rstrip(".")
        if name in METADATA_NAMES and not any(
                e.network is None and (e.port is None or e.port == port)
                and _name_matches(e.name or "", name) for e in self._entries):
            raise EgressDenied(host, "a cloud metadata name")

    def check_host(self, host: str, port: int) -> None:
        """Configuration-time check of a literal target: a denied IP (in any spelling), a
        metadata name or ``localhost`` (read as 127.0.0.1) raises; other names pass, as
        they are resolved and checked on every connect."""
        ip = parse_ip(host)
        name = host.lower().rstrip(".")
        if ip is None and (name == "localhost" or name.endswith(".localhost")):
            ip = ipaddress.IPv4Address("127.0.0.1")
        if ip is None:
            self._check_name(host, port)
            return
        why = self.denial(ip, host, port)
        if why is not None:
            raise EgressDenied(host if parse_ip(host) is None else str(ip), why)

    def check_url(self, url: str, schemes: Iterable[str] = ("http", "https")) -> None:
        """Configuration-time check of a URL: its scheme, then its host (:meth:`check_host`)."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError as exc:  # "Invalid IPv6 URL": an unbalanced bracket
            raise EgressDenied(url[:80], f"not a valid URL ({exc})") from None
        if parts.scheme.lower() not in tuple(schemes):
            raise EgressDenied(f"{parts.scheme}:", "a scheme other than " + "/".join(schemes))
        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:  # out of range or not a number
            raise EgressDenied(parts.hostname or "", "given with an invalid port") from None
        self.check_host(host or "", port)
        if host and parse_ip(host) is None:
            try:  # a name httpx cannot encode (IDNA: "º") would fail every call later
                httpx.URL(url)
            except httpx.InvalidURL as exc:
                raise EgressDenied(url[:80], f"not a valid URL ({exc})") from None

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to that the policy allows: where to connect.

        Each resolved address is checked; denied ones are dropped, and when none is left
        :class:`EgressDenied` names the first. ``OSError`` when the name does not resolve.
        """
        host = host.strip("[]")
        ip = parse_ip(host)
        if ip is None:
            self._check_name(host, port)
            found = (self.resolver or _getaddrinfo)(host, port)
            addresses = [a for a in (parse_ip(str(x)) for x in found) if a is not None]
            if not addresses:
                raise socket.gaierror(socket.EAI_NONAME, "name does not resolve")
        else:
            addresses = [ip]
        allowed = [a for a in addresses if self.denial(a, host, port) is None]
        if not allowed:
            self.check_address(addresses[0], host, port)
        return list(dict.fromkeys(str(a) for a in allowed))

    # -- connections ------------------------------------------------------------------------

    def create_connection(self, host: str, port: int, timeout: float | None = None,
                          source_address: tuple[str, int] | None = None) -> socket.socket:
        """``socket.create_connection`` to a checked address of ``host`` (SMTP and raw TCP)."""
        last: OSError | None = None
        for address in self.resolve(host, port):
            try:
                return socket.create_connection((address, port), timeout, source_address)
            except OSError as exc:
                last = exc
        raise last or OSError(f"no address to connect to for {host!r}")

    def http_transport(self, verify: Any = True) -> EgressTransport:
        """An httpx transport that connects only where this policy allows."""
        return EgressTransport(self, verify=verify)


class _Backend(httpcore.NetworkBackend):
    """httpcore's network backend, connecting to checked addresses instead of the name.

    TLS still verifies (and sends SNI for) the URL's host name: httpcore passes the
    origin's host to ``start_tls``, not the address connected to.
    """

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy, self._sync = policy, httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        try:
            addresses = self.policy.resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"name does not resolve ({type(exc).__name__})"
                                        ) from None
        last: Exception | None = None
        for address in addresses:
            try:
                return self._sync.connect_tcp(address, port, timeout, local_address,
                                              socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore.NetworkStream:
        raise EgressDenied("a unix socket", "not a network address")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@contextmanager
def _httpx_errors(request: httpx.Request) -> Iterator[None]:
    """httpcore's exceptions as the httpx ones of the same name (what httpx callers catch)."""
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise getattr(httpx, type(exc).__name__, httpx.TimeoutException)(
            str(exc), request=request) from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol,
            httpcore.ProxyError) as exc:
        cls = next((getattr(httpx, c.__name__) for c in type(exc).__mro__
                    if hasattr(httpx, c.__name__)), httpx.TransportError)
        raise cls(str(exc), request=request) from exc


class _Body(httpx.SyncByteStream):
    def __init__(self, response: httpcore.Response, request: httpx.Request) -> None:
        self._response, self._request = response, request

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors(self._request):
            yield from self._response.iter_stream()

    def close(self) -> None:
        self._response.close()


class EgressTransport(httpx.BaseTransport):
    """An httpx transport for http(s) that connects only to addresses the policy allows.

    Redirects are never followed (a transport does not follow them); callers that follow
    one go through this transport again, so the new target is checked too. No proxy
    from the environment is used: a proxy would connect on our behalf, unchecked.
    """

    def __init__(self, policy: EgressPolicy, verify: Any = True) -> None:
        self.policy = policy
        ctx = httpx.create_ssl_context(verify=verify)
        self._pool = httpcore.ConnectionPool(ssl_context=ctx, retries=0,
                                             network_backend=_Backend(policy))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in ("http", "https"):
            raise EgressDenied(f"{request.url.scheme}:", "a scheme other than http/https")
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                             target=url.raw_path),
            headers=request.headers.raw, content=request.stream,
            extensions=request.extensions)
        with _httpx_errors(request):
            response = self._pool.handle_request(core)
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_Body(response, request),
                              extensions=response.extensions)

    def close(self) -> None:
        self._pool.close()
