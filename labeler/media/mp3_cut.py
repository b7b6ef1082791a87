"""Whether an MP3 file was cut short (an interrupted download or copy), from its frame headers alone.

ffmpeg decodes such a file to where it stops without an error (the partial last frame is dropped;
at most "filesize and duration do not match" at warning level, and only with a Xing header), so a
label call would say nothing. The MPEG audio frames (ISO/IEC 11172-3 2.4.2.3, 13818-3) are walked
from the first one after the ID3v2 tag(s): a file is cut when its last frame runs past the end of the
file (or of the audio before a trailing ID3v1 tag), or when it ends on a frame boundary short of the
frame count its Xing / Info or VBRI header gives. Anything the walk does not understand (free-format
bit rate, junk between frames, an APEv2 tag) gives no verdict rather than a false one.
"""

from __future__ import annotations

import mmap
import os

from labeler.errors import CorruptFile, LabelerError
from labeler.metadata.id3 import tag_length

__all__ = ["mp3_cut", "mp3_cut_note", "mp3_without_frames"]

# kbit/s by bit-rate index: (MPEG-1 layer I, II, III), (MPEG-2 / 2.5 layer I, II and III).
_RATES = {
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES[(2, 3)] = _RATES[(2, 2)]
# Hz by sample-rate index, per version bits (3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5).
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
#: How far past the ID3v2 tag(s) the first frame is looked for (encoders may leave padding there).
_FIRST_FRAME_WITHIN = 1 << 16


def _frame(head: bytes) -> tuple[int, int, int] | None:
    """``(frame bytes, samples per frame, sample rate)`` of the frame header ``head`` (4 bytes), or None
    when it is no valid header (or a free-format one, whose length the header does not give)."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version, layer = (head[1] >> 3) & 3, 4 - ((head[1] >> 1) & 3)  # layer 4: the reserved value
    rate_index, sr_index, pad = head[2] >> 4, (head[2] >> 2) & 3, (head[2] >> 1) & 1
    if version == 1 or layer == 4 or rate_index in (0, 15) or sr_index == 3:
        return None
    kbps = _RATES[(1 if version == 3 else 2, layer)][rate_index]
    sample_rate = _SAMPLE_RATES[version][sr_index]
    if layer == 1:
        return (12000 * kbps // sample_rate + pad) * 4, 384, sample_rate
    samples = 576 if layer == 3 and version != 3 else 1152
    return samples // 8 * 1000 * kbps // sample_rate + pad, samples, sample_rate


def _declared_frames(first: bytes) -> int | None:
    """The frame count a Xing / Info or VBRI header in the first frame gives (frames after it), or None."""
    for tag in (b"Xing", b"Info"):
        at = first.find(tag)
        if at >= 0 and len(first) >= at + 12 and first[at + 7] & 1:  # flag 1: the frame count follows
            return int.from_bytes(first[at + 8 : at + 12], "big")
    at = first.find(b"VBRI")
    if at == 36 and len(first) >= at + 18:  # Fraunhofer: 32 bytes after the header; bytes, then frames
        return int.from_bytes(first[at + 14 : at + 18], "big")
    return None


def _first_frame(data: mmap.mmap | bytes, start: int, end: int) -> int | None:
    """Offset of the first frame at or after ``start``: a valid header followed by another one."""
    pos = data.find(b"\xff", start, min(end, start + _FIRST_FRAME_WITHIN))
    while 0 <= pos < end:
        info = _frame(data[pos : pos + 4])
        if info is not None and (pos + info[0] >= end or _frame(data[pos + info[0] : pos + info[0] + 4])):
            return pos
        pos = data.find(b"\xff", pos + 1, min(end, start + _FIRST_FRAME_WITHIN))
    return None


def mp3_cut(src: str | os.PathLike[str] | bytes) -> tuple[str, float] | None:
    """Whether the MP3 ``src`` (a path, or the file's bytes) is cut short (module doc): ``(what is cut,
    seconds of sound before the cut)``, e.g. ``("its last frame, at offset 80000, lacks 300 of its 418
    bytes", 4.94)``, else None. None too for a file that cannot be opened or walked: the decoder or the
    metadata layer says what is wrong then."""
    try:
        if isinstance(src, bytes):
            return _cut_detail(src)
        with open(src, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _cut_detail(data)
    except (OSError, ValueError, LabelerError):
        return None  # an empty file (mmap's ValueError), an unreadable or broken tag


def mp3_cut_note(src: str | os.PathLike[str] | bytes) -> str | None:
    """A warning for a label call when the MP3 ``src`` is cut short (:func:`mp3_cut`), else None.

    The wording follows verify's for a damaged picture (``damaged jpeg file: ...``).
    """
    cut = mp3_cut(src)
    if cut is None:
        return None
    detail, seconds = cut
    return (f"damaged mp3 file: it is truncated ({detail}): labeled as it is, the {seconds:.2f} s of sound "
            "before the cut")


def _cut_detail(data: mmap.mmap | bytes) -> tuple[str, float] | None:
    end = len(data) - (128 if data[-128:-125] == b"TAG" else 0)  # a trailing ID3v1 tag
    pos = 0
    while (length := tag_length(data[pos : pos + 10])) is not None:
        pos += length
    first = _first_frame(data, pos, end)
    if first is None:
        return None
    head = _frame(data[first : first + 4])
    assert head is not None
    declared = _declared_frames(data[first : first + head[0]])
    # The Xing / VBRI frame holds no sound (decoders skip it) and is not in its own count.
    frames, samples, pos = (-1, -head[1], first) if declared is not None else (0, 0, first)
    while pos < end:
        info = _frame(data[pos : pos + 4])
        if info is None:
            return None  # junk or an unknown tag (APEv2, Lyrics3): not a cut we can tell
        if pos + info[0] > end:
            detail = f"its last frame, at offset {pos}, lacks {pos + info[0] - end} of its {info[0]} bytes"
            if declared is not None:
                detail += f"; {frames} of the {declared} audio frames its header gives are whole"
            return detail, samples / head[2]
        frames, samples, pos = frames + 1, samples + info[1], pos + info[0]
    if declared is not None and frames < declared:
        return f"it holds {frames} of the {declared} audio frames its header gives", samples / head[2]
    return None


def mp3_without_frames(head: bytes, size: int) -> str | None:
    """Why an MP3 of ``size`` bytes whose first MiB (or whole) is ``head`` holds no audio to decode (its
    ID3v2 tags run past its end, or no MPEG frame follows them), or None when that cannot be said."""
    pos = 0
    try:
        while (length := tag_length(head[pos : pos + 10])) is not None:
            if pos + length > size:
                return (f"not a readable MP3 file: too short ({size} bytes): its ID3v2 tag runs past the "
                        "end, so no audio frames")
            pos += length
    except CorruptFile as exc:  # a tag header cut short or unknown
        return f"not a readable MP3 file ({exc}), so no audio frames"
    if size > pos + _FIRST_FRAME_WITHIN:
        return None  # the first frame is looked for that far only: no verdict beyond it
    if _first_frame(head, pos, size) is None:
        return f"not a readable MP3 file: no MPEG audio frames in its {size - pos} bytes after the tags"
    return None
