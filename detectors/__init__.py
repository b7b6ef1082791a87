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
import mmap
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from detectors.arguments import key_argument, trust_anchor_files
from detectors.c2pa import read_c2pa
from detectors.metadata import MetadataLayer, judge_metadata
from detectors.report import SCHEMA, Report
from detectors.verdict import CONFIDENCES, METADATA_UNREADABLE, VERDICTS, Decision, cross_check, decide
from labeler.errors import InvalidArgument, LabelerError
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
#: What :func:`verify` accepts.
Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, "np.ndarray"]
#: Prefix of the private temporary folder :func:`verify` makes for in-memory data that a reader can only
#: take as a file (C2PA, ffmpeg); the folder is removed before ``verify`` returns, also on error.
TEMP_PREFIX = "aigc-verify-"


def verify(
    source: Source,
    *,
    key: bytes | None = None,
    trust_anchors: list[str] | None = None,
    visible: bool = True,
    manifest_store: str | None = None,
    layers: str | Sequence[str] | None = None,
) -> Report:
    """Read every label layer of ``source`` and judge them.

    Parameters
    ----------
    source : path-like, bytes-like or ndarray
        A file path; or a whole encoded file in memory (``bytes``, ``bytearray``, ``memoryview``: the
        format is sniffed from the content; ``report.file`` is ``"<bytes>"``); or decoded pixels, a
        NumPy array ``(H, W)`` or ``(H, W, C)`` with C in 1..4, uint8 or uint16 (``report.file`` is
        ``"<array>"``, ``format`` None, ``medium`` ``"image"``): an array has no container, so only
        the pixel layers apply (watermark with ``key``, visible mark); ``layers.metadata`` and
        ``layers.c2pa`` are absent.
    key : bytes, optional
        Watermark key; without it the watermark layer is not examined (``layers.watermark`` absent).
    trust_anchors : list of str, or one path, optional
        PEM files of trusted C2PA roots; a manifest whose chain ends in one is ``Trusted``. The C2PA
        layer is always read, offline (no remote manifests, no OCSP); not for arrays, nor for the types
        C2PA defines no manifest for (Ogg, Matroska, WebM, FLV: ``examined`` leaves ``c2pa`` out).
    visible : bool
        Look for our explicit label: the visible "AI生成"-style mark in images and video, the audio cue
        and voice prompt (``layers.visible``). False is the same as leaving ``visible`` out of ``layers``.
    manifest_store : str, optional
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
        ``layers`` names an unknown layer or none, or names ``watermark`` without a ``key``, or a
        ``manifest_store`` without the watermark layer and a key; ``key`` is not non-empty bytes-like;
        a ``trust_anchors`` file is missing or holds no PEM certificate (a caller's mistake, not bad
        input: a bad anchor would otherwise drop the whole C2PA layer).

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
    temporary file. M4A, video, AVIF and HEIC are read from a file (ffmpeg needs a seekable one), so their
    bytes are also written to a private temporary folder (prefix :data:`TEMP_PREFIX`) that is removed
    before this function returns; every layer, the pixel layers included, reads that file as it would
    the path.
    """
    key = key_argument(key)
    anchors = trust_anchor_files(trust_anchors)
    wanted = tuple(n for n in parse_verify_layers(layers) if visible or n != "visible")
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


#: The watermark layer's ``note`` when ``layers="quick"`` read an image as given and found no mark.
QUICK_WATERMARK_NOTE = ("read at the geometry as given only (quick; a large JPEG at half size): a "
                        "rescaled or rotated copy, or a mark that only a full-resolution read finds, was "
                        "not searched; verify without --quick for that")


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
    for name in names:
        if name not in VERIFY_LAYERS:
            raise InvalidArgument(f"unknown layer {name!r} to verify (layers: {', '.join(VERIFY_LAYERS)}; "
                                  "or quick)")
    return tuple(n for n in VERIFY_LAYERS if n in names)


def _layer_names(spec: str | Sequence[str]) -> list[str]:
    """The names of a ``layers`` argument, stripped, empty ones dropped (one parse for the layers and
    for the ``quick`` flag, so ``"quick"`` and ``["quick"]`` mean the same)."""
    items = spec.split(",") if isinstance(spec, str) else spec
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
        found, damage = _read_carriers(lambda: read_labels(p, fmt)[1], opts)
    except Exception as exc:  # noqa: BLE001 - reported, see _read_error
        report.errors.append(_read_error(exc))
        return report
    ext = p.suffix.lower()
    if ext and ext not in EXTENSIONS.get(fmt, ()):
        report.warnings.append(f"extension {ext} does not match the content ({fmt})")
    pixels = _Pixels(p, fmt) if medium(fmt) == "image" else None
    _judge(report, fmt, found, pixels, p, opts, damage)
    return report


def _regular_file(path: str | os.PathLike[str]) -> int:
    """The size of the regular file at ``path``; a one-line ``LabelerError`` for anything else.

    A FIFO would block the first read forever (and a device may never end), so only regular files
    (or links to one) are opened; ``""`` is ``Path(".")``, the current folder, so it is named here.
    """
    if os.fspath(path) in ("", b""):
        raise LabelerError("empty file name")
    mode = os.stat(path).st_mode  # follows links: a link to a regular file is read
    if stat.S_ISDIR(mode):
        raise LabelerError("is a folder, not a file")
    if not stat.S_ISREG(mode):
        kind = ("FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode)
                else "character device" if stat.S_ISCHR(mode) else "block device" if stat.S_ISBLK(mode)
                else "special file")
        raise LabelerError(f"not a regular file ({kind})")
    return os.stat(path).st_size


def _read_carriers(read: Any, opts: VerifyOptions) -> tuple[list[FoundLabel], str | None]:
    """``(labels found, None)``, or ``([], why)`` when a carrier is damaged or unsafe to parse.

    One bad byte in an XMP packet or a text chunk's CRC is the metadata layer's problem, not the file's:
    the pixels, the samples and a C2PA manifest may still be intact, so the other layers still run
    (:func:`_judge`). ``OSError`` (the file cannot be opened) and parser bugs still end the report.
    """
    if "metadata" not in opts.layers:
        return [], None  # only the format is needed: no carrier parsing
    try:
        return read(), None
    except LabelerError as exc:  # CorruptFile, UnsafeInput
        return [], str(exc)


def _verify_bytes(data: bytes, opts: VerifyOptions) -> Report:
    report = Report(file="<bytes>", size=len(data))
    try:
        # The whole buffer: sniff looks past an ID3 tag (FLAC behind ID3) and into an MP4's or WebM's tracks.
        fmt = sniff_bytes(data)
        found, damage = _read_carriers(lambda: carrier_module(fmt).read(io.BytesIO(data)), opts)
        if fmt in IN_MEMORY_FORMATS:
            # Every reader takes memory here: the carriers, the pixels or samples, C2PA's stream API.
            pixels = _Pixels(data, fmt) if medium(fmt) == "image" else None
            _judge(report, fmt, found, pixels, data, opts, damage)
            return report
        with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as folder:
            # Only for the readers that need a path; private (mode 0700 folder), removed on any exit.
            spilled = Path(folder) / f"input{EXTENSIONS[fmt][0]}"
            spilled.write_bytes(data)
            # An AVIF or HEIC is decoded from the spilled file as from a path: the pixel layers must
            # see it, or both would be dropped without a word.
            pixels = _Pixels(spilled, fmt) if medium(fmt) == "image" else None
            _judge(report, fmt, found, pixels, spilled, opts, damage)
    except Exception as exc:  # noqa: BLE001 - reported, see _read_error
        report.errors.append(_read_error(exc))
    return report


def _verify_array(array: Any, opts: VerifyOptions) -> Report:
    import numpy as np

    report = Report(file="<array>", medium="image")
    pixels = np.asarray(array)
    problem = _array_problem(pixels)
    if problem:
        report.errors.append(problem)
        return report
    source = _Pixels.of(pixels)
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


def _judge(report: Report, fmt: str, found: list[Any], pixels: _Pixels | None, path: Path | bytes,
           opts: VerifyOptions, damage: str | None = None) -> None:
    """The layers of a container file that ``opts.layers`` asks for, then the verdict.

    ``path`` is the file for the readers that need one (ffmpeg, the audio readers), or the encoded
    image itself when every reader takes memory. ``damage`` is why the metadata carriers could not be
    read (:func:`_read_carriers`): the metadata layer then says so and the other layers still run; if
    none of them can read anything either, the file is unreadable (``errors``, verdict None).
    """
    report.format, report.medium = fmt, medium(fmt)
    # A layer not examined is judged as the verdict judges a missing one; the report leaves it out and
    # ``examined`` says it was not looked at.
    metadata = MetadataLayer()
    if "metadata" in opts.layers:
        metadata = judge_metadata(found) if damage is None else _unreadable_metadata(damage, path)
        report.metadata = metadata
        report.examined.append("metadata")
    # C2PA defines no manifest for Ogg, Matroska, WebM or FLV (c2pa-rs reads none): there is nothing to
    # look at, as for the visible layer on a medium it does not cover, so the layer is not examined.
    c2pa_wanted = "c2pa" in opts.layers and format_info(fmt).c2pa
    if c2pa_wanted:
        report.examined.append("c2pa")
    samples = _Samples(path) if report.medium == "audio" else None
    video = _VideoProbe(path) if report.medium == "video" and isinstance(path, Path) else None
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
    if opts.manifest_store and report.watermark and report.watermark.get("present") and not (
            report.c2pa and report.c2pa["present"] and report.c2pa["state"] in ("Trusted", "Valid")):
        _recover(report, opts.manifest_store, path, mime, anchors)
    if damage is not None and not _read_anything(report):
        # The carriers broke and nothing else in the file could be read either: unreadable, not unlabeled.
        _unreadable(report, damage)
        return
    # A manifest in a type C2PA defines none for is absent by design, not merely not looked at.
    judged = [*report.examined, *(["c2pa"] if "c2pa" in opts.layers and not c2pa_wanted else [])]
    _conclude(report, decide(metadata, report.watermark, report.c2pa, report.visible, examined=judged))
    report.warnings.extend(unexamined_warnings(report))
    if pixels is not None and pixels.salvaged:
        report.warnings.append(f"{pixels.salvaged}: {pixels.salvage_note}")
    if not report.examined and "c2pa" in opts.layers:
        # e.g. ``layers="c2pa"`` on an Ogg file: a bare "none" would read as "looked and found nothing"
        report.warnings.append(f"none of the layers asked for could be examined: C2PA defines no manifest "
                               f"for {fmt} files")


#: Bytes that only an AIGC label holds: an Appendix E field name (as text, and as UTF-16 for ID3 and
#: EXIF text) and the TC260 XMP namespace. Found in a file whose carriers could not be parsed, they make
#: its metadata "AIGC metadata whose value is not readable" (docs/verdicts.md rule 4), not "no label".
_LABEL_TEXT = (b"ContentProducer", "ContentProducer".encode("utf-16-le"),
               "ContentProducer".encode("utf-16-be"), b"tc260.org.cn/ns/AIGC")


def _unreadable_metadata(reason: str, content: Path | bytes) -> MetadataLayer:
    """The metadata layer of a file whose carriers could not be parsed: the reason as its problem, and
    ``present`` when label text shows in the raw bytes (a damaged label is still evidence, never "no
    label"); ``fields`` None, so no rule takes a value from it."""
    return MetadataLayer(present=_holds_label_text(content), problems=[METADATA_UNREADABLE + reason])


def _holds_label_text(content: Path | bytes) -> bool:
    if isinstance(content, bytes):
        return any(marker in content for marker in _LABEL_TEXT)
    try:
        # mapped, not read: the file may be a long video
        with open(content, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return any(view.find(marker) >= 0 for marker in _LABEL_TEXT)
    except (OSError, ValueError):  # an empty file cannot be mapped (and holds nothing)
        return False


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


def unexamined_warnings(report: Report) -> list[str]:
    """One warning per layer that was asked for but could not be examined, with the reason: metadata
    carriers that could not be parsed, a C2PA reader that could not parse the file, damaged or unreadable
    pixels or samples, audio too short to read, a file too large to decode, a decoder that failed. Such
    a layer is judged as absent by the verdict (a damaged carrier that shows label text as AIGC metadata
    whose value is not readable), and "could not look" must not read as "looked and found nothing". A
    mark found is never warned about; neither is the ``--quick`` note."""
    out = []
    md = report.metadata
    unread = next((p for p in md.problems if p.startswith(METADATA_UNREADABLE)), None) if md else None
    if md is not None and unread is not None:
        judged = ("; the file holds AIGC label text, judged as AIGC metadata whose value is not readable"
                  if md.present else "")
        out.append(f"the metadata layer could not be examined: {unread[len(METADATA_UNREADABLE):]}{judged}")
    cp = report.c2pa
    if cp is not None and not cp.get("present") and cp.get("error"):
        # c2pa-rs could not parse the file (a WAV cut short, an unsupported variant): no manifest seen is
        # not no manifest there. ("C2PA: " is the layer's own prefix; the line names the layer already.)
        error = str(cp["error"])
        out.append(f"the c2pa layer could not be examined: {error.removeprefix('C2PA: ')}")
    wm = report.watermark
    if wm is not None and not wm.get("checked", True) and wm.get("note") not in (None, QUICK_WATERMARK_NOTE):
        out.append(f"the watermark layer could not be examined: {wm['note']}")
    vis = report.visible
    if vis is not None and not vis.get("present") and vis.get("note"):
        out.append(f"the visible layer could not be examined: {vis['note']}")
    return out


def _recover(report: Report, store: str, content: Path | bytes, mime: str, anchors: list[str] | None) -> None:
    """Look the watermark's payload up in the manifest store; keep what it gives as ``layers.c2pa``."""
    from detectors.recovery import recover_manifest

    assert report.watermark is not None
    try:
        recovered = recover_manifest(store, report.watermark, content, mime, anchors)
    except LabelerError as exc:
        report.warnings.append(str(exc))  # StoreError: "manifest store PATH: reason"
        return
    if recovered is not None:
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


class _Pixels:
    """Decode an image at most once for the pixel layers, and remember a decoding error.

    Both pixel layers (watermark, visible mark) look at luma only, so a colour JPEG is decoded to its
    Y channel alone (:func:`labeler.media.image.read_luma_pixels`: no chroma, no colour conversion,
    about half of :func:`~labeler.media.image.read_image`'s time at 1080p); other images come as
    :func:`~labeler.media.image.read_image` gives them. One per :func:`verify` call (never shared
    between calls), so threads do not meet here.
    """

    def __init__(self, source: Path | bytes, fmt: str | None = None) -> None:
        self.source = source
        self.fmt = fmt
        self._pixels: Any = None
        self.error: str | None = None
        #: EXIF Orientation of the file (1..8; 1 when untagged or not known): the visible mark is
        #: looked for as a viewer shows the picture (:func:`labeler.media.image.to_display`).
        self.orientation = 1
        #: The damage of a picture whose pixels were read anyway (a JPEG as far as its data goes, a PNG
        #: without an ancillary chunk that fails its CRC), else None; ``salvage_note`` says how.
        self.salvaged: str | None = None
        self.salvage_note = ""

    @classmethod
    def of(cls, pixels: Any) -> _Pixels:
        """Already decoded pixels (an array given to :func:`verify`)."""
        made = cls(b"")
        made._pixels = pixels
        return made

    def get(self) -> Any:
        if self._pixels is None and self.error is None:
            from labeler.media.image import read_luma_image, read_truncated_jpeg_luma

            try:
                image = read_luma_image(self.source, fmt=self.fmt)
                self._pixels, self.orientation = image.pixels, image.orientation
            except LabelerError as exc:
                self.error = str(exc)
            if self.error is not None and self.fmt == "jpeg" and "truncated" in self.error:
                # a JPEG cut short (an interrupted download or copy): read the part that is there
                try:
                    self._pixels = read_truncated_jpeg_luma(self.source)
                    self.salvaged, self.error = self.error, None
                    self.salvage_note = ("the pixel layers read the part of the picture that is there (the "
                                         "rest decoded as grey)")
                except LabelerError:
                    pass
            if self.error is not None and self.fmt == "png":
                self._salvage_png()
        return self._pixels

    def _salvage_png(self) -> None:
        """Decode a PNG without its ancillary chunks that fail their CRC (a damaged text or XMP chunk).

        Pillow refuses the whole file for one bad checksum in a chunk that holds no pixels; libpng (what
        browsers and viewers use) drops such a chunk with a warning and shows the picture. The pixels
        then carry their watermark and visible mark as before; a bad checksum in a pixel chunk is not
        salvaged.
        """
        from labeler.media.image import read_luma_image

        try:
            data = self.source if isinstance(self.source, bytes) else Path(self.source).read_bytes()
        except OSError:
            return
        fixed = _png_without_bad_ancillary_chunks(data)
        if fixed is None:
            return
        try:
            image = read_luma_image(fixed[0], fmt="png")
        except LabelerError:
            return
        self._pixels, self.orientation = image.pixels, image.orientation
        self.salvaged, self.error = fixed[1], None
        self.salvage_note = ("the pixel layers read the picture without that chunk (it holds no pixels; PNG "
                             "decoders drop such a chunk)")

    def half(self) -> Any:
        """A JPEG's luma decoded at half size (:func:`labeler.media.image.read_luma_half`, an
        :class:`~labeler.media.image.ImageData` with its EXIF) for the quick watermark read, or None
        (another format, a small JPEG, or pixels already decoded in full)."""
        if self._pixels is not None or self.error is not None or self.fmt not in (None, "jpeg"):
            return None
        from labeler.media.image import read_luma_half

        try:
            return read_luma_half(self.source, fmt=self.fmt)
        except LabelerError:
            return None  # the full decode (get) says why, or reads what a truncated JPEG holds


def _png_without_bad_ancillary_chunks(data: bytes) -> tuple[bytes, str] | None:
    """``(data without the ancillary chunks whose CRC fails, what the first one was)``; None when no
    chunk is dropped: every CRC matches, a critical chunk (pixels, palette, header) fails its CRC, or
    the chunk structure itself is broken (a truncated file)."""
    import zlib

    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    out, pos, first = [data[:8]], 8, None
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        end = pos + 12 + length
        if end > len(data):
            return None
        kind = data[pos + 4:pos + 8]
        if zlib.crc32(data[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            if not kind[0] & 0x20:  # critical: its bytes are the picture's own
                return None
            first = first or (f"damaged png file: {kind.decode('latin-1')!r} chunk at offset {pos} fails its "
                              "crc check")
        else:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    return (b"".join(out), first) if first is not None else None


def visible_layer(pixels: _Pixels) -> dict[str, Any]:
    """The ``layers.visible`` entry: our visible label found in the image, where and how large."""
    from detectors.visible import detect_image_label

    image = pixels.get()
    if image is None:
        return {"present": False, "kind": None, "position": None, "height_ratio": None, "seconds": None,
                "note": pixels.error}
    from labeler.media.image import to_display

    layer = detect_image_label(to_display(image, pixels.orientation)).to_dict()
    if not layer["present"]:
        layer.update(kind=None, position=None, height_ratio=None)
    return layer


def video_visible_layer(path: Path, video: _VideoProbe | None = None) -> dict[str, Any]:
    """The ``layers.visible`` entry for a video: our mark in the first seconds, and for how long.

    When the start carries the mark (what GB 45438 5.3 requires), the middle and end windows are not
    decoded (verify is triage: the start decides ``present``); ``not_read`` then names them, so a
    window left out of ``intervals`` is "not read", never "absent".
    """
    from detectors.visible import detect_video_label

    try:
        info = video.get() if video is not None else None
        layer = detect_video_label(path, stop_at_start=True, info=info).to_dict()
    except LabelerError as exc:
        return {"present": False, "kind": None, "position": None, "height_ratio": None, "seconds": None,
                "note": str(exc)}
    if not layer["present"]:
        layer.update(kind=None, position=None, height_ratio=None, seconds=None)
    return layer


def audio_visible_layer(samples: _Samples) -> dict[str, Any]:
    """The ``layers.visible`` entry for audio: our rhythm cue (Morse "AI") and voice prompt.

    The entry describes the highest-scoring label found (``kind`` audio-rhythm or audio-voice, its
    ``position``, onset ``seconds``, ``score``; ``language`` for a prompt); ``found`` lists every cue
    and prompt found, in time order, as ``{kind, position, seconds, score[, language]}``.
    """
    from detectors.visible.audio_labels import detect_audio_labels

    try:
        audio = samples.get()
        cue, voice = detect_audio_labels(audio.samples, audio.sample_rate)  # one shared analysis
    except LabelerError as exc:
        return {"present": False, "kind": None, "position": None, "height_ratio": None, "seconds": None,
                "note": str(exc)}
    present = [r for r in (cue, voice) if r.present]
    layer = max(present or [cue, voice], key=lambda r: r.score).to_dict()
    found = [{"kind": "audio-rhythm", "position": p, "seconds": t, "score": s} for t, p, s in cue.cues]
    found += [{"kind": "audio-voice", "position": p, "seconds": t, "score": s, "language": lang}
              for t, p, lang, s in voice.prompts]
    layer["found"] = sorted(found, key=lambda f: f["seconds"])
    if not layer["present"]:
        layer.update(kind=None, position=None, seconds=None, text=None)
        if "language" in layer:
            layer["language"] = None
    return layer


def watermark_layer(pixels: _Pixels | None, what: str, key: bytes, metadata: MetadataLayer,
                    path: Path | bytes | None = None, samples: _Samples | None = None,
                    quick: bool = False, video: _VideoProbe | None = None) -> dict[str, Any]:
    """The ``layers.watermark`` entry: detection result, key ID, and agreement with the metadata label.

    Images are read from their decoded pixels, audio from its decoded ``samples`` (one decode shared
    with the audio cue search); ``path`` is the file (or bytes) for media read from a file.
    ``matches_metadata`` is true/false when both a watermark and a metadata ProduceID exist (the
    default payload is derived from the ProduceID), else null. A file the detector cannot read
    (video, an image under 128 px, audio under 1.5 s) gets ``checked: false`` and a ``note``. With
    ``quick`` an image is read at its geometry as given only (offsets, no rescale / rotation search;
    the p-value counts those reads only), and an image without a mark there gets
    :data:`QUICK_WATERMARK_NOTE`, so "not searched" never reads as "absent". ``video`` is the video's
    probe shared with the visible layer (one ffmpeg probe per verify).
    """
    from labeler.watermark.keyfile import key_id

    layer: dict[str, Any] = {"present": False, "checked": False, "payload": None, "p_value": None,
                             "method": None, "matches_metadata": None, "key_id": key_id(key)}
    try:
        if pixels is not None:
            result = _detect_image(pixels, key, search_scale=not quick)
            if quick and not result.found:
                layer["note"] = QUICK_WATERMARK_NOTE
        elif samples is not None:
            from detectors.watermark import detect_audio

            audio = samples.get()
            result = detect_audio(audio.samples, audio.sample_rate, key=key)
        elif what == "video" and isinstance(path, Path):
            result = _video_mark(path, key, layer, video or _VideoProbe(path))
        else:
            layer["note"] = f"watermark detection covers images, audio and video; this file is {what}"
            return layer
    except LabelerError as exc:
        layer["note"] = str(exc)
        return layer
    layer.update(result.to_dict())
    # A result that only says why nothing could be decided (audio too short, no frame readable) did not
    # look: ``checked`` false, no p-value, and unexamined_warnings() says so.
    layer["checked"] = getattr(result, "decided", True)
    if not layer["checked"]:
        layer["p_value"] = None
    if getattr(result, "reason", None):
        layer["note"] = result.reason
    elif not result.found and result.p_value is not None and result.p_value <= result.threshold:
        # the pilot shows past the threshold but no payload passed its CRC (a small or damaged copy):
        # not counted as present, since the payload is what ties the mark to a label
        layer["note"] = (f"a mark of this key shows (p = {result.p_value:.1e}, pilot only) but its payload "
                         "could not be read")
    produce_id = metadata.fields.get("ProduceID") if metadata.fields else None
    if result.found and result.payload is not None and produce_id:
        from labeler.watermark import payload_from_produce_id

        layer["matches_metadata"] = result.payload == payload_from_produce_id(produce_id)
    return layer


def _video_mark(path: Path, key: bytes, layer: dict[str, Any], video: _VideoProbe) -> Any:
    """The frames' mark, else the soundtrack's; ``layer`` gets ``frames_read`` and ``stream``."""
    from detectors.watermark_video import detect_video

    problem = None
    try:
        result = detect_video(path, key=key, info=video.get())
        layer["frames_read"] = result.frames_read
    except LabelerError as exc:  # e.g. frames too small: the soundtrack may still carry the mark
        result, problem = None, exc
    if result is not None and result.found:
        result.method = "video"  # the mark's name, as the label result and the soft binding say
        layer["stream"] = "video"
        return result
    audio = _soundtrack_mark(path, key, video)
    if audio is not None:
        layer["stream"] = "audio"
        return audio
    if problem is not None:
        raise problem
    layer["stream"] = None
    return result


def _soundtrack_mark(path: Path, key: bytes, video: _VideoProbe) -> Any:
    """The audio watermark of a video's soundtrack (the frames gave none), or None without one."""
    from detectors.watermark import detect_audio
    from labeler.media.audio import read_audio

    try:
        if video.get().audio_streams == 0:
            return None  # no soundtrack: no second probe to find that out
    except LabelerError:
        pass  # the frames could not be probed: the soundtrack alone may still be readable
    try:
        audio = read_audio(path)
    except LabelerError:
        return None  # no audio stream, or none decodable: the frames' answer stands
    result = detect_audio(audio.samples, audio.sample_rate, key=key)
    return result if result.found else None


def _detect_image(pixels: _Pixels, key: bytes, search_scale: bool = True) -> Any:
    from detectors.watermark import detect, detect_as_shown, detect_half

    if not search_scale:  # quick: a large JPEG is read at half size (detect_half), nothing else
        half = pixels.half()
        if half is not None:
            return detect_as_shown(half.pixels, half.orientation,
                                   lambda luma, threshold: detect_half(luma, key=key, threshold=threshold))
    image = pixels.get()
    if image is None:
        raise LabelerError(pixels.error or "the image could not be decoded")
    return detect_as_shown(image, pixels.orientation, lambda luma, threshold: detect(
        luma, key=key, search_scale=search_scale, threshold=threshold))


class _Once:
    """A value read at most once per :func:`verify` call for the layers that share it; the read's
    ``LabelerError`` is kept and re-raised to each of them."""

    def __init__(self, source: Path | bytes) -> None:
        self.source = source
        self._value: Any = None
        self._error: LabelerError | None = None

    def _read(self) -> Any:
        raise NotImplementedError

    def get(self) -> Any:
        """The value; raises the read's ``LabelerError``."""
        if self._value is None and self._error is None:
            try:
                self._value = self._read()
            except LabelerError as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._value


class _VideoProbe(_Once):
    """A video's :class:`~labeler.media.video.VideoInfo` (watermark and visible layers: one probe)."""

    def _read(self) -> Any:
        from labeler.media.video import video_info

        return video_info(self.source)


class _Samples(_Once):
    """An audio file's :class:`~labeler.media.audio.AudioData` (watermark and cue: one decode)."""

    def _read(self) -> Any:
        from labeler.media.audio import read_audio

        return read_audio(self.source)
