"""Which addresses a capture may connect to.

A capture fetches from the server's own network a URL that a user typed, so a URL naming the
server itself, the cloud's metadata service or an intranet host must be refused. The name is
resolved once here, every address it resolves to is checked, and the fetcher connects to the
checked address: there is no second lookup for a rebinding DNS server to answer differently.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import SplitResult, quote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from . import CaptureError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PRIVATE_NETWORK = "the address is on a private network"
NOT_PUBLIC = "the address is not a public internet address"

# Named here, although `is_global` already excludes it, because it is the range most often
# forgotten: carrier-grade NAT can reach a provider's internal workloads.
CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
# IPv6 forms that carry an IPv4 address inside them; the IPv4 address is the one that matters.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Characters that may stay as they are in a request line's path and query.
PATH_SAFE = "!$&'()*+,-./:;=?@_~%[]"


@dataclass(frozen=True)
class Target:
    """Where one request goes: the URL's own parts, and the checked address to connect to."""

    url: str
    scheme: str
    host: str  # as it goes into the Host header and TLS server name (ASCII, IDNA-encoded)
    port: int
    path: str  # path and query, as sent on the request line
    ip: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = 443 if self.scheme == "https" else 80
        return host if self.port == default_port else f"{host}:{self.port}"


def allowed_networks() -> tuple[IPNetwork, ...]:
    return _parse_networks(tuple(settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS))


@lru_cache(maxsize=8)
def _parse_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
    except ValueError as error:
        raise ImproperlyConfigured(f"SCHOLION_CAPTURE_ALLOWED_NETWORKS: {error}") from None


def refusal(ip: IPAddress) -> str | None:
    """Why a capture may not connect to `ip`, in plain words; None if it may."""
    allowed = allowed_networks()
    candidates = [ip]
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        candidates.append(embedded)
    if any(candidate in network for candidate in candidates for network in allowed):
        return None
    # The embedded IPv4 address first: it is where a mapped or NAT64 address really leads.
    for candidate in reversed(candidates):
        if candidate.is_unspecified or candidate.is_multicast:
            return NOT_PUBLIC
        # Link-local includes the cloud metadata service at 169.254.169.254.
        if candidate.is_loopback or candidate.is_link_local or candidate in CGNAT:
            return PRIVATE_NETWORK
        if candidate.is_reserved:
            return NOT_PUBLIC
        if not candidate.is_global:
            # Private ranges, IPv6 unique-local, documentation and benchmarking ranges.
            return PRIVATE_NETWORK
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def check_url(url: str) -> Target:
    """Resolve the URL's host once, refuse it unless every address is allowed, and pick one."""
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise CaptureError("only http and https addresses can be captured")
    host = _ascii_host(parts)
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise CaptureError("the address has an invalid port") from None
    # As a browser does: characters that may not appear on a request line (spaces, non-ASCII,
    # line breaks) are percent-encoded, and what is already percent-encoded is left alone.
    path = quote(parts.path or "/", safe=PATH_SAFE)
    if parts.query:
        path = f"{path}?{quote(parts.query, safe=PATH_SAFE)}"
    return Target(url=url, scheme=scheme, host=host, port=port, path=path, ip=_resolve(host, port))


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url.strip())
    except ValueError:
        raise CaptureError("the address is not a valid URL") from None


def _ascii_host(parts: SplitResult) -> str:
    host = parts.hostname  # lowercased, IPv6 brackets removed
    if not host:
        raise CaptureError("the address has no host name")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise CaptureError("the address has an invalid host name") from None


def _resolve(host: str, port: int) -> str:
    # `localhost` and its subdomains are the machine itself by definition (RFC 6761), whatever a
    # resolver says; a trailing dot ("localhost.") must not slip past.
    name = host.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        addresses: list[IPAddress] = [ipaddress.IPv4Address("127.0.0.1")]
    else:
        try:
            infos = _lookup(host, port)
        except (socket.gaierror, UnicodeError):
            raise CaptureError("the server's name could not be found") from None
        # Address families other than IPv4 and IPv6 (none in practice) cannot be connected to.
        addresses = [
            ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            for info in infos
            if info[0] in (socket.AF_INET, socket.AF_INET6)
        ]
    if not addresses:
        raise CaptureError("the server's name could not be found")
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            raise CaptureError(reason)
    return str(addresses[0])


# How long a name's lookup may take. The system resolver has no timeout of its own that a
# caller can set, so a name whose DNS server never answers would hold the capture past its
# time limit: the lookup runs in a thread of its own, left to finish by itself if it is late.
DNS_TIMEOUT = 10.0
DNS_TOO_SLOW = "looking up the server's name took too long"


def _lookup(host: str, port: int) -> list[tuple]:
    infos: list[list[tuple]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def resolve() -> None:
        try:
            infos.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=resolve, name="capture-dns", daemon=True).start()
    if not done.wait(DNS_TIMEOUT):
        raise CaptureError(DNS_TOO_SLOW)
    if errors:
        raise errors[0]
    return infos[0]
