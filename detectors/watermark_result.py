"""The result every watermark detector returns (image, audio, video), and the default threshold."""

from __future__ import annotations

from dataclasses import dataclass

#: Default false-positive threshold on the p-value.
DEFAULT_THRESHOLD = 1e-6


@dataclass
class WatermarkResult:
    """Outcome of :func:`detect`.

    Attributes
    ----------
    found : bool
        True when a CRC-valid payload was read and ``p_value <= threshold``.
    payload : bytes or None
        The 8 payload bytes when ``found``, else None.
    p_value : float
        Upper bound on the probability of a result at least this strong without the mark (0..1).
    method : str or None
        ``"dct"`` or ``"dwt"`` for the best attempt.
    z : float
        Self-normalised pilot correlation at the chosen shift (its null tail is bounded by
        :func:`labeler.watermark.sync.null_tail`).
    scale : tuple of float
        (y, x) resize factor the image was read at (1.0 = as embedded).
    rotation : float
        Rotation (degrees) the image was read at (0.0 = as embedded).
    offset : tuple of int
        Tile phase (pixels, at the embedding scale) of the image's top-left corner.
    bit_errors : int or None
        Coded bits (of 258) whose hard decision disagrees with the re-encoded payload, when the CRC
        matched: a margin indicator (the code corrects roughly 15-20 % of them).
    trials : int
        Number of (shift, scale, method) hypotheses covered by the p-value.
    threshold : float
        The threshold ``found`` was decided with.
    offset_seconds : float
        Audio only: where the mark's period starts in the input (s, modulo the 3.07 s period).
    speed : float
        Audio only: playback speed of the input relative to the embedded audio (1.0 = unchanged).
    pitch : float
        Audio only: frequency factor of the input relative to the embedded audio (1.0 = unchanged).
    blocks_read : int
        Audio only: analysis windows read (detection stops at the first window that decodes).
    zero_bit_p_value : float
        Audio only: p-value of the presence test alone (pilot correlation, no payload/CRC needed).
    reason : str or None
        Why nothing could be decided (e.g. "too short to carry a watermark", "no frame could be read"),
        else None. With a reason and nothing found the detector did not look: :attr:`decided` is False.
    frames_read : int
        Video only: frames decoded before the decision (detection stops at the first significant read).
    """

    found: bool
    payload: bytes | None
    p_value: float
    method: str | None
    z: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    rotation: float = 0.0
    offset: tuple[int, int] = (0, 0)
    bit_errors: int | None = None
    trials: int = 0
    threshold: float = DEFAULT_THRESHOLD
    offset_seconds: float = 0.0
    speed: float = 1.0
    pitch: float = 1.0
    blocks_read: int = 0
    zero_bit_p_value: float = 1.0
    reason: str | None = None
    frames_read: int = 0

    @property
    def decided(self) -> bool:
        """The detector read the content: a mark was found, or none was with no ``reason`` against it.

        False for audio too short to carry a mark, non-finite samples, a video with no readable frame:
        ``p_value`` is then 1.0 by convention, not a measurement, and a report's ``layers.watermark``
        gets ``checked: false`` (``detectors.watermark_layer``), so "could not look" never reads as
        "looked and found nothing".
        """
        return self.found or self.reason is None

    def to_dict(self) -> dict[str, object]:
        """The ``layers.watermark`` report fields (``payload`` as hex)."""
        return {
            "present": self.found,
            "payload": self.payload.hex() if self.payload is not None else None,
            "p_value": self.p_value,
            "method": self.method if self.found else None,
        }
