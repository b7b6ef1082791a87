"""QA (streamed labeling of Ogg, piped FLAC and soundtracks): the streamed file is the whole-file one.

libsndfile's Ogg seek is not sample-exact: for Opus it decodes too little before the target to settle
the decoder (SILK keeps state across frames), so a few thousand samples after a page boundary differ
(by up to ~2.5e-4) from the ones a read from the start gives; for Vorbis a seek into the last page
lands 151 samples off. The streamed ``--cue middle`` read the programme under the label that way to
size its headroom duck, so a loud Opus labeled streamed came out with other bytes than the whole-file
label.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SAMPLES, ffmpeg_exe
from test_audio_label_streaming import _label_both_ways

from labeler.media.audio_stream import streamable

# The rhythm cue's length at 16 kHz (samples) and ffmpeg's Ogg page length (1 s): a middle label whose
# start falls just before a page boundary is read after an unsettled seek.
_CUE_16K = 17600
_PAGE_16K = 16000


def _speech_opus(tmp: Path, name: str, frames: int, gain: float = 1.0) -> Path:
    """samples/speech.wav looped, at 16 kHz mono, ``frames`` long, times ``gain``, as Ogg Opus (SILK)."""
    wav = tmp / "speech16k.wav"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-stream_loop", "2", "-i",
                    str(SAMPLES / "speech.wav"), "-ar", "16000", "-ac", "1", "-c:a", "pcm_f32le", str(wav)],
                   check=True, timeout=60)
    x = np.clip(sf.read(wav, dtype="float32")[0][:frames] * gain, -0.99, 0.99)
    sf.write(tmp / "in.wav", x, 16000, subtype="FLOAT")
    out = tmp / name
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(tmp / "in.wav"), "-c:a", "libopus",
                    str(out)], check=True, timeout=60)
    return out


@pytest.mark.parametrize(("name", "args", "around"), [
    # Opus: starts either side of a page boundary (16 kHz, ffmpeg's 1 s pages)
    ("speech.opus", ("-ar", "16000", "-c:a", "libopus"), 7 * _PAGE_16K),
    # Vorbis: starts in the last page (22.05 kHz, q10: it begins at 532,736 of 550,377); was 151 off
    ("speech.ogg", ("-c:a", "libvorbis", "-q:a", "10"), 536_000),
])
def test_ogg_blocks_from_a_position_are_the_sequential_samples(tmp_path, name, args, around):
    """AudioSource.blocks(start, stop) of an Ogg file: the samples a read from the start gives (was:
    libsndfile's seek, off for up to ~3,000 Opus samples after a page boundary, 151 Vorbis samples in
    the last page)."""
    src = tmp_path / name
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-stream_loop", "2", "-i",
                    str(SAMPLES / "speech.wav"), "-ac", "1", *args, str(src)], check=True, timeout=60)
    source = streamable(src, tmp_path / ("out" + src.suffix))
    assert source is not None
    whole = sf.read(src, dtype="float32", always_2d=True)[0]
    for start in range(around - 3500, around + 1500, 250):
        got = np.concatenate(list(source.blocks(start, start + 3000)))
        assert np.array_equal(got, whole[start:start + 3000]), start


def test_loud_opus_middle_cue_streamed_is_the_whole_file_label(tmp_path):
    """A near-full-scale Opus labeled with the cue in the middle: the headroom duck is sized on the
    very samples the label is mixed into, so streamed and whole-file labels are the same bytes."""
    start = 7 * _PAGE_16K - 1500  # the middle label's first sample
    src = _speech_opus(tmp_path, "loud.opus", 2 * start + _CUE_16K, gain=1.45)
    _label_both_ways(src, tmp_path, "visible", audio_label="rhythm", cue_positions=("middle",))


@pytest.mark.parametrize("layers", ["watermark", "visible"])
def test_chained_ogg_is_refused_not_cut_to_its_first_link(tmp_path: Path, layers: str) -> None:
    # Two Ogg files joined end to end (a chained stream, as recorders and radio rips write): libsndfile
    # decodes the first link only, so until 2026-12-07 the labeled file held the first 8 s of 16 and said
    # nothing. Both the streamed and the whole-file path now refuse it in one line, writing nothing.
    from labeler import label
    from labeler.errors import LabelerError
    from labeler.record import AIGCLabel

    links = []
    for i in range(2):
        link = tmp_path / f"link{i}.ogg"
        subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(SAMPLES / "speech.wav"), "-c:a",
                        "libvorbis", str(link)], check=True, timeout=60)
        links.append(link.read_bytes())
    chained = tmp_path / "chained.ogg"
    chained.write_bytes(b"".join(links))
    dst = tmp_path / "out.ogg"
    with pytest.raises(LabelerError, match="several logical streams"):
        label(chained, AIGCLabel("001191110102MACQD9K64010000", "x"), dst=dst, layers=layers,
              key=b"k" * 32)
    assert not dst.exists()
