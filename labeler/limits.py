"""Safety bounds for parsing untrusted files.

Every parser in :mod:`labeler.metadata` checks against these before it
allocates or recurses, so a hostile file costs bounded memory and time.
"""

from __future__ import annotations

#: Largest image file read fully into memory (bytes).
MAX_IMAGE_FILE = 1 << 30
#: Largest XMP packet parsed (bytes). Real packets are a few kB; 4 MiB leaves room for big ones.
MAX_XMP_PACKET = 4 << 20
#: Largest single metadata value (label JSON, ID3 frame, text chunk) read (bytes).
MAX_TEXT_VALUE = 1 << 20
#: Largest decompressed size of a compressed text chunk (PNG zTXt/iTXt) (bytes).
MAX_INFLATED = 4 << 20
#: Deepest nesting of ISO-BMFF boxes or RIFF lists walked.
MAX_BOX_DEPTH = 16
#: Most boxes/chunks visited in one file before giving up.
MAX_BOXES = 100_000
#: Largest Ogg header packet (comment header with cover art, Vorbis setup header) loaded (bytes).
MAX_OGG_PACKET = 16 << 20
#: Largest ISO-BMFF ``moov`` box loaded into memory (bytes).
MAX_MOOV = 256 << 20
#: Largest PNG / WebP chunk that holds no pixels (text, XMP, EXIF, ICC) handed to the image decoder (bytes).
#: Pillow keeps at most 64 MiB of PNG text in all; real side chunks are far below this.
MAX_SIDE_CHUNK = 16 << 20
