"""Vorbis comment lists (Vorbis I specification 5.2.1), shared by the FLAC and Ogg carriers.

A list is a LE32-length vendor string, a LE32 field count and that many LE32-length UTF-8
``NAME=value`` fields; names compare case-insensitively. FLAC stores it as its ``VORBIS_COMMENT``
block (RFC 9639 8.6); Ogg Vorbis and Opus (RFC 7845 5.2) as the second header packet, after a codec
prefix. The label is the field ``AIGC`` (the audio practice guide, as quoted in the rules digest).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from labeler import limits
from labeler.errors import CorruptFile, UnsafeInput
from labeler.metadata import FoundLabel, misplaced_label


def split(data: bytes, pos: int, what: str) -> tuple[bytes, list[bytes], int]:
    """``(vendor, [raw 'NAME=value' fields], end)`` of the comment list at ``data[pos:]``.

    ``what`` names the container in errors ("flac vorbis comment", "ogg comment header"); ``end`` is
    the offset after the last field. Raises :class:`~labeler.errors.CorruptFile` on a list that runs
    past ``data``; a hostile field count is bounded by the bytes there (each field costs 4).
    """
    try:
        (vendor_len,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if pos + vendor_len + 4 > len(data):
            raise CorruptFile(f"{what} is truncated")
        vendor = data[pos:pos + vendor_len]
        pos += vendor_len
        (count,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if count > (len(data) - pos) // 4:
            raise CorruptFile(f"{what} count is larger than its container")
        fields = []
        for _ in range(count):
            (size,) = struct.unpack_from("<I", data, pos)
            pos += 4
            if pos + size > len(data):
                raise CorruptFile(f"{what} field runs past its container")
            fields.append(data[pos:pos + size])
            pos += size
    except struct.error:
        raise CorruptFile(f"{what} is truncated") from None
    return vendor, fields, pos


def build(vendor: bytes, fields: list[bytes]) -> bytes:
    """The bytes of a comment list (no codec prefix, no framing bit)."""
    parts = [struct.pack("<I", len(vendor)), vendor, struct.pack("<I", len(fields))]
    for field in fields:
        parts += [struct.pack("<I", len(field)), field]
    return b"".join(parts)


def name(field: bytes) -> str:
    """A field's name, lower case (names compare case-insensitively)."""
    return field.split(b"=", 1)[0].decode("ascii", "replace").lower()


def labels(fields: list[bytes], where: Callable[[int, str], str], what: str
           ) -> tuple[list[FoundLabel], list[FoundLabel]]:
    """``(standard, other)`` labels of a list: ``AIGC`` fields, then other names holding "aigc" and labels
    put in other fields (``COMMENT``, ``DESCRIPTION``...: carrier ``vorbis-comment-<name>``).

    ``where(index, NAME)`` says where a field is, for people; ``what`` names the container in the
    size error (an ``AIGC`` value over :data:`labeler.limits.MAX_TEXT_VALUE` raises UnsafeInput).
    """
    found: list[FoundLabel] = []
    others: list[FoundLabel] = []
    for index, field in enumerate(fields):
        key = name(field)
        value = field.split(b"=", 1)[1] if b"=" in field else b""
        if "aigc" not in key:
            misplaced = misplaced_label("vorbis-comment", key, value, where(index, key.upper()))
            if misplaced is not None:
                others.append(misplaced)
            continue
        if len(value) > limits.MAX_TEXT_VALUE:
            raise UnsafeInput(f"{what} AIGC comment is over the {limits.MAX_TEXT_VALUE}-byte limit")
        text = value.decode("utf-8", "replace")
        if key == "aigc":
            found.append(FoundLabel("vorbis-comment", text, where(index, key.upper())))
        else:
            others.append(FoundLabel("vendor-key", text, where(index, key.upper()), standard=False))
    return found, others


def with_label(fields: list[bytes], value: str) -> list[bytes]:
    """``fields`` with every ``AIGC`` field removed and ``AIGC=value`` in the first one's place (or last)."""
    first = next((i for i, field in enumerate(fields) if name(field) == "aigc"), len(fields))
    kept = [field for field in fields if name(field) != "aigc"]
    kept.insert(first, b"AIGC=" + value.encode("utf-8"))  # kept[:first] == fields[:first]
    return kept
