"""Everything that reads and judges labels: metadata readers, the verdict, the report.

The entry point is :func:`verify`; it takes a path, an encoded file in memory or a pixel array::

    >>> from detectors import verify
    >>> report = verify("labeled.jpg")
    >>> report.verdict, report.confidence, report.metadata.fields["ProduceID"]
    ('confirmed', 'medium', 'img-42')
    >>> verify(upload_bytes).to_dict()["verdict"]   # e.g. the body of an HTTP upload
    'confirmed'
    >>> verify(pixels, key=key).watermark["present"]   # a generation backend's own array
    False
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from detectors.arguments import key_argument, store_argument, trust_anchor_files, visible_argument
from detectors.c2pa import read_c2pa

# The per-layer readers live in detectors.layers; the public names among them stay importable from
# ``detectors`` (QUICK_WATERMARK_NOTE and unexamined_warnings are in __all__; the *_layer functions
# are named ``detectors.watermark_layer`` and so on in docstrings elsewhere).
from detectors.layers import (
    QUICK_WATERMARK_NOTE,
    audio_visible_layer,
    unexamined_warnings,
    unreadable_metadata,
    video_visible_layer,
    visible_layer,
    watermark_layer,
)
from detectors.metadata import MetadataLayer, judge_metadata
from detectors.report import SCHEMA, Report
from detectors.sources import Pixels, Samples, VideoProbe
from detectors.verdict import CONFIDENCES, VERDICTS, Decision, cross_check, decide
from labeler.errors import InvalidArgument, LabelerError, PartialFile
from labeler.formats import EXTENSIONS, format_info, medium, sniff_bytes, sniff_file
from labeler.metadata import FoundLabel, carrier_module, read_labels

if TYPE_CHECKING:
    import numpy as np

__all__ = ["verify", "Report", "MetadataLayer", "VERDICTS", "CONFIDENCES", "SCHEMA", "Decision", "decide",
           "cross_check", "Source", "TEMP_PREFIX", "VerifyOptions", "VERIFY_LAYERS", "QUICK_LAYERS",
           "QUICK_WATERMARK_NOTE", "parse_verify_layers", "unexamined_warnings"]

#: The layers :func:`verify` can examine, in report order.
VERIFY_LAYERS = ("metadata", "c2pa", "watermark", "visible")
#: ``layers="quick"`` (``aigc verify --quick``): triage without the visible search, the slow layer.
QUICK_LAYERS = ("metadata", "c2pa", "watermark")

#: Formats :func:`verify` reads from bytes without a temporary file (MP4/MOV/M4A need a seekable file
#: for ffmpeg: their index may sit at the end).
IN_MEMORY_FORMATS = ("jpeg", "png", "webp", "tiff", "gif", "wav", "flac", "mp3", "ogg")
#: Encoded audio (bytes) from which :func:`verify` reads a file spilled to its private folder instead of
#: memory: 16 MiB is ~17 minutes of 128 kbit/s MP3, whose samples (~360 MB of float32) are then streamed
#: (:mod:`detectors.audio_scan`) rather than decoded whole, or refused as too much to decode in memory.
SPILL_AUDIO_BYTES = 16 << 20
#: What :func:`verify` accepts.
Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, "np.ndarray"]
#: Prefix of the private temporary folder :func:`verify` makes for in-memory data that a reader can only
#: take as a file (C2PA, ffmpeg); the folder is removed before ``verify`` returns, also on error.
TEMP_PREFIX = "aigc-verify-"


def verify(
    source: Source,
    *,
    key: bytes | None = None,
    trust_anchors: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    visible: bool = True,
    manifest_store: str | os.PathLike[str] | None = None,
    layers: str | Sequence[str] | None = None,
) -> Report:
    """Read every label layer of ``source`` and judge them.

    Parameters
    ----------
    source : path-like, bytes-like or ndarray
        A file path; or a whole encoded file in memory (``bytes``, ``bytearray``, ``memoryview``: the
        format is sniffed from the content; ``report.file`` is ``"<bytes>"``); or decoded pixels, a
        NumPy array ``(H, W)`` or ``(H, W, C)`` with C in 1..4, uint8 or uint16 (either byte order;
        ``report.file`` is ``"<array>"``, ``format`` None, ``medium`` ``"image"``): an array has no
        container, so only the pixel layers apply (watermark with ``key``, visible mark);
        ``layers.metadata`` and ``layers.c2pa`` are absent.
    key : bytes, bytearray or memoryview, optional
        Watermark key, non-empty; without it the watermark layer is not examined (``layers.watermark``
        absent).
    trust_anchors : list of str, or one path, optional
        PEM files of trusted C2PA roots; a manifest whose chain ends in one is ``Trusted``. The C2PA
        layer is always read, offline (no remote manifests, no OCSP); not for arrays, nor for the types
        C2PA defines no manifest for (Ogg, Matroska, WebM, FLV: ``examined`` leaves ``c2pa`` out).
    visible : bool
        Look for our explicit label: the visible "AI生成"-style mark in images and video, the audio cue
        and voice prompt (``layers.visible``). False is the same as leaving ``visible`` out of ``layers``.
        A bool (a NumPy bool too); another type is refused (the text ``"false"`` would be true).
    manifest_store : str or path-like, optional
        A manifest store (:func:`labeler.provenance.store.open_store`: a SQLite file) in which to look
        up the watermark's payload when the file carries no valid manifest of its own (stripped by a
        re-upload): a manifest found there is validated against the file with the same trust settings
        and reported as ``layers.c2pa`` with ``source: "store"`` (its hard binding may not match a
        re-encoded file; that is expected, see :mod:`detectors.recovery`). Needs ``key``.
    layers : str or sequence of str, optional
        Which layers to examine: names from :data:`VERIFY_LAYERS` (``"metadata,c2pa"`` or a sequence),
        or ``"quick"`` (or ``["quick"]``) for :data:`QUICK_LAYERS` (metadata, C2PA and, with ``key``, the
        watermark: no visible search; the image watermark is then read at its geometry as given, no
        rescale or rotation search, and the layer's ``note`` says so when nothing was found). Default:
        all. ``report.examined`` lists the layers examined, so a layer left out reads as "not examined",
        never as "absent" (nor do the reasons and warnings call it absent); the verdict rules are
        unchanged for those examined (a metadata layer not examined counts as no label, as for a pixel
        array).

    Returns
    -------
    Report
        ``verdict``, ``confidence``, ``reasons``, the layers and ``warnings``; the rules are in
        ``docs/verdicts.md``.

    Raises
    ------
    InvalidArgument
        ``layers`` names an unknown layer or none (``visible`` alone with ``visible=False`` included),
        or names ``watermark`` without a ``key``, or a ``manifest_store`` without the watermark layer
        and a key; ``key`` is not ``bytes``, ``bytearray`` or ``memoryview`` (a NumPy array included),
        or is empty; ``visible`` is not a bool; ``manifest_store`` is not a str or path-like;
        ``trust_anchors`` is not a path or a list of paths, or one of its files is missing or holds no
        PEM certificate (a caller's mistake, not bad input: a bad anchor would otherwise drop the whole
        C2PA layer).

    Notes
    -----
    Never raises for bad input: problems reading it are in ``report.errors`` (and ``report.verdict`` is
    then ``None``). Metadata carriers that cannot be parsed (a malformed XMP packet, a chunk that fails
    its CRC, a truncated container) are the metadata layer's problem: the other layers still run, and
    only when none of them can read anything either is the file unreadable. A layer asked for that could
    not be examined gets a line in ``report.warnings`` (:func:`unexamined_warnings`). Thread-safe: keeps
    no state between calls, so a web server may call it from many threads at once. Images and WAV, FLAC,
    MP3 and Ogg in memory (:data:`IN_MEMORY_FORMATS`) are read entirely from memory: the carriers, the
    pixels or samples (MP3 through ffmpeg's standard input) and C2PA (c2pa-python's stream API); no
    temporary file. M4A, video, AVIF and HEIC are read from a file (ffmpeg needs a seekable one), and so is
    audio over :data:`SPILL_AUDIO_BYTES` (its samples are then streamed in bounded memory, not decoded
    whole), so their bytes are also written to a private temporary folder (prefix :data:`TEMP_PREFIX`)
    that is removed before this function returns; every layer, the pixel layers included, reads that
    file as it would the path.
    """
    key = key_argument(key)
    anchors = trust_anchor_files(trust_anchors)
    visible = visible_argument(visible)
    manifest_store = store_argument(manifest_store)
    wanted = tuple(n for n in parse_verify_layers(layers) if visible or n != "visible")
    if not wanted:  # layers="visible", visible=False: a verdict "none" from looking at nothing
        raise InvalidArgument("no layers to verify: layers names only visible, and visible=False leaves "
                              "it out")
    # ``layers="quick"`` (or ``["quick"]``) is triage: the watermark is read at the geometry as given only
    # (no lattice search)
    quick = layers is not None and _layer_names(layers) == ["quick"]
    if key is None and layers is not None and not quick and "watermark" in wanted:
        raise InvalidArgument("the watermark layer needs a key")
    if manifest_store is not None and (key is None or "watermark" not in wanted):
        raise InvalidArgument("a manifest store needs the watermark layer and a key (the store is searched "
                              "by the watermark's payload)")
    opts = VerifyOptions(key, anchors, "visible" in wanted, manifest_store, wanted, quick)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _verify_bytes(bytes(source), opts)
    if isinstance(source, (str, os.PathLike)):
        return _verify_path(source, opts)
    if hasattr(source, "__array_interface__"):
        return _verify_array(source, opts)
    report = Report(file=f"<{type(source).__name__}>")
    report.errors.append(f"cannot verify a {type(source).__name__}: give a path, bytes or a NumPy array")
    return report


@dataclass(frozen=True)
class VerifyOptions:
    """What :func:`verify` examines and with what (see its parameters)."""

    key: bytes | None = None
    trust_anchors: tuple[str, ...] = ()
    visible: bool = True
    manifest_store: str | None = None
    layers: tuple[str, ...] = VERIFY_LAYERS
    #: ``layers="quick"``: the image watermark is read as given (no rescale / rotation search), a JPEG of
    #: 512 px a side or more at half size only (:func:`detectors.watermark.detect_half`).
    quick: bool = False


def parse_verify_layers(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """Validate the ``layers`` of :func:`verify` and return them in :data:`VERIFY_LAYERS` order.

    ``None`` is every layer; ``"quick"`` is :data:`QUICK_LAYERS`; otherwise comma-separated names
    (or a sequence of them). Raises :class:`~labeler.errors.InvalidArgument` (one line) for an unknown
    name or an empty list.
    """
    if spec is None:
        return VERIFY_LAYERS
    names = _layer_names(spec)
    if names == ["quick"]:
        return QUICK_LAYERS
    if not names:
        raise InvalidArgument("no layers to verify given")
    if "quick" in names:  # was "unknown layer 'quick' (...; or quick)", which read as a contradiction
        raise InvalidArgument("quick stands alone: it cannot be combined with other layers")
    for name in names:
        if name not in VERIFY_LAYERS:
            raise InvalidArgument(f"unknown layer {name!r} to verify (layers: {', '.join(VERIFY_LAYERS)}; "
                                  "or quick)")
    return tuple(n for n in VERIFY_LAYERS if n in names)


def _layer_names(spec: str | Sequence[str]) -> list[str]:
    """The names of a ``layers`` argument, stripped, empty ones dropped (one parse for the layers and
    for the ``quick`` flag, so ``"quick"`` and ``["quick"]`` mean the same)."""
    items = spec.split(",") if isinstance(spec, str) else spec
    if isinstance(spec, (bytes, bytearray, memoryview)):  # a sequence too, of ints: "not int (109)"
        raise InvalidArgument(f"layers must be a str or a sequence of str, not {type(spec).__name__}")
    try:
        items = list(items)
    except TypeError:
        raise InvalidArgument(f"layers must be a str or a sequence of str, not {type(spec).__name__}"
                              ) from None
    for item in items:
        if not isinstance(item, str):
            raise InvalidArgument(f"layers must name layers as str, not {type(item).__name__} ({item!r})")
    return [n.strip() for n in items if n.strip()]


def _verify_path(path: str | os.PathLike[str], opts: VerifyOptions) -> Report:
    report = Report(file=os.fspath(path))
    p = Path(path)
    try:
        report.size = _regular_file(path)
        fmt = sniff_file(p)
        carriers = _read_carriers(lambda: _cut_checked(fmt, read_labels(p, fmt)[1], p), opts)
    except Exception as exc:  # noqa: BLE001 - reported, see _read_error
        report.errors.append(_read_error(exc))
        return report
    ext = p.suffix.lower()
    if ext and ext not in EXTENSIONS.get(fmt, ()):
        report.warnings.append(f"extension {ext} does not match the content ({fmt})")
    pixels = Pixels(p, fmt) if medium(fmt) == "image" else None
    _judge(report, fmt, carriers, pixels, p, opts)
    return report


def _regular_file(path: str | os.PathLike[str]) -> int:
    """The size of the regular file at ``path``; a one-line ``LabelerError`` for anything else.

    A FIFO would block the first read forever (and a device may never end), so only regular files
    (or links to one) are opened; ``""`` is ``Path(".")``, the current folder, so it is named here.
    """
    name = os.fspath(path)
    if name in ("", b""):
        raise LabelerError("empty file name")
    if ("\0" if isinstance(name, str) else b"\0") in name:  # os.stat's ValueError: an "internal error"
        raise LabelerError("the file name contains a NUL character")
    mode = os.stat(path).st_mode  # follows links: a link to a regular file is read
    if stat.S_ISDIR(mode):
        raise LabelerError("is a folder, not a file")
    if not stat.S_ISREG(mode):
        kind = ("FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode)
                else "character device" if stat.S_ISCHR(mode) else "block device" if stat.S_ISBLK(mode)
                else "special file")
        raise LabelerError(f"not a regular file ({kind})")
    return os.stat(path).st_size


@dataclass
class _Carriers:
    """What the metadata readers gave: the labels, why the carriers could not be read (``damage``), or
    why the labels found are those of the part of a file cut short (``partial``)."""

    found: list[FoundLabel]
    damage: str | None = None
    partial: str | None = None


def _read_carriers(read: Any, opts: VerifyOptions) -> _Carriers:
    """The labels found, or none and why when a carrier is damaged or unsafe to parse.

    One bad byte in an XMP packet or a text chunk's CRC is the metadata layer's problem, not the file's:
    the pixels, the samples and a C2PA manifest may still be intact, so the other layers still run
    (:func:`_judge`). A file cut short after its carriers (:class:`~labeler.errors.PartialFile`) gives
    the labels before the cut. ``OSError`` (the file cannot be opened) and parser bugs end the report.
    """
    if "metadata" not in opts.layers:
        return _Carriers([])  # only the format is needed: no carrier parsing
    try:
        return _Carriers(read())
    except PartialFile as exc:
        return _Carriers(exc.found, partial=str(exc))
    except LabelerError as exc:  # CorruptFile, UnsafeInput
        return _Carriers([], damage=str(exc))


def _cut_checked(fmt: str, found: list[FoundLabel], src: Path | bytes) -> list[FoundLabel]:
    """``found``, or :class:`~labeler.errors.PartialFile` with it for an MP3 whose audio is cut short after
    its tags (the WAV reader raises it itself; the MP3 one cannot, as a label call reads its cut output
    back: :func:`labeler.metadata.id3.check_cut`)."""
    if fmt != "mp3":
        return found
    from labeler.metadata.id3 import check_cut

    return check_cut(found, src)


def _verify_bytes(data: bytes, opts: VerifyOptions) -> Report:
    report = Report(file="<bytes>", size=len(data))
    try:
        # The whole buffer: sniff looks past an ID3 tag (FLAC behind ID3) and into an MP4's or WebM's tracks.
        fmt = sniff_bytes(data)
        carriers = _read_carriers(lambda: _cut_checked(fmt, carrier_module(fmt).read(io.BytesIO(data)), data),
                                  opts)
        if fmt in IN_MEMORY_FORMATS and not (medium(fmt) == "audio" and len(data) > SPILL_AUDIO_BYTES):
            # Every reader takes memory here: the carriers, the pixels or samples, C2PA's stream API.
            pixels = Pixels(data, fmt) if medium(fmt) == "image" else None
            _judge(report, fmt, carriers, pixels, data, opts)
            return report
        with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as folder:
            # Only for the readers that need a path; private (mode 0700 folder), removed on any exit.
            spilled = Path(folder) / f"input{EXTENSIONS[fmt][0]}"
            spilled.write_bytes(data)
            # An AVIF or HEIC is decoded from the spilled file as from a path: the pixel layers must
            # see it, or both would be dropped without a word.
            pixels = Pixels(spilled, fmt) if medium(fmt) == "image" else None
            _judge(report, fmt, carriers, pixels, spilled, opts)
    except Exception as exc:  # noqa: BLE001 - reported, see _read_error
        report.errors.append(_read_error(exc))
    return report


def _verify_array(array: Any, opts: VerifyOptions) -> Report:
    import numpy as np

    report = Report(file="<array>", medium="image")
    pixels = np.asarray(array)
    if pixels.dtype.kind == "u" and pixels.dtype.itemsize == 2 and not pixels.dtype.isnative:
        pixels = pixels.astype(np.uint16)  # big-endian uint16 ('>u2'): the same values; was refused
    problem = _array_problem(pixels)
    if problem:
        report.errors.append(problem)
        return report
    source = Pixels.of(pixels)
    # No container: no metadata label, no C2PA manifest. The verdict sees an empty metadata layer; the
    # report leaves both layers out rather than claim they were looked for.
    empty = MetadataLayer()
    if opts.key is not None and "watermark" in opts.layers:
        report.examined.append("watermark")
        report.watermark = _guarded(report, "watermark", watermark_layer, source, "image", opts.key, empty,
                                    quick=opts.quick)
    if opts.visible:
        report.examined.append("visible")
        report.visible = _guarded(report, "visible", visible_layer, source)
    # No container: the metadata label and the manifest are absent by construction (not "not examined"),
    # so the reasons may say so (docs/verdicts.md rows 17, 28, 32).
    _conclude(report, decide(empty, report.watermark, None, report.visible))
    # the same "could not be examined" lines as for the encoded picture (e.g. an image under 128 px)
    report.warnings.extend(unexamined_warnings(report))
    if not report.examined:
        report.warnings.append("none of the layers asked for could be examined: a pixel array has no "
                               "metadata or C2PA manifest")
    return report


def _array_problem(pixels: Any) -> str | None:
    import numpy as np

    if pixels.dtype not in (np.uint8, np.uint16):
        return f"pixel array must be uint8 or uint16, not {pixels.dtype}"
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and not 1 <= pixels.shape[2] <= 4):
        return f"pixel array must be (H, W) or (H, W, 1..4), not {pixels.shape}"
    if min(pixels.shape[:2]) < 1:
        return f"pixel array is empty {pixels.shape}"
    return None


def _judge(report: Report, fmt: str, carriers: _Carriers, pixels: Pixels | None, path: Path | bytes,
           opts: VerifyOptions) -> None:
    """The layers of a container file that ``opts.layers`` asks for, then the verdict.

    ``path`` is the file for the readers that need one (ffmpeg, the audio readers), or the encoded
    image itself when every reader takes memory. ``carriers.damage`` is why the metadata carriers could
    not be read (:func:`_read_carriers`): the metadata layer then says so and the other layers still
    run; if none of them can read anything either, the file is unreadable (``errors``, verdict None).
    """
    found, damage = carriers.found, carriers.damage
    report.format, report.medium = fmt, medium(fmt)
    # A layer not examined is judged as the verdict judges a missing one; the report leaves it out and
    # ``examined`` says it was not looked at.
    metadata = MetadataLayer()
    if "metadata" in opts.layers:
        metadata = judge_metadata(found) if damage is None else unreadable_metadata(damage, path)
        report.metadata = metadata
        report.examined.append("metadata")
    # C2PA defines no manifest for Ogg, Matroska, WebM or FLV (c2pa-rs reads none): there is nothing to
    # look at, as for the visible layer on a medium it does not cover, so the layer is not examined.
    c2pa_wanted = "c2pa" in opts.layers and format_info(fmt).c2pa
    if c2pa_wanted:
        report.examined.append("c2pa")
    wants_mark = opts.key is not None and "watermark" in opts.layers
    samples = (Samples(path, key=opts.key if wants_mark else None, labels=opts.visible)
               if report.medium == "audio" else None)
    video = VideoProbe(path) if report.medium == "video" and isinstance(path, Path) else None
    if report.medium == "image" and not format_info(fmt).pillow and pixels is not None:
        # HEIC: Pillow has no HEVC decoder; ffmpeg 7.1+ decodes it (labeler.media.heic). Tried once here:
        # where it cannot, one warning says so and the pixel layers are left out, not reported as failed.
        asked = [name for name, wanted in (("watermark", opts.key is not None and "watermark" in opts.layers),
                                           ("visible mark", opts.visible)) if wanted]
        if asked and pixels.get() is None:
            verb = "were" if len(asked) > 1 else "was"
            report.warnings.append(f"{fmt} pixels cannot be decoded here ({pixels.error}), so the "
                                   f"{' and the '.join(asked)} {verb} not examined")
            pixels = None
    decodable = pixels is not None or report.medium != "image"
    if opts.key is not None and "watermark" in opts.layers and decodable:
        report.examined.append("watermark")
        report.watermark = _guarded(report, "watermark", watermark_layer, pixels, report.medium, opts.key,
                                    metadata, path, samples, quick=opts.quick, video=video)
    if opts.visible and (pixels is not None or report.medium == "video" or samples is not None):
        report.examined.append("visible")
    if opts.visible and pixels is not None:
        report.visible = _guarded(report, "visible", visible_layer, pixels)
    elif opts.visible and report.medium == "video":
        report.visible = _guarded(report, "visible", video_visible_layer, path, video)
    elif opts.visible and samples is not None:
        report.visible = _guarded(report, "visible", audio_visible_layer, samples)
    anchors = list(opts.trust_anchors) or None
    mime = format_info(fmt).mime
    if c2pa_wanted:
        c2pa_layer = _guarded(report, "c2pa", read_c2pa, path, trust_anchors=anchors, mime=mime)
        report.c2pa = c2pa_layer.to_dict() if c2pa_layer is not None else None
    if report.c2pa is not None and report.c2pa["present"]:
        report.c2pa["source"] = "embedded"
    # The store lookup is part of the c2pa layer: not done when C2PA was left out (--layers); done for a
    # format that carries no manifest itself (a WAV transcoded to Ogg), which then has a c2pa layer.
    if opts.manifest_store and "c2pa" in opts.layers and report.watermark and report.watermark.get(
            "present") and not (report.c2pa and report.c2pa["present"]
                                and report.c2pa["state"] in ("Trusted", "Valid")):
        _recover(report, opts.manifest_store, path, mime, anchors)
        if report.c2pa is not None and "c2pa" not in report.examined:
            report.examined.insert(1 if "metadata" in report.examined else 0, "c2pa")
    if damage is not None and not _read_anything(report):
        # The carriers broke and nothing else in the file could be read either: unreadable, not unlabeled.
        _unreadable(report, damage)
        return
    # A manifest in a type C2PA defines none for is absent by design, not merely not looked at, whatever
    # --layers asked for (a reason "C2PA not examined" on an MKV contradicted the report's own list)
    judged = [*report.examined,
              *(["c2pa"] if not format_info(fmt).c2pa and "c2pa" not in report.examined else [])]
    _conclude(report, decide(metadata, report.watermark, report.c2pa, report.visible, examined=judged))
    report.warnings.extend(unexamined_warnings(report))
    if pixels is not None and pixels.salvaged:
        read_too = "; the labels before the cut were read" if carriers.partial else ""
        report.warnings.append(f"{pixels.salvaged}: {pixels.salvage_note}{read_too}")
    elif carriers.partial:  # no pixel layer looked: the cut must still be said
        report.warnings.append(f"damaged {fmt} file: {carriers.partial}: the labels before the cut were read")
    if samples is not None and samples.damage is not None:
        report.warnings.append(f"damaged {fmt} file: {samples.damage}: the sound was examined as it decodes "
                               "(libsndfile skips or conceals a damaged page)")
    if not report.examined and "c2pa" in opts.layers:
        # e.g. ``layers="c2pa"`` on an Ogg file: a bare "none" would read as "looked and found nothing"
        report.warnings.append(f"none of the layers asked for could be examined: C2PA defines no manifest "
                               f"for {fmt} files")


def _read_anything(report: Report) -> bool:
    """Some layer other than the metadata read the file: decoded pixels or samples (the watermark was
    checked, the visible search ran), or found a C2PA manifest."""
    wm, vis, cp = report.watermark, report.visible, report.c2pa
    return bool((wm is not None and wm.get("checked"))
                or (vis is not None and (vis.get("present") or not vis.get("note")))
                or (cp is not None and cp.get("present")))


def _unreadable(report: Report, reason: str) -> None:
    """Make ``report`` the report of a file that could not be read (as if reading had failed at once)."""
    blank = Report(file=report.file, size=report.size)
    for item in fields(Report):
        setattr(report, item.name, getattr(blank, item.name))
    report.errors.append(reason)


def _recover(report: Report, store: str, content: Path | bytes, mime: str, anchors: list[str] | None) -> None:
    """Look the watermark's payload up in the manifest store; keep what it gives as ``layers.c2pa``."""
    from detectors.recovery import recover_manifest

    assert report.watermark is not None
    try:
        recovered = recover_manifest(store, report.watermark, content, mime, anchors)
    except LabelerError as exc:
        report.warnings.append(str(exc))  # StoreError: "manifest store PATH: reason"
        return
    if recovered is None:
        return
    embedded = report.c2pa
    if embedded is not None and embedded.get("present"):
        # The file's own manifest failed validation (pixels changed after signing, say) and the report now
        # shows the stored one: say what it replaced, or an investigator never learns of the broken one.
        codes = ", ".join(embedded.get("codes") or []) or "no codes"
        state = embedded.get("state") or "unvalidated"
        report.warnings.append(f"the file's embedded C2PA manifest is {state} ({codes}); the manifest "
                               "reported was recovered from the store through the watermark")
    report.c2pa = recovered


def _conclude(report: Report, decision: Decision) -> None:
    report.verdict, report.confidence = decision.verdict, decision.confidence
    report.reasons = list(decision.reasons)
    report.warnings.extend(decision.warnings)


def _read_error(exc: BaseException) -> str:
    if isinstance(exc, LabelerError):
        return str(exc)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    # A parser bug must not stop a batch (nor a server): it is reported.
    return f"internal error while reading ({type(exc).__name__}: {exc}); please report it"


def _guarded(report: Report, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    # A bug in one detector must not cost the other layers' findings (nor stop a batch): the layer is
    # left out and the report says why. Expected failures are handled inside each layer function.
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        report.warnings.append(f"the {name} layer failed: internal error ({type(exc).__name__}: {exc}); "
                               "please report it")
        return None
