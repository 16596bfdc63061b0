"""Bytes to text: the charset from a BOM, the HTTP header, `<meta>`, else detection.

Chinese sites still serve GB2312/GBK pages, often with no header charset;
decoding with the wrong codec silently turns every figure into mojibake, so
the order matters and detection is the last resort, not the first.
"""

from __future__ import annotations

import codecs
import re

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE
)
# Labels that browsers treat as a superset (WHATWG Encoding Standard).
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "iso-8859-1": "cp1252",
              "latin1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252"}


def normalise_charset(label: str | None) -> str | None:
    """The Python codec for an HTTP/HTML charset label, or None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _SUPERSETS.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def sniff_charset(data: bytes, header_charset: str | None = None) -> str:
    """The codec to decode `data` with, by BOM, header, `<meta>`, then detection."""
    return _sniff(data, header_charset)[0]


def _sniff(data: bytes, header_charset: str | None) -> tuple[str, str | None]:
    """`sniff_charset`, plus the text when the UTF-8 check already decoded it all."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, None
    declared = normalise_charset(header_charset)
    if declared:
        return declared, None
    meta = _META_CHARSET.search(data[:4096])
    if meta:
        declared = normalise_charset(meta.group(1).decode("ascii", "ignore"))
        if declared:
            return declared, None
    try:
        return "utf-8", data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Detection only for undeclared bytes that are not UTF-8: it reads the page
    # many times over, so valid UTF-8 never gets here (nor is the library imported).
    from charset_normalizer import from_bytes

    best = from_bytes(data[:65536]).best()
    if best is not None:
        return normalise_charset(best.encoding) or "utf-8", None
    return "utf-8", None


def decode_html(data: bytes, header_charset: str | None = None) -> str:
    """Decode page bytes; undecodable bytes become U+FFFD rather than an exception."""
    charset, text = _sniff(data, header_charset)
    if text is None:
        text = data.decode(charset, errors="replace")
    return text[1:] if text.startswith("\ufeff") else text
