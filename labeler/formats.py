"""The formats this toolkit reads and writes: one table, and recognising a file from its first bytes.

Every fact about a container lives in its row of :data:`FORMAT_TABLE`: the medium, the file name
extensions, the leading bytes that identify it, the MIME type (what C2PA is told), the metadata
carrier module (``labeler.metadata.<carrier>``), whether the image pixel layers may re-encode it, and
Pillow's name for it. Adding a container is one carrier module plus one row; the sniffer, the
pipeline, the image I/O, C2PA signing and the readers all read the table.

Formats are recognised from the content, never from the file name (a name only tells an audio-only
``.m4a`` from a video ``.mp4`` when the ISO-BMFF brand does not and the track list cannot be read). An
MP4, Matroska or WebM file without a video track is audio (``m4a``, ``mka``, ``weba``: :func:`audio_only`).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from labeler.errors import CorruptFile, InvalidArgument, LabelerError, UnsupportedFormat


@dataclass(frozen=True)
class Format:
    """One row of :data:`FORMAT_TABLE`.

    Attributes
    ----------
    name : str
        Our name for the container (``"jpeg"``, ``"wav"``, ``"mp4"``...).
    medium : {"image", "audio", "video"}
        What it holds.
    extensions : tuple of str
        File name extensions that are normal for it, lower case with the dot; the first is canonical.
    mime : str
        MIME type (what c2pa-rs is told; from the content, never from the file name).
    carrier : str
        Module under :mod:`labeler.metadata` that reads and writes the AIGC label in it.
    magic : tuple of tuple of (int, bytes)
        Alternatives, each a list of ``(offset, bytes)`` that must all match, for the formats that a
        fixed signature identifies; empty for the ones :func:`sniff` recognises by parsing (MP3 frame
        sync, ISO-BMFF brands).
    pixel_layers : bool
        The image pixel layers (watermark, visible mark) may decode and re-encode it. GIF is False:
        re-quantising to a 256-colour palette would ruin both the picture and the mark.
    pillow : str or None
        Pillow's format name (images).
    c2pa : bool
        c2pa-rs can embed and read a manifest in it (checked with ``c2pa.Builder.get_supported_mime_types()``
        of c2pa-python 0.38: no Matroska, WebM or Ogg type is listed).
    """

    name: str
    medium: str
    extensions: tuple[str, ...]
    mime: str
    carrier: str
    magic: tuple[tuple[tuple[int, bytes], ...], ...] = ()
    pixel_layers: bool = False
    pillow: str | None = None
    c2pa: bool = True


def _riff(form: bytes, *containers: bytes) -> tuple[tuple[tuple[int, bytes], ...], ...]:
    return tuple(((0, c), (8, form)) for c in containers)


#: Every format, in the order :func:`sniff` tries the fixed signatures.
FORMAT_TABLE: tuple[Format, ...] = (
    Format("jpeg", "image", (".jpg", ".jpeg", ".jpe", ".jfif"), "image/jpeg", "jpeg",
           (((0, b"\xff\xd8\xff"),),), pixel_layers=True, pillow="JPEG"),
    Format("png", "image", (".png",), "image/png", "png", (((0, b"\x89PNG\r\n\x1a\n"),),),
           pixel_layers=True, pillow="PNG"),
    Format("webp", "image", (".webp",), "image/webp", "webp", _riff(b"WEBP", b"RIFF", b"RF64"),
           pixel_layers=True, pillow="WEBP"),
    Format("tiff", "image", (".tif", ".tiff"), "image/tiff", "tiff",
           (((0, b"II*\x00"),), ((0, b"MM\x00*"),)), pixel_layers=True, pillow="TIFF"),
    Format("gif", "image", (".gif",), "image/gif", "gif", (((0, b"GIF87a"),), ((0, b"GIF89a"),)),
           pillow="GIF"),
    # HEIF stills (ISO/IEC 23008-12), told from MP4 by the ftyp brands: AV1 (AVIF) or HEVC / generic.
    Format("avif", "image", (".avif",), "image/avif", "heif", pixel_layers=True, pillow="AVIF"),
    Format("heic", "image", (".heic", ".heif", ".hif"), "image/heic", "heif"),
    Format("wav", "audio", (".wav", ".wave"), "audio/wav", "riff", _riff(b"WAVE", b"RIFF", b"RF64", b"BW64")),
    Format("flac", "audio", (".flac",), "audio/flac", "flac", (((0, b"fLaC"),),)),
    # Vorbis and Opus only: sniff() refuses other Ogg codecs (labeler.metadata.ogg.check_head).
    Format("ogg", "audio", (".ogg", ".oga", ".opus"), "audio/ogg", "ogg", (((0, b"OggS"),),), c2pa=False),
    Format("mp3", "audio", (".mp3",), "audio/mpeg", "id3"),
    # An MP4, Matroska or WebM file with sound and no picture is audio (sniff_file / sniff_bytes).
    Format("m4a", "audio", (".m4a", ".m4b", ".mp4", ".aac"), "audio/mp4", "isobmff"),
    Format("mka", "audio", (".mka", ".mkv"), "audio/x-matroska", "matroska", c2pa=False),
    Format("weba", "audio", (".webm", ".weba"), "audio/webm", "matroska", c2pa=False),
    Format("mp4", "video", (".mp4", ".m4v", ".m4a", ".mov"), "video/mp4", "isobmff"),
    Format("mov", "video", (".mov", ".qt", ".mp4"), "video/quicktime", "isobmff"),
    # Matroska and WebM share the EBML magic 1A 45 DF A3; sniff() tells them apart by the header's DocType.
    Format("mkv", "video", (".mkv", ".mk3d"), "video/x-matroska", "matroska", c2pa=False),
    Format("flv", "video", (".flv",), "video/x-flv", "flv", (((0, b"FLV\x01"),),), c2pa=False),
    Format("avi", "video", (".avi",), "video/x-msvideo", "avi", _riff(b"AVI ", b"RIFF")),
    Format("webm", "video", (".webm",), "video/webm", "matroska", c2pa=False),
)
_BY_NAME = {f.name: f for f in FORMAT_TABLE}


def format_info(name: str) -> Format:
    """Return the :data:`FORMAT_TABLE` row of a format name.

    Raises
    ------
    UnsupportedFormat
        For a name that is not in the table.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnsupportedFormat(f"unknown format {name!r} (formats: {', '.join(_BY_NAME)})") from None


#: Container names this toolkit reads and writes, grouped by medium (derived from the table).
IMAGE_FORMATS = tuple(f.name for f in FORMAT_TABLE if f.medium == "image")
AUDIO_FORMATS = tuple(f.name for f in FORMAT_TABLE if f.medium == "audio")
VIDEO_FORMATS = tuple(f.name for f in FORMAT_TABLE if f.medium == "video")
FORMATS = IMAGE_FORMATS + AUDIO_FORMATS + VIDEO_FORMATS
#: File name extensions that are normal for each format (first one is canonical).
EXTENSIONS: dict[str, tuple[str, ...]] = {f.name: f.extensions for f in FORMAT_TABLE}
#: Image formats the pixel layers can re-encode without ruining them.
PIXEL_FORMATS = tuple(f.name for f in FORMAT_TABLE if f.pixel_layers)
#: Formats a C2PA manifest can be embedded in.
C2PA_FORMATS = tuple(f.name for f in FORMAT_TABLE if f.c2pa)


def check_extension(fmt: str, path: str | os.PathLike[str]) -> None:
    """Refuse an output name whose extension belongs to another format (labeling never converts).

    Raises
    ------
    InvalidArgument
        When ``path`` has an extension that is not one of ``fmt``'s.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext and ext not in EXTENSIONS[fmt]:
        raise InvalidArgument(
            f"output extension {ext!r} does not fit the input's format ({fmt}); labeling never converts "
            "formats"
        )


# Top-level ISO-BMFF box types that may open a file without 'ftyp' (old QuickTime).
_QT_FIRST_BOXES = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_M4A_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
# HEIF still-image major brands of ISO/IEC 23008-12 (heic/heix/heim/heis: HEVC images; mif1/mif2: any).
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"mif2"}


def sniff(head: bytes, name: str = "") -> str:
    """Return the format name for a file starting with ``head`` (at least 64 bytes if the file has them).

    ``name`` is only used to tell an audio-only ``.m4a`` from a video ``.mp4``
    when the brand does not say. Raises :class:`UnsupportedFormat` otherwise. The signature alone:
    an MP4, Matroska or WebM file is named a video format here; :func:`sniff_file` and
    :func:`sniff_bytes` look at its tracks.
    """
    ext = os.path.splitext(name)[1].lower()
    if not head:
        raise CorruptFile("empty file (0 bytes)")
    for fmt in FORMAT_TABLE:
        if any(all(head[at:at + len(sig)] == sig for at, sig in alt) for alt in fmt.magic):
            if fmt.name == "tiff":
                _refuse_tiff_raw(head)
            if fmt.name == "ogg":
                from labeler.metadata.ogg import check_head

                check_head(head)
            return fmt.name
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _ebml(head)
    if head.startswith(b"ID3"):
        return _after_id3(head)
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0:
        return "mp3"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        still = _heif_still(head)
        if still:
            return still
        if brand in _M4A_BRANDS:
            return "m4a"
        if brand == b"qt  ":
            return "mov"
        if brand == b"crx ":
            raise UnsupportedFormat(f"{_RAW} (Canon CR3) is not supported: {_RAW_HINT}")
        return "m4a" if ext in (".m4a", ".m4b", ".aac") else "mp4"
    if len(head) >= 8 and head[4:8] in _QT_FIRST_BOXES:
        return "mov"
    _refuse_known(head)
    raise UnsupportedFormat(
        "unrecognised file content (not JPEG, PNG, WebP, TIFF, GIF, AVIF, HEIC, WAV, MP3, FLAC, Ogg, MP4, "
        "MOV, M4A, MKV, WebM, FLV or AVI)"
    )


_RAW = "a camera raw file"
_RAW_HINT = "export it from the raw converter as JPEG, PNG or TIFF"
_TO_PNG = "convert it to PNG"
# Formats people try that this toolkit does not handle, told by their signature so that the refusal
# names them ("BMP is not supported") instead of calling them unrecognised: (offset, bytes) that must
# all match, their name, what to do instead. Checked only after every supported signature failed.
_KNOWN_UNSUPPORTED: tuple[tuple[tuple[tuple[int, bytes], ...], str, str], ...] = (
    (((0, b"8BPS\x00\x01"),), "PSD (Photoshop)", "export it as PNG or TIFF"),
    (((0, b"8BPS\x00\x02"),), "PSB (Photoshop)", "export it as PNG or TIFF"),
    (((0, b"\xff\x0a"),), "JPEG XL", _TO_PNG),
    (((0, b"\x00\x00\x00\x0cJXL \r\n\x87\n"),), "JPEG XL", _TO_PNG),
    (((0, b"\x00\x00\x00\x0cjP  \r\n\x87\n"),), "JPEG 2000", _TO_PNG),
    (((0, b"\xff\x4f\xff\x51"),), "JPEG 2000", _TO_PNG),
    (((0, b"IIRO\x08\x00\x00\x00"),), f"{_RAW} (Olympus ORF)", _RAW_HINT),
    (((0, b"IIRS\x08\x00\x00\x00"),), f"{_RAW} (Olympus ORF)", _RAW_HINT),
    (((0, b"MMOR\x00\x00\x00\x08"),), f"{_RAW} (Olympus ORF)", _RAW_HINT),
    (((0, b"IIU\x00"),), f"{_RAW} (Panasonic RW2)", _RAW_HINT),
    (((0, b"FUJIFILMCCD-RAW"),), f"{_RAW} (Fujifilm RAF)", _RAW_HINT),
)
#: Sizes of the BMP info headers (BITMAPCOREHEADER, BITMAPINFOHEADER, V2, V3, OS/2 2, V4, V5).
_BMP_HEADERS = (12, 40, 52, 56, 64, 108, 124)
#: TIFF tag DNGVersion (Adobe DNG 1.7 specification), in IFD 0 of every DNG.
_DNG_VERSION = 50706


def _refuse_known(head: bytes) -> None:
    """Raise :class:`UnsupportedFormat` naming ``head``'s format when it is a known one this toolkit does
    not handle (BMP, ICO, PSD, SVG, PDF, JPEG XL, JPEG 2000, camera raw), with what to do instead."""
    for alt, name, hint in _KNOWN_UNSUPPORTED:
        if all(head[at:at + len(sig)] == sig for at, sig in alt):
            raise UnsupportedFormat(f"{name} is not supported: {hint}")
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_HEADERS:
        raise UnsupportedFormat(f"BMP is not supported: {_TO_PNG}")
    if head[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and head[4:6] != b"\x00\x00":
        kind = "ICO (icon)" if head[2] == 1 else "CUR (cursor)"
        raise UnsupportedFormat(f"{kind} is not supported: {_TO_PNG}")
    if head.startswith(b"%PDF-"):
        # "unrecognised file content" first: a document is no media file at all (and callers match it)
        raise UnsupportedFormat("unrecognised file content: a PDF document, not a media file; export its "
                                "pages or pictures as PNG or JPEG")
    text = head[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    # an XML file whose root is <svg> (an HTML page that holds one is no SVG file)
    xml_start = text.startswith((b"<svg", b"<?xml", b"<!--", b"<!doctype svg"))
    if xml_start and b"<svg" in text and b"<html" not in text:
        raise UnsupportedFormat("SVG is not supported: render it to PNG")


def _refuse_tiff_raw(head: bytes) -> None:
    """Raise :class:`UnsupportedFormat` for a camera raw file laid out as TIFF: a DNG (the ``DNGVersion``
    tag in IFD 0, when IFD 0 is within ``head``) or a Canon CR2 (``CR`` after the TIFF header). Read as
    TIFF (as they were), their IFD 0 is mostly a small preview, the raw picture in a SubIFD that no pixel
    layer decodes, and the pixel layers' TIFF writer keeps IFD 0 alone."""
    if head[8:11] == b"CR\x02":
        raise UnsupportedFormat(f"{_RAW} (Canon CR2) is not supported: {_RAW_HINT}")
    order = "little" if head[:2] == b"II" else "big"
    ifd = int.from_bytes(head[4:8], order)
    count = int.from_bytes(head[ifd:ifd + 2], order) if 8 <= ifd <= len(head) - 2 else 0
    for at in range(ifd + 2, min(ifd + 2 + 12 * count, len(head) - 1), 12):
        if int.from_bytes(head[at:at + 2], order) == _DNG_VERSION:
            raise UnsupportedFormat(f"{_RAW} (DNG) is not supported: {_RAW_HINT}")


def _heif_still(head: bytes) -> str | None:
    """``"avif"`` or ``"heic"`` when the ``ftyp`` names a HEIF still image (major brand ``avif``, or a
    HEIF major brand such as ``heic`` / ``mif1`` with ``avif`` among the compatible ones for AVIF);
    None for movies and image sequences (``avis``, ``msf1``, ``hevc``: tracks, read as MP4)."""
    size = int.from_bytes(head[:4], "big")
    major = head[8:12]
    compatible = {head[i:i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
    if major == b"avif" or (major in _HEIF_BRANDS and b"avif" in compatible):
        return "avif"
    return "heic" if major in _HEIF_BRANDS else None


def _ebml(head: bytes) -> str:
    # The EBML header's DocType says which: "matroska" or "webm" (RFC 8794 11.2.6, RFC 9559 6).
    from labeler.metadata.matroska import DOCTYPES, doctype_of

    doctype = doctype_of(head)
    if doctype in DOCTYPES:
        return DOCTYPES[doctype]
    raise UnsupportedFormat(f"EBML file with DocType {doctype!r} (only matroska and webm are supported)")


def _after_id3(head: bytes) -> str:
    # An ID3v2 tag may precede FLAC too; look past it when the header is in reach.
    if len(head) >= 10:
        size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        start = 10 + size + (10 if head[5] & 0x10 else 0)
        if head[start:start + 4] == b"fLaC":
            return "flac"
    return "mp3"


def sniff_file(path: str | os.PathLike[str]) -> str:
    """Return the format name of the file at ``path`` (reads its first bytes, and an MP4's, Matroska's
    or WebM's track list: :func:`audio_only`).

    Raises
    ------
    InvalidArgument
        ``path`` is not a str or path-like (bytes of a file in memory: :func:`sniff_bytes`), or holds a NUL.
    LabelerError
        One line: a folder; empty or unrecognised content (:class:`~labeler.errors.UnsupportedFormat`,
        :class:`~labeler.errors.CorruptFile`).
    OSError
        A missing file or one that cannot be read (``FileNotFoundError``, ``PermissionError``).
    """
    p = _sniff_path(path)
    try:
        opened = p.open("rb")
    except IsADirectoryError:
        raise LabelerError(f"{p} is a folder, not a file") from None
    # Other OSErrors (missing, permission denied) propagate as they are: callers such as verify word them
    # after the file's name, which a "cannot read PATH: ..." here repeated.
    with opened as handle:
        head = handle.read(4096)
        if head.startswith(b"ID3") and len(head) >= 10:
            size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
            handle.seek(10 + size + (10 if head[5] & 0x10 else 0))
            if handle.read(4) == b"fLaC":
                return "flac"
        return audio_only(sniff(head, p.name), handle)


def _sniff_path(path: object) -> Path:
    """``path`` as a :class:`~pathlib.Path`, or :class:`InvalidArgument` naming what it is instead (bytes
    gave Path's TypeError, "... not <class 'bytes'>")."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        raise InvalidArgument(f"sniff_file takes a path, not {type(path).__name__}; for a file in memory "
                              "use labeler.formats.sniff_bytes")
    if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
        raise InvalidArgument(f"sniff_file takes a path (a str or path-like giving a str), "
                              f"not {type(path).__name__}")
    if "\0" in os.fspath(path):
        raise InvalidArgument("the path given to sniff_file contains a NUL character")
    return Path(path)


def sniff_bytes(data: bytes, name: str = "") -> str:
    """Return the format name of a whole file in memory (:func:`sniff`, then :func:`audio_only`)."""
    return audio_only(sniff(data, name), io.BytesIO(data))


#: The audio format of each video container, for files of it that hold sound and no picture.
AUDIO_ONLY = {"mp4": "m4a", "mkv": "mka", "webm": "weba"}


def audio_only(fmt: str, src: BinaryIO) -> str:
    """``fmt``, or its audio format (:data:`AUDIO_ONLY`) when the file ``src`` has an audio track and no
    video track: a voice clip a browser recorded as WebM, or an MP4 exported without picture, is labeled
    and verified as audio (audio watermark, audible cue), not refused for want of frames. The other way
    round, an ``m4a`` (an audio brand, or an ``.m4a`` name on an ``isom`` file) with a video track is
    ``mp4``: the content decides, not the name.

    The track list is read from the container (``hdlr`` handler types of an MP4's tracks; the TrackType
    of Matroska's TrackEntries before the first Cluster). A container too damaged to tell keeps ``fmt``:
    its readers then say what is wrong.
    """
    if fmt not in AUDIO_ONLY and fmt != "m4a":
        return fmt
    try:
        if fmt in ("mp4", "m4a"):
            from labeler.metadata.bmff_boxes import track_handlers

            kinds = {{b"vide": "video", b"soun": "audio"}.get(h, "other") for h in track_handlers(src)}
        else:
            from labeler.metadata.matroska import track_types

            kinds = {{1: "video", 2: "audio"}.get(t, "other") for t in track_types(src)}
    except LabelerError:
        return fmt
    if fmt == "m4a":  # named so by its brand or its name: a picture track makes it a video all the same
        return "mp4" if "video" in kinds else fmt
    return AUDIO_ONLY[fmt] if "audio" in kinds and "video" not in kinds else fmt


def medium(fmt: str) -> str:
    """Return ``"image"``, ``"audio"`` or ``"video"`` for a format name."""
    return format_info(fmt).medium
