"""What libsndfile leaves to :mod:`labeler.media.audio`: a FLAC without a length, a PEAK time stamp, and
WAV encodings it cannot write back.

* A FLAC whose STREAMINFO gives no total sample count (0: unknown, legal per RFC 9639 8.2; what
  ``ffmpeg ... -f flac -`` writes to a pipe) is reported by libsndfile as :data:`UNKNOWN_FRAMES` long,
  and libsndfile fails to read its end ("Internal psf_fseek() failed"); ffmpeg decodes it to the same
  floats. :func:`sndfile_subtype` keeps libsndfile's name for its samples (``PCM_24``), so the labeled
  FLAC is written at the source's bit depth.
* libsndfile writes a float WAV's ``PEAK`` chunk with the time of writing (``time(NULL)``), so two
  labelings of one file differed in those four bytes; :func:`steady_peak_chunk` sets the time stamp
  to 0 (not known), and the same input gives the same output.
* A WAV's samples can be written back only in an encoding libsndfile writes (:func:`wav_subtype`): one
  ffmpeg decoded for it (G.726, Yamaha ADPCM...) became 16-bit PCM without a word, and one it reads but
  cannot write (MP3 in WAV: ``sf.check_format`` says yes) failed with "Error opening <...Sink object at
  0x...>". Both are now refused in one line before anything is decoded.
* libsndfile drops an Ogg page that fails its CRC check without a word: Vorbis then reads short (the
  labeled file lost a second of the middle and ended early), Opus conceals the gap (the labeled file
  kept invented sound). :func:`ogg_damage` finds such a page (and a missing or cut one) before decoding.
"""

from __future__ import annotations

import functools
import io
import os
import struct
from typing import BinaryIO

import soundfile as sf

from labeler.errors import CorruptFile, LabelerError, UnsupportedFormat

__all__ = ["UNKNOWN_FRAMES", "can_write", "kept_wav_subtype", "ogg_damage", "sndfile_subtype",
           "steady_peak_chunk", "wav_subtype"]

#: libsndfile's frame count of a FLAC whose STREAMINFO has no total (SF_COUNT_MAX); anything this large
#: is no real length.
UNKNOWN_FRAMES = 1 << 62


def sndfile_subtype(path: str | os.PathLike[str]) -> str | None:
    """libsndfile's subtype (``PCM_16``, ``PCM_24``...) of the FLAC at ``path`` when it has no length
    (see the module doc), else None (a FLAC with a length, or a file libsndfile does not read)."""
    try:
        with sf.SoundFile(path) as snd:
            return snd.subtype if snd.format == "FLAC" and snd.frames >= UNKNOWN_FRAMES else None
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        return None


#: ffmpeg's names of the WAV encodings libsndfile writes too, for a WAV ffmpeg decoded (libsndfile could not
#: open it: a header it rejects), so its samples keep their encoding.
_FFMPEG_WAV_CODECS = {
    "pcm_u8": "PCM_U8", "pcm_s16le": "PCM_16", "pcm_s24le": "PCM_24", "pcm_s32le": "PCM_32",
    "pcm_f32le": "FLOAT", "pcm_f64le": "DOUBLE", "pcm_mulaw": "ULAW", "pcm_alaw": "ALAW",
    "adpcm_ima_wav": "IMA_ADPCM", "adpcm_ms": "MS_ADPCM", "gsm_ms": "GSM610",
}


@functools.lru_cache(maxsize=64)
def can_write(container: str, subtype: str) -> bool:
    """Whether libsndfile writes ``subtype`` samples in ``container`` (its names: ``"WAV"``, ``"PCM_24"``).

    Tried on an empty in-memory file: ``sf.check_format`` answers from a table and says yes to MP3 in a
    WAV, which libsndfile reads but refuses to write.
    """
    try:
        with sf.SoundFile(io.BytesIO(), "w", 8000, 1, subtype, format=container):
            return True
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        return False


def wav_subtype(codec: str | None) -> str:
    """The libsndfile subtype a labeled WAV is written in to keep the source's encoding ``codec``.

    ``codec`` is libsndfile's subtype (``"PCM_24"``) or, for a WAV ffmpeg decoded, ffmpeg's codec name
    (``"pcm_s24le"``).

    Raises
    ------
    UnsupportedFormat
        An encoding libsndfile cannot write in a WAV (G.726, Yamaha ADPCM, MP3...): writing 16-bit PCM
        instead would change the file's format and size without a word.
    """
    name = codec or "unknown"
    subtype = name if name.isupper() else _FFMPEG_WAV_CODECS.get(name)
    if subtype is not None and can_write("WAV", subtype):
        return subtype
    raise UnsupportedFormat(
        f"wav file with {name} audio: the watermark and audio cue layers re-encode the samples and "
        f"{name} cannot be written back (a WAV keeps PCM, float, mu-law, A-law, IMA / MS ADPCM or GSM "
        f"6.10); label it with --layers metadata, which keeps the samples as they are, or convert it first")


def kept_wav_subtype(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> str | None:
    """The subtype (:func:`wav_subtype`) a WAV ``src`` labeled into a WAV ``dst`` is written in, else None.

    Asked before the samples are decoded. None also for a ``src`` that cannot be read: the decoder
    then says why, as before.

    Raises
    ------
    UnsupportedFormat
        As :func:`wav_subtype`.
    """
    from labeler.media.audio import audio_format_for, audio_info  # that module imports this one

    if audio_format_for(dst) not in ("wav", None):  # no extension: the source's format is kept
        return None
    try:
        info = audio_info(src)
    except (LabelerError, OSError):
        return None
    return wav_subtype(info.subtype) if info.format in ("wav", "wavex", "rf64") else None


def steady_peak_chunk(handle: BinaryIO, container: str) -> None:
    """Set the time stamp of the ``PEAK`` chunk of the WAV libsndfile just wrote to ``handle`` to 0.

    The chunk (version, time stamp, then a value and a position per channel) is otherwise kept: the
    peaks are those of the samples written. Nothing is done for another ``container`` (libsndfile's
    name: ``"WAV"``...), a file without a ``PEAK`` chunk, or one too short to hold its time stamp; the
    handle's position is left at the end of the file.
    """
    if container != "WAV":
        return
    from labeler.metadata import riff

    try:
        layout = riff._layout(handle)
    except LabelerError:
        return  # not ours to judge here: the file is what libsndfile wrote
    for chunk in layout.chunks:
        if chunk.cid == b"PEAK" and chunk.stored >= 8:
            handle.seek(chunk.start + 4)
            handle.write(struct.pack("<I", 0))
    handle.seek(0, os.SEEK_END)


def ogg_damage(src: str | os.PathLike[str] | BinaryIO) -> str | None:
    """What is wrong with the pages of the Ogg file ``src`` (a path or a seekable binary file), or None.

    Every page is read and CRC-checked (:mod:`labeler.metadata.ogg`), and each logical stream's page
    sequence numbers must follow one another: a page that fails its CRC, one missing, or the last one cut
    short is the first problem found (``"ogg page at offset N fails its CRC check"``). Bytes after the
    last page that hold no further page (a tag, padding) are not damage: no decoder reads them.

    The walk reads the whole file once (page by page, each under 64 KiB), at the speed of zlib's CRC.
    """
    from labeler.metadata import ogg  # that package imports labeler.media

    if isinstance(src, (str, os.PathLike)):
        with open(src, "rb") as handle:
            return ogg_damage(handle)
    size = src.seek(0, os.SEEK_END)
    offset = 0
    last: dict[int, int] = {}
    while offset < size:
        try:
            page, _body = ogg._read_page(src, offset, size)
        except CorruptFile as exc:
            if str(exc).startswith("no ogg page") and not _page_after(src, offset):
                return None
            return str(exc)
        seq = last.get(page.serial)
        if seq is not None and page.seq != (seq + 1) & 0xFFFFFFFF:
            return (f"ogg page at offset {offset} is page {page.seq} of its stream, after page {seq}: "
                    "pages are missing")
        last[page.serial] = page.seq
        offset += page.size
    return None


def _page_after(src: BinaryIO, offset: int) -> bool:
    """Whether an Ogg capture pattern follows ``offset`` (damage in the middle, not trailing bytes)."""
    src.seek(offset)
    tail = b""
    while chunk := src.read(1 << 20):
        if b"OggS" in tail[-3:] + chunk:
            return True
        tail = chunk
    return False
