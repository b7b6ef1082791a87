"""One entry point for generation backends: :func:`label` takes a path, an encoded file in memory or pixels.

::

    >>> from labeler import AIGCLabel, label
    >>> rec = AIGCLabel("001191110102MACQD9K64010000", "img-42")
    >>> label("in.png", rec, dst="out.png").format
    'png'
    >>> labeled = label(png_bytes, rec, layers="watermark,metadata", key=key)
    >>> marked = label(pixels, rec, layers="watermark,visible", key=key)

Files go through :func:`labeler.pipeline.label_file`. Bytes stay in memory when every layer asked for
can: the metadata label on any format, the image pixel layers on JPEG, PNG, WebP, TIFF, and the C2PA
manifest on every format C2PA carries (c2pa-python signs and reads back file-like streams). The
layers that need ffmpeg or a file (the audio watermark and cue, the video layers) and a C2PA
``manifest_store`` go through ``label_file`` via a private temporary folder that is always removed.
Arrays go through the same array functions the pipeline uses (:func:`labeler.watermark.embed`,
:func:`labeler.visible.add_image_label`). Nothing here keeps state, so calls may run on many threads
at once.

Bytes and arrays return no :class:`~labeler.pipeline.LabelResult`, so what its ``warnings`` would say
(no watermark embedded in silent audio, a palette picture written as RGB, another producer's label
replaced...) is issued as :class:`~labeler.errors.LabelWarning` through :mod:`warnings`, one per entry.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from labeler.errors import InvalidArgument, LabelerError, LabelWarning
from labeler.formats import C2PA_FORMATS, EXTENSIONS, FORMATS, PIXEL_FORMATS, sniff_bytes, sniff_file
from labeler.options import LabelOptions
from labeler.pipeline import LabelResult, input_notes, label_file, resolve_options
from labeler.record import AIGCLabel, check_watermark_label

if TYPE_CHECKING:
    import numpy as np

__all__ = ["label", "TEMP_PREFIX"]

#: Prefix of the private temporary folder :func:`label` uses for bytes (removed before it returns).
TEMP_PREFIX = "aigc-label-"
#: Layers that need a container, so an array cannot take them.
_CONTAINER_LAYERS = ("metadata", "c2pa")
#: The keywords of :func:`label_file` that :func:`label` passes on through ``**more``.
_MORE_KEYWORDS = frozenset({"overwrite", "quality", "signer", "c2pa_thumbnail", "visible_seconds",
                            "cue_positions", "video_at", "audio_label", "voice_language", "manifest_store"})


@overload
def label(source: str | os.PathLike[str], record: AIGCLabel, *, dst: str | os.PathLike[str],
          **more: Any) -> LabelResult: ...
@overload
def label(source: bytes | bytearray | memoryview, record: AIGCLabel, **more: Any) -> bytes: ...
@overload
def label(source: np.ndarray, record: AIGCLabel, **more: Any) -> np.ndarray: ...


def label(
    source: Any,
    record: AIGCLabel,
    *,
    dst: str | os.PathLike[str] | None = None,
    layers: str | Sequence[str] = ("metadata",),
    fmt: str | None = None,
    key: bytes | None = None,
    watermark_method: str = "dct",
    watermark_strength: float | None = None,
    text: str = "AI生成",
    position: str = "bottom-right",
    options: LabelOptions | None = None,
    **more: Any,
) -> Any:
    """Label a file, an encoded file in memory, or an image array.

    Parameters
    ----------
    source : path-like, bytes-like or numpy.ndarray
        * a path: the labeled copy is written to ``dst`` (required), atomically; returns the
          :class:`~labeler.pipeline.LabelResult`. Exactly :func:`~labeler.pipeline.label_file`.
        * ``bytes``, ``bytearray`` or ``memoryview``: a whole encoded file (any format of
          :data:`labeler.formats.FORMATS`, sniffed from the content); returns the labeled file as
          ``bytes``, in the same format. No temporary file unless a layer needs ffmpeg (audio and
          video sample layers) or ``manifest_store`` is given (see the module docstring).
        * a NumPy array ``(H, W)`` or ``(H, W, 1..4)``, uint8 (0..255) or uint16 (0..65535, either byte
          order), at least 128 x 128 for the watermark: only the pixel layers apply (``watermark``,
          ``visible``; an array has no container for ``metadata`` or ``c2pa``); returns a new array of
          the same shape and dtype (``source`` is not modified).
    record : AIGCLabel
        The implicit label; validated against GB 45438 Appendix E first. For arrays it gives the
        watermark payload (derived from its ProduceID, as for files).
    dst : path-like, optional
        Output path; required for a path ``source``, refused otherwise.
    layers : str or sequence of str
        ``"metadata"`` (default), ``"watermark"``, ``"visible"``, ``"c2pa"``; comma-separated or a
        sequence, applied in :data:`labeler.pipeline.LAYER_ORDER`.
    fmt : str, optional
        Container format of a path or bytes ``source``. It must agree with the content; it only
        decides between readings the content leaves open (``m4a`` or ``mp4`` for an ``isom`` brand).
    key, watermark_method, watermark_strength, text, position
        As for :func:`~labeler.pipeline.label_file`: the watermark key, ``"dct"``/``"dwt"``, the strength
        in 8-bit luma levels (None: the per-image budget), the visible label's wording and position.
    options : LabelOptions, optional
        All the options as the frozen groups of :mod:`labeler.options`, instead of the keywords (an
        array reads only its layers, its watermark group and the visible text and position).
    **more
        Files and bytes only: the other keyword arguments of :func:`~labeler.pipeline.label_file`,
        passed on unchanged (e.g. ``overwrite``, ``quality`` 1-100, ``signer``, ``c2pa_thumbnail``,
        ``visible_seconds``, ``cue_positions``); an unknown name is a ``TypeError``, as there (for an
        array too; a name ``label_file`` takes is an ``InvalidArgument`` for an array).

    Returns
    -------
    LabelResult, bytes or numpy.ndarray
        As described for each kind of ``source``.

    Raises
    ------
    InvalidArgument
        A caller mistake (a ``LabelerError`` and a ``ValueError``): an argument of the wrong type or out
        of range, ``dst`` missing for a path or given for data in memory, an unknown ``fmt``.
    LabelerError
        One-line reason: bad input, an invalid label, a layer the source cannot take, a missing key or
        signer. A failure leaves no output and no temporary file behind.
    TypeError
        An unknown keyword argument, or ``options`` together with one of the option keywords.

    Warns
    -----
    LabelWarning
        Bytes and arrays only: one warning per entry the path form would put in
        ``LabelResult.warnings`` (for the same input and options), pointing at the caller's line.
    """
    if not isinstance(record, AIGCLabel):
        raise InvalidArgument(f"record must be an AIGCLabel (labeler.AIGCLabel), not {type(record).__name__}")
    flat = {"layers": layers, "key": key, "watermark_method": watermark_method,
            "watermark_strength": watermark_strength, "text": text, "position": position}
    if fmt is not None and not isinstance(fmt, str):
        raise InvalidArgument(f"fmt must be a format name (str) or None, not {type(fmt).__name__}")
    unknown = sorted(set(more) - _MORE_KEYWORDS)
    if unknown:
        # Named here, for every kind of source: LabelOptions.build's own TypeError named that internal
        # function, and an array said "foo: only for files and bytes" of a name no form takes.
        raise TypeError(f"label() got an unexpected keyword argument {unknown[0]!r}")
    if isinstance(source, (str, os.PathLike)):
        if dst is None:
            raise InvalidArgument("labeling a file needs dst= (the output path)")
        _check_path_fmt(source, fmt)
        return label_file(source, dst, record, options=resolve_options(options, **flat, **more))
    if dst is not None:
        raise InvalidArgument("dst= is for labeling a file; bytes and arrays are returned")
    if isinstance(source, (bytes, bytearray, memoryview)):
        labeled, notes = _label_bytes(bytes(source), record, fmt, resolve_options(options, **flat, **more))
    elif hasattr(source, "__array_interface__"):
        _check_array_keywords(fmt, more)
        labeled, notes = _label_array(source, record, resolve_options(options, **flat))
    else:
        raise InvalidArgument(f"cannot label a {type(source).__name__}: give a path, bytes or a NumPy array")
    # Issued only once the call has succeeded (a failure raises instead), and from here, so that
    # stacklevel=2 names the caller's line: the warnings module's filters then work per call site.
    for note in notes:
        warnings.warn(note, LabelWarning, stacklevel=2)
    return labeled


def _check_array_keywords(fmt: str | None, more: dict[str, Any]) -> None:
    if fmt is not None or more:
        extra = ", ".join(["fmt"] * (fmt is not None) + sorted(more))
        raise InvalidArgument(f"{extra}: only for files and bytes, not arrays")


def _check_fmt(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InvalidArgument(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")


#: Formats that share a container (a track list, not the signature, tells them apart).
_SAME_CONTAINER = ({"mp4", "m4a", "mov"}, {"mkv", "mka"}, {"webm", "weba"})


def _check_path_fmt(source: str | os.PathLike[str], fmt: str | None) -> None:
    """Refuse a ``fmt`` that the file's content contradicts (m4a/mp4/mov share a container)."""
    if fmt is None:
        return
    _check_fmt(fmt)
    try:
        found = sniff_file(source)
    except (OSError, ValueError):
        # a missing or unreadable source, or a NUL in its name (os.open's ValueError, which escaped as
        # "embedded null byte"): label_file says so, in its words
        return
    if found != fmt and not any({found, fmt} <= group for group in _SAME_CONTAINER):
        raise LabelerError(f"fmt={fmt!r} does not match the content ({found})")


def _label_bytes(data: bytes, record: AIGCLabel, fmt: str | None,
                 options: LabelOptions) -> tuple[bytes, list[str]]:
    """The labeled bytes and the warnings a :class:`LabelResult` would carry."""
    if fmt is not None:
        _check_fmt(fmt)
    # The whole buffer as the head (an ID3 tag before FLAC is looked past); fmt's extension is the
    # name hint that tells m4a from mp4 when the brand does not.
    found = sniff_bytes(data, f"input{EXTENSIONS[fmt][0]}" if fmt else "")
    if fmt is not None and found != fmt and not any({found, fmt} <= g for g in _SAME_CONTAINER):
        raise LabelerError(f"fmt={fmt!r} does not match the content ({found})")
    if _in_memory(found, options):
        return _label_in_memory(data, record, found, options)
    ext = EXTENSIONS[found][0]
    # label_file works on paths (ffmpeg and the audio/video writers need files): a private folder
    # (mode 0700), removed on every exit, also when labeling fails.
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as folder:
        src, out = Path(folder) / f"input{ext}", Path(folder) / f"output{ext}"
        try:
            src.write_bytes(data)
        except OSError as exc:
            raise LabelerError(f"cannot write a temporary file: {exc.strerror or exc}") from None
        result = label_file(src, out, record, options=options)
        return out.read_bytes(), result.warnings


def _in_memory(fmt: str, options: LabelOptions) -> bool:
    """Whether every requested layer can label ``fmt`` in memory (see the module docstring)."""
    pixel = set(options.layers) - {"metadata", "c2pa"}
    if pixel and (fmt not in PIXEL_FORMATS or pixel - {"watermark", "visible"}):
        return False
    # The manifest store is written by the file pipeline's C2PA stage (and without the c2pa layer the
    # pipeline warns that it went unused); a format C2PA cannot carry gets that stage's own refusal there.
    if options.c2pa.manifest_store is not None:
        return False
    return "c2pa" not in options.layers or fmt in C2PA_FORMATS


def _label_in_memory(data: bytes, record: AIGCLabel, fmt: str,
                     options: LabelOptions) -> tuple[bytes, list[str]]:
    """Label without any file: image pixel layers, then the metadata label, then the C2PA manifest,
    each on the previous one's bytes (the order and the writers of :func:`label_file`). Returns the
    bytes and the warnings the file pipeline gives for the same input, in its order."""
    from labeler.formats import format_info
    from labeler.probe import Probe
    from labeler.stages import conversion_note, image_layers, metadata_result, small_watermark_note, stage_for

    record.check()
    check_watermark_label(record, options.layers)
    # The probe label_file's checks get: the metadata stage's reads the XMP chunk headers, so a packet
    # it would refuse is refused before the pixel layers spend their time. Built from the format already
    # sniffed (with fmt's name hint), not sniffed again.
    probe = Probe("bytes", fmt, format_info(fmt).medium, len(data), data=data)
    for layer in options.layers:
        stage = stage_for(layer, fmt)
        if stage.check is not None:
            stage.check(probe, options)
    value = record.to_json()
    if "metadata" in options.layers:
        from labeler.metadata import check_value

        check_value(value)  # before the pixel layers spend their time
    notes = input_notes(data, fmt, record, options.layers)
    pixel = tuple(n for n in options.layers if n in ("watermark", "visible"))
    done: dict[str, dict[str, Any]] = {}
    if pixel:
        from labeler.media.image import read_image
        from labeler.media.image_write import encode_image

        image = read_image(data, fmt=fmt)
        pixels, done = image_layers(image, pixel, record, options)
        small = small_watermark_note(image.pixels) if "watermark" in pixel else None
        notes += [note for note in (conversion_note(image), small) if note]
        data = encode_image(pixels, fmt, like=image, quality=options.output.quality,
                            lossless=image.lossless)
    if "metadata" in options.layers:
        from labeler.metadata import write_label_bytes

        data, written = write_label_bytes(data, value, fmt)
        metadata_result(written, value, notes)
    if "c2pa" in options.layers:
        from labeler.provenance.c2pa_sign import sign_bytes

        assert options.c2pa.signer is not None  # the stage's check above
        data, _ = sign_bytes(data, signer=options.c2pa.signer, label=record,
                             soft_binding=done.get("watermark"), thumbnail=options.c2pa.thumbnail, fmt=fmt)
    return data, notes


def _label_array(source: Any, record: AIGCLabel, options: LabelOptions) -> tuple[np.ndarray, list[str]]:
    """The labeled array and the warnings the file pipeline would give for the same pixels."""
    import numpy as np

    from labeler.stages import small_watermark_note

    order, mark = options.layers, options.watermark
    refused = [name for name in order if name in _CONTAINER_LAYERS]
    if refused:
        raise InvalidArgument(
            f"an array has no container for the {' and '.join(refused)} layer"
            f"{'s' if len(refused) > 1 else ''}: encode it first (labeler.media.encode_image) and label "
            "the bytes, or use layers='watermark' / 'visible'"
        )
    pixels = np.asarray(source)
    given = pixels.dtype
    if given.kind == "u" and given.itemsize == 2 and not given.isnative:
        # Big-endian uint16 (a 16-bit PNG or TIFF read as '>u2'): the same values, worked on in the native
        # order and given back in the caller's; it was refused as "must be uint16, not >u2".
        pixels = pixels.astype(np.uint16)
    if pixels.dtype not in (np.uint8, np.uint16):
        raise InvalidArgument(f"pixel array must be uint8 or uint16, not {pixels.dtype}")
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and not 1 <= pixels.shape[2] <= 4):
        raise InvalidArgument(f"pixel array must be (H, W) or (H, W, 1..4), not {pixels.shape}")
    record.check()
    check_watermark_label(record, options.layers)
    notes: list[str] = []
    if "watermark" in order:
        from labeler.watermark import embed, payload_from_produce_id

        if mark.key is None:
            raise LabelerError("the watermark layer needs a key (see labeler.watermark.keyfile)")
        # None: the per-image budget (docs/watermark.md); a number: the fixed texture-mask strength
        small = small_watermark_note(pixels)
        pixels = embed(pixels, payload_from_produce_id(record.produce_id), key=mark.key, method=mark.method,
                       strength=mark.strength)
        notes += [small] if small else []
    if "visible" in order:
        from labeler.visible import add_image_label

        try:
            pixels = add_image_label(pixels, options.visible.text, position=options.visible.position)
        except ValueError as exc:  # a parameter out of range: the caller's input, not a bug
            raise InvalidArgument(str(exc).splitlines()[0]) from None
    return (pixels if pixels.dtype == given else pixels.astype(given)), notes
