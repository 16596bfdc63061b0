"""Content-Encoding decoding that never inflates more than it is allowed to keep.

httpx decodes each network chunk whole: 64 KB of gzip can hold 64 MB of
zeros, so a compression bomb cost that much memory, per fetch in flight, before
the body cap saw it.  Here zlib's `max_length` bounds every step: a body is
inflated at most one byte past what the caller still has room for.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from ..errors import PermanentFetchError

_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS,
          "deflate": zlib.MAX_WBITS}


class CappedDecoder:
    """Decode a body sent with `Content-Encoding: encoding` (identity, gzip or deflate)."""

    def __init__(self, url: str, encoding: str) -> None:
        self.url = url
        name = encoding.strip().lower()
        if name not in ("", "identity", *_WBITS):
            raise PermanentFetchError(url, f"unsupported Content-Encoding {encoding!r}")
        self._inflater = zlib.decompressobj(_WBITS[name]) if name in _WBITS else None
        # "deflate" is zlib-wrapped by the standard, raw in some servers' hands: a body
        # whose first bytes are no zlib header is read again as raw deflate.
        self._may_be_raw = name == "deflate"
        self._head = b""  # while that is open: the body's first bytes, to read again

    def decode(self, data: bytes, room: int) -> bytes:
        """`data` decoded, but at most `room + 1` bytes of it: a longer result means the
        body does not fit, which the caller reports."""
        if self._inflater is None:
            return data
        try:
            out = self._inflater.decompress(data, room + 1)
        except zlib.error as exc:
            if self._may_be_raw:
                self._may_be_raw = False
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.decode(self._head + data, room)
            raise PermanentFetchError(self.url, f"cannot decode response body: {exc}") from exc
        if self._may_be_raw:
            self._head += data
            self._may_be_raw = len(self._head) < 2  # a zlib header is two bytes
        return out

    def flush(self) -> bytes:
        """What the decoder still holds at the end of the body."""
        return b"" if self._inflater is None else self._inflater.flush()


async def read_decoded(url: str, raw: AsyncIterator[bytes], encoding: str,
                       max_bytes: int) -> bytes:
    """The body that `raw` streams, decoded; PermanentFetchError once it passes
    `max_bytes`, having inflated at most one byte more."""
    decoder = CappedDecoder(url, encoding)
    chunks: list[bytes] = []
    total = 0
    async for data in raw:
        chunk = decoder.decode(data, max_bytes - total)
        total += len(chunk)
        if total > max_bytes:
            break
        chunks.append(chunk)
    else:
        chunk = decoder.flush()
        total += len(chunk)
        chunks.append(chunk)
    if total > max_bytes:
        raise PermanentFetchError(
            url, f"body too large: more than max_body_bytes {max_bytes} after decoding")
    return b"".join(chunks)
