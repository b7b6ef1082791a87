"""The order of layers when labeling a file: pixels/samples first, then metadata, then C2PA.

Pixel layers (watermark, visible label) change the media and so must come before the
metadata label (which never re-encodes), and a C2PA manifest signs the final bytes, so it
comes last. Which code writes a layer for a format is the stage table, :data:`labeler.stages.STAGES`;
this module probes the input once, plans the steps and runs them with staged, atomic outputs.
"""

from __future__ import annotations

import numbers
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeler.atomic import check_paths, place, staging_folder
from labeler.errors import InvalidArgument, LabelerError, PartialFile
from labeler.formats import EXTENSIONS, PIXEL_FORMATS, check_extension
from labeler.options import LabelOptions
from labeler.probe import Probe, probe_path
from labeler.record import AIGCLabel, check_watermark_label
from labeler.stages import StageCall, plan

if TYPE_CHECKING:
    from labeler.provenance.c2pa_sign import SignerSpec

#: Every layer name, in the order they are applied.
LAYER_ORDER = ("watermark", "visible", "metadata", "c2pa")
#: Layers this version can write.
AVAILABLE_LAYERS = ("watermark", "visible", "metadata", "c2pa")
__all__ = ["LAYER_ORDER", "AVAILABLE_LAYERS", "PIXEL_FORMATS", "LabelResult", "parse_layers", "label_file",
           "resolve_options", "run_stages"]


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
    """Validate a layer list (``"metadata,watermark"`` or a sequence) and return it in application order.

    Raises
    ------
    InvalidArgument
        Not a str or a sequence of str, no layer, or an unknown or unavailable layer name.
    """
    must = "layers must be a str or a sequence of str (e.g. 'watermark,metadata')"
    try:
        parts = spec.split(",") if isinstance(spec, str) else list(spec)
    except TypeError:  # not iterable
        raise InvalidArgument(f"{must}, not {type(spec).__name__}") from None
    for part in parts:
        if not isinstance(part, str):
            raise InvalidArgument(f"{must}, not a sequence holding {type(part).__name__}")
    names = [s.strip() for s in parts if s.strip()]
    if not names:
        raise InvalidArgument("no layers given")
    for name in names:
        if name not in LAYER_ORDER:
            raise InvalidArgument(f"unknown layer {name!r} (layers: {', '.join(LAYER_ORDER)})")
        if name not in AVAILABLE_LAYERS:
            raise InvalidArgument(
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
    manifest_store: str | None = None,
    options: LabelOptions | None = None,
) -> LabelResult:
    """Label the file ``src`` and write the result to ``dst``.

    Parameters
    ----------
    src : path
        Input media file; never modified.
    dst, overwrite : path, bool
        Output, written atomically (a failure leaves nothing behind), never ``src``; ``overwrite``
        replaces an existing ``dst``.
    label : AIGCLabel
        The implicit label; validated against GB 45438 Appendix E first.
    layers : str or sequence of str
        Layers to add (comma-separated or a sequence), applied in :data:`LAYER_ORDER` whatever the order.
    key, watermark_method, watermark_strength, quality
        Watermark key (required by the ``watermark`` layer; :mod:`labeler.watermark.keyfile`), method
        (``"dct"``/``"dwt"``), strength in 8-bit luma levels (None: the per-image budget,
        :func:`labeler.watermark.budget_mask`), and the JPEG / lossy WebP quality (1-100) used when
        the watermark layer re-encodes the pixels.
    signer, c2pa_thumbnail
        C2PA signer (required by the ``c2pa`` layer; :func:`labeler.provenance.c2pa_sign.local_signer`
        or ``callback_signer``), and whether to embed a claim thumbnail (35-440 KB per image; off).
    text, position
        Wording of the visible label (with "AI"/"人工智能" and "生成"/"合成", GB 45438 5) and where it
        goes (one of :data:`labeler.visible.POSITIONS`).
    visible_seconds, video_at
        Video: how long the visible label shows, in seconds (>= 2, GB 45438 5.3; None: throughout), at
        each of ``video_at`` (``"start"`` required, ``"middle"``, ``"end"``). Re-encoded once (libx264).
    cue_positions : sequence of {"start", "end", "middle"}
        Audio: where the audio label (rhythm cue, voice prompt or both) goes. WAV/FLAC keep their
        sample format and tags; MP3/M4A are re-encoded once at about the input's bit rate, tags kept.
    audio_label, voice_language : str
        Audio: ``"rhythm"`` (the Morse "AI" cue), ``"voice"`` (the spoken prompt) or ``"both"``; the
        prompt's language, ``"zh"`` ("本内容由人工智能生成") or ``"en"`` ("This content is AI-generated.").
    manifest_store : str, optional
        With the ``c2pa`` and ``watermark`` layers: a SQLite file where the signed manifest is kept
        under the watermark's soft binding (:mod:`labeler.provenance.store`), for ``verify
        --manifest-store`` to recover it from a stripped copy.
    options : LabelOptions, optional
        All of the above as the frozen groups of :mod:`labeler.options` (what the CLI and the batch
        worker pass); then the keywords above stay at their defaults.

    Raises
    ------
    InvalidArgument
        A caller mistake: ``label`` not an :class:`AIGCLabel`, a path that is not one, an option of the
        wrong type or out of range, a label value over the readers' limit with the metadata layer.
    LabelerError
        With a one-line reason, for bad input, an invalid label or an unsafe file.
    TypeError
        ``options`` together with a keyword above that differs from its default.
    """
    started = time.perf_counter()
    if not isinstance(label, AIGCLabel):
        raise InvalidArgument(f"label must be an AIGCLabel (labeler.AIGCLabel), not {type(label).__name__}")
    options = resolve_options(options, layers=layers, key=key, watermark_method=watermark_method,
                              watermark_strength=watermark_strength, quality=quality, overwrite=overwrite,
                              signer=signer, c2pa_thumbnail=c2pa_thumbnail, text=text, position=position,
                              visible_seconds=visible_seconds, cue_positions=cue_positions, video_at=video_at,
                              audio_label=audio_label, voice_language=voice_language,
                              manifest_store=manifest_store)
    if "metadata" in options.layers:
        from labeler.metadata import check_value

        check_value(label.to_json())  # before a watermark or visible pass spends its time
    return run_stages(src, dst, label, options, started=started)


def resolve_options(options: LabelOptions | None, *, layers: str | Sequence[str] = ("metadata",),
                    **flat: Any) -> LabelOptions:
    """The :class:`LabelOptions` a label call runs with: ``options`` with its layers validated and put in
    :data:`LAYER_ORDER`, or else the flat keywords of :func:`label_file` through :meth:`LabelOptions.build`.

    Raises
    ------
    TypeError
        ``options`` together with a flat keyword that differs from its default, or an unknown keyword.
    InvalidArgument
        An unknown or unavailable layer, ``options`` that is not a :class:`LabelOptions`, or an option of
        the wrong type (a str quality, a None text...) or out of range (quality outside 1-100).
    """
    if options is not None and not isinstance(options, LabelOptions):
        raise InvalidArgument(f"options must be a LabelOptions (labeler.LabelOptions), "
                              f"not {type(options).__name__}")
    for name in ("cue_positions", "video_at"):
        # LabelOptions.build makes a tuple of these: None or a number would fail there as a TypeError
        if name in flat and not isinstance(flat[name], (str, Sequence)):
            raise InvalidArgument(f"{name} must be a sequence of str, not {type(flat[name]).__name__}")
    built = LabelOptions.build(layers=parse_layers(layers), **flat)
    if options is None:
        return _checked(built)
    if built != LabelOptions():
        raise TypeError("give options= or the separate option keywords, not both")
    return _checked(replace(options, layers=parse_layers(options.layers)))


def _check_key(key: Any, *, embeds: bool) -> None:
    """Refuse a watermark key that is not bytes, is empty, or (``embeds``: the watermark layer will use
    it) is shorter than :data:`labeler.watermark.payload.MIN_EMBED_KEY_BYTES`, before any probing or
    decoding: the embedder would refuse it only after the input was probed (about 0.7 s for a clip).

    Raises
    ------
    InvalidArgument
        With a one-line message that names the key's type or length, never its bytes (a secret).
    """
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise InvalidArgument(f"key must be bytes (see labeler.watermark.keyfile), not {type(key).__name__}")
    if memoryview(key).nbytes == 0:
        # worded as detectors.verify words it (detectors.arguments.key_argument)
        raise InvalidArgument("key is empty: it must be non-empty bytes (a key file's contents)")
    if embeds:
        from labeler.watermark.payload import check_embed_key

        try:
            check_embed_key(key)
        except LabelerError as exc:
            raise InvalidArgument(str(exc)) from None


def _checked(options: LabelOptions) -> LabelOptions:
    """``options`` with its numbers as plain ``int``/``float``, after refusing values of the wrong type
    here, with the option's name, rather than as a TypeError deep in a stage (or a misleading encoder
    error: Pillow calls a float quality an invalid setting), and its flags (``overwrite``,
    ``c2pa_thumbnail``) as plain ``bool`` once known to be ``bool`` or NumPy's. Values of the right type
    are checked by the stages that know them (methods, positions, places)."""
    def bad(name: str, value: Any, want: str) -> InvalidArgument:
        return InvalidArgument(f"{name} must be {want}, not {value!r}"[:200])

    def number(value: Any) -> bool:  # NumPy scalars too: a backend's numbers often are
        return isinstance(value, numbers.Real) and not isinstance(value, bool)

    def flag(name: str, value: Any) -> bool:
        # Strictly a bool (NumPy's too): any other value was taken for its truth, so overwrite="no" or
        # overwrite="false" replaced an existing output.
        kind = type(value)
        if isinstance(value, bool) or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")):
            return bool(value)
        raise bad(name, value, "True or False")

    mark, vis, out, c2pa = options.watermark, options.visible, options.output, options.c2pa
    overwrite, thumbnail = flag("overwrite", out.overwrite), flag("c2pa_thumbnail", c2pa.thumbnail)
    quality = out.quality
    integral = isinstance(quality, numbers.Integral) and not isinstance(quality, bool)
    if not integral or not 1 <= quality <= 100:
        raise bad("quality", quality, "an int from 1 to 100")
    if mark.key is not None:
        _check_key(mark.key, embeds="watermark" in options.layers)
    if mark.strength is not None and not number(mark.strength):
        raise bad("watermark_strength", mark.strength, "a number or None")
    if vis.seconds is not None and not number(vis.seconds):
        raise bad("visible_seconds", vis.seconds, "a number or None")
    texts = {"watermark_method": mark.method, "text": vis.text, "position": vis.position,
             "audio_label": vis.audio_label, "voice_language": vis.voice_language}
    for name, value in texts.items():
        if not isinstance(value, str):
            raise bad(name, value, "a str")
    for name, places in (("cue_positions", vis.cue_positions), ("video_at", vis.video_at)):
        if not all(isinstance(place, str) for place in places):
            raise bad(name, places, "a sequence of str")
    if c2pa.manifest_store is not None and not isinstance(c2pa.manifest_store, (str, os.PathLike)):
        raise bad("manifest_store", c2pa.manifest_store, "a path or None")
    # Plain Python numbers from here on: encoders refuse NumPy scalars (Pillow: "invalid quality setting").
    strength = mark.strength
    if strength is not None and type(strength) not in (int, float):
        strength = float(strength)
    return replace(options, output=replace(out, quality=int(quality), overwrite=overwrite),
                   watermark=replace(mark, strength=strength), c2pa=replace(c2pa, thumbnail=thumbnail))


def input_notes(src: Path | bytes, fmt: str, label: AIGCLabel, layers: Sequence[str]) -> list[str]:
    """What labeling ``src`` (a path, or the file's bytes) will undo that the caller may not know:
    another producer's label that the metadata layer replaces, and a C2PA manifest whose hash no longer
    matches once any layer changes the bytes (unless the c2pa layer signs the result with it as its
    parent). Warnings only: the caller asked for it (``aigc propagate`` is the tool that keeps a
    producer's fields), and a JPEG, MP3 or WAV cut short, which the metadata, c2pa and audio layers label
    as far as it goes (ffmpeg decodes an MP3 or WAV to the cut without a word; the image pixel layers
    refuse a cut JPEG themselves)."""
    import io

    from labeler.formats import C2PA_FORMATS
    from labeler.metadata import carrier_module, read_labels
    from labeler.record import parse_label

    notes = [note for note in (_cut_short_note(src, fmt),) if note is not None]
    if "metadata" in layers:
        try:
            found = [f for f in (carrier_module(fmt).read(io.BytesIO(src)) if isinstance(src, bytes)
                                 else read_labels(src, fmt)[1]) if f.standard]
        except PartialFile as exc:  # a WAV cut short: its label, before the cut, is replaced all the same
            found = [f for f in exc.found if f.standard]
        except LabelerError:
            found = []  # the metadata stage reports an unreadable file itself
        for old in found[:1]:
            try:
                values = parse_label(old.raw).fields
            except LabelerError:
                continue
            producer, produce_id = values.get("ContentProducer"), values.get("ProduceID")
            if (producer, produce_id) != (label.content_producer, label.produce_id):
                notes.append(f"replaces the file's existing AIGC label (ContentProducer {producer!r}, "
                             f"ProduceID {produce_id!r}); to pass a labeled file on, aigc propagate keeps "
                             "the producer's fields")
    if "c2pa" not in layers and fmt in C2PA_FORMATS:
        from labeler.provenance.c2pa_sign import holds_manifest

        if holds_manifest(src, fmt):
            coded = [name for name in layers if name in ("watermark", "visible")]
            # a re-encode keeps the manifest only where the rewrite copies unknown chunks (WAV, FLAC);
            # Pillow, ffmpeg and the MP3 path drop it (measured 2026-12-06)
            what = (f"the {' and '.join(coded)} layer re-encodes the file: the manifest is dropped, or kept "
                    "as Invalid in WAV and FLAC" if coded else "verify: Invalid")
            notes.append(f"the file's C2PA manifest will no longer match its bytes ({what}); add the c2pa "
                         "layer to sign the result with it as the parent ingredient")
    return notes


def _cut_short_note(src: Path | bytes, fmt: str) -> str | None:
    if fmt == "jpeg":
        from labeler.media.image_salvage import jpeg_cut_note

        return jpeg_cut_note(src)
    if fmt == "mp3":
        from labeler.media.mp3_cut import mp3_cut_note

        return mp3_cut_note(src)
    if fmt == "wav":
        # libsndfile and ffmpeg decode a WAV cut in its samples to the cut without a word, and the
        # metadata layer writes it with its data size set to what is there: the user must hear of it.
        from labeler.metadata.riff import cut_note

        return cut_note(src)
    return None


def _name_the_output(exc: LabelerError, scratch: str, staged: Path, dst: Path) -> None:
    """Make ``exc``'s message name ``dst`` where a step named its staged file (``cannot write
    .aigc-123-ab/out/a.jpg: No space left on device``): the user gave ``dst`` and never sees the rest."""
    if not exc.args or not isinstance(exc.args[0], str) or scratch not in exc.args[0]:
        return
    message = exc.args[0].replace(str(staged), str(dst))  # the finished file's name may hold spaces
    message = re.sub(re.escape(scratch) + r"[^\s:'\"]*", lambda _: str(dst), message)  # a step's file
    exc.args = (message, *exc.args[1:])


def _stage_error(exc: LabelerError | OSError, scratch: str, src: Path, staged: Path,
                 dst: Path) -> LabelerError:
    """The one-line :class:`LabelerError` for a step that failed with ``exc`` (``exc`` itself, reworded,
    when it is one).

    A step's own file I/O raises ``OSError`` (ffmpeg's output vanished under it, a full disk): the
    library promises ``LabelerError`` for anything but a bug. An output folder removed (or renamed) while
    labeling is said as such: the step's message would name a staged file inside it, and the folder
    check of :func:`~labeler.atomic.atomic_output` would call ``dst`` itself a folder.
    """
    if not dst.parent.is_dir():
        return LabelerError(f"output folder {dst.parent} was removed while labeling")
    if isinstance(exc, LabelerError):
        _name_the_output(exc, scratch, staged, dst)
        return exc
    where = os.fspath(exc.filename) if isinstance(exc.filename, (str, os.PathLike)) else None
    reason = exc.strerror or str(exc)
    if where is not None and Path(where) == src:
        return LabelerError(f"cannot read {src}: {reason}")
    if where is None or where.startswith(scratch):
        return LabelerError(f"cannot write {dst}: {reason}")
    return LabelerError(f"{where}: {reason}")


def _check_names(fmt: str, src: Path, dst: Path) -> None:
    """Refuse an output extension that does not fit the input's format (:func:`check_extension`), saying
    so when the input's own name misleads too: a JPEG named ``fake.png`` labeled to ``fake.l.png`` was
    told ".png does not fit jpeg", which reads as if the input's .png were wrong for a PNG output."""
    dst_ext, src_ext = dst.suffix.lower(), src.suffix.lower()
    if dst_ext and dst_ext not in EXTENSIONS[fmt] and src_ext and src_ext not in EXTENSIONS[fmt]:
        # "it and its output": a batch names each output after its input, so renaming the input is the fix
        raise InvalidArgument(f"the input's own extension {src_ext!r} does not fit its content ({fmt}); "
                              f"use {EXTENSIONS[fmt][0]!r} for it and its output: labeling never converts "
                              "formats")
    check_extension(fmt, dst)


def run_stages(src: str | os.PathLike[str], dst: str | os.PathLike[str], label: AIGCLabel,
               options: LabelOptions, probe: Probe | None = None, *,
               started: float | None = None) -> LabelResult:
    """Label ``src`` into ``dst`` with grouped options: the work of :func:`label_file`.

    ``probe`` is the input's :class:`~labeler.probe.Probe` when the caller has one already (it is
    probed here otherwise); every stage reads the format from it. ``started`` (``time.perf_counter()``)
    is when the caller's work began, for ``LabelResult.seconds``; default: now.
    """
    started = time.perf_counter() if started is None else started
    label.check()
    check_watermark_label(label, options.layers)
    src_p, dst_p = check_paths(src, dst, overwrite=options.output.overwrite)
    probe = probe or probe_path(src_p)
    fmt = probe.format
    assert fmt is not None
    _check_names(fmt, src_p, dst_p)
    steps = plan(options.layers, fmt)
    options.visible.check()
    for stage, _ in steps:
        if stage.check is not None:
            stage.check(probe, options)
    if not dst_p.parent.is_dir():
        raise LabelerError(f"output folder does not exist: {dst_p.parent}")
    result = LabelResult(os.fspath(src), os.fspath(dst), fmt)
    result.warnings.extend(input_notes(src_p, fmt, label, options.layers))
    if options.c2pa.manifest_store is not None and "c2pa" not in options.layers:
        result.warnings.append("a manifest store keeps the signed C2PA manifest: without the c2pa layer "
                               "there is none to keep, so it was not used")
    # Every step writes a staged file beside dst (same file system: the final move is atomic, and a
    # failure anywhere leaves no output); the last one keeps dst's name (C2PA records it) and is moved
    # onto dst in one step that refuses, without overwrite, a dst that appeared meanwhile (place()).
    with staging_folder(dst_p.parent) as scratch:
        final = Path(scratch) / "out"  # its own folder: dst's name cannot meet a step's ("1.png")
        final.mkdir()
        current = src_p
        try:
            for index, (stage, layers) in enumerate(steps):
                last = index == len(steps) - 1
                out = final / dst_p.name if last else Path(scratch) / f"{index}{dst_p.suffix or '.' + fmt}"
                call = StageCall(current, out, probe, label, options, layers, result.layers, result.warnings)
                result.layers.update(stage.run(call))
                current = out
        except (LabelerError, OSError) as exc:
            failed = _stage_error(exc, scratch, src_p, final / dst_p.name, dst_p)
            if failed is exc:
                raise
            raise failed from None
        place(current, dst_p, overwrite=options.output.overwrite)
    result.seconds = time.perf_counter() - started
    return result
