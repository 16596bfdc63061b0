"""Webhook channel: a signed JSON POST, as Standard Webhooks specify.

    POST <url>
    content-type: application/json
    webhook-id: <alert id>            same on every retry: receivers deduplicate on it
    webhook-timestamp: <unix seconds> time of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>

    {"type":"figure.changed","timestamp":"2024-02-01T08:00:00+00:00","data":{...}}

The key is the base64 part after `whsec_` for `whsec_...` secrets, else the
secret's UTF-8 bytes.  `verify_signature` is the receiving side of the same rule.

A channel's POSTs reuse kept-alive connections (see `service.transport.lanes`; the answer
is read to its end, up to 1 KiB, so that its connection can be reused), go
to httpx's transport directly (no client: no cookies, no proxies from the
environment) and on asyncio sockets (`service.transport.asyncio_net`); the SSRF check of
the target's addresses is remembered for `guard_ttl` seconds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import httpx

from ..alerts import PendingAlert
from ..errors import DeliveryError, FetchError, PermanentDeliveryError, PermanentFetchError
from ..fetch.guard import acheck_target
from ..fetch.inflate import CappedDecoder
from ..settings import WebhookChannelConfig
from ..transport import AsyncioTransport, Lanes
from .base import Channel, ChannelContext, ChannelNotConfigured, Clock, utcnow

__all__ = ["WebhookChannel", "body_of", "secret_key", "sign", "verify_signature"]

_RETRYABLE_4XX = {408, 425, 429}
_SNIPPET_BYTES = 1024
_MAX_CONNECTIONS = 100  # per channel; the dispatcher's `concurrency` bounds it first
_USER_AGENT = "figwatch-webhook/0.1"


def secret_key(secret: str) -> bytes:
    """The HMAC key: base64-decoded after `whsec_`, else the secret's UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("a whsec_ secret must be base64 after the prefix") from exc
    return secret.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The `webhook-signature` value (`v1,<base64>`) for one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes | str,
                     tolerance: float = 300, now: float | None = None) -> bool:
    """True when `headers` carry a valid v1 signature of `body` within `tolerance` seconds.

    Header names are matched case-insensitively; the signature header may hold
    several space-separated `v1,<sig>` entries (key rotation), any one may match.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, sigs = (lower.get("webhook-id"), lower.get("webhook-timestamp"),
                           lower.get("webhook-signature"))
    if not (msg_id and stamp and sigs):
        return False
    try:
        sent = int(stamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    raw = body.encode("utf-8") if isinstance(body, str) else body
    try:
        expected = sign(secret, msg_id, stamp, raw).encode("ascii")
    except ValueError:
        return False
    return any(hmac.compare_digest(expected, s.encode("ascii", "replace"))
               for s in sigs.split() if s.startswith("v1,"))


def body_of(alert: PendingAlert) -> bytes:
    """The request body: compact JSON, keys in contract order, UTF-8, same on every retry."""
    created = alert.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    payload: dict[str, Any] = {"type": alert.type, "timestamp": created.isoformat(),
                               "data": alert.data}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"),
                      default=str).encode("utf-8")


class WebhookChannel(Channel):
    """POST each alert as signed JSON (Standard Webhooks) to a URL.

    Keys: `url`, and `secret` or `secret_env` (the name of a variable holding it;
    `whsec_<base64>` secrets are decoded as Standard Webhooks libraries do), `timeout`.
    A 2xx answer is delivered; other 4xx give up; 5xx, 408, 429, timeouts and
    connection errors are retried.  Redirects are not followed.  The target is
    checked like a fetched page, and again every 30 s: private addresses need
    `allow_private_targets`.  Connections to the receiver are kept alive and reused.
    """

    kind = "webhook"

    def __init__(self, name: str, url: str, secret: str, *, timeout: float = 10.0,
                 allow_private: bool = False, clock: Clock = utcnow,
                 transport: httpx.AsyncBaseTransport | None = None,
                 guard_ttl: float = 30.0) -> None:
        super().__init__(name)
        secret_key(secret)  # fail now, not at the first alert, on a malformed whsec_
        self.url, self._secret, self._allow_private, self._clock = url, secret, allow_private, clock

        try:
            self._url = httpx.URL(url)  # parsed once, not per POST
        except httpx.InvalidURL as exc:
            raise ValueError(f"bad webhook url {url!r}: {exc}") from exc
        if transport is None:
            tls = httpx.create_ssl_context()  # loading the CA bundle takes ~0.1 s: once

            def lane(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
                return AsyncioTransport(ssl_context=tls, limits=limits)

            self._http = Lanes(lane, max_connections=_MAX_CONNECTIONS, timeout=timeout)
        else:  # injected (tests): it has its own pool, or none; one lane
            self._http = Lanes(lambda _: transport, max_connections=_MAX_CONNECTIONS,
                               per_lane=_MAX_CONNECTIONS, timeout=timeout)
        self._guard_ttl = guard_ttl
        self._guard_ok_until = float("-inf")  # time.monotonic() until which the target passed
        self._guard_lock: asyncio.Lock | None = None

    @classmethod
    def from_config(cls, config: Any, context: ChannelContext) -> WebhookChannel:
        assert isinstance(config, WebhookChannelConfig)
        secret = config.secret
        if config.secret_env:
            secret = context.env.get(config.secret_env) or None
            if secret is None:
                raise ChannelNotConfigured(f"secret_env {config.secret_env} is not set")
        if not secret:
            raise ChannelNotConfigured("no secret: set `secret` or `secret_env`")
        try:
            return cls(config.name, config.url, secret, timeout=config.timeout,
                       allow_private=context.allow_private, clock=context.clock,
                       transport=context.options.get("webhook_transport"))
        except ValueError as exc:
            raise ChannelNotConfigured(str(exc)) from exc

    def headers_for(self, alert: PendingAlert, body: bytes) -> dict[str, str]:
        stamp = int(self._clock().timestamp())
        return {"user-agent": _USER_AGENT, "content-type": "application/json",
                "webhook-id": alert.id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign(self._secret, alert.id, stamp, body)}

    async def send(self, alert: PendingAlert) -> None:
        await self._guard()
        body = body_of(alert)
        try:
            status, phrase, snippet = await self._post(body, self.headers_for(alert, body))
        except httpx.TimeoutException as exc:
            raise DeliveryError(self.name, f"POST {self.url} timed out") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(self.name, f"POST {self.url} failed: "
                                           f"{type(exc).__name__}: {exc}") from exc
        if 200 <= status < 300:
            return
        reason = f"POST {self.url} answered {status} {phrase}".rstrip()
        if snippet:
            reason += f": {snippet}"
        if 400 <= status < 500 and status not in _RETRYABLE_4XX:
            raise PermanentDeliveryError(self.name, reason)
        # 5xx, 408/425/429, and 3xx: redirects are not followed (the target was
        # checked, its redirect was not), but a moved endpoint may come back.
        raise DeliveryError(self.name, reason)

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, str]:
        """Status, reason phrase and the start of the answer (never more than 1 KiB is read).

        A short answer is read to its end, even a 2xx one nobody looks at: a
        connection goes back to the pool only after its answer was read whole.
        """
        async with self._http.stream("POST", self._url, content=body, headers=headers) as resp:
            if 200 <= resp.status_code < 300:
                # Accepted, whatever happens to the rest of the answer.
                with contextlib.suppress(httpx.HTTPError):
                    await _read_head(resp)
                return resp.status_code, resp.reason_phrase, ""
            text = (await _read_head(resp)).decode("utf-8", "replace")
            return resp.status_code, resp.reason_phrase, " ".join(text.split())[:200]

    async def _guard(self) -> None:
        # Checked again every `guard_ttl` seconds, not once: DNS can be rebound
        # after start-up.  Not on every send either: that is a getaddrinfo (a
        # thread and often a DNS query) per alert.  A refusal is never remembered.
        if time.monotonic() < self._guard_ok_until:
            return
        if self._guard_lock is None:
            self._guard_lock = asyncio.Lock()
        async with self._guard_lock:  # many sends at once: one of them checks
            if time.monotonic() < self._guard_ok_until:
                return
            try:
                await acheck_target(self.url, allow_private=self._allow_private)
            except PermanentFetchError as exc:
                raise PermanentDeliveryError(self.name, f"refused target: {exc}") from exc
            except FetchError as exc:
                raise DeliveryError(self.name, str(exc)) from exc
            self._guard_ok_until = time.monotonic() + self._guard_ttl

    async def aclose(self) -> None:
        await self._http.aclose()


async def _read_head(resp: httpx.Response) -> bytes:
    """The answer's first KiB; a longer answer is left unread (its connection is not reused).

    Decoded no further than that (`CappedDecoder`): a compressed answer is inflated
    a KiB at most, not a network chunk's worth.  An answer that cannot be decoded
    gives what was decoded before.
    """
    head = b""
    with contextlib.suppress(FetchError):  # an unknown or corrupt encoding
        decoder = CappedDecoder(str(resp.url), resp.headers.get("content-encoding", ""))
        async for raw in resp.aiter_raw():
            head += decoder.decode(raw, _SNIPPET_BYTES - len(head))
            if len(head) >= _SNIPPET_BYTES:
                break
    return head[:_SNIPPET_BYTES]
