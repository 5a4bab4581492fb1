"""Who the client is: the direct peer, or the address a trusted proxy says it forwarded for.

Forwarded headers are written by whoever sends the request, so they are believed only
when the direct peer is a configured proxy (``forwarded_allow_ips``, the same value
uvicorn gets). Otherwise a client could pick a new address per request and slip past
any limit kept per address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from engram.errors import InvalidInput

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_ADDRESS_CHARS = 64  # a forwarded entry that is no address is still a key in the limiter: keep it short


def parse_allow_ips(spec: str | Iterable[str] | None) -> tuple[bool, tuple[_Network, ...]]:
    """``"*"`` or comma-separated addresses and networks -> (trust every peer, networks).

    Raises:
        InvalidInput: an entry is neither ``*``, an IP address nor a network.
    """
    if spec is None:
        return False, ()
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    networks: list[_Network] = []
    trust_all = False
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        if item == "*":
            trust_all = True
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise InvalidInput(
                f"forwarded_allow_ips takes '*' or IP addresses and networks (e.g. 10.0.0.0/8), "
                f"comma-separated; {item!r} is neither"
            ) from None
    return trust_all, tuple(networks)


def _address(text: str) -> str:
    """An address from a header entry: quotes, ``[v6]`` brackets and ports removed."""
    value = text.strip().strip('"')
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # v4 with a port; a bare v6 address has several colons
        value = value.partition(":")[0]
    return value[:MAX_ADDRESS_CHARS]


def _forwarded_for(header: str) -> list[str]:
    """The ``for=`` addresses of an RFC 7239 ``Forwarded`` header, in order."""
    found = []
    for element in header.split(","):
        for pair in element.split(";"):
            name, _, value = pair.partition("=")
            if name.strip().lower() == "for" and value.strip():
                found.append(_address(value))
    return found


class TrustedProxies:
    """Decides the client address of a request from its peer and headers."""

    def __init__(self, allow_ips: str | Iterable[str] | None = None):
        self.trust_all, self.networks = parse_allow_ips(allow_ips)

    def __bool__(self) -> bool:
        return self.trust_all or bool(self.networks)

    def trusts(self, host: str | None) -> bool:
        if self.trust_all:
            return True
        if not host or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client_of_scope(self, scope: Mapping[str, Any]) -> str:
        """The client address of an ASGI request (repeated headers are joined, as RFC 9110 reads them)."""
        peer = scope.get("client")
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            key = name.decode("latin-1").lower()
            if key in ("x-forwarded-for", "forwarded"):
                text = value.decode("latin-1")
                headers[key] = f"{headers[key]}, {text}" if key in headers else text
        return self.client(peer[0] if peer else None, headers)

    def client(self, peer: str | None, headers: Mapping[str, str]) -> str:
        """The client's address: the peer, unless the peer is a trusted proxy that forwarded one.

        X-Forwarded-For is read as uvicorn reads it (from the right, skipping trusted
        proxies); RFC 7239 ``Forwarded`` is read the same way when there is no X-Forwarded-For.
        """
        peer = peer or "unknown"
        if not self.trusts(peer):
            return peer
        xff = headers.get("x-forwarded-for")
        if xff is not None:
            chain = [_address(a) for a in xff.split(",") if a.strip()]
        else:
            chain = _forwarded_for(headers.get("forwarded", ""))
        if not chain:
            return peer
        for address in reversed(chain):
            if not self.trusts(address):
                return address
        return chain[0]  # every hop is trusted: the first one is as far back as we can see
