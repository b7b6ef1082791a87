"""Watermark detector: is a keyed mark of :mod:`labeler.watermark` present, what payload, how sure.

::

    >>> from detectors.watermark import detect
    >>> from labeler.watermark import embed, payload_from_produce_id
    >>> payload = payload_from_produce_id("img-42")
    >>> r = detect(embed(pixels, payload, key=key), key=key)
    >>> r.found, r.payload == payload, r.p_value < 1e-6, r.method in ("dct", "dwt")
    (True, True, True, True)

The p-value bounds the probability that an image *without* this key's mark produces a result at least
as strong. It is the product of two independent null probabilities (derivation in
``docs/watermark.md``): the pilot's self-normalised correlation, a weighted sum of the key's random signs
whose tail is bounded for any image (Bentkus-Dzindzalieta / Hoeffding), times the ``M`` shifts, geometries
and methods the search may look at (union bound), and the CRC-16 matching by chance on the data slots,
whose signs are independent of the pilot's (``2 * 2**-16``: two decodings are tried). ``found`` is
``p_value <= threshold`` (default 1e-6) with a matching CRC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from detectors.watermark_audio import check_threshold, detect_audio
from detectors.watermark_gate import SCALE_RANGE, lattice_shows
from detectors.watermark_result import DEFAULT_THRESHOLD, WatermarkResult
from labeler.watermark import METHODS, _scheme
from labeler.watermark.payload import (
    CRC_BITS,
    Layout,
    WatermarkError,
    check_key,
    conv_encode,
    info_bits,
    list_viterbi,
    split_info,
    viterbi_decode,
)
from labeler.watermark.scheme import Scheme
from labeler.watermark.sync import null_tail, scale_candidates, shift_search
from labeler.watermark.transforms import (
    MIN_SIDE,
    Prefiltered,
    geometry_image,
    half_band,
    luma_fast,
    prefilter_parts,
)

__all__ = ["detect", "detect_half", "detect_audio", "WatermarkResult", "DEFAULT_THRESHOLD"]

#: Rescale candidates tried after the scale-1 attempt fails (per method), for images of >= 1 MP; small
#: images (where the period estimate is noisier and each try is cheap) get up to MAX_SCALE_TRIES.
SCALE_TRIES, MAX_SCALE_TRIES = 3, 6
#: Reads of the image as given, per method: the half-resolution fold first (a quarter of the work; it
#: decodes nearly every mark that is not rescaled), then the full-resolution one.
READS_AS_GIVEN = 2
#: The full-resolution read of the image as given is made only when the half-resolution read's pilot
#: ``z`` reaches this: the two see the same band (z within ~20 % of each other on the corpus), and
#: an unmarked or rescaled image gives ~2-3.5, so they skip it.
FULL_READ_MIN_Z = 4.0
#: ... and, on an image of at least ``2 * FULL_READ_BAND_STEP`` bands of tile rows, only when a screening
#: read of every ``FULL_READ_BAND_STEP``-th band (half the pixels, :meth:`Prefiltered.row_bands`) reaches a
#: pilot ``z`` of FULL_READ_SCREEN_Z, unless the half-resolution ``z`` itself reached FULL_READ_DIRECT_Z.
#: An unmarked image's half-resolution ``z`` (the best of 16,384 shifts) reaches 4.0 in about one read of 4
#: (~48 % of images with two methods), its screening ``z`` 4.5 in ~1 % of them: the full read, the
#: detector's costliest step on an unmarked image (~1.6 ms of ~3.5 at 1080p), is then nearly never made.
#: Measured (2026-12-06, 496 marked cases: 31 photos and flat / gradient / text images, 16 attacks at the
#: geometry as given): the full read decoded 2 that the half read did not, both JPEG q30 with a
#: half-resolution ``z`` of 7.7 and 8.8; dense fine texture after JPEG q50 (half ``z`` ~4.1-4.5, full
#: ``z`` 10-12, aliasing hurts the half read there) screens at ~7-8. Screening reads are never reported,
#: so they add no hypothesis; skipping a full read only makes the union smaller.
FULL_READ_SCREEN_Z, FULL_READ_DIRECT_Z, FULL_READ_BAND_STEP = 4.5, 6.0, 2
#: Decodings tried per attempt (weighted and plain despreading); each passes the CRC by chance with
#: probability 2**-16 without the mark, so the p-value's CRC factor is DECODINGS * 2**-16 (times 2,
#: see LIST_SIZE).
DECODINGS = 2
#: Paths per decoding of the list Viterbi (:func:`labeler.watermark.payload.list_viterbi`) tried when no
#: maximum-likelihood decoding passes its CRC and the pilot is strong enough for a list find to be
#: significant. Two tests, each a union bound over its CRC checks: A = the DECODINGS maximum-likelihood
#: paths, B = their DECODINGS x LIST_SIZE list paths; p = 2 x min(p_A, p_B) (Bonferroni over A and B,
#: as the audio detector does), so a mark that A decodes pays a factor 2, not LIST_SIZE.
LIST_SIZE = 64
#: Largest image (pixels) a geometry attempt resamples to; bigger ones are read in a centred window (1 MP
#: holds ~60 tiles, plenty of folding gain; it halves the cost of each attempt at 1080p).
MAX_RESAMPLED = 1024 * 1024
#: A geometry candidate is first screened on a cheap read: the half-resolution luma (cv2.pyrDown) is
#: resampled to half of the embedding resolution and folded there, a quarter of the pixels and no
#: full-resolution prefilter. Only a candidate whose screening pilot ``z`` (either method) reaches this
#: gets the full read, the one whose ``z`` the p-value counts. Screening reads are never reported, so
#: they add no hypothesis to ``M``; skipping a full read only makes the union smaller. On unmarked images
#: the screening ``z`` (the best of 16,384 shifts) is 3.3-5, and 4.5 or more for about one candidate in 8.
SCREEN_MIN_Z = 4.5


def scale_tries(h: int, w: int) -> int:
    """Rescale candidates tried for an h x w image (fixed before looking at it: the p-value counts them)."""
    return int(min(MAX_SCALE_TRIES, max(SCALE_TRIES, 3_000_000 // (h * w))))


@dataclass
class _Attempt:
    scheme: Scheme
    z: float
    shifts: int
    payload: bytes
    crc_ok: bool
    offset: tuple[int, int]
    scale: tuple[float, float]
    bit_errors: int | None
    rotation: float = 0.0
    listed: bool = False


def _read(z_img: Prefiltered, scheme: Scheme, key: bytes, scale: tuple[float, float],
          rotation: float = 0.0, z_min: float = 0.0, half: bool = False, z_list: float = np.inf) -> _Attempt:
    """Fold, synchronise and decode one prefiltered image with one method.

    Below ``z_min`` no CRC could make the result significant, so the payload is not decoded; from
    ``z_list`` on, a list Viterbi (:data:`LIST_SIZE` paths) is tried when no maximum-likelihood path
    passes its CRC. With ``half`` the fold comes from the half-resolution image
    (:meth:`Prefiltered.fold_half`).
    """
    folded = scheme.folded(z_img, half=half)
    shift = shift_search(folded, scheme.pilot_tile(key), scheme.pilot_terms(key), grid=16,
                         band=2 if half else 1)
    t = scheme.tile_px
    off = ((t - shift.dy) % t, (t - shift.dx) % t)
    if shift.z < z_min:
        return _Attempt(scheme, shift.z, shift.shifts, b"", False, off, scale, None, rotation)
    aligned = np.roll(folded, (-shift.dy, -shift.dx), axis=(0, 1))
    layout = scheme.layout(key)
    values = scheme.tile_to_slots(aligned)
    # list decoding: the weighted despreading first (better on average), the plain sum if its CRC fails
    # (the weights' pilot estimate is noisy on small crops); the p-value counts both (DECODINGS)
    softs = (layout.soft_bits(values * _coefficient_weights(values, layout, len(scheme.coefficients))),
             layout.soft_bits(values))
    listed = False
    for soft in softs:
        payload, ok = split_info(viterbi_decode(soft))
        if ok:
            break
    if not ok and shift.z >= z_list:
        # near the code's limit the right payload is often a runner-up path (a small or heavily
        # attacked picture whose pilot is clear): each decoding's list, path 0 (the ML path) excluded
        payload, ok, soft = _list_decode(softs, payload)
        listed = ok
    errors = None
    if ok:
        errors = int(np.count_nonzero(np.sign(soft) != conv_encode(info_bits(payload))))
    return _Attempt(scheme, shift.z, shift.shifts, payload, ok, off, scale, errors, rotation, listed)


def _list_decode(softs: tuple[np.ndarray, ...], payload: bytes) -> tuple[bytes, bool, np.ndarray]:
    """The first CRC-valid list path of the decodings ``softs`` (payload, True, its soft values), else
    (``payload``, False, the last soft values)."""
    for soft in softs:
        for bits in list_viterbi(soft, LIST_SIZE)[1:]:
            found, ok = split_info(bits)
            if ok:
                return found, True, soft
    return payload, False, softs[-1]


def _z_min(trials: int, threshold: float, paths: int = 1) -> float:
    """Smallest pilot z whose p-value, with a matching CRC among ``paths`` paths per decoding, can be
    <= ``threshold`` (bisection)."""
    lo, hi = 0.0, 40.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if trials * null_tail(mid) * _crc_factor(paths) <= threshold:
            hi = mid
        else:
            lo = mid
    return lo


def _coefficient_weights(values: np.ndarray, layout: Layout, ncoef: int) -> np.ndarray:
    """Per-slot despreading weights, one per DCT coefficient position: ``a_c / E[v^2]_c`` (``a_c >= 0``).

    ``values`` are the slot values of an aligned tile (block-major, ``ncoef`` per block). The mark's
    amplitude ``a_c`` at coefficient ``c`` is estimated from the pilot slots (value times key sign,
    averaged) and ``E[v^2]_c``, the mean square of all slots at ``c``, is signal plus host noise. The
    weight ``a / (a^2 + sigma^2)`` is the linear MMSE estimator's gain: it follows the amplitude where
    noise dominates (an attack that removes high frequencies leaves their slots nearly pure noise), and
    stays bounded where the signal dominates, unlike ``a / sigma^2``, whose noise estimate collapses on
    large images where low coefficients are almost noise-free. Measured on the corpus (3 random attacks
    each on 13 photos): 128 x 128 crops decoded `dwt` 27 -> 32 of 39, crop 50 % then JPEG q50 `dct`
    37 -> 39, and fewer coded-bit errors after JPEG q30 (`dwt` 8.4 -> 5.8 of 258). The weights use the
    pilot's signs and squared slot values only, so given the image and the pilot the data slots' signs
    stay independent fair coin flips and a weighted decoding passes the CRC by chance with probability
    2**-16, like the plain one (the p-value counts both, :data:`DECODINGS`).
    """
    v = values.reshape(-1, ncoef)
    pilot = layout.pilot.reshape(-1, ncoef)
    signed = (values * layout.sign).reshape(-1, ncoef)
    amplitude = np.where(pilot, signed, 0.0).sum(axis=0) / np.maximum(pilot.sum(axis=0), 1)
    power = (v * v).mean(axis=0)
    w = np.maximum(amplitude, 0.0) / np.maximum(power, 1e-30)
    w = w / max(float(w.max()), 1e-30)
    return np.tile(w.astype(np.float32), v.shape[0])


def _crc_factor(paths: int) -> float:
    """The p-value's CRC factor for a payload found among ``paths`` paths per decoding (1: the ML ones);
    the leading 2 is the Bonferroni factor over the ML test and the list test (:data:`LIST_SIZE`)."""
    return 2.0 * DECODINGS * paths * 2.0 ** -CRC_BITS


def _p_value(a: _Attempt, trials: int) -> float:
    p = min(1.0, trials * null_tail(a.z))
    return min(1.0, p * _crc_factor(LIST_SIZE if a.listed else 1)) if a.crc_ok else p


def _resample(y: np.ndarray, mat: np.ndarray, limit: int = MAX_RESAMPLED,
              min_side: int = MIN_SIDE) -> np.ndarray | None:
    """Luma mapped back to the embedding geometry, or None if it gets smaller than ``min_side``.

    ``mat`` (2 x 2) maps a displacement (dy, dx) at the embedding geometry to the image under test
    (see :func:`labeler.watermark.lattice.scale_candidates`). A diagonal ``mat`` is a resize (cv2.resize);
    otherwise the image is warped (cv2.warpAffine, bicubic) about its centre, into the largest
    upright rectangle that stays inside it. At most ``limit`` pixels come out (a centred window).
    """
    if not np.isfinite(mat).all() or abs(float(np.linalg.det(mat))) < 1e-4:
        return None  # a degenerate lattice fit (collinear peaks): no geometry to undo
    y = np.asarray(y, dtype=np.float32)  # resample without a second rounding to 8 bits
    h, w = y.shape
    sy, sx = float(mat[0, 0]), float(mat[1, 1])
    if abs(mat[0, 1]) < 2e-3 and abs(mat[1, 0]) < 2e-3:
        nh, nw = int(round(h / sy)), int(round(w / sx))
        if min(nh, nw) < min_side:
            return None
        if nh * nw > limit:  # a centred window keeps the cost bounded (an upscale of 4K is 16K)
            f = (limit / (nh * nw)) ** 0.5
            ch, cw = max(min_side, int(h * f)), max(min_side, int(w * f))
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            y = y[y0 : y0 + ch, x0 : x0 + cw]
            h, w = y.shape
            nh, nw = int(round(h / sy)), int(round(w / sx))
        interp = cv2.INTER_AREA if (sy > 1.0 and sx > 1.0) else cv2.INTER_CUBIC
        return cv2.resize(y, (nw, nh), interpolation=interp)
    scale = abs(float(np.linalg.det(mat))) ** 0.5
    sin = min(0.5, abs(float(mat[1, 0] - mat[0, 1])) / (2.0 * scale))
    nh, nw = h / scale, w / scale
    nh, nw = int(nh - nw * sin), int(nw - nh * sin)  # inscribed rectangle, to first order in the angle
    if nh * nw > limit:
        f = (limit / (nh * nw)) ** 0.5
        nh, nw = int(nh * f), int(nw * f)
    if min(nh, nw) < min_side:
        return None
    # dst (x, y) -> src (x, y): the matrix in x-first order, centre onto centre
    m2 = np.array([[mat[1, 1], mat[1, 0]], [mat[0, 1], mat[0, 0]]], dtype=np.float64)
    t = np.array([(w - 1) / 2.0, (h - 1) / 2.0]) - m2 @ np.array([(nw - 1) / 2.0, (nh - 1) / 2.0])
    return cv2.warpAffine(y, np.hstack([m2, t[:, None]]), (nw, nh),
                          flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def _half_prefiltered(half: np.ndarray, floor: float = 1.0) -> Prefiltered:
    """The half-resolution part of :func:`labeler.watermark.transforms.prefilter_parts` for a luma that is
    already at half resolution (float32): ``W_h * (half - low)``, enough for ``fold_half``.

    The same low-pass (pyrDown, Gaussian sigma 1, bilinear back up) and the same weight (inverse RMS
    of the residual in 4 x 4 blocks, smoothed, floor ``floor`` levels) as the detector's own prefilter,
    so a screening read sees what a full read's first half-resolution fold would.
    """
    low, weight, z = half_band(half, floor)
    # ``y`` of a Prefiltered is the full-resolution luma; only ``fold_half`` (which reads ``half``) is used
    return Prefiltered(half, weight, low, z)


def _screen(y: np.ndarray, mat: np.ndarray, schemes: list[Scheme], key: bytes) -> float:
    """Largest screening pilot ``z`` of a geometry candidate over ``schemes`` (see :data:`SCREEN_MIN_Z`),
    or the first that reaches :data:`SCREEN_MIN_Z` (the candidate passes whatever the others read).

    The luma is resampled straight to half of the embedding resolution (a displacement of one sample
    there is ``2 mat`` pixels here: a quarter of the output pixels of the full read's resampling),
    folded with period ``tile / 2`` and read like the first read of the image as given.
    """
    h2 = _resample(y, 2.0 * mat, limit=MAX_RESAMPLED // 4, min_side=MIN_SIDE // 2)
    if h2 is None:
        return np.inf  # too small to screen: let the full read decide
    z_half = _half_prefiltered(h2)
    best = -np.inf
    for scheme in schemes:
        best = max(best, _read(z_half, scheme, key, (1.0, 1.0), z_min=np.inf, half=True).z)
        if best >= SCREEN_MIN_Z:
            break
    return best


def detect(image: np.ndarray, *, key: bytes, method: str | None = None,
           threshold: float = DEFAULT_THRESHOLD, search_scale: bool = True) -> WatermarkResult:
    """Look for a watermark made with ``key``; never raises for an unmarked image.

    Parameters
    ----------
    image : ndarray, uint8 or uint16 (either byte order), shape (H, W) or (H, W, 1|2|3|4)
        Pixels to test, at least 128 x 128.
    key : bytes
        The key used to embed.
    method : {"dct", "dwt"} or None
        Method to look for; None tries both (the p-value then counts both).
    threshold : float
        Largest p-value reported as found (default 1e-6).
    search_scale : bool
        When the image as given does not decode, estimate the mark's lattice (rescale, rotation) from
        the image's autocorrelation and retry (3 to 6 candidates, :func:`scale_tries`). Off: offsets
        only (faster; the p-value then counts the reads as given only).

    Returns
    -------
    WatermarkResult

    Raises
    ------
    WatermarkError
        Bad key, unknown method, unsupported dtype/shape, an image smaller than 128 x 128, or a
        ``threshold`` outside (0, 1].
    """
    key = check_key(key)
    threshold = check_threshold(threshold)
    # dwt first: the default (budget) mark carries smooth areas, most of most images, in dwt, so its first
    # read usually decodes; the order changes only which reads are skipped, never the hypotheses counted
    schemes = [_scheme(method)] if method is not None else [METHODS["dwt"], METHODS["dct"]]
    y = luma_fast(image)
    # every hypothesis the search may look at, fixed in advance so the p-value does not depend on
    # which path the search took: all shifts of every method at scale 1 and at each scale candidate
    tries = scale_tries(*y.shape) if search_scale else 0
    search = _Search(schemes, key, sum(s.shifts for s in schemes) * (READS_AS_GIVEN + tries), threshold)
    z_img = prefilter_parts(y)
    search.as_given(z_img)
    if search.best() is None and search_scale and lattice_shows(z_img, schemes[0].tile_px):
        search.geometry(y, tries)
    return search.result()


def detect_half(half: np.ndarray, *, key: bytes, method: str | None = None,
                threshold: float = DEFAULT_THRESHOLD) -> WatermarkResult:
    """Triage read of an image given at half size (a JPEG's DCT-domain downscale,
    :func:`labeler.media.image.read_luma_half`): :func:`detect`'s first read alone.

    Parameters
    ----------
    half : ndarray, uint8, shape (H2, W2)
        Luma at half the image's size (8-bit levels), at least 64 x 64.
    key, method, threshold
        As for :func:`detect`.

    Returns
    -------
    WatermarkResult
        ``scale`` (1, 1): the geometry is that of the full-size image. The p-value counts the
        half-resolution reads of the methods tried (one per method), no more.

    The half-resolution fold of :func:`detect` folds ``W_h (pyrDown(y) - low)``; here the decoder's
    half-size image takes pyrDown's place (the same prefilter after it). libjpeg's block-wise scaling
    keeps the band the marks live in (below 1/4 cycle per full-size pixel) about as pyrDown does:
    measured on 341 marked, attacked images (photos and flat / gradient / text art, JPEG q92 files),
    its pilot ``z`` was 0.96-0.99 of pyrDown's (median per class) and 333 decoded against 335. No
    full-resolution read (nor its screen) and no rescale / rotation search: a mark only those find is
    missed, and ``verify --quick`` says so in its note.

    Raises
    ------
    WatermarkError
        Bad key, method or ``threshold``; ``half`` not a 2-D numeric array (integer, or finite float in
        8-bit levels) at least 64 x 64.
    """
    key = check_key(key)
    threshold = check_threshold(threshold)
    # a list raised AttributeError; bool / complex / object arrays and NaN were read as pixels (found=False
    # for a marked image, silently)
    if not isinstance(half, np.ndarray) or half.dtype.kind not in "uif":
        kind = half.dtype if isinstance(half, np.ndarray) else type(half).__name__
        raise WatermarkError(f"a half-size luma must be a numpy array of 8-bit levels (uint8), not {kind}")
    if half.dtype.kind == "f" and not np.isfinite(half).all():
        raise WatermarkError("a half-size luma contains NaN or infinite values")
    if half.ndim != 2 or min(half.shape) < MIN_SIDE // 2:
        raise WatermarkError(f"a half-size luma must be 2-D and at least {MIN_SIDE // 2} px a side, "
                             f"not {half.shape}")
    schemes = [_scheme(method)] if method is not None else [METHODS["dwt"], METHODS["dct"]]
    search = _Search(schemes, key, sum(s.shifts for s in schemes), threshold)
    z_half = _half_prefiltered(np.asarray(half, dtype=np.float32))
    for scheme in schemes:
        search.attempts.append(_read(z_half, scheme, key, (1.0, 1.0), z_min=search.z_min, half=True,
                                     z_list=search.z_list))
        if search.best():
            break
    return search.result()


def detect_as_shown(stored: np.ndarray, orientation: int,
                    read: Callable[[np.ndarray, float], WatermarkResult],
                    threshold: float = DEFAULT_THRESHOLD) -> WatermarkResult:
    """Read a picture that carries an EXIF ``orientation`` (1..8) as a viewer shows it, then as stored.

    The label pipeline marks a tagged photo as it is shown (:func:`labeler.media.image.to_display`), so
    the mark survives a platform that bakes the rotation into the pixels and drops the tag, as most
    upload paths do. A file still tagged is read turned the same way; the stored orientation is read
    second, for a mark made on the stored pixels (the array API, another tool, or an earlier release).
    Two reads: each is decided at ``threshold / 2`` and the p-value reported is doubled
    (Bonferroni), so ``threshold`` keeps its meaning. Untagged pictures (orientation 1, or a value out
    of range) get the one read ``read(stored, threshold)``.

    Parameters
    ----------
    stored : ndarray
        The pixels (or luma) in stored orientation.
    orientation : int
        The file's EXIF Orientation tag, 1..8.
    read : callable
        ``read(pixels, threshold) -> WatermarkResult`` (:func:`detect` or :func:`detect_half` with the
        key bound).
    threshold : float
        Largest p-value reported as found.
    """
    if not 2 <= orientation <= 8:
        return read(stored, threshold)
    from labeler.media.image import to_display

    best = read(np.ascontiguousarray(to_display(stored, orientation)), threshold / 2)
    if not best.found:
        other = read(stored, threshold / 2)
        if other.found or other.p_value < best.p_value:
            best = other
    return replace(best, p_value=min(1.0, 2 * best.p_value), trials=2 * best.trials, threshold=threshold)


class _FullReadScreen:
    """Whether the full-resolution read of the image as given is worth making (see
    :data:`FULL_READ_SCREEN_Z`); the row bands are cut once for both methods."""

    def __init__(self, z_img: Prefiltered, key: bytes) -> None:
        self.z_img, self.key = z_img, key
        self._bands: dict[int, Prefiltered] = {}  # by tile side (both methods' tiles are 128 px today)

    def passes(self, scheme: Scheme, half_z: float) -> bool:
        tile = scheme.tile_px
        if half_z >= FULL_READ_DIRECT_Z or self.z_img.shape[0] < 2 * FULL_READ_BAND_STEP * tile:
            return True  # a strong pilot, or an image small enough that the full read is cheap
        if tile not in self._bands:
            self._bands[tile] = self.z_img.row_bands(tile, FULL_READ_BAND_STEP)
        return _read(self._bands[tile], scheme, self.key, (1.0, 1.0), z_min=np.inf).z >= FULL_READ_SCREEN_Z


class _Search:
    """The attempts of one :func:`detect` call and the p-value they share (``trials`` hypotheses)."""

    def __init__(self, schemes: list[Scheme], key: bytes, trials: int, threshold: float) -> None:
        self.schemes, self.key, self.trials, self.threshold = schemes, key, trials, threshold
        self.z_min = _z_min(trials, threshold)
        self.z_list = _z_min(trials, threshold, LIST_SIZE)
        self.attempts: list[_Attempt] = []

    def best(self) -> _Attempt | None:
        """The most significant attempt that passes (CRC and threshold), else None."""
        good = [a for a in self.attempts if a.crc_ok and _p_value(a, self.trials) <= self.threshold]
        return min(good, key=lambda a: _p_value(a, self.trials)) if good else None

    def as_given(self, z_img: Prefiltered) -> None:
        """The image as given: the half-resolution fold of every method, then the full one for a method
        whose half-resolution pilot showed something (skipping reads keeps the union bound valid)."""
        for scheme in self.schemes:
            self.attempts.append(_read(z_img, scheme, self.key, (1.0, 1.0), z_min=self.z_min, half=True,
                                       z_list=self.z_list))
            if self.best():
                return
        screen = _FullReadScreen(z_img, self.key)
        for scheme, fast in zip(self.schemes, list(self.attempts), strict=False):
            if fast.z >= FULL_READ_MIN_Z and screen.passes(scheme, fast.z):
                self.attempts.append(_read(z_img, scheme, self.key, (1.0, 1.0), z_min=self.z_min,
                                                  z_list=self.z_list))
                if self.best():
                    return

    def geometry(self, y: np.ndarray, tries: int) -> None:
        """Estimate the lattice, screen its first ``tries`` candidates and read those that pass."""
        candidates = [c for c in scale_candidates(geometry_image(y), self.schemes[0].tile_px, *SCALE_RANGE,
                                                  count=tries + 1)
                      if np.abs(c - np.eye(2)).max() > 0.004]  # the geometry as given was tried
        y_float = y.astype(np.float32)  # once for every resampling below
        for mat in candidates[:tries]:
            if _screen(y_float, mat, self.schemes, self.key) < SCREEN_MIN_Z:
                continue
            y2 = _resample(y_float, mat)
            if y2 is None:
                continue
            z2 = prefilter_parts(y2)
            geometry = (float(np.hypot(mat[0, 0], mat[1, 0])), float(np.hypot(mat[0, 1], mat[1, 1])))
            angle = float(np.degrees(np.arctan2(mat[1, 0] - mat[0, 1], mat[0, 0] + mat[1, 1])))
            for scheme in self.schemes:
                self.attempts.append(_read(z2, scheme, self.key, geometry, angle, z_min=self.z_min,
                                                  z_list=self.z_list))
            if self.best():
                return

    def result(self) -> WatermarkResult:
        """The best passing attempt, else the strongest failed one (``found`` False)."""
        best = self.best()
        a = best if best is not None else max(self.attempts, key=lambda a: a.z)
        return WatermarkResult(found=best is not None, payload=a.payload if best is not None else None,
                               p_value=_p_value(a, self.trials), method=a.scheme.name, z=a.z, scale=a.scale,
                               rotation=a.rotation, offset=a.offset,
                               bit_errors=a.bit_errors if best is not None else None, trials=self.trials,
                               threshold=self.threshold)
