"""QA follow-ups (third pass): a cut live Matroska / WebM audio recording refused by the audio label
layers, the XMP-size check of the in-memory (bytes) label path run before the pixel layers, and the
README's memory figures for verify of audio below the streaming threshold."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import labeler
from detectors.audio_scan import STREAM_ABOVE_BYTES
from labeler import limits
from labeler.errors import CorruptFile, LabelerError, UnsafeInput
from labeler.media.audio import audio_info, decoded_blocks
from labeler.record import AIGCLabel
from tests.conftest import PRODUCER, SAMPLES, ffmpeg_exe, seeded_key_file

_ROOT = Path(__file__).resolve().parents[1]
_CUT_SHORT = r"^the file is cut short \(ffmpeg: file ended prematurely\)$"


def _live_audio(tmp_path: Path, suffix: str, fraction: float) -> Path:
    """samples/speech.wav as Opus in a live Matroska (``.mka``) or WebM (``.weba``) recording (written to
    a pipe: Segment size unknown), its first ``fraction`` kept."""
    muxer = "webm" if suffix == ".weba" else "matroska"
    live = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(SAMPLES / "speech.wav"), "-c:a", "libopus",
                           "-f", muxer, "pipe:1"], capture_output=True, check=True, timeout=60).stdout
    path = tmp_path / f"live{int(fraction * 100)}{suffix}"
    path.write_bytes(live[:int(len(live) * fraction)])
    return path


# ---------------------------------------------------------------- 1. cut live audio recordings


@pytest.mark.parametrize("suffix", [".mka", ".weba"])
def test_decoder_refuses_cut_live_recording_only_when_labeling(tmp_path: Path, suffix: str) -> None:
    src = _live_audio(tmp_path, suffix, 1 / 2)
    info = audio_info(src)
    assert info.decoder == "ffmpeg"
    # the label path asks for the check: ffmpeg exits 0 here, its stderr says the file ended early
    with pytest.raises(CorruptFile, match=_CUT_SHORT):
        for _ in decoded_blocks(src, info, 1 << 14, refuse_cut_short=True):
            pass
    # readers (verify) get what is there, as before
    frames = sum(len(b) for b in decoded_blocks(src, info, 1 << 14))
    assert frames > info.sample_rate  # more than a second of the ~8 s before the cut


def test_decoder_keeps_whole_live_recording(tmp_path: Path) -> None:
    src = _live_audio(tmp_path, ".mka", 1.0)
    info = audio_info(src)
    frames = sum(len(b) for b in decoded_blocks(src, info, 1 << 14, refuse_cut_short=True))
    assert frames > 7 * info.sample_rate


@pytest.mark.parametrize(("suffix", "layers"), [(".mka", "watermark"), (".weba", "visible")])
def test_label_refuses_cut_live_audio_recording(tmp_path: Path, suffix: str, layers: str) -> None:
    src = _live_audio(tmp_path, suffix, 1 / 2)
    out = tmp_path / f"out{suffix}"
    key = seeded_key_file(tmp_path / "k.key").read_bytes()
    try:
        labeler.label_file(src, out, AIGCLabel(content_producer=PRODUCER, produce_id="x1"), layers=layers,
                           key=key)
    except CorruptFile as exc:
        assert re.match(_CUT_SHORT, str(exc)), str(exc)
    else:
        raise AssertionError("a cut live recording was labeled")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".aigc")] == []


@pytest.mark.parametrize(("suffix", "layers"), [(".mka", "watermark"), (".weba", "visible")])
def test_label_keeps_whole_live_audio_recording(tmp_path: Path, suffix: str, layers: str) -> None:
    src = _live_audio(tmp_path, suffix, 1.0)
    out = tmp_path / f"out{suffix}"
    key = seeded_key_file(tmp_path / "k.key").read_bytes()
    result = labeler.label_file(src, out, AIGCLabel(content_producer=PRODUCER, produce_id="x2"),
                                layers=layers, key=key)
    assert layers in result.layers and out.stat().st_size > 0


# ---------------------------------------------------------------- 2. XMP size checked up front for bytes

_PACKET = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
           b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
           b'rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:format>'
           + b"x" * (limits.MAX_XMP_PACKET + 1000)
           + b'</dc:format></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def _big_xmp_bytes(tmp_path: Path, fmt: str) -> bytes:
    """A 320 x 240 PNG or WebP whose XMP packet is just over the limit, as bytes."""
    pixels = np.random.default_rng(5).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    path = tmp_path / f"big.{fmt}"
    if fmt == "png":
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", _PACKET.decode())
        Image.fromarray(pixels).save(path, pnginfo=info, compress_level=1)
    else:
        Image.fromarray(pixels).save(path, xmp=_PACKET, quality=80)
    return path.read_bytes()


@pytest.mark.parametrize(("fmt", "message"), [
    ("png", r"^png xmp chunk at offset 33 is over the xmp packet limit$"),
    ("webp", rf"^webp XMP chunk is {len(_PACKET)} bytes, over the {limits.MAX_XMP_PACKET}-byte limit$"),
])
def test_bytes_oversized_xmp_refused_before_pixel_layers(tmp_path: Path, fmt: str, message: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import labeler.media.image as image_reader

    data = _big_xmp_bytes(tmp_path, fmt)

    def no_decode(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the pixels were decoded before the XMP packet was refused")

    monkeypatch.setattr(image_reader, "read_image", no_decode)
    key = seeded_key_file(tmp_path / "k.key").read_bytes()
    label = AIGCLabel(content_producer=PRODUCER, produce_id="xmp-b1")
    with pytest.raises(UnsafeInput, match=message):
        labeler.label(data, label, layers="watermark,visible,metadata", key=key)
    monkeypatch.undo()
    # the metadata stage alone gives the same line, as bytes and as a file
    with pytest.raises(UnsafeInput, match=message):
        labeler.label(data, label, layers="metadata")


def test_bytes_stage_checks_with_real_probe(tmp_path: Path) -> None:
    label = AIGCLabel(content_producer=PRODUCER, produce_id="probe-1")
    png = (SAMPLES / "photo.png").read_bytes()
    with pytest.raises(LabelerError, match="needs a key"):
        labeler.label(png, label, layers="watermark,metadata")
    with pytest.raises(LabelerError, match="needs a signer"):
        labeler.label(png, label, layers="metadata,c2pa")
    # metadata only is labeled in memory for any format: an audio format's probe too
    for name in ("photo.png", "speech.flac", "speech.mp3"):
        data = (SAMPLES / name).read_bytes()
        out = labeler.label(data, label, layers="metadata")
        assert isinstance(out, bytes) and out != data


# ---------------------------------------------------------------- 3. docs: verify memory of audio


def test_readme_states_verify_whole_decode_threshold() -> None:
    readme = (_ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = next(p for p in readme.split("\n\n") if p.startswith("Long media stream"))
    flat = " ".join(paragraph.split())
    assert f"{STREAM_ABOVE_BYTES >> 20} MiB of decoded samples" in flat
    assert "decodes shorter audio whole" in flat
    # no longer "labeling and verifying ... whatever the length"
    assert "labeling and verifying" not in flat
    doc = (_ROOT / "docs" / "watermark-audio.md").read_text(encoding="utf-8")
    section = doc.split("## Verify of long audio", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "MiB" in line]
    assert any("| whole |" in r for r in rows) and any("| streamed |" in r for r in rows)
