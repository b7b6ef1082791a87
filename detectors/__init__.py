"""Everything that reads and judges labels: metadata readers, the verdict, the report.

The entry point is :func:`verify`::

    >>> from detectors import verify
    >>> report = verify("labeled.jpg")
    >>> report.verdict, report.metadata.fields["ProduceID"]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from detectors.c2pa import read_c2pa
from detectors.metadata import MetadataLayer, judge_metadata
from detectors.report import SCHEMA, Report
from detectors.verdict import VERDICTS, cross_check, decide
from labeler.errors import LabelerError
from labeler.formats import EXTENSIONS, medium
from labeler.metadata import read_labels

__all__ = ["verify", "Report", "MetadataLayer", "VERDICTS", "SCHEMA"]


def verify(
    path: str | os.PathLike[str],
    *,
    key: bytes | None = None,
    trust_anchors: list[str] | None = None,
    visible: bool = True,
) -> Report:
    """Read every label layer of the file at ``path`` and judge them.

    Parameters
    ----------
    path : path-like
        The file to verify.
    key : bytes, optional
        Watermark key; without it the watermark layer is not examined (``layers.watermark`` absent).
    trust_anchors : list of str, optional
        PEM files of trusted C2PA roots; a manifest whose chain ends in one is ``Trusted``. The C2PA
        layer is always read, offline (no remote manifests, no OCSP).
    visible : bool
        Look for our visible "AI生成"-style mark in images (``layers.visible``; about 0.1-0.5 s per image).

    Never raises for a bad file: problems reading it are in ``report.errors``
    (and ``report.verdict`` is then ``None``). Thread-safe; keeps no state.
    """
    report = Report(file=os.fspath(path))
    p = Path(path)
    try:
        if p.is_dir():
            raise LabelerError("is a folder, not a file")
        report.size = p.stat().st_size
        fmt, found = read_labels(p)
        report.format, report.medium = fmt, medium(fmt)
    except LabelerError as exc:
        report.errors.append(str(exc))
        return report
    except OSError as exc:
        report.errors.append(exc.strerror or str(exc))
        return report
    except Exception as exc:  # noqa: BLE001 - a parser bug must not stop a batch; it is reported
        report.errors.append(f"internal error while reading ({type(exc).__name__}: {exc}); please report it")
        return report
    ext = p.suffix.lower()
    if ext and ext not in EXTENSIONS.get(fmt, ()):
        report.warnings.append(f"extension {ext} does not match the content ({fmt})")
    report.metadata = judge_metadata(found)
    pixels = _Pixels(p) if medium(fmt) == "image" else None
    if key is not None:
        report.watermark = _guarded(report, "watermark", watermark_layer, pixels, fmt, key, report.metadata)
        if report.watermark and report.watermark.get("matches_metadata") is False:
            report.warnings.append("the watermark payload does not match the metadata label's ProduceID")
    if visible and pixels is not None:
        report.visible = _guarded(report, "visible", visible_layer, pixels)
    elif visible and medium(fmt) == "video":
        report.visible = _guarded(report, "visible", video_visible_layer, p)
    elif visible and medium(fmt) == "audio":
        report.visible = _guarded(report, "visible", audio_visible_layer, p)
    c2pa_layer = _guarded(report, "c2pa", read_c2pa, p, trust_anchors=trust_anchors)
    report.c2pa = c2pa_layer.to_dict() if c2pa_layer is not None else None
    report.warnings.extend(cross_check(report.metadata, report.watermark, report.c2pa))
    report.verdict, report.reasons = decide(report.metadata, report.watermark, report.c2pa, report.visible)
    return report


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
    """Decode an image at most once for the pixel layers, and remember a decoding error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pixels: Any = None
        self.error: str | None = None

    def get(self) -> Any:
        if self._pixels is None and self.error is None:
            from labeler.media.image import read_image

            try:
                self._pixels = read_image(self.path).pixels
            except LabelerError as exc:
                self.error = str(exc)
        return self._pixels


def visible_layer(pixels: _Pixels) -> dict[str, Any]:
    """The ``layers.visible`` entry: our visible label found in the image, where and how large."""
    from detectors.visible import detect_image_label

    image = pixels.get()
    if image is None:
        return {"present": False, "kind": None, "position": None, "height_ratio": None, "seconds": None,
                "note": pixels.error}
    layer = detect_image_label(image).to_dict()
    if not layer["present"]:
        layer.update(kind=None, position=None, height_ratio=None)
    return layer


def video_visible_layer(path: Path) -> dict[str, Any]:
    """The ``layers.visible`` entry for a video: our mark in the first seconds, and for how long."""
    from detectors.visible import detect_video_label

    try:
        layer = detect_video_label(path).to_dict()
    except LabelerError as exc:
        return {"present": False, "kind": None, "position": None, "height_ratio": None, "seconds": None,
                "note": str(exc)}
    if not layer["present"]:
        layer.update(kind=None, position=None, height_ratio=None, seconds=None)
    return layer


def audio_visible_layer(path: Path) -> dict[str, Any]:
    """The ``layers.visible`` entry for audio: our rhythm cue (Morse "AI"), where and when it starts."""
    from detectors.visible import detect_audio_cue
    from labeler.media.audio import read_audio

    try:
        audio = read_audio(path)
        layer = detect_audio_cue(audio.samples, audio.sample_rate).to_dict()
    except LabelerError as exc:
        return {"present": False, "kind": None, "position": None, "height_ratio": None, "seconds": None,
                "note": str(exc)}
    if not layer["present"]:
        layer.update(kind=None, position=None, seconds=None)
    return layer


def watermark_layer(pixels: _Pixels | None, fmt: str, key: bytes, metadata: MetadataLayer) -> dict[str, Any]:
    """The ``layers.watermark`` entry: detection result, key ID, and agreement with the metadata label.

    ``matches_metadata`` is true/false when both a watermark and a metadata ProduceID exist (the
    default payload is derived from the ProduceID), else null. A file the detector cannot read
    (audio, video, an image under 128 px) gets ``checked: false`` and a ``note``.
    """
    from detectors.watermark import detect
    from labeler.watermark import payload_from_produce_id
    from labeler.watermark.keyfile import key_id

    layer: dict[str, Any] = {"present": False, "checked": False, "payload": None, "p_value": None,
                             "method": None, "matches_metadata": None, "key_id": key_id(key)}
    if pixels is None:
        layer["note"] = f"watermark detection covers images; this file is {medium(fmt)}"
        return layer
    image = pixels.get()
    if image is None:
        layer["note"] = pixels.error
        return layer
    try:
        result = detect(image, key=key)
    except LabelerError as exc:
        layer["note"] = str(exc)
        return layer
    layer.update(result.to_dict())
    layer["checked"] = True
    produce_id = metadata.fields.get("ProduceID") if metadata.fields else None
    if result.found and result.payload is not None and produce_id:
        layer["matches_metadata"] = result.payload == payload_from_produce_id(produce_id)
    return layer
