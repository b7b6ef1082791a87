"""The stages that write label layers, one per (layers, media) pair, in one table.

A stage takes the current file, writes the next one, and returns what it wrote per layer. The
pipeline (:func:`labeler.pipeline.label_file`) finds, for each requested layer, the first stage in
:data:`STAGES` that writes that layer for the input's format, and runs consecutive layers that one
stage writes in a single step: the image watermark and visible mark share one decode and one encode
(a second JPEG generation would cost quality for nothing). Adding a layer for a medium (the audio or
video watermark) is adding a :class:`Stage` row here, not editing the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeler import limits
from labeler.errors import CorruptFile, LabelerError, UnsafeInput, UnsupportedLayer
from labeler.formats import AUDIO_FORMATS, C2PA_FORMATS, FORMATS, PIXEL_FORMATS, VIDEO_FORMATS, format_info
from labeler.options import LabelOptions
from labeler.probe import Probe
from labeler.record import AIGCLabel


@dataclass
class StageCall:
    """One run of a stage.

    Attributes
    ----------
    src, out : pathlib.Path
        The file to read and the file to write (``out`` is written atomically by the stage's writer).
    probe : Probe
        The input as probed once (its format is also the format of ``src``: labeling never converts).
    record : AIGCLabel
        The label.
    options : LabelOptions
        All options; a stage reads its own group.
    layers : tuple of str
        The layers this call writes, in order.
    done : dict
        What earlier stages wrote, per layer (C2PA reads the watermark's soft binding from it).
    warnings : list of str
        Where a stage adds what the user should know.
    """

    src: Path
    out: Path
    probe: Probe
    record: AIGCLabel
    options: LabelOptions
    layers: tuple[str, ...]
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Stage:
    """One row of :data:`STAGES`.

    Attributes
    ----------
    name : str
        What it is, for messages and docs.
    layers : tuple of str
        The layers it writes, in application order.
    formats : tuple of str
        The input formats it takes.
    run : callable
        ``run(call) -> {layer: result}``.
    check : callable or None
        ``check(probe, options)``: refuses before anything is written (missing key, ...).
    """

    name: str
    layers: tuple[str, ...]
    formats: tuple[str, ...]
    run: Callable[[StageCall], dict[str, dict[str, Any]]]
    check: Callable[[Probe, LabelOptions], None] | None = None


def _needs_key(probe: Probe, options: LabelOptions) -> None:
    if "watermark" in options.layers and options.watermark.key is None:
        # Worded for both callers: label(bytes | path) has no --key-file, the CLI no key=.
        raise LabelerError("the watermark layer needs a key (key= in Python, e.g. labeler.watermark.keyfile."
                           "read_key_file; --key-file on the command line; make one with aigc keygen)")


def _xmp_fits(probe: Probe, options: LabelOptions) -> None:
    """Refuse, before any layer runs, an XMP chunk the metadata writer would refuse (its message).

    A PNG or WebP whose XMP packet is over :data:`labeler.limits.MAX_XMP_PACKET` was refused only by
    the metadata stage, after the pixel layers had run (an 8000 x 6000 WebP: 11.8 s and 1.1 GB for
    nothing); the chunk headers (:attr:`Probe.xmp_chunks`) tell its size at once.
    """
    limit = limits.MAX_XMP_PACKET
    for offset, size in probe.xmp_chunks:
        if probe.format == "png" and size > limit + 200:  # the iTXt header's share, as png.write allows
            raise UnsafeInput(f"png xmp chunk at offset {offset} is over the xmp packet limit")
        if probe.format == "webp" and size > limit:
            raise UnsafeInput(f"webp XMP chunk is {size} bytes, over the {limit}-byte limit")


def _needs_signer(probe: Probe, options: LabelOptions) -> None:
    if options.c2pa.signer is None:
        raise LabelerError("the c2pa layer needs a signer (signer= in Python, e.g. labeler.provenance."
                           "c2pa_sign.local_signer; --sign-cert and --sign-key on the command line; see aigc "
                           "keys init)")


def _image_pixels(call: StageCall) -> dict[str, dict[str, Any]]:
    """Watermark, then visible mark, on one decode; ICC, EXIF and XMP written back with the pixels."""
    from labeler.media.image import read_image
    from labeler.media.image_write import write_image

    image = read_image(call.src, fmt=call.probe.format)
    pixels, done = image_layers(image, call.layers, call.record, call.options)
    small = small_watermark_note(image.pixels) if "watermark" in call.layers else None
    for note in (conversion_note(image), small):
        if note:
            call.warnings.append(note)
    write_image(call.out, pixels, format=image.format, like=image, quality=call.options.output.quality)
    return done


def small_watermark_note(pixels: Any) -> str | None:
    """A warning for a picture under :data:`labeler.watermark.transforms.RELIABLE_PIXELS`: marked, but its
    payload may not read back (``aigc label``'s read-back then says whether it did), else None."""
    from labeler.watermark.transforms import RELIABLE_PIXELS

    h, w = pixels.shape[:2]
    if h * w >= RELIABLE_PIXELS:
        return None
    return (f"the picture is {w}x{h}: under {RELIABLE_PIXELS:,} pixels the watermark's payload may not read "
            "back (measured: about 1 in 8 pictures of 128x128 lose it); keep the metadata and visible layers")


def conversion_note(image: Any) -> str | None:
    """What a pixel layer changes in how an image is stored (1-bit, palette, CMYK, 10-bit AVIF, a grey or
    RGB PNG's ``tRNS`` colour key), or None.

    A watermark changes most pixels by a level or two and a visible mark adds anti-aliased text: neither
    fits a palette of at most 256 colours, and re-quantising would erase the mark. So the image is
    written as truecolour (RGB, or RGBA when the palette had transparency: the transparency is kept as
    alpha), losslessly in PNG, and the label result says so rather than refusing. A palette of more than
    16 colours is an 8-bit one (PNG and TIFF palettes have 1, 2, 4 or 8 bits); a smaller one is named by
    its colours, as the decoded pixels do not tell a 2- or 4-bit palette from an 8-bit one that uses few
    entries. A grey or RGB picture with a colour key (PNG ``tRNS``) is decoded with the key as alpha and
    written with an alpha channel: a mark that changed a pixel by one level would otherwise move it in
    or out of the key colour. A CMYK JPEG is decoded to RGB (through its ICC profile when it has one)
    and written as RGB: the pixel layers work on RGB, and print workflows that need the CMYK separation
    should know.
    """
    mode = getattr(image, "mode", None)
    if mode == "CMYK":
        how = ("through its ICC profile to sRGB" if image.icc
               else "with Pillow's plain formula: the file has no CMYK ICC profile that could be used")
        return f"CMYK image written as RGB (converted {how}; the pixel layers work on RGB)"
    if mode == "1":
        return ("1-bit (black and white) image written as 8-bit grey (the pixel layers' changes do not fit "
                "one bit per pixel)")
    if getattr(image, "format", None) == "avif" and mode and mode.endswith((";10", ";12")):
        return (f"{mode.rsplit(';', 1)[1]}-bit AVIF written as 8-bit (the AVIF codec here reads and writes "
                "8 bits per sample)")
    pixels = image.pixels
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    stored = {"L": 1, "I": 1, "RGB": 3}.get((mode or "").split(";")[0])
    if stored is not None and channels == stored + 1:  # the decoder made the colour key an alpha channel
        grey = stored == 1
        what = f"{'16-bit ' if pixels.dtype.itemsize == 2 else ''}{'grey' if grey else 'RGB'}"
        written = "grey + alpha" if grey else "RGBA"
        return (f"{what} image with a transparent colour key (tRNS) written as {written} (the transparency "
                "is kept exactly; with a key colour the pixel layers' changes would move pixels in or out "
                "of it)")
    if mode not in ("P", "PA"):
        return None
    kind = "RGBA" if channels == 4 else "RGB"
    colours = _palette_colours(pixels)
    if colours > 16:
        return (f"8-bit palette image written as truecolour {kind} (the pixel layers' changes do not fit a "
                "256-colour palette)")
    return (f"{colours}-colour palette image written as truecolour {kind} (the pixel layers' changes do not "
            f"fit its {colours} colours)")


def _palette_colours(pixels: Any) -> int:
    """Distinct colours of a decoded palette image's ``(H, W, 3 | 4)`` uint8 pixels, counted exactly up
    to 16; more is given as 17 (enough to call the palette 8-bit). A few comparison passes, no sort of
    the whole picture (a 16-megapixel one took 0.8 s with ``np.unique``)."""
    import numpy as np

    flat = pixels.reshape(-1, pixels.shape[2])
    codes = flat[:, 0].astype(np.uint32)
    for column in range(1, flat.shape[1]):
        codes = (codes << 8) | flat[:, column]
    known = np.unique(codes[::97])  # a spread-out sample: a photo-like palette shows its colours at once
    if len(known) > 16:
        return 17
    seen = np.zeros(codes.shape, bool)
    for colour in known:  # at most 16 compares: faster than np.isin, which sorts
        seen |= codes == colour
    rest = codes[~seen]
    count = len(known)
    while rest.size and count <= 16:  # colours the sample missed, one pass each
        rest = rest[rest != rest[0]]
        count += 1
    return count


#: What a file of more than one frame is, per format, for the pixel layers' refusal (others: animations).
_MULTI_FRAME = {"jpeg": ("multi-picture JPEG (MPO) files such as a phone's portrait or 3D photo", "images"),
                "tiff": ("multi-page TIFF files", "pages")}


def image_layers(image: Any, layers: tuple[str, ...], record: AIGCLabel,
                 options: LabelOptions) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Apply the image pixel ``layers`` (watermark, then visible mark) to a decoded :class:`ImageData`.

    Returns the new pixel array and what each layer wrote; the caller encodes once (a file stage or
    :func:`labeler.label` on bytes).
    """
    if image.n_frames > 1:
        # named as the user knows the file: a phone's MPO or a scanned multi-page TIFF is no animation
        kind, unit = _MULTI_FRAME.get(getattr(image, "format", None), ("animated images", "frames"))
        raise UnsupportedLayer(f"the {layers[0]} layer does not support {kind}: this one has "
                               f"{image.n_frames} {unit}")
    pixels = image.pixels
    done: dict[str, dict[str, Any]] = {}
    if "watermark" in layers:
        pixels, done["watermark"] = _watermark_pixels(pixels, getattr(image, "orientation", 1), record,
                                                      options)
        note = conversion_note(image)
        if note:
            done["watermark"]["converted"] = note
    if "visible" in layers:
        from labeler.media.image import to_display, to_stored
        from labeler.visible import add_image_label, place_label

        vis = options.visible
        # drawn as a viewer shows the picture: a phone photo stored sideways with an EXIF Orientation
        # tag (kept in the output) gets its label upright, at the corner asked for
        turn = getattr(image, "orientation", 1)
        shown = to_display(pixels, turn)
        placement = place_label(shown.shape[0], shown.shape[1], vis.text, position=vis.position)
        pixels = to_stored(add_image_label(shown, vis.text, position=vis.position), turn)
        done["visible"] = {"kind": "image-text", "text": vis.text, "position": placement.position,
                           "height_ratio": round(placement.height_ratio, 4), "box": list(placement.box)}
        if turn != 1:
            done["visible"]["orientation"] = turn  # the box is in displayed coordinates
    return pixels, done


def _watermark_pixels(pixels: Any, turn: int, record: AIGCLabel,
                      options: LabelOptions) -> tuple[Any, dict[str, Any]]:
    # The payload is derived from the ProduceID, so a verifier can check watermark against metadata.
    import numpy as np

    from labeler.media.image import to_display, to_stored
    from labeler.watermark import embed, payload_from_produce_id
    from labeler.watermark.keyfile import key_id

    wm = options.watermark
    assert wm.key is not None
    payload = payload_from_produce_id(record.produce_id)
    # Marked as shown (EXIF orientation applied): upload paths bake the rotation into the pixels and
    # drop the tag, and the mark's tiles are not rotation-invariant (the detector reads a tagged file
    # turned the same way: detectors.watermark.detect_as_shown). None: the per-image budget
    # (docs/watermark.md); a number: the fixed texture-mask strength.
    marked = embed(np.ascontiguousarray(to_display(pixels, turn)), payload, key=wm.key, method=wm.method,
                   strength=wm.strength)
    done = {"method": wm.method, "payload": payload.hex(), "key_id": key_id(wm.key),
            "strength": "budget" if wm.strength is None else wm.strength}
    if turn != 1:
        done["orientation"] = turn
    return to_stored(marked, turn), done


def _audio_samples(call: StageCall) -> dict[str, dict[str, Any]]:
    """The audio samples stage: :func:`labeler.stages_audio.audio_samples` (its own module: the cue /
    voice prompt and the watermark, whole-file and streamed)."""
    from labeler.stages_audio import audio_samples

    try:
        return audio_samples(call)
    except CorruptFile:
        # ffmpeg's words for a file it cannot decode ("invalid argument", "invalid data found when
        # processing input") say nothing of what is wrong; a WAV or MP3 that holds no audio at all is
        # said as such, as the metadata layer says it. Only after a failure: no file ffmpeg reads is refused.
        from labeler.stages_audio import unreadable_audio

        why = unreadable_audio(call.src, call.probe.format)
        if why is None:
            raise
        raise CorruptFile(why) from None


def _require_complete(call: StageCall) -> None:
    """A decoding pass on a file cut short is refused first: ffmpeg decodes a file cut between two
    samples to where it stops, often without an error, and the output would lack the file's end (a
    copied soundtrack's last packets). ISO-BMFF (MP4, MOV, M4A): no box runs past the end; Matroska
    (MKV, WebM, MKA): nor its Segment; AVI: nor a top-level RIFF chunk; FLV: nor a tag
    (:func:`labeler.media.video_streams.require_complete`; AVI and FLV were unchecked here, so the
    visible pass labeled a cut AVI or FLV with exit 0). All refuse with "the file is cut short: ..."."""
    carrier = format_info(call.probe.format).carrier if call.probe.format is not None else None
    # the carrier as ffmpeg's demuxer names it (MediaInfo.container), which require_complete takes; a
    # WAV ("riff") has its own cut handling (labeled as far as it goes, with a note)
    container = {"isobmff": "mov", "matroska": "matroska", "avi": "avi", "flv": "flv"}.get(carrier or "")
    if container is not None:
        from labeler.media.video_streams import require_complete

        require_complete(call.src, container)


def _video_pixels(call: StageCall) -> dict[str, dict[str, Any]]:
    """Watermark (and visible label) on one decode and one encode; visible alone: :func:`_video_mark`."""
    _require_complete(call)
    if "watermark" not in call.layers:
        return _video_mark(call)
    from labeler.watermark import payload_from_produce_id
    from labeler.watermark.keyfile import key_id
    from labeler.watermark.video import VIDEO_METHOD, watermark_video

    wm, vis = call.options.watermark, call.options.visible
    assert wm.key is not None
    payload = payload_from_produce_id(call.record.produce_id)
    visible = None
    if "visible" in call.layers:
        visible = {"text": vis.text, "position": vis.position, "seconds": vis.seconds, "at": vis.video_at}
    from labeler.watermark.soundtrack import mark_soundtrack

    # Frames, then soundtrack, into call.out, which is in run_stages' staging folder: the output appears
    # only when both are done, so a failed soundtrack never leaves a half-labeled file behind.
    done = watermark_video(call.src, call.out, payload, key=wm.key, method=VIDEO_METHOD,
                           strength=wm.strength, visible=visible, overwrite=True)
    # The soundtrack carries the same payload: it survives alone when a platform keeps only the sound.
    done["watermark"].update(mark_soundtrack(call.out, payload, key=wm.key))
    _keep_itunes_items(call, call.out)
    # "video" names the mark (and its C2PA soft-binding algorithm, aigc-labeler.wm.video.1): the image
    # core's method inside it is kept as "core_method".
    done["watermark"].update(method="video", core_method=done["watermark"]["method"], payload=payload.hex(),
                             key_id=key_id(wm.key))
    mark = done["watermark"]
    if mark.get("converted_from"):
        from labeler.media.video_encoders import pix_fmt_traits

        marked, written = mark["pix_fmt"], mark.get("output_pix_fmt", mark["pix_fmt"])
        source = pix_fmt_traits(mark["converted_from"])
        # a 10-bit source is written at 10 bits again, but its picture went through the 8-bit marking;
        # an 8-bit source lost no bits there, only (RGB, packed) its layout
        deeper = source is None or source.depth > 8
        what = (f"written as 8-bit {marked}" if written == marked
                else f"marked at 8 bits ({marked}) and written as {written}" if deeper
                else f"marked as {marked} and written as {written}")
        call.warnings.append(f"the video's {mark['converted_from']} frames were {what} (the watermark pass "
                             f"works on 8-bit planar YUV){_hdr_note(call.src, 8, mark.get('encoder'))}")
    if mark.get("codec_from"):
        call.warnings.append(_codec_note(mark["codec_from"], mark["encoder"], call.out.suffix))
    if mark.get("alpha") == "dropped":
        call.warnings.append(_alpha_note(call))
    _stream_notes(call, mark, " and ".join(call.layers))
    return done


def _codec_note(codec: str, encoder: str, suffix: str) -> str:
    """The warning for a video stream not written in its own codec family (a pass's ``codec_from``)."""
    from labeler.media.video_encoders import fallback_reason

    return f"the video's {codec} stream was re-encoded with {encoder}: {fallback_reason(codec, suffix)}"


def _hdr_note(src: Path, bits: int, encoder: str | None) -> str:
    """The part of a conversion warning for an HDR source (PQ or HLG transfer) whose picture went
    through ``bits`` bits and ``encoder``: what is lost (libx265 and SVT-AV1 write the HDR10 static
    metadata again, :func:`labeler.media.video_encoders.keep_frame_facts`; the other encoders cannot)."""
    from labeler.media.video import video_info

    try:
        info = video_info(src)
    except LabelerError:
        return ""
    stream = next((s for s in info.media.streams if s.index == info.stream), None)
    trc = stream.color_trc if stream is not None else None
    if trc not in ("smpte2084", "arib-std-b67"):
        return ""
    name = "PQ" if trc == "smpte2084" else "HLG"
    static = ("" if encoder in ("libx265", "libsvtav1")
              else ", and HDR10 mastering-display / light-level metadata is not kept")
    return (f"; this is HDR ({name}): its primaries and transfer tags are kept, so players still show it as "
            f"HDR, but at {bits} bits it may band{static}")


def _video_mark(call: StageCall) -> dict[str, dict[str, Any]]:
    from labeler.visible import add_video_label

    vis = call.options.visible
    done = add_video_label(call.src, call.out, text=vis.text, position=vis.position, seconds=vis.seconds,
                           at=vis.video_at, whole=vis.seconds is None, overwrite=True)
    _keep_itunes_items(call, call.out)
    if done.get("converted_from"):
        call.warnings.append(_visible_conversion_note(call.src, done))
    if done.get("codec_from"):
        call.warnings.append(_codec_note(done["codec_from"], done["encoder"], call.out.suffix))
    if done.get("alpha") == "dropped":
        call.warnings.append(_alpha_note(call))
    _stream_notes(call, done, "visible")
    return {"visible": done}


def _stream_notes(call: StageCall, done: dict[str, Any], layers: str) -> None:
    """Warnings for what a pixel pass's result says it left as it was or could not keep: other video
    tracks (copied unmarked, ``unmarked_video``) and a display rotation that is not a quarter turn
    (``rotation_dropped``)."""
    others = done.get("unmarked_video") or []
    if others:
        streams, were = ("stream", "was") if len(others) == 1 else ("streams", "were")
        plural = "s" if " and " in layers else ""
        call.warnings.append(
            f"the file's other video {streams} ({', '.join(others)}) {were} copied without the {layers} "
            f"layer{plural}: only the first video stream is marked, and verify reads only that one")
    turn = done.get("rotation_dropped")
    if turn is not None:
        call.warnings.append(
            f"the video's display rotation of {turn:g} degrees (not a quarter turn) was not kept: the frames "
            "were turned by it within their stored size (the corners outside it are cut off) and written "
            "with no rotation tag")


def _alpha_note(call: StageCall) -> str:
    """The warning for a video whose alpha channel a pixel pass could not keep."""
    return (f"the video's alpha channel was dropped: only VP8/VP9 alpha written to WebM or Matroska is kept "
            f"(this is {call.probe.format}, the frames are written opaque)")


def _visible_conversion_note(src: Path, done: dict[str, Any]) -> str:
    """The visible pass's warning for a picture that lost depth or chroma (``converted_from``): in the
    format its encoder took, or in the format the label's overlay blended it in (at most 10 bits)."""
    from labeler.media.video_encoders import loses, overlay_format, overlay_pix_fmt, pix_fmt_traits

    source, written, encoder = done["converted_from"], done["pix_fmt"], done["encoder"]
    blended = overlay_pix_fmt(overlay_format(written))
    if loses(source, written) or not loses(source, blended):
        what, why, kept = f"written as {written} by {encoder}", f"the nearest format {encoder} takes", written
    else:
        what = f"blended with the label as {blended} and written as {written} by {encoder}"
        why, kept = "the overlay filter of this ffmpeg blends no deeper format", blended
    traits = pix_fmt_traits(kept)
    hdr = _hdr_note(src, traits.depth if traits else 8, encoder)
    return f"the video's {source} frames were {what} ({why}){hdr}"


def _keep_itunes_items(call: StageCall, written: Path) -> None:
    """An MP4 / MOV source's iTunes-style tags (cover, title, artist...) into the re-encoded ``written``
    (ffmpeg, keeping the custom tag keys, writes none: :mod:`labeler.media.mp4_itunes`)."""
    if format_info(call.probe.format).carrier == "isobmff":
        from labeler.media.mp4_itunes import restore_itunes_items

        restore_itunes_items(call.src, written)


def _metadata(call: StageCall) -> dict[str, dict[str, Any]]:
    from labeler.metadata import write_label

    value = call.record.to_json()
    written = write_label(call.src, call.out, value, fmt=call.probe.format)
    return {"metadata": metadata_result(written, value, call.warnings)}


def metadata_result(written: Any, value: str, warnings: list[str]) -> dict[str, Any]:
    """The ``metadata`` entry of a label result from a :class:`~labeler.metadata.WriteResult`."""
    for other in written.other_copies:
        what = "another label copy" if other.standard else "a non-standard AI declaration"
        warnings.append(f"{what} remains in {other.carrier} ({other.location}), left as it was")
    return {"carrier": written.carrier, "bytes_added": written.bytes_added, "value": value}


def _c2pa(call: StageCall) -> dict[str, dict[str, Any]]:
    from labeler.provenance.c2pa_sign import sign_file

    opts = call.options.c2pa
    assert opts.signer is not None

    def sign(out: Path) -> Any:
        return sign_file(call.src, out, signer=opts.signer, label=call.record,
                         soft_binding=_embedded_mark(call), thumbnail=opts.thumbnail, fmt=call.probe.format,
                         # the input's own name for a parent ingredient: call.src may be a staged copy
                         source_name=call.probe.path.name if call.probe.path is not None else None)

    signed = sign(call.out)
    done = signed.to_dict()
    if opts.manifest_store is not None:
        # call.out is staged (run_stages): a store that cannot be written (read-only, corrupt, not a
        # store) raises here and leaves no output, as any failure does.
        done["manifest_store"] = _keep_manifest(opts.manifest_store, signed, call)
    return {"c2pa": done}


def _embedded_mark(call: StageCall) -> dict[str, Any] | None:
    """What the watermark stage wrote, or None without one (no layer, or nothing to carry the mark): a
    soft binding is declared only for a mark that is there."""
    mark = call.done.get("watermark")
    return None if mark is None or mark.get("embedded") is False else mark


def _keep_manifest(spec: str, signed: Any, call: StageCall) -> bool:
    """Store the signed manifest under the watermark's soft binding; False (and a warning) without one."""
    from labeler.provenance.c2pa_sign import soft_binding_alg
    from labeler.provenance.store import open_store

    mark = _embedded_mark(call)
    if mark is None:
        what = "no watermark layer" if "watermark" not in call.done else "no watermark embedded"
        call.warnings.append(f"{what}: the manifest was not stored (a store finds manifests "
                             "by the watermark's payload)")
        return False
    open_store(spec).put(alg=soft_binding_alg(mark["method"]), key_id=mark["key_id"],
                         payload=bytes.fromhex(mark["payload"]), manifest_id=signed.manifest,
                         mime=signed.mime, store=signed.store, label=call.record.to_json())
    return True


#: Every stage, in the order the pipeline looks for a layer's writer.
STAGES: tuple[Stage, ...] = (
    Stage("image pixels (watermark, visible mark)", ("watermark", "visible"), PIXEL_FORMATS, _image_pixels,
          _needs_key),
    Stage("audio samples (cue / voice prompt, watermark)", ("watermark", "visible"), AUDIO_FORMATS,
          _audio_samples, _needs_key),
    Stage("video pixels (watermark, visible mark)", ("watermark", "visible"), VIDEO_FORMATS, _video_pixels,
          _needs_key),
    Stage("video visible mark", ("visible",), VIDEO_FORMATS, _video_mark),
    Stage("metadata label", ("metadata",), FORMATS, _metadata, _xmp_fits),
    Stage("C2PA manifest", ("c2pa",), C2PA_FORMATS, _c2pa, _needs_signer),
)


def stage_for(layer: str, fmt: str, stages: tuple[Stage, ...] = STAGES) -> Stage:
    """Return the stage that writes ``layer`` on ``fmt`` files.

    Raises
    ------
    UnsupportedLayer
        When no stage does, naming the formats that layer supports.
    """
    for stage in stages:
        if layer in stage.layers and fmt in stage.formats:
            return stage
    if layer == "visible":
        raise UnsupportedLayer(f"the visible layer does not support {fmt} files")
    supported = [f for f in FORMATS if any(layer in s.layers and f in s.formats for s in stages)]
    raise UnsupportedLayer(f"the {layer} layer supports {', '.join(supported)} files, not {fmt}")


Step = tuple[Stage, tuple[str, ...]]


def plan(layers: tuple[str, ...], fmt: str, stages: tuple[Stage, ...] = STAGES) -> list[Step]:
    """Group ``layers`` (in application order) into steps: consecutive layers of one stage run together."""
    steps: list[Step] = []
    for layer in layers:
        stage = stage_for(layer, fmt, stages)
        if steps and steps[-1][0] is stage:
            steps[-1] = (stage, steps[-1][1] + (layer,))
        else:
            steps.append((stage, (layer,)))
    return steps
