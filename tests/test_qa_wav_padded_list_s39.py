"""A WAV with a LIST chunk padded with zeros (QA, December 2026).

Some editors reserve room for tags as a LIST chunk full of zeros. Its sub-chunk walk read 2 MB of
zeros as 262,144 empty sub-chunks and refused the file as "wav file has more than 100000 chunks", so a
valid WAV with real samples could be neither labeled nor have its labels read.
"""

from __future__ import annotations

import struct

from conftest import PRODUCER, SAMPLES, run_cli

from labeler.metadata import read_labels


def _padded(src: bytes, pad: int) -> bytes:
    """``src`` (a RIFF WAVE) with a ``LIST`` chunk of type ``INFO`` holding an INAM entry and ``pad``
    zero bytes inserted after its fmt chunk."""
    assert src[:4] == b"RIFF" and src[8:12] == b"WAVE"
    body = b"INFO" + b"INAM" + struct.pack("<I", 6) + b"title\x00" + bytes(pad)
    chunk = b"LIST" + struct.pack("<I", len(body)) + body
    fmt_end = 12 + 8 + struct.unpack("<I", src[16:20])[0]
    out = src[:fmt_end] + chunk + src[fmt_end:]
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]


def test_a_zero_padded_list_is_padding_not_chunks(tmp_path):
    wav = tmp_path / "padded.wav"
    wav.write_bytes(_padded((SAMPLES / "speech.wav").read_bytes(), 2 << 20))
    assert read_labels(wav)[1] == []
    dst = tmp_path / "labeled.wav"
    done = run_cli("label", str(wav), str(dst), "--producer", PRODUCER, "--produce-id", "pad-1")
    assert done.returncode == 0, done.stderr
    labels = [f for f in read_labels(dst)[1] if f.standard]
    assert len(labels) == 1 and '"ProduceID":"pad-1"' in labels[0].raw
    verified = run_cli("verify", str(dst))
    assert verified.returncode == 0 and "confirmed" in verified.stdout, verified.stdout + verified.stderr
