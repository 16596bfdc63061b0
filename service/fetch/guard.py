"""Refuse fetch targets that point inside the network (SSRF guard).

A config file, a feed entry or a redirect can name any URL; without this
check a watched "news page" could be the cloud metadata endpoint or an admin
panel on localhost.  Every request and every redirect hop is checked, and
the check resolves the host so a public name pointing at 10.0.0.1 is refused
too.  `allow_private=True` (the `allow_private_targets` setting) switches the
address check off for tests and intranet deployments; the scheme check stays.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from ..errors import PermanentFetchError, TransientFetchError

__all__ = ["AsyncResolver", "Resolver", "acheck_target", "check_target", "refused_reason"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]
AsyncResolver = Callable[[str, int], Awaitable[Iterable[str]] | Iterable[str]]

_SCHEMES = {"http": 80, "https": 443}
# Metadata endpoints are link-local or unique-local already; named so the
# message says what was hit.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def refused_reason(address: str) -> str | None:
    """Why `address` must not be fetched, or None if it is a public address."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address are judged by that address.
        mapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if mapped is None and ip in _NAT64:
            mapped = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if mapped is not None:
            ip = mapped
    if ip in _METADATA:
        return "cloud metadata"
    for kind in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:  # shared address space 100.64/10, documentation ranges...
        return "non-global"
    return None


def _split(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise PermanentFetchError(url, f"invalid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise PermanentFetchError(url, f"refused scheme {scheme or '(none)'!r}: only http(s)")
    if not parts.hostname:
        raise PermanentFetchError(url, "URL has no host")
    return parts.hostname, port or _SCHEMES[scheme]


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


def _check_addresses(url: str, addresses: Iterable[str]) -> tuple[str, ...]:
    checked = tuple(dict.fromkeys(addresses))
    for address in checked:
        reason = refused_reason(address)
        if reason:
            raise PermanentFetchError(url, f"refused private target {address} ({reason})")
    if not checked:
        raise PermanentFetchError(url, "host resolved to no addresses")
    return checked


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_target(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> None:
    """Raise `PermanentFetchError` unless `url` is http(s) and all its addresses are public.

    Resolves synchronously (blocking); in async code use `acheck_target`.
    A host that does not resolve raises `TransientFetchError`: DNS failures
    are usually temporary.  `resolver(host, port)` returns address strings
    (tests inject one).
    """
    host, port = _split(url)
    if allow_private:
        return
    literal = _literal(host)
    if literal is not None:
        _check_addresses(url, [literal])
        return
    try:
        addresses = list((resolver or _system_resolve)(host, port))
    except OSError as exc:
        raise _dns_error(url, host, exc) from exc
    _check_addresses(url, addresses)


async def acheck_target(url: str, *, allow_private: bool,
                        resolver: AsyncResolver | None = None) -> tuple[str, ...]:
    """`check_target` without blocking the event loop (uses the loop's getaddrinfo).

    Returns the addresses it checked — all public — so the caller can connect
    to one of them rather than resolve again (a second lookup could answer
    differently: DNS rebinding).  Returns () when `allow_private` skips the check.
    `resolver(host, port)` may return the addresses or an awaitable of them.
    """
    host, port = _split(url)
    if allow_private:
        return ()
    literal = _literal(host)
    if literal is not None:
        return _check_addresses(url, [literal])
    try:
        if resolver is not None:
            found = resolver(host, port)
            addresses = list(await found if inspect.isawaitable(found) else found)
        else:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                                 type=socket.SOCK_STREAM)
            addresses = [str(info[4][0]) for info in infos]
    except OSError as exc:
        raise _dns_error(url, host, exc) from exc
    return _check_addresses(url, addresses)


def _dns_error(url: str, host: str, exc: OSError) -> TransientFetchError:
    return TransientFetchError(url, f"cannot resolve host {host!r}: {exc}")
