"""The order of layers when labeling a file: pixels/samples first, then metadata, then C2PA.

Pixel layers (watermark, visible label) change the media and so must come before the
metadata label (which never re-encodes), and a C2PA manifest signs the final bytes, so it
comes last. Available now: ``watermark`` and ``visible`` (images), ``metadata`` and ``c2pa``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeler.atomic import check_paths
from labeler.errors import LabelerError
from labeler.formats import AUDIO_FORMATS, EXTENSIONS, VIDEO_FORMATS, sniff_file
from labeler.metadata import write_label
from labeler.record import AIGCLabel

if TYPE_CHECKING:
    from labeler.provenance.c2pa_sign import SignerSpec

#: Every layer name, in the order they are applied.
LAYER_ORDER = ("watermark", "visible", "metadata", "c2pa")
#: Layers this version can write.
AVAILABLE_LAYERS = ("watermark", "visible", "metadata", "c2pa")
#: Image formats the pixel layers can re-encode without ruining them (GIF's 256-colour palette would).
PIXEL_FORMATS = ("jpeg", "png", "webp", "tiff")


@dataclass
class LabelResult:
    """What :func:`label_file` wrote.

    Attributes
    ----------
    src, dst : str
        Input and output paths.
    format : str
        Container format (unchanged from the input).
    layers : dict
        Per layer, what was written (for ``metadata``: ``carrier``, ``bytes_added``, ``value``).
    seconds : float
        Wall time of the whole call.
    warnings : list of str
        Things the user should know (e.g. an old label copy in a carrier that cannot be edited).
    """

    src: str
    dst: str
    format: str
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "src": self.src,
            "dst": self.dst,
            "format": self.format,
            "layers": self.layers,
            "seconds": round(self.seconds, 6),
            "warnings": self.warnings,
        }


def parse_layers(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Validate a layer list (``"metadata,watermark"`` or a sequence) and return it in application order."""
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise LabelerError("no layers given")
    for name in names:
        if name not in LAYER_ORDER:
            raise LabelerError(f"unknown layer {name!r} (layers: {', '.join(LAYER_ORDER)})")
        if name not in AVAILABLE_LAYERS:
            raise LabelerError(
                f"layer {name!r} is not available in this version (available: {', '.join(AVAILABLE_LAYERS)})"
            )
    return tuple(n for n in LAYER_ORDER if n in names)


def label_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    label: AIGCLabel,
    *,
    layers: str | Sequence[str] = ("metadata",),
    overwrite: bool = False,
    key: bytes | None = None,
    watermark_method: str = "dct",
    watermark_strength: float | None = None,
    quality: int = 95,
    signer: SignerSpec | None = None,
    c2pa_thumbnail: bool = False,
    text: str = "AI生成",
    position: str = "bottom-right",
    visible_seconds: float | None = 3.0,
    cue_positions: Sequence[str] = ("start",),
    video_at: Sequence[str] = ("start",),
    audio_label: str = "rhythm",
    voice_language: str = "zh",
) -> LabelResult:
    """Label the file ``src`` and write the result to ``dst``.

    Parameters
    ----------
    src : path
        Input media file; never modified.
    dst : path
        Output path; written atomically (a temporary file renamed into place),
        so a failure leaves nothing behind. Must not be ``src``.
    label : AIGCLabel
        The implicit label; validated against GB 45438 Appendix E first.
    layers : str or sequence of str
        Which layers to add: ``"metadata"`` (default), ``"watermark"`` (images), comma-separated or a
        sequence; they are applied in :data:`LAYER_ORDER` whatever the order given.
    overwrite : bool
        Replace an existing ``dst`` (never ``src``).
    key : bytes, optional
        Watermark key (required by the ``watermark`` layer; see :mod:`labeler.watermark.keyfile`).
    watermark_method : {"dct", "dwt"}
        Watermark method.
    watermark_strength : float, optional
        Watermark strength in 8-bit luma levels (default :data:`labeler.watermark.DEFAULT_STRENGTH`).
    quality : int
        JPEG / lossy WebP quality (1-100) used when the watermark layer re-encodes the pixels.
    signer : SignerSpec, optional
        C2PA signer (required by the ``c2pa`` layer): :func:`labeler.provenance.c2pa_sign.local_signer`
        for PEM files, :func:`~labeler.provenance.c2pa_sign.callback_signer` for a KMS/HSM.
    c2pa_thumbnail : bool
        Embed a claim thumbnail in the manifest (adds 35-440 KB per image; off by default).
    text : str
        Wording of the visible label (must contain "AI"/"人工智能" and "生成"/"合成", GB 45438 5).
    position : str
        Where the visible label goes: one of :data:`labeler.visible.POSITIONS`.
    visible_seconds : float or None
        Video: how long the visible label shows from the start, in seconds (>= 2, GB 45438 5.3);
        None for the whole duration. The video stream is re-encoded once (libx264); audio is copied.
    video_at : sequence of {"start", "middle", "end"}
        Video: where in time the visible label shows, ``visible_seconds`` at each; must include
        ``"start"`` (GB 45438 5). A video no longer than ``visible_seconds`` is labelled throughout.
    cue_positions : sequence of {"start", "end", "middle"}
        Audio: where the audio label (rhythm cue, voice prompt or both) goes. WAV/FLAC keep their
        sample format and tags; MP3/M4A are re-encoded once at about the input's bit rate, tags kept.
    audio_label : {"rhythm", "voice", "both"}
        Audio: the Morse "AI" rhythm cue, the spoken prompt, or the cue followed by the prompt.
    voice_language : {"zh", "en"}
        Audio: language of the spoken prompt ("本内容由人工智能生成" / "This content is AI-generated.").

    Raises
    ------
    LabelerError
        With a one-line reason, for bad input, an invalid label or an unsafe file.
    """
    started = time.perf_counter()
    order = parse_layers(layers)
    label.check()
    src_p, dst_p = check_paths(src, dst, overwrite=overwrite)
    fmt = sniff_file(src_p)
    ext = dst_p.suffix.lower()
    if ext and ext not in EXTENSIONS[fmt]:
        raise LabelerError(
            f"output extension {ext} does not fit the input's format ({fmt}); labeling never converts formats"
        )
    result = LabelResult(os.fspath(src), os.fspath(dst), fmt)
    if "watermark" in order and fmt not in PIXEL_FORMATS:
        raise LabelerError(f"the watermark layer supports {', '.join(PIXEL_FORMATS)} images, not {fmt}")
    if "visible" in order and fmt not in PIXEL_FORMATS + VIDEO_FORMATS + AUDIO_FORMATS:
        raise LabelerError(f"the visible layer does not support {fmt} files")
    if audio_label not in ("rhythm", "voice", "both") or voice_language not in ("zh", "en"):
        raise LabelerError(f"audio label must be rhythm, voice or both and its language zh or en, "
                           f"not {audio_label!r} / {voice_language!r}")
    if "watermark" in order and key is None:
        raise LabelerError("the watermark layer needs a key (--key-file; make one with aigc keygen)")
    if not dst_p.parent.is_dir():
        raise LabelerError(f"output folder does not exist: {dst_p.parent}")
    if "c2pa" in order and signer is None:
        raise LabelerError("the c2pa layer needs a signer (--sign-cert and --sign-key; see aigc keys init)")
    # Image pixel layers share one decode and one encode (a second JPEG generation would cost quality
    # for nothing); every other layer is a step of its own.
    pixel = [n for n in order if n in ("watermark", "visible") and fmt in PIXEL_FORMATS]
    steps: list[tuple[str, ...]] = ([tuple(pixel)] if pixel else []) + [(n,) for n in order if n not in pixel]
    # Each step but the last writes a staged file beside dst (same filesystem: the final rename is
    # atomic, and a failure anywhere leaves no output); the last step writes dst atomically itself.
    staging = (
        tempfile.TemporaryDirectory(prefix=".aigc-", dir=dst_p.parent)
        if len(steps) > 1
        else contextlib.nullcontext("")
    )
    with staging as scratch:
        current = src_p
        for index, step in enumerate(steps):
            out = dst_p if index == len(steps) - 1 else Path(scratch) / f"{index}{dst_p.suffix or '.' + fmt}"
            name = step[0]
            if step == tuple(pixel):
                result.layers.update(
                    _image_pixels(current, out, step, label, key, watermark_method, watermark_strength,
                                  quality, text, position)
                )
            elif name == "visible" and fmt in AUDIO_FORMATS:
                from labeler.visible import add_audio_label_file

                add_audio_label_file(current, out, kind=audio_label, language=voice_language,
                                     where=tuple(cue_positions))
                kinds = {"rhythm": ["audio-rhythm"], "voice": ["audio-voice"]}.get(
                    audio_label, ["audio-rhythm", "audio-voice"])
                result.layers["visible"] = {"kind": kinds[-1], "kinds": kinds, "where": list(cue_positions)}
                if audio_label != "rhythm":
                    result.layers["visible"]["language"] = voice_language
            elif name == "visible":
                from labeler.visible import add_video_label

                result.layers["visible"] = add_video_label(
                    current, out, text=text, position=position, seconds=visible_seconds,
                    at=video_at, whole=visible_seconds is None, overwrite=True,
                )
            elif name == "metadata":
                result.layers["metadata"] = _metadata(current, out, label, result.warnings)
            elif name == "c2pa":
                from labeler.provenance.c2pa_sign import sign_file

                assert signer is not None
                signed = sign_file(current, out, signer=signer, label=label,
                                   soft_binding=result.layers.get("watermark"), thumbnail=c2pa_thumbnail)
                result.layers["c2pa"] = signed.to_dict()
            current = out
    result.seconds = time.perf_counter() - started
    return result


def _metadata(src: Path, out: Path, label: AIGCLabel, warnings: list[str]) -> dict[str, Any]:
    value = label.to_json()
    written = write_label(src, out, value)
    for other in written.other_copies:
        what = "another label copy" if other.standard else "a non-standard AI declaration"
        warnings.append(f"{what} remains in {other.carrier} ({other.location}), left as it was")
    return {"carrier": written.carrier, "bytes_added": written.bytes_added, "value": value}


def _image_pixels(
    src: Path,
    out: Path,
    layers: tuple[str, ...],
    label: AIGCLabel,
    key: bytes | None,
    method: str,
    strength: float | None,
    quality: int,
    text: str,
    position: str,
) -> dict[str, dict[str, Any]]:
    """Apply the image pixel layers in order (watermark, then visible label) and write ``out`` once.

    The watermark payload is derived from the label's ProduceID, so a verifier can check watermark and
    metadata against each other. ICC profile, EXIF and XMP of the input are written with the new pixels.
    """
    from labeler.media.image import read_image, write_image

    image = read_image(src)
    if image.n_frames > 1:
        raise LabelerError(f"the {layers[0]} layer does not support animated images")
    pixels = image.pixels
    done: dict[str, dict[str, Any]] = {}
    if "watermark" in layers:
        from labeler.watermark import DEFAULT_STRENGTH, embed, payload_from_produce_id
        from labeler.watermark.keyfile import key_id

        assert key is not None
        payload = payload_from_produce_id(label.produce_id)
        chosen = DEFAULT_STRENGTH if strength is None else strength
        pixels = embed(pixels, payload, key=key, method=method, strength=chosen)
        done["watermark"] = {"method": method, "payload": payload.hex(), "key_id": key_id(key),
                             "strength": chosen}
    if "visible" in layers:
        from labeler.visible import add_image_label, place_label

        placement = place_label(pixels.shape[0], pixels.shape[1], text, position=position)
        pixels = add_image_label(pixels, text, position=position)
        done["visible"] = {"kind": "image-text", "text": text, "position": placement.position,
                           "height_ratio": round(placement.height_ratio, 4), "box": list(placement.box)}
    write_image(out, pixels, format=image.format, like=image, quality=quality)
    return done
