"""Implicit metadata labels (GB 45438-2025 section 6, Appendix E): one carrier module per container.

Each carrier module (``jpeg``, ``png``, ``webp``, ``tiff``, ``gif``, ``heif``, ``riff``,
``id3``, ``flac``, ``ogg``, ``isobmff``, ``matroska``, ``flv``, ``avi``) exposes the same two functions:

``read(src: BinaryIO) -> list[FoundLabel]``
    Every AIGC label value found in the file, standard carrier first,
    without judging it (``detectors.metadata`` parses and judges).
``write(src: BinaryIO, dst: BinaryIO, value: str) -> None``
    Copy ``src`` to ``dst`` with the label ``value`` (the JSON text) in the
    format's standard carrier. The media payload is copied byte for byte; all
    other metadata is kept; an existing label is replaced, never duplicated.

Both raise :class:`~labeler.errors.CorruptFile` or
:class:`~labeler.errors.UnsafeInput` on broken or hostile input.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import BinaryIO, Protocol, runtime_checkable

from labeler.atomic import atomic_output, check_input, check_output
from labeler.errors import InvalidArgument, LabelerError
from labeler.formats import FORMAT_TABLE, sniff_file


@dataclass(frozen=True)
class FoundLabel:
    """One label value found in a file.

    Attributes
    ----------
    carrier : str
        Carrier name, e.g. ``"xmp-tc260"``, ``"png-text"``, ``"id3-txxx"``; see ``docs/formats.md``.
    raw : str
        The value as stored, after container-level decoding (XML unescaping,
        zlib, text encodings) but before any JSON parsing.
    location : str
        Where in the file it was found, for people (e.g. ``"APP1 XMP packet"``).
    standard : bool
        False for non-standard AI declarations (vendor keys, JSON in EXIF
        ImageDescription, bare ``AIGC{...}`` blobs): reported, never taken as a compliant label.
    """

    carrier: str
    raw: str
    location: str
    standard: bool = True


@runtime_checkable
class Carrier(Protocol):
    """What every carrier module (``labeler.metadata.<carrier>`` of the format table) provides.

    A carrier never decodes or re-encodes media: it copies the container and changes only the label.
    """

    def read(self, src: BinaryIO) -> list[FoundLabel]:
        """Every label value in the file open at ``src`` (from its start), standard copies first.

        Raises :class:`~labeler.errors.LabelerError` for a damaged or unsafe container.
        """
        ...

    def write(self, src: BinaryIO, dst: BinaryIO, value: str) -> None:
        """Copy ``src`` to ``dst`` with ``value`` in the standard carrier, replacing older copies there.

        Raises :class:`~labeler.errors.LabelerError` for a damaged or unsafe container.
        """
        ...


#: format name -> carrier module name
_CARRIER_MODULES = {f.name: f.carrier for f in FORMAT_TABLE}


def carrier_module(fmt: str) -> ModuleType:
    """Return the carrier module for a format name (see :data:`labeler.formats.FORMATS`)."""
    try:
        name = _CARRIER_MODULES[fmt]
    except KeyError:
        raise LabelerError(f"no metadata carrier for format {fmt!r}") from None
    return importlib.import_module(f"labeler.metadata.{name}")


def read_labels(path: str | os.PathLike[str], fmt: str | None = None) -> tuple[str, list[FoundLabel]]:
    """Return ``(format, labels found)`` for ``path``; its format is sniffed unless ``fmt`` gives it.

    Raises
    ------
    InvalidArgument
        ``path`` is not a str or path-like (``None``, bytes: for a file in memory use
        ``carrier_module(fmt).read(io.BytesIO(data))`` or :func:`detectors.verify`).
    LabelerError
        A missing path, a folder or other non-regular file, one that cannot be opened, or damaged,
        unsafe or unsupported content.
    """
    path = check_input(path)
    with _opened(path) as src:
        fmt = fmt or sniff_file(path)
        return fmt, carrier_module(fmt).read(src)


@dataclass(frozen=True)
class WriteResult:
    """What :func:`write_label` did.

    Attributes
    ----------
    format : str
        Container format of the file.
    carrier : str
        Carrier that holds the label now.
    bytes_added : int
        Output size minus input size (bytes; negative if a removed copy was larger).
    other_copies : tuple of FoundLabel
        Label copies left in carriers the writer cannot edit (e.g. EXIF
        UserComment), which a reader will flag as duplicates or conflicts.
    """

    format: str
    carrier: str
    bytes_added: int
    other_copies: tuple[FoundLabel, ...] = ()


def write_label(
    src_path: str | os.PathLike[str], dst_path: str | os.PathLike[str], value: str, *, fmt: str | None = None
) -> WriteResult:
    """Copy ``src_path`` to ``dst_path`` carrying ``value`` in the format's standard carrier.

    ``dst_path`` is written atomically and read back before it is renamed into
    place; ``src_path`` is never modified (if both name the same file, the file
    is replaced atomically). ``fmt`` is the source's format when the caller has probed it
    already (:class:`labeler.probe.Probe`); it is sniffed from the content otherwise.

    Raises
    ------
    InvalidArgument
        ``value`` is not a str, or is longer than the readers accept (:func:`check_value`); refused
        before any file is opened, the same for every format. A path that is not a str or path-like.
    LabelerError
        A missing source, a folder or other non-regular file as the source or a folder as
        ``dst_path``, a damaged, unsafe or unsupported source, or an output that cannot be written.
    """
    check_value(value)
    src_path = check_input(src_path)
    dst_path = check_output(dst_path)
    with _opened(src_path) as src:
        fmt = fmt or sniff_file(src_path)
        with atomic_output(dst_path) as dst:
            return _write_checked(fmt, src, dst, value)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened for reading; a file that cannot be (no permission) is a one-line LabelerError."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise LabelerError(exc.strerror or str(exc)) from None
    with handle:
        yield handle


def write_label_bytes(data: bytes, value: str, fmt: str) -> tuple[bytes, WriteResult]:
    """:func:`write_label` on an encoded file in memory: returns the labeled bytes (no file involved)."""
    check_value(value)
    out = io.BytesIO()
    result = _write_checked(fmt, io.BytesIO(data), out, value)
    return out.getvalue(), result


def check_value(value: str) -> None:
    """Refuse a label ``value`` no reader would take back: over :data:`labeler.limits.MAX_TEXT_VALUE`
    bytes as UTF-8.

    The readers cap one value at that size (the safety bound for untrusted files), counted in bytes by
    the binary carriers (RIFF, ID3, Matroska...) and in characters by the label parser; bytes are never
    fewer than characters, so a value under the limit reads back from every carrier. Checked here for
    every format alike, before anything is written: the XMP carriers (PNG, WebP, TIFF, GIF) would
    otherwise write a label that :mod:`detectors` reports as unreadable.

    Raises
    ------
    InvalidArgument
        One line naming the value's size and the limit.
    """
    from labeler import limits

    if not isinstance(value, str):
        raise InvalidArgument(f"the label value must be a str (AIGCLabel.to_json()), "
                              f"not {type(value).__name__}")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > limits.MAX_TEXT_VALUE:
        raise InvalidArgument(f"the label value is {size} bytes, over the {limits.MAX_TEXT_VALUE}-byte limit "
                              "of the label readers; shorten its fields")


def _write_checked(fmt: str, src: BinaryIO, dst: BinaryIO, value: str) -> WriteResult:
    module = carrier_module(fmt)
    module.write(src, dst, value)
    # Read back before the rename: a carrier that silently dropped the value (as ffmpeg does
    # without -movflags use_metadata_tags) must fail here, not ship an unlabeled file.
    dst.flush()
    size_out = dst.seek(0, os.SEEK_END)
    size_in = src.seek(0, os.SEEK_END)
    dst.seek(0)
    found = module.read(dst)
    if not found or found[0].raw != value or not found[0].standard:
        raise LabelerError(f"read-back after writing the {fmt} label did not return the label")
    same_carrier = [f for f in found[1:] if f.carrier == found[0].carrier and f.standard]
    if same_carrier:
        count = len(same_carrier) + 1
        raise LabelerError(f"writing the {fmt} label left {count} copies in {found[0].carrier}")
    return WriteResult(fmt, found[0].carrier, size_out - size_in, tuple(found[1:]))


def aigc_blob(payload: bytes) -> str | None:
    """A bare ``AIGC{...}`` or ``{"AIGC": ...}`` blob in a free-form segment (JPEG APPn/COM, GIF comment).

    These are non-standard declarations seen in real files (digest section 5); the text is returned
    for reporting, cut to :data:`labeler.limits.MAX_TEXT_VALUE` bytes, or None when there is none.
    The bare Appendix E object (``{"Label":"1","ContentProducer":...}``) put in such a segment is a
    label in the wrong place, reported the same way; it needs ``Label`` and ``ContentProducer`` or
    ``ProduceID`` among its keys, so that JSON comments of other tools are not taken for one.
    """
    from labeler import limits

    head = payload.lstrip(b"\x00 \t\r\n")
    if head[:4].upper() == b"AIGC" and b"{" in head[4:16]:
        raw = head
    else:
        at = payload.find(b'{"AIGC"')
        if at < 0:
            at = _bare_label_at(payload[: limits.MAX_TEXT_VALUE])
        if at < 0:
            return None
        raw = payload[at:]
    return raw[: limits.MAX_TEXT_VALUE].decode("utf-8", "replace").strip("\x00 \t\r\n")


def misplaced_label(family: str, field: str, text: str | bytes, location: str) -> FoundLabel | None:
    """A label put in a free-text field (a comment, a description) as a non-standard declaration, or None.

    The text is judged by :func:`aigc_blob`, the one rule for free-form places, so plain comments
    and other tools' JSON are not taken for a label. A label there is no GB 45438 label (wrong
    carrier) but must not read as "no label" either.

    Parameters
    ----------
    family : str
        The carrier family, e.g. ``"id3"``, ``"riff-info"``, ``"vorbis-comment"``, ``"xmp"``.
    field : str
        The field's name in that family (``COMM``, ``ICMT``, ``DESCRIPTION``...); the reported
        carrier is ``family-field`` in lower case (e.g. ``id3-comm``), so the verdict's reason names it.
    text : str or bytes
        The field's value; only its first :data:`labeler.limits.MAX_TEXT_VALUE` bytes are examined.
    location : str
        Where the field is, for people.
    """
    from labeler import limits

    payload = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    found = aigc_blob(payload[: limits.MAX_TEXT_VALUE])
    if found is None:
        return None
    # Field names come from the file: keep the carrier a short token of printable ASCII.
    slug = "".join(c if c.isascii() and (c.isalnum() or c in "_.:-") else "_" for c in field.lower())[:40]
    return FoundLabel(f"{family}-{slug}", found, location, standard=False)


def _bare_label_at(payload: bytes) -> int:
    """Offset of a bare Appendix E label object in ``payload``, or -1."""
    from labeler.record import LabelParseError, parse_label

    at = payload.find(b"{")
    if at < 0 or b'"Label"' not in payload:
        return -1
    try:
        fields = parse_label(payload[at:]).fields
    except LabelParseError:
        return -1
    party = fields["ContentProducer"] is not None or fields["ProduceID"] is not None
    return at if fields["Label"] is not None and party else -1


def copy_stream(src, dst, length: int | None = None, chunk: int = 1 << 20) -> None:
    """Copy ``length`` bytes (or everything) from ``src``'s current position to ``dst``.

    Raises :class:`~labeler.errors.CorruptFile` if ``src`` ends early.
    """
    if length is None:
        shutil.copyfileobj(src, dst, chunk)
        return
    remaining = length
    while remaining > 0:
        block = src.read(min(chunk, remaining))
        if not block:
            from labeler.errors import CorruptFile

            raise CorruptFile(f"file is truncated ({remaining} bytes missing)")
        dst.write(block)
        remaining -= len(block)


def read_all(src, limit: int) -> bytes:
    """Read the whole of ``src`` (from the start), refusing files over ``limit`` bytes."""
    from labeler.errors import UnsafeInput

    src.seek(0, os.SEEK_END)
    size = src.tell()
    if size > limit:
        raise UnsafeInput(f"file is {size} bytes, over the {limit}-byte limit for this format")
    src.seek(0)
    return src.read()


__all__ = [
    "FoundLabel",
    "WriteResult",
    "carrier_module",
    "read_labels",
    "write_label",
    "check_value",
    "aigc_blob",
    "misplaced_label",
    "copy_stream",
    "read_all",
]
