"""A watermark method: where the slots live, how a tile pattern is built, how slots are read back.

Both methods share this machinery and the payload layer; they differ only in the analysis domain
(pixels for ``dct``, the Haar LL subband for ``dwt``) and in the coefficients used.

A *tile* is ``blocks x blocks`` DCT blocks of 8 x 8 samples of the analysis domain. The mark is the
same tile repeated over the whole image (periodic layout), so any crop larger than one tile holds every
slot, and the detector can sum ("fold") all tiles before reading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from labeler.watermark.payload import Layout, make_layout
from labeler.watermark.transforms import (
    Prefiltered,
    block_dct,
    block_idct,
    fold,
    haar_ll,
    haar_ll_synthesis,
)


@dataclass(frozen=True)
class Scheme:
    """Parameters of one method.

    Attributes
    ----------
    name : str
        ``"dct"`` or ``"dwt"``.
    coefficients : tuple of (u, v)
        DCT coefficient positions (row frequency, column frequency) used in every 8 x 8 block.
    blocks : int
        Tile side in blocks; the tile is ``8 * blocks`` analysis samples, ``8 * blocks * subsample``
        pixels.
    subsample : int
        Pixels per analysis sample along each axis: 1 (pixels) or 2 (Haar LL subband).
    pilot_fraction : float
        Share of the slots given to the payload-independent pilot used for synchronisation.
    """

    name: str
    coefficients: tuple[tuple[int, int], ...]
    blocks: int = 16
    subsample: int = 1
    pilot_fraction: float = 0.25
    _uv: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        u = np.array([c[0] for c in self.coefficients])
        v = np.array([c[1] for c in self.coefficients])
        object.__setattr__(self, "_uv", (u, v))

    @property
    def _keep(self) -> int:
        """DCT frequencies 0..keep-1 per axis cover every coefficient used."""
        u, v = self._uv
        return int(max(u.max(), v.max())) + 1

    @property
    def tile(self) -> int:
        """Tile side in analysis samples."""
        return 8 * self.blocks

    @property
    def tile_px(self) -> int:
        """Tile side in pixels (the period of the mark in the image)."""
        return self.tile * self.subsample

    @property
    def shifts(self) -> int:
        """Cyclic shifts of the folded tile the detector searches (every pixel offset: tile_px ** 2)."""
        return self.tile_px * self.tile_px

    @property
    def slots(self) -> int:
        return self.blocks * self.blocks * len(self.coefficients)

    def layout(self, key: bytes) -> Layout:
        return _layout(self, key)

    def slots_to_tile(self, values: np.ndarray) -> np.ndarray:
        """Analysis-domain tile (tile x tile) with ``values`` (one per slot) in the chosen coefficients."""
        b = self.blocks
        coef = np.zeros((b, b, 8, 8), dtype=np.float32)
        u, v = self._uv
        coef[:, :, u, v] = values.reshape(b, b, len(u))
        return block_idct(coef)

    def tile_to_slots(self, tile: np.ndarray) -> np.ndarray:
        """Slot values of an aligned pixel-domain tile (tile_px x tile_px); see :meth:`tiles_to_slots`."""
        return self.tiles_to_slots(tile[None])[0]

    def pixel_pattern(self, key: bytes, codeword: np.ndarray) -> np.ndarray:
        """The pixel-domain tile of the full mark (pilot + data), RMS 1, float32 (tile_px x tile_px)."""
        tile = self.slots_to_tile(self.layout(key).chips(codeword))
        if self.subsample == 2:
            tile = haar_ll_synthesis(tile)
        return (tile / np.sqrt(np.mean(tile * tile))).astype(np.float32)

    def pilot_tile(self, key: bytes) -> np.ndarray:
        """The pixel-domain pilot tile (data slots zero) the synchroniser correlates with.

        It is the adjoint of :meth:`tiles_to_slots` applied to the key's pilot chips (for ``dwt`` the
        Haar LL synthesis of the analysis-domain pilot, which is the adjoint of :func:`haar_ll`), so
        its correlation with a pixel tile equals the sum of the signed pilot-slot responses.
        """
        return _pilot_tile(self, key)

    def tiles_to_slots(self, tiles: np.ndarray) -> np.ndarray:
        """Slot values of a stack of aligned pixel-domain tiles: (k, tile_px, tile_px) -> (k, slots).

        ``dwt`` takes the Haar LL subband of every tile first (the tile side is even, so the 2 x 2
        blocks never straddle two tiles of the stack); then one block DCT pass.
        """
        k, t, _ = tiles.shape
        stack = np.ascontiguousarray(tiles, dtype=np.float32).reshape(k * t, t)
        if self.subsample == 2:
            stack = haar_ll(stack)
        u, v = self._uv
        coef = block_dct(stack, keep=self._keep)
        kk = self._keep
        return coef.reshape(k, self.blocks, self.blocks, kk, kk)[:, :, :, u, v].reshape(k, -1)

    def pilot_terms(self, key: bytes) -> Callable[[np.ndarray], np.ndarray]:
        """``tiles (k, tile_px, tile_px) -> (k, pilot slots)``: each pilot slot's value times its key sign.

        Summed over the slots this is the correlation with :meth:`pilot_tile`; the detector's
        statistic also needs the terms themselves (:func:`labeler.watermark.sync.shift_search`).
        """
        layout = self.layout(key)
        sign = layout.sign[layout.pilot]

        def terms(tiles: np.ndarray) -> np.ndarray:
            return self.tiles_to_slots(tiles)[:, layout.pilot] * sign

        return terms

    def folded(self, z: np.ndarray | Prefiltered, half: bool = False) -> np.ndarray:
        """Fold a prefiltered pixel image into one pixel-domain tile (tile_px x tile_px).

        The detector searches the shift of the folded tile at pixel resolution for both methods: for
        ``dwt`` the 2 x 2 Haar grid of the embedding has an unknown phase in a cropped image, and an
        LL subband taken on the wrong phase (an odd crop offset) mixes neighbouring LL samples, which
        cost up to half of the decoding margin. An array with an odd side is cropped to even sides.
        With ``half`` (a :class:`Prefiltered` only) the band-limited fold from the half-resolution
        image (:meth:`Prefiltered.fold_half`).
        """
        if isinstance(z, Prefiltered):
            return z.fold_half(self.tile_px) if half else z.fold(self.tile_px)
        h, w = z.shape
        return fold(z[: h // 2 * 2, : w // 2 * 2], self.tile_px)


@lru_cache(maxsize=32)
def _layout(scheme: Scheme, key: bytes) -> Layout:
    return make_layout(key, scheme.name, scheme.slots, scheme.pilot_fraction)


@lru_cache(maxsize=32)
def _pilot_tile(scheme: Scheme, key: bytes) -> np.ndarray:
    tile = scheme.slots_to_tile(scheme.layout(key).chips(None))
    return haar_ll_synthesis(tile) if scheme.subsample == 2 else tile
