"""Method ``dwt``: one-level Haar DWT (pywavelets), then 8 x 8 block DCT inside the LL subband.

An LL sample covers 2 x 2 pixels, so the 16 coefficients used (2 <= u + v <= 5, u, v <= 4 inside the
LL blocks) sit at 1/16 to 1/8 cycles per pixel: an octave below the ``dct`` method. The mark is
coarser (a little more visible per unit of energy) but survives stronger downscaling and blur.
"""

from __future__ import annotations

from labeler.watermark.scheme import Scheme

COEFFICIENTS = tuple(
    (u, v) for s in range(2, 6) for u in range(0, 5) for v in range(0, 5) if u + v == s
)

#: 8 x 8 LL blocks = 64 x 64 LL samples = 128 x 128 pixel tile, 1024 slots.
DWT = Scheme(name="dwt", coefficients=COEFFICIENTS, blocks=8, subsample=2)
