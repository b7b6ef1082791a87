"""Method ``dct``: 8 x 8 block DCT of luma, 12 low-to-mid-frequency coefficients per block.

The coefficients have 2 <= u + v <= 5 and u, v <= 3, i.e. spatial frequencies of 1/8 to 3/16
cycles per pixel: high enough to hide in texture and to stay clear of the smooth image content, low
enough to survive JPEG quality 50 (whose luma quantisation steps there are 10-24 levels) and a 0.5x
downscale (after which 3/16 becomes 3/8 cycles per pixel, still below the 1/2 Nyquist limit).
"""

from __future__ import annotations

from labeler.watermark.scheme import Scheme

COEFFICIENTS = ((0, 2), (1, 1), (2, 0), (0, 3), (1, 2), (2, 1), (3, 0), (1, 3), (2, 2), (3, 1),
                (2, 3), (3, 2))

#: 16 x 16 blocks = 128 x 128 pixel tile, 3072 slots (768 pilot, 2304 data = ~9 per coded bit).
DCT = Scheme(name="dct", coefficients=COEFFICIENTS, blocks=16, subsample=1)
