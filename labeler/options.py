"""The label options, grouped by the layer that reads them (frozen: shared safely by threads, workers).

One :class:`LabelOptions` is what every label caller passes along: :func:`labeler.pipeline.label_file`
(``options=``, or built from its keyword arguments by :meth:`LabelOptions.build`, the one mapping
from flat keywords), :func:`labeler.label` for files and bytes, the batch worker
(:class:`labeler.batch.BatchTask` carries one, with the signer as a picklable :class:`SignerRef`) and
the ``aigc label`` / ``aigc batch label`` commands. Every stage reads only its own group, so a new
option is one field here plus the stage that uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from labeler.errors import InvalidArgument

if TYPE_CHECKING:
    from labeler.provenance.c2pa_sign import SignerSpec

AUDIO_LABELS = ("rhythm", "voice", "both")
VOICE_LANGUAGES = ("zh", "en")
#: The six placements of :data:`labeler.visible.POSITIONS`, spelled out so option parsing (the CLI's
#: --help, the server's form fields) needs no font loading.
VISIBLE_POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left", "bottom-center", "top-center")
#: Where an audio cue may go.
CUE_PLACES = ("start", "end", "middle")


def parse_cue_places(spec: str) -> tuple[str, ...]:
    """``"start,end"`` -> ``("start", "end")``: where the audio cue goes (``aigc label --cue``).

    Raises
    ------
    InvalidArgument
        An unknown or empty place list.
    """
    where = tuple(p.strip() for p in spec.split(",") if p.strip())
    bad = [p for p in where if p not in CUE_PLACES]
    if bad or not where:
        raise InvalidArgument(f"--cue takes start, end and/or middle, not {spec!r}")
    return where


def parse_video_places(spec: str) -> tuple[str, ...]:
    """``"start,end"`` -> the places the visible label shows in a video (``aigc label --video-at``)."""
    from labeler.visible.video import parse_places  # imported here: option parsing starts without numpy

    return parse_places(spec)


@dataclass(frozen=True)
class WatermarkOptions:
    """The invisible watermark.

    Attributes
    ----------
    key : bytes or None
        Watermark key (the layer refuses to run without one).
    method : {"dct", "dwt"}
        Image watermark method.
    strength : float or None
        Strength in 8-bit luma levels (the fixed texture-mask model); None for the per-image budget.
    """

    key: bytes | None = field(default=None, repr=False)  # a secret: never in logs or tracebacks
    method: str = "dct"
    strength: float | None = None


@dataclass(frozen=True)
class VisibleOptions:
    """The explicit label people perceive: the image/video mark and the audio cue or prompt.

    Attributes
    ----------
    text : str
        Wording of the visible mark (GB 45438 5).
    position : str
        Placement of the mark, one of :data:`labeler.visible.POSITIONS`.
    seconds : float or None
        Video: seconds the mark shows at each place (>= 2); None for the whole duration.
    video_at : tuple of str
        Video: ``"start"``, ``"middle"``, ``"end"``.
    cue_positions : tuple of str
        Audio: where the cue/prompt goes (``"start"``, ``"middle"``, ``"end"``).
    audio_label : {"rhythm", "voice", "both"}
        Audio: the Morse rhythm cue, the spoken prompt, or both.
    voice_language : {"zh", "en"}
        Audio: language of the spoken prompt.
    """

    text: str = "AI生成"
    position: str = "bottom-right"
    seconds: float | None = 3.0
    video_at: tuple[str, ...] = ("start",)
    cue_positions: tuple[str, ...] = ("start",)
    audio_label: str = "rhythm"
    voice_language: str = "zh"

    def check(self) -> None:
        """Refuse an audio label kind or language that does not exist.

        Raises
        ------
        InvalidArgument
            With a one-line reason.
        """
        if self.audio_label not in AUDIO_LABELS or self.voice_language not in VOICE_LANGUAGES:
            raise InvalidArgument(f"audio label must be rhythm, voice or both and its language zh or en, "
                                  f"not {self.audio_label!r} / {self.voice_language!r}")


@dataclass(frozen=True)
class OutputOptions:
    """How the output file is written.

    Attributes
    ----------
    quality : int
        JPEG / lossy WebP quality, 1-100, when a pixel layer re-encodes an image.
    overwrite : bool
        Replace an existing output (never the input). Strictly a bool (or NumPy's): a label call refuses
        any other value (``"no"`` would read as true), :func:`labeler.pipeline.resolve_options`.
    """

    quality: int = 95
    overwrite: bool = False


@dataclass(frozen=True)
class C2paOptions:
    """The C2PA manifest.

    Attributes
    ----------
    signer : SignerSpec or None
        The signer (the layer refuses to run without one).
    thumbnail : bool
        Embed a claim thumbnail (strictly a bool, as ``OutputOptions.overwrite``).
    manifest_store : str or None
        Where to keep the signed manifest under the watermark's soft binding (a SQLite file path,
        :func:`labeler.provenance.store.open_store`), so a verifier can find it again after the file
        is stripped; None keeps none.
    """

    signer: SignerSpec | None = None
    thumbnail: bool = False
    manifest_store: str | None = None


@dataclass(frozen=True)
class SignerRef:
    """A picklable reference to a local C2PA signer (PEM paths): batch workers call :meth:`build` once each.

    Attributes
    ----------
    cert_chain : str
        Certificate chain PEM path (signing certificate first).
    key : str
        Private key PEM path.
    tsa_url : str or None
        RFC 3161 time-stamp authority.
    """

    cert_chain: str
    key: str
    tsa_url: str | None = None

    def build(self) -> SignerSpec:
        """The :class:`~labeler.provenance.c2pa_sign.SignerSpec` (raises ``C2paSignError``)."""
        from labeler.provenance.c2pa_sign import local_signer

        return local_signer(self.cert_chain, self.key, tsa_url=self.tsa_url)


@dataclass(frozen=True)
class LabelOptions:
    """Everything a label call needs besides the input, the output and the record.

    Attributes
    ----------
    layers : tuple of str
        The layers to add, in application order (see :func:`labeler.pipeline.parse_layers`).
    watermark, visible, output, c2pa
        The option group each stage reads.
    """

    layers: tuple[str, ...] = ("metadata",)
    watermark: WatermarkOptions = field(default_factory=WatermarkOptions)
    visible: VisibleOptions = field(default_factory=VisibleOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    c2pa: C2paOptions = field(default_factory=C2paOptions)

    def with_signer(self, signer: SignerSpec | None) -> LabelOptions:
        """These options with the C2PA ``signer`` (built where it is used: a signer may not pickle)."""
        return replace(self, c2pa=replace(self.c2pa, signer=signer))

    @staticmethod
    def positions(value: Sequence[str]) -> tuple[str, ...]:
        """A sequence of place names as a tuple (a str is one name, not its letters)."""
        return (value,) if isinstance(value, str) else tuple(value)

    @classmethod
    def build(cls, *, layers: tuple[str, ...], key: bytes | None = None, watermark_method: str = "dct",
              watermark_strength: float | None = None, quality: int = 95, overwrite: bool = False,
              signer: SignerSpec | None = None, c2pa_thumbnail: bool = False, text: str = "AI生成",
              position: str = "bottom-right", visible_seconds: float | None = 3.0,
              cue_positions: Sequence[str] = ("start",), video_at: Sequence[str] = ("start",),
              audio_label: str = "rhythm", voice_language: str = "zh",
              manifest_store: str | None = None) -> LabelOptions:
        """The groups from the flat keyword options of :func:`labeler.pipeline.label_file` (one mapping,
        used by ``label_file``, the batch worker and the CLI); ``layers`` already parsed."""
        return cls(
            layers=layers,
            watermark=WatermarkOptions(key, watermark_method, watermark_strength),
            visible=VisibleOptions(text, position, visible_seconds, cls.positions(video_at),
                                   cls.positions(cue_positions), audio_label, voice_language),
            output=OutputOptions(quality, overwrite),
            c2pa=C2paOptions(signer, c2pa_thumbnail, manifest_store),
        )
