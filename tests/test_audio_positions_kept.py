"""The audio explicit label keeps every WAV chunk and FLAC block, with cue points moved by the label's delay.

The files are built here chunk by chunk and block by block (struct), so each field is known: a WAV with
LIST/INFO, ``cue `` (2 points), LIST/adtl labels, ``smpl`` (one loop) and ``plst``; a FLAC with Vorbis
comments, a PICTURE and a CUESHEET. After ``aigc label --layers visible`` every chunk and block is there
and every sample position is the old one plus the samples the label put before the programme.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, run_cli

from labeler.media.audio import read_audio
from labeler.media.audio_write import write_audio
from labeler.visible.audio import cue_length
from labeler.visible.voice_prompt import voice_clip

SR = 22050
GAP_S = 0.3  # the label's default silence between it and the programme
CUE_POINTS = ((1, 1000), (2, 15000))  # (ID, sample)
LOOP = (2000, 12000)  # smpl loop start, end (samples)


def _chunk(cid: bytes, payload: bytes) -> bytes:
    return cid + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def _programme(path: Path) -> np.ndarray:
    """Write 2 s of 16-bit stereo noise to ``path``; return it as decoded (exact PCM values).

    Longer than the 1.1 s rhythm cue, which a 'middle' label must fit in whole."""
    rng = np.random.default_rng(7)
    write_audio(path, (0.1 * rng.standard_normal((2 * SR, 2))).astype(np.float32), SR, subtype="PCM_16")
    return read_audio(path).samples


# --------------------------------------------------------------------------- WAV


def _wav_extras() -> dict[str, bytes]:
    info = b"INFO" + _chunk(b"INAM", b"A title\x00") + _chunk(b"IART", b"Someone\x00")
    cue = struct.pack("<I", len(CUE_POINTS)) + b"".join(
        struct.pack("<II4sIII", ident, pos, b"data", 0, 0, pos) for ident, pos in CUE_POINTS)
    adtl = b"adtl" + _chunk(b"labl", struct.pack("<I", 1) + b"Verse\x00") \
        + _chunk(b"labl", struct.pack("<I", 2) + b"Chorus\x00") \
        + _chunk(b"note", struct.pack("<I", 2) + b"loud\x00")
    # manufacturer, product, sample period (ns), unity note, pitch fraction, SMPTE format/offset, 1 loop, 0
    smpl = struct.pack("<9I", 0, 0, 1_000_000_000 // SR, 60, 0, 0, 0, 1, 0) \
        + struct.pack("<6I", 7, 0, LOOP[0], LOOP[1], 0, 0)
    plst = struct.pack("<I", 2) + struct.pack("<3I", 1, 5000, 1) + struct.pack("<3I", 2, 4000, 2)
    return {"info": info, "cue": cue, "adtl": adtl, "smpl": smpl, "plst": plst}


def _wav_with_positions(path: Path) -> tuple[np.ndarray, dict[str, bytes]]:
    x = _programme(path)
    raw = path.read_bytes()
    at = raw.index(b"data")
    extras = _wav_extras()
    body = (raw[12:at] + _chunk(b"LIST", extras["info"]) + raw[at:] + _chunk(b"cue ", extras["cue"])
            + _chunk(b"LIST", extras["adtl"]) + _chunk(b"smpl", extras["smpl"])
            + _chunk(b"plst", extras["plst"]))
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + 4) + b"WAVE" + body)
    return x, extras


def _riff_chunks(path: Path) -> list[tuple[bytes, bytes]]:
    raw, out, pos = path.read_bytes(), [], 12
    while pos + 8 <= len(raw):
        cid, size = struct.unpack_from("<4sI", raw, pos)
        out.append((cid, raw[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def _delay(kind: str) -> int:
    """Samples the label puts before the programme with ``start`` (label, then the gap)."""
    label = cue_length(SR) if kind == "rhythm" else len(voice_clip("zh", SR))
    return label + round(GAP_S * SR)


def _label(src: Path, dst: Path, kind: str, where: str) -> None:
    run_cli("label", str(src), str(dst), "--producer", PRODUCER, "--produce-id", "pos-1",
            "--layers", "visible", "--audio-label", kind, "--cue", where, check=True)


@pytest.mark.parametrize(("kind", "where"),
                         [("rhythm", "start"), ("voice", "start,end"), ("rhythm", "middle")])
def test_wav_chunks_and_cue_points_kept(tmp_path, kind, where):
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    x, extras = _wav_with_positions(src)
    before = src.read_bytes()
    _label(src, dst, kind, where)
    assert src.read_bytes() == before
    delay = _delay(kind) if "start" in where else 0

    found = _riff_chunks(dst)
    ids = [cid for cid, _ in found]
    for cid in (b"cue ", b"smpl", b"plst"):
        assert ids.count(cid) == 1, f"{cid!r} missing from the labeled WAV: {ids}"
    lists = [payload for cid, payload in found if cid == b"LIST"]
    assert extras["info"] in lists and extras["adtl"] in lists  # byte for byte
    assert ids.index(b"LIST") < ids.index(b"data") < ids.index(b"cue ")  # where they were
    chunks = dict(found)
    assert chunks[b"plst"] == extras["plst"]  # lengths and cue IDs only: nothing to move

    cue = chunks[b"cue "]
    assert struct.unpack_from("<I", cue)[0] == len(CUE_POINTS)
    for i, (ident, pos) in enumerate(CUE_POINTS):
        point = struct.unpack_from("<II4sIII", cue, 4 + 24 * i)
        assert point == (ident, pos + delay, b"data", 0, 0, pos + delay)
    smpl = chunks[b"smpl"]
    assert smpl[:36] == extras["smpl"][:36]
    assert struct.unpack_from("<6I", smpl, 36) == (7, 0, LOOP[0] + delay, LOOP[1] + delay, 0, 0)

    out = read_audio(dst).samples
    if where == "middle":
        assert len(out) == len(x)
    else:
        # The programme sits exactly `delay` samples later, untouched: a moved position hits the same sample.
        assert np.array_equal(out[delay:delay + len(x)], x)


# --------------------------------------------------------------------------- FLAC


def _flac_blocks(raw: bytes) -> tuple[list[tuple[int, bytes]], int]:
    assert raw[:4] == b"fLaC"
    pos, blocks = 4, []
    while True:
        head = raw[pos]
        length = int.from_bytes(raw[pos + 1:pos + 4], "big")
        blocks.append((head & 0x7F, raw[pos + 4:pos + 4 + length]))
        pos += 4 + length
        if head & 0x80:
            return blocks, pos


def _flac_block(kind: int, payload: bytes, last: bool = False) -> bytes:
    return bytes(((0x80 if last else 0) | kind,)) + len(payload).to_bytes(3, "big") + payload


def _vorbis_comment(fields: list[bytes]) -> bytes:
    vendor = b"test vendor"
    return (struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(fields))
            + b"".join(struct.pack("<I", len(f)) + f for f in fields))


def _picture() -> bytes:
    mime, desc, data = b"image/png", b"cover", b"\x89PNG not really"
    return (struct.pack(">II", 3, len(mime)) + mime + struct.pack(">I", len(desc)) + desc
            + struct.pack(">IIIII", 1, 1, 24, 0, len(data)) + data)


def _cuesheet(tracks: list[tuple[int, int, list[tuple[int, int]]]]) -> bytes:
    """Non-CD cue sheet: (offset, number, [(index offset, index number)]) per track, lead-out last."""
    out = b"\x00" * 128 + struct.pack(">Q", 0) + b"\x00" * 259 + bytes((len(tracks),))
    for offset, number, indexes in tracks:
        out += struct.pack(">QB", offset, number) + b"\x00" * 12 + b"\x00" * 14 + bytes((len(indexes),))
        out += b"".join(struct.pack(">QB", off, num) + b"\x00" * 3 for off, num in indexes)
    return out


def _cue_tracks(sheet: bytes) -> list[tuple[int, int, list[tuple[int, int]]]]:
    pos, tracks = 396, []
    for _ in range(sheet[395]):
        offset, number = struct.unpack_from(">QB", sheet, pos)
        count = sheet[pos + 35]
        indexes = [struct.unpack_from(">QB", sheet, pos + 36 + 12 * i) for i in range(count)]
        tracks.append((offset, number, indexes))
        pos += 36 + 12 * count
    return tracks


TRACKS = [(0, 1, [(0, 1)]), (11025, 2, [(0, 0), (2205, 1)])]


def _flac_with_positions(path: Path) -> tuple[np.ndarray, dict[int, bytes]]:
    x = _programme(path)
    blocks, audio = _flac_blocks(path.read_bytes())
    streaminfo = blocks[0][1]
    extras = {4: _vorbis_comment([b"TITLE=A title", b"ARTIST=Someone"]), 6: _picture(),
              5: _cuesheet([*TRACKS, (len(x), 255, [])])}
    raw = path.read_bytes()
    metadata = _flac_block(0, streaminfo) + b"".join(_flac_block(k, p) for k, p in extras.items())
    path.write_bytes(b"fLaC" + metadata + _flac_block(1, b"\x00" * 64, last=True) + raw[audio:])
    return x, extras


@pytest.mark.parametrize(("kind", "where"), [("rhythm", "start,end"), ("voice", "start")])
def test_flac_blocks_and_cuesheet_kept(tmp_path, kind, where):
    from mutagen.flac import FLAC

    src, dst = tmp_path / "in.flac", tmp_path / "out.flac"
    x, extras = _flac_with_positions(src)
    assert FLAC(src).cuesheet is not None  # the hand-made file is a valid FLAC to mutagen
    before = src.read_bytes()
    _label(src, dst, kind, where)
    assert src.read_bytes() == before
    delay = _delay(kind)

    blocks = dict(_flac_blocks(dst.read_bytes())[0])
    assert blocks[4] == extras[4] and blocks[6] == extras[6]  # comments and picture, byte for byte
    assert 5 in blocks, "CUESHEET missing from the labeled FLAC"
    out = read_audio(dst).samples
    tagged = FLAC(dst)
    assert tagged["TITLE"] == ["A title"] and [p.data for p in tagged.pictures] == [b"\x89PNG not really"]
    assert tagged.info.total_samples == len(out)
    tracks = _cue_tracks(blocks[5])
    # Track offsets move with the programme; index points are relative to their track; the lead-out
    # marks the end of the new stream.
    assert tracks == [(off + delay, num, idx) for off, num, idx in TRACKS] + [(len(out), 255, [])]
    assert [t.start_offset for t in tagged.cuesheet.tracks] == [t[0] for t in tracks]
    assert np.array_equal(out[delay:delay + len(x)], x)


# --------------------------------------------------------------------------- the rewriter's contract


def test_bare_samples_keep_positions_only_when_the_length_is_unchanged(tmp_path):
    """A transform that does not say its delay: same length moves nothing; a new length drops positions."""
    from labeler.visible.audio import AudioEdit, rewrite_audio_file

    src = tmp_path / "in.wav"
    _, extras = _wav_with_positions(src)
    same, longer, told = tmp_path / "same.wav", tmp_path / "longer.wav", tmp_path / "told.wav"
    rewrite_audio_file(src, same, lambda x, rate: x * 0.5)
    rewrite_audio_file(src, longer, lambda x, rate: np.concatenate([np.zeros_like(x[:100]), x]))
    rewrite_audio_file(src, told, lambda x, rate: AudioEdit(np.concatenate([np.zeros_like(x[:100]), x]), 100))
    assert dict(_riff_chunks(same))[b"cue "] == extras["cue"]
    dropped = [cid for cid, _ in _riff_chunks(longer)]
    assert b"cue " not in dropped and b"smpl" not in dropped and b"plst" not in dropped
    assert [p for cid, p in _riff_chunks(longer) if cid == b"LIST"] == [extras["info"]]  # adtl went too
    cue = dict(_riff_chunks(told))[b"cue "]
    offsets = [struct.unpack_from("<I", cue, 4 + 24 * i + 20)[0] for i in range(2)]
    assert offsets == [p + 100 for _, p in CUE_POINTS]


@pytest.mark.parametrize(("delay", "still_cd"), [(588 * 10, True), (1000, False)])
def test_cd_cuesheet_leaves_the_cd_grid_only_when_it_must(tmp_path, delay, still_cd):
    from labeler.visible.audio import AudioEdit, rewrite_audio_file

    rate, frames = 44100, 588 * 100
    src = tmp_path / "cd.flac"
    write_audio(src, np.zeros((frames, 2), np.float32), rate, subtype="PCM_16")
    blocks, audio = _flac_blocks(src.read_bytes())
    sheet = bytearray(_cuesheet([(0, 1, [(0, 1)]), (588 * 50, 2, [(0, 1)]), (frames, 170, [])]))
    sheet[128:136] = struct.pack(">Q", 88200)  # lead-in (CD only)
    sheet[136] = 0x80  # CD-DA
    raw = src.read_bytes()
    metadata = _flac_block(0, blocks[0][1]) + _flac_block(5, bytes(sheet), last=True)
    src.write_bytes(b"fLaC" + metadata + raw[audio:])
    dst = tmp_path / "out.flac"
    rewrite_audio_file(src, dst, lambda x, r: AudioEdit(np.concatenate([np.zeros((delay, 2), np.float32), x]),
                                                        delay))
    out = dict(_flac_blocks(dst.read_bytes())[0])[5]
    assert _cue_tracks(out)[:2] == [(delay, 1, [(0, 1)]), (588 * 50 + delay, 2, [(0, 1)])]
    lead_out = _cue_tracks(out)[2]
    assert lead_out[0] == frames + delay
    assert bool(out[136] & 0x80) is still_cd
    assert (lead_out[1], struct.unpack_from(">Q", out, 128)[0]) == ((170, 88200) if still_cd else (255, 0))
