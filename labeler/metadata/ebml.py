"""EBML, the binary layout of Matroska and WebM (RFC 8794): bounded reading and writing of elements.

An element is an ID (a variable-length integer of 1-4 bytes whose length marker is part of the ID),
a size (a variable-length integer of 1-8 bytes; all value bits set means "unknown size", RFC 8794
6.2) and ``size`` bytes of data. Master elements hold elements; the others hold integers, strings or
binary data.

Everything here is bounded for untrusted input: an ID longer than 4 bytes or a size longer than
8 bytes is refused, a size past the end of its parent or of the file is refused, element walks stop
after a caller-given count, and in-memory parsing (:func:`parse_children`) is only done on byte
strings the caller has already bounded, with a nesting limit. Nothing is allocated from a size read
in the file before that size has been checked against the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from labeler.errors import CorruptFile, UnsafeInput

#: RFC 8794 11.2: Void, which readers skip; used to pad where an element shrank or moved.
VOID = 0xEC
#: RFC 8794 11.3: CRC-32 of the rest of its parent's data (little-endian IEEE CRC).
CRC32 = 0xBF


@dataclass(frozen=True)
class Element:
    """One element header found in a file or a byte string.

    Attributes
    ----------
    id : int
        The element ID with its length marker (e.g. ``0x1A45DFA3``).
    offset : int
        Position of the ID's first byte.
    header : int
        Bytes of ID plus size.
    size : int or None
        Data bytes; None for an unknown size.
    """

    id: int
    offset: int
    header: int
    size: int | None

    @property
    def start(self) -> int:
        """Position of the first data byte."""
        return self.offset + self.header

    @property
    def end(self) -> int:
        """Position just past the data (only for a known size)."""
        assert self.size is not None
        return self.start + self.size

    @property
    def length(self) -> int:
        """Header plus data bytes (only for a known size)."""
        assert self.size is not None
        return self.header + self.size


def _vint(data: bytes, at: int, max_len: int, what: str) -> tuple[int, int, bool]:
    """(value without marker, length, all value bits set) of the variable-length integer at ``at``."""
    if at >= len(data):
        raise CorruptFile(f"EBML {what} cut short")
    first = data[at]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > max_len:
        raise CorruptFile(f"EBML {what} of more than {max_len} bytes")
    if at + length > len(data):
        raise CorruptFile(f"EBML {what} cut short")
    value = first & (0xFF >> length)
    for byte in data[at + 1 : at + length]:
        value = (value << 8) | byte
    return value, length, value == (1 << (7 * length)) - 1


def read_vint(data: bytes, at: int = 0) -> tuple[int, int]:
    """(value, length) of the variable-length integer at ``data[at:]`` (1-8 bytes, e.g. a track number)."""
    value, length, _ = _vint(data, at, 8, "integer")
    return value, length


def read_header(data: bytes, at: int = 0, base: int = 0) -> Element:
    """Parse the element header at ``data[at:]``; ``base`` is added to the reported offset.

    Raises
    ------
    CorruptFile
        A malformed or cut ID or size.
    """
    _, id_len, _ = _vint(data, at, 4, "element ID")
    ident = int.from_bytes(data[at : at + id_len], "big")
    size, size_len, unknown = _vint(data, at + id_len, 8, "element size")
    return Element(ident, base + at, id_len + size_len, None if unknown else size)


def header_at(src: BinaryIO, pos: int, limit: int) -> Element:
    """Read the element header at file position ``pos``; its data must end by ``limit``.

    Raises
    ------
    CorruptFile
        A malformed header, or data running past ``limit`` (its parent's end or the file's).
    """
    src.seek(pos)
    head = src.read(min(12, max(0, limit - pos)))
    element = read_header(head, 0, pos)
    if element.start > limit or (element.size is not None and element.end > limit):
        raise CorruptFile(f"EBML element 0x{element.id:X} at byte {pos} runs past its parent")
    return element


def parse_children(data: bytes, depth: int, max_depth: int) -> list[tuple[Element, bytes]]:
    """The child elements of a master element's data (already in memory), with their data.

    Unknown sizes are refused here (they are only legal for Segment and Cluster).

    Raises
    ------
    CorruptFile
        Malformed children.
    UnsafeInput
        Nesting deeper than ``max_depth``.
    """
    if depth > max_depth:
        raise UnsafeInput(f"EBML nesting deeper than {max_depth} levels")
    out: list[tuple[Element, bytes]] = []
    at = 0
    while at < len(data):
        element = read_header(data, at)
        if element.size is None or element.end > len(data):
            raise CorruptFile(f"EBML element 0x{element.id:X} runs past its parent")
        out.append((element, data[element.start : element.end]))
        at = element.end
    return out


def read_uint(data: bytes) -> int:
    """An unsigned integer element's value (0-8 bytes, big-endian)."""
    if len(data) > 8:
        raise CorruptFile(f"EBML integer of {len(data)} bytes")
    return int.from_bytes(data, "big")


# -- writing ----------------------------------------------------------------------------------------------


def encode_id(ident: int) -> bytes:
    """The bytes of an element ID (its marker is part of the value)."""
    return ident.to_bytes(max(1, (ident.bit_length() + 7) // 8), "big")


def encode_size(size: int, length: int | None = None) -> bytes:
    """A size as a variable-length integer: the shortest form, or exactly ``length`` bytes (1-8)."""
    if length is None:
        length = 1
        while size >= (1 << (7 * length)) - 1:  # all ones is reserved for "unknown"
            length += 1
    if not 1 <= length <= 8 or size >= (1 << (7 * length)) - 1:
        raise ValueError(f"size {size} does not fit an EBML size of {length} bytes")
    return (size | (1 << (7 * length))).to_bytes(length, "big")


#: An unknown size (8 bytes): a master element that runs until a parent-level element or the end.
UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def element(ident: int, data: bytes, size_length: int | None = None) -> bytes:
    """A whole element: ID, size, data."""
    return encode_id(ident) + encode_size(len(data), size_length) + data


def uint_element(ident: int, value: int, length: int | None = None) -> bytes:
    """An unsigned integer element (shortest big-endian form, or ``length`` bytes)."""
    n = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return element(ident, value.to_bytes(n, "big"))


def void(total: int) -> bytes:
    """A Void element exactly ``total`` bytes long (at least 2)."""
    if total < 2:
        raise ValueError("a Void element takes at least 2 bytes")
    for size_len in range(1, 9):
        data = total - 1 - size_len
        if data >= 0 and data < (1 << (7 * size_len)) - 1:
            return bytes([VOID]) + encode_size(data, size_len) + bytes(data)
    raise ValueError(f"no Void element of {total} bytes")


def fit(ident: int, data: bytes, room: int) -> bytes | None:
    """Element ``ident`` with ``data`` written in exactly ``room`` bytes, or None when it cannot be.

    The space left is a Void after it; a single spare byte is taken by a one byte longer size field.
    """
    plain = element(ident, data)
    spare = room - len(plain)
    if spare == 0:
        return plain
    if spare >= 2:
        return plain + void(spare)
    if spare == 1:
        size_len = len(plain) - len(encode_id(ident)) - len(data) + 1
        if size_len <= 8:
            return element(ident, data, size_len)
    return None


__all__ = [
    "CRC32", "Element", "UNKNOWN_SIZE", "VOID", "element", "encode_id", "encode_size", "fit", "header_at",
    "parse_children", "read_header", "read_uint", "read_vint", "uint_element", "void",
]
