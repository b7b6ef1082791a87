"""Two things libsndfile leaves to :mod:`labeler.media.audio`: a FLAC without a length, a PEAK time stamp.

* A FLAC whose STREAMINFO gives no total sample count (0: unknown, legal per RFC 9639 8.2; what
  ``ffmpeg ... -f flac -`` writes to a pipe) is reported by libsndfile as :data:`UNKNOWN_FRAMES` long,
  and libsndfile fails to read its end ("Internal psf_fseek() failed"); ffmpeg decodes it to the same
  floats. :func:`sndfile_subtype` keeps libsndfile's name for its samples (``PCM_24``), so the labeled
  FLAC is written at the source's bit depth.
* libsndfile writes a float WAV's ``PEAK`` chunk with the time of writing (``time(NULL)``), so two
  labelings of one file differed in those four bytes; :func:`steady_peak_chunk` sets the time stamp
  to 0 (not known), and the same input gives the same output.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

import soundfile as sf

from labeler.errors import LabelerError

__all__ = ["UNKNOWN_FRAMES", "sndfile_subtype", "steady_peak_chunk"]

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
