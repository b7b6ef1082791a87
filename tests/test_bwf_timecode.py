"""A cue put before the programme moves the BWF timecode, so the programme keeps its time of day.

Broadcast WAV says when the first sample was recorded in samples since midnight: ``bext`` TimeReference
(EBU Tech 3285, a uint64 at byte 338 of the chunk) and iXML's ``TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI/LO``
(at ``TIMESTAMP_SAMPLE_RATE``) with its ``BWF_TIME_REFERENCE_HIGH/LOW`` copy. The files are built here
chunk by chunk, so every field is known. After the label, the first sample is the label's, so each
reference must be the old one minus the inserted samples (at the reference's own rate), clamped at 0.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest

from labeler.media.audio import read_audio
from labeler.media.audio_write import write_audio
from labeler.metadata import riff
from labeler.visible.audio import add_audio_cue_file

SR = 48000
# 10:00:00 plus a bit, in samples since midnight.
TIME_REF = 10 * 3600 * SR + 12345


def _chunk(cid: bytes, payload: bytes) -> bytes:
    return cid + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def _bext(time_ref: int) -> bytes:
    head = b"AI programme".ljust(256, b"\x00") + b"aigc-test".ljust(32, b"\x00") + b"ref-1".ljust(32, b"\x00")
    head += b"2026-12-05" + b"10:00:00"
    # TimeReference, Version 2, UMID (64), loudness values (5 x int16), reserved (180), coding history
    loudness = struct.pack("<5h", -2300, -100, -900, -1000, -2500)
    tail = struct.pack("<QH", time_ref, 2) + b"\x00" * 64 + loudness
    return head + tail + b"\x00" * 180 + b"A=PCM,F=48000,W=16,M=stereo\r\n"


def _ixml(samples: int, rate: int, bwf_ref: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<BWFXML><IXML_VERSION>2.10</IXML_VERSION>'
        "<PROJECT>aigc</PROJECT><SPEED><NOTE>48k</NOTE><MASTER_SPEED>1/1</MASTER_SPEED>"
        f"<TIMESTAMP_SAMPLE_RATE>{rate}</TIMESTAMP_SAMPLE_RATE>"
        f"<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI>{samples >> 32}</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI>"
        f"<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>{samples & 0xFFFFFFFF}</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>"
        "</SPEED><BEXT>"
        f"<BWF_TIME_REFERENCE_LOW>{bwf_ref & 0xFFFFFFFF}</BWF_TIME_REFERENCE_LOW>"
        f"<BWF_TIME_REFERENCE_HIGH>{bwf_ref >> 32}</BWF_TIME_REFERENCE_HIGH>"
        "</BEXT></BWFXML>\n"
    ).encode()


def _bwf(path: Path, time_ref: int, ixml_rate: int = SR) -> int:
    """Write 1 s of 16-bit stereo noise with bext and iXML before ``data``; return its frame count."""
    rng = np.random.default_rng(11)
    write_audio(path, (0.1 * rng.standard_normal((SR, 2))).astype(np.float32), SR, subtype="PCM_16")
    raw = path.read_bytes()
    at = raw.index(b"data")
    ixml_ref = round(time_ref * ixml_rate / SR)
    body = raw[12:at] + _chunk(b"bext", _bext(time_ref))
    body += _chunk(b"iXML", _ixml(ixml_ref, ixml_rate, time_ref)) + raw[at:]
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + 4) + b"WAVE" + body)
    return read_audio(path).frames


def _chunks(path: Path) -> dict[bytes, bytes]:
    with open(path, "rb") as f:
        layout = riff._layout(f)
        found = {}
        for c in layout.chunks:
            f.seek(c.start)
            found[c.cid] = f.read(c.size)
    return found


def _ixml_value(text: bytes, tag: str) -> int:
    return int(re.search(rf"<{tag}>(\d+)</{tag}>".encode(), text).group(1))


def _ixml_samples(text: bytes, hi: str, lo: str) -> int:
    return (_ixml_value(text, hi) << 32) + _ixml_value(text, lo)


# 48048: a timestamp counted at a pulled-up rate; 2**32 + 12345: the 64-bit fields' high halves in use.
@pytest.mark.parametrize(("time_ref", "ixml_rate"),
                         [(TIME_REF, SR), (TIME_REF, 48048), ((1 << 32) + 12345, SR)])
def test_cue_at_start_moves_the_timecode_earlier(tmp_path, time_ref, ixml_rate):
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    frames = _bwf(src, time_ref, ixml_rate)
    add_audio_cue_file(src, dst, where=("start",))
    delay = read_audio(dst).frames - frames
    assert delay > SR // 2  # the cue and its gap: about 0.8 s at 48 kHz
    before, after = _chunks(src), _chunks(dst)
    # The programme's first sample is now `delay` samples in, at the same time of day as before.
    assert struct.unpack_from("<Q", after[b"bext"], 338)[0] == time_ref - delay
    ixml = after[b"iXML"]
    stamp = _ixml_samples(ixml, "TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI", "TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO")
    assert stamp == round(time_ref * ixml_rate / SR) - round(delay * ixml_rate / SR)
    assert _ixml_samples(ixml, "BWF_TIME_REFERENCE_HIGH", "BWF_TIME_REFERENCE_LOW") == time_ref - delay
    assert _ixml_value(ixml, "TIMESTAMP_SAMPLE_RATE") == ixml_rate
    # Everything else in both chunks is byte for byte the source's.
    assert after[b"bext"][:338] == before[b"bext"][:338] and after[b"bext"][346:] == before[b"bext"][346:]
    strip = re.compile(rb">\d+<")
    assert strip.sub(b"><", ixml) == strip.sub(b"><", before[b"iXML"])


def test_cue_at_the_end_leaves_the_timecode(tmp_path):
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    _bwf(src, TIME_REF)
    add_audio_cue_file(src, dst, where=("end",))
    assert _chunks(dst)[b"bext"] == _chunks(src)[b"bext"]
    assert _chunks(dst)[b"iXML"] == _chunks(src)[b"iXML"]


def test_timecode_before_the_cue_is_clamped_at_midnight_and_said(tmp_path):
    from labeler.media.audio_rewrite import rewrite_audio_file
    from labeler.visible.audio import audio_cue_edit

    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    _bwf(src, 1000)  # 1000 samples after midnight: fewer than the cue inserts
    notes = rewrite_audio_file(src, dst, lambda x, rate: audio_cue_edit(x, rate, where=("start",)))
    after = _chunks(dst)
    assert struct.unpack_from("<Q", after[b"bext"], 338)[0] == 0
    assert _ixml_samples(after[b"iXML"], "TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI",
                         "TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO") == 0
    assert notes and all("set to 0" in n for n in notes)
    assert any(n.startswith("BWF bext TimeReference (1000 samples") for n in notes)
