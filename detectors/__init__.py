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
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from detectors.arguments import key_argument, trust_anchor_files
from detectors.c2pa import read_c2pa
from detectors.metadata import MetadataLayer, judge_metadata
from detectors.report import SCHEMA, Report
from detectors.verdict import CONFIDENCES, VERDICTS, Decision, cross_check, decide
from labeler.errors import InvalidArgument, LabelerError
from labeler.formats import EXTENSIONS, format_info, medium, sniff_bytes, sniff_file
from labeler.metadata import carrier_module, read_labels

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
        layer is always read (not for arrays), offline (no remote manifests, no OCSP).
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
        or ``"quick"`` for :data:`QUICK_LAYERS` (metadata, C2PA and, with ``key``, the watermark: no
        visible search; the image watermark is then read at its geometry as given, no rescale or
        rotation search, and the layer's ``note`` says so when nothing was found). Default: all.
        ``report.examined`` lists the layers examined, so a layer left
        out reads as "not examined", never as "absent"; the verdict rules are unchanged for those
        examined (a metadata layer not examined counts as no label, as for a pixel array).

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
    Never raises for bad input: problems reading it are in ``report.errors`` (and ``report.verdict``
    is then ``None``). Thread-safe: keeps no state between calls, so a web server may call it from many
    threads at once. Images and WAV, FLAC, MP3 and Ogg in memory (:data:`IN_MEMORY_FORMATS`) are read
    entirely from memory: the carriers, the pixels or samples (MP3 through ffmpeg's standard input)
    and C2PA (c2pa-python's stream API); no temporary file. M4A and video need a seekable file for
    ffmpeg, so their bytes are also written to a private temporary folder (prefix
    :data:`TEMP_PREFIX`) that is removed before this function returns.
    """
    key = key_argument(key)
    anchors = trust_anchor_files(trust_anchors)
    wanted = tuple(n for n in parse_verify_layers(layers) if visible or n != "visible")
    # ``layers="quick"`` is triage: the watermark is read at the geometry as given only (no lattice search)
    quick = isinstance(layers, str) and layers.strip() == "quick"
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
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    if names == ["quick"]:
        return QUICK_LAYERS
    if not names:
        raise InvalidArgument("no layers to verify given")
    for name in names:
        if name not in VERIFY_LAYERS:
            raise InvalidArgument(f"unknown layer {name!r} to verify (layers: {', '.join(VERIFY_LAYERS)}; "
                                  "or quick)")
    return tuple(n for n in VERIFY_LAYERS if n in names)


def _verify_path(path: str | os.PathLike[str], opts: VerifyOptions) -> Report:
    report = Report(file=os.fspath(path))
    p = Path(path)
    try:
        if p.is_dir():
            raise LabelerError("is a folder, not a file")
        report.size = p.stat().st_size
        # Without the metadata layer only the format is needed (no carrier parsing).
        fmt, found = read_labels(p) if "metadata" in opts.layers else (sniff_file(p), [])
    except Exception as exc:  # noqa: BLE001 - reported, see _read_error
        report.errors.append(_read_error(exc))
        return report
    ext = p.suffix.lower()
    if ext and ext not in EXTENSIONS.get(fmt, ()):
        report.warnings.append(f"extension {ext} does not match the content ({fmt})")
    pixels = _Pixels(p, fmt) if medium(fmt) == "image" else None
    _judge(report, fmt, found, pixels, p, opts)
    return report


def _verify_bytes(data: bytes, opts: VerifyOptions) -> Report:
    report = Report(file="<bytes>", size=len(data))
    try:
        # The whole buffer: sniff looks past an ID3 tag (FLAC behind ID3) and into an MP4's or WebM's tracks.
        fmt = sniff_bytes(data)
        found = carrier_module(fmt).read(io.BytesIO(data)) if "metadata" in opts.layers else []
        if fmt in IN_MEMORY_FORMATS:
            # Every reader takes memory here: the carriers, the pixels or samples, C2PA's stream API.
            _judge(report, fmt, found, _Pixels(data, fmt) if medium(fmt) == "image" else None, data, opts)
            return report
        with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as folder:
            # Only for the readers that need a path; private (mode 0700 folder), removed on any exit.
            spilled = Path(folder) / f"input{EXTENSIONS[fmt][0]}"
            spilled.write_bytes(data)
            _judge(report, fmt, found, None, spilled, opts)
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
    _conclude(report, decide(empty, report.watermark, None, report.visible))
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
           opts: VerifyOptions) -> None:
    """The layers of a container file that ``opts.layers`` asks for, then the verdict.

    ``path`` is the file for the readers that need one (ffmpeg, the audio readers), or the encoded
    image itself when every reader takes memory.
    """
    report.format, report.medium = fmt, medium(fmt)
    # A layer not examined is judged as the verdict judges a missing one; the report leaves it out and
    # ``examined`` says it was not looked at.
    metadata = judge_metadata(found) if "metadata" in opts.layers else MetadataLayer()
    if "metadata" in opts.layers:
        report.metadata = metadata
        report.examined.append("metadata")
    if "c2pa" in opts.layers:
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
    if "c2pa" in opts.layers:
        c2pa_layer = _guarded(report, "c2pa", read_c2pa, path, trust_anchors=anchors, mime=mime)
        report.c2pa = c2pa_layer.to_dict() if c2pa_layer is not None else None
    if report.c2pa is not None and report.c2pa["present"]:
        report.c2pa["source"] = "embedded"
    if opts.manifest_store and report.watermark and report.watermark.get("present") and not (
            report.c2pa and report.c2pa["present"] and report.c2pa["state"] in ("Trusted", "Valid")):
        _recover(report, opts.manifest_store, path, mime, anchors)
    _conclude(report, decide(metadata, report.watermark, report.c2pa, report.visible))
    report.warnings.extend(unexamined_warnings(report))
    if pixels is not None and pixels.salvaged:
        report.warnings.append(f"{pixels.salvaged}: the pixel layers read the part of the picture that is "
                               "there (the rest decoded as grey)")


def unexamined_warnings(report: Report) -> list[str]:
    """One warning per pixel / sample layer that was asked for but could not be examined (damaged or
    unreadable pixels or samples, a file too large to decode, a decoder that failed), with the reason:
    such a layer is judged as absent by the verdict, and "could not look" must not read as "looked and
    found nothing". A mark found is never warned about; neither is the ``--quick`` note."""
    out = []
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
        #: The decoding error of a JPEG whose pixels were read as far as its data goes, else None.
        self.salvaged: str | None = None

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
                except LabelerError:
                    pass
        return self._pixels

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
    layer["checked"] = True
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
