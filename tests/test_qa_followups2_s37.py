"""QA follow-ups (second pass): Pillow's decompression-bomb warning kept off the command line's stderr
(batch and server workers too), a cut-short live Matroska recording refused by the video visible layer,
and a PNG or WebP whose XMP packet is over the limit refused before the pixel layers run."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import labeler
from labeler import limits
from labeler.errors import CorruptFile, UnsafeInput
from labeler.probe import probe_path
from labeler.record import AIGCLabel
from tests.conftest import PRODUCER, SAMPLES, ffmpeg_exe, seeded_key_file

# The tree under test (this checkout, or another one put first on PYTHONPATH).
_TREE = Path(labeler.__file__).resolve().parents[1]
_BOMB = "DecompressionBombWarning"


def _lowered_limit_env(tmp_path: Path, pixels: int) -> dict[str, str]:
    """An environment whose Python processes (workers included) have Pillow's warning limit at ``pixels``:
    a 480 000-pixel image then warns as a 12000 x 12000 one does at the default limit (89 MP)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(f"import PIL.Image\nPIL.Image.MAX_IMAGE_PIXELS = {pixels}\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), str(_TREE), env.get("PYTHONPATH")) if p)
    return env


def _aigc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labeler.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture()
def mid_images(tmp_path: Path) -> Path:
    """An 800 x 600 PNG and WebP in a folder of their own."""
    folder = tmp_path / "src"
    folder.mkdir()
    pixels = np.random.default_rng(7).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "a.png")
    Image.fromarray(pixels).save(folder / "b.webp", quality=85)
    return folder


def test_cli_label_and_verify_print_no_bomb_warning(tmp_path: Path, mid_images: Path) -> None:
    env = _lowered_limit_env(tmp_path, 300_000)  # 480 000 pixels: warned, under twice the limit
    key = seeded_key_file(tmp_path / "k.key")
    out = tmp_path / "out.webp"
    done = _aigc(env, "label", str(mid_images / "b.webp"), str(out), "--producer", PRODUCER,
                 "--produce-id", "bomb-1", "--layers", "watermark,visible,metadata", "--key-file", str(key))
    assert done.returncode == 0, done.stderr
    assert _BOMB not in done.stderr and "warnings.warn" not in done.stderr
    seen = _aigc(env, "verify", str(out), "--key-file", str(key))
    assert seen.returncode == 0, seen.stderr
    assert "confirmed" in seen.stdout
    assert _BOMB not in seen.stderr and "warnings.warn" not in seen.stderr


def test_batch_workers_print_no_bomb_warning(tmp_path: Path, mid_images: Path) -> None:
    # The pool's workers (forkserver/spawn) do not inherit the command line's warning filters.
    env = _lowered_limit_env(tmp_path, 300_000)
    done = _aigc(env, "batch", "verify", str(mid_images), "--report", str(tmp_path / "r.jsonl"),
                 "--layers", "metadata,visible", "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert _BOMB not in done.stderr and "warnings.warn" not in done.stderr


def test_server_workers_ignore_bomb_warning_only(tmp_path: Path, mid_images: Path) -> None:
    # A server pool worker is spawned (default filters) and runs _warm_up first; other RuntimeWarnings
    # (NumPy's overflows) still show.
    script = ("import warnings\nfrom labeler.server.jobs import _warm_up\n_warm_up()\n"
              "from PIL import Image\nImage.MAX_IMAGE_PIXELS = 300_000\n"
              f"Image.open({str(mid_images / 'a.png')!r}).close()\n"
              "warnings.warn('other runtime warning', RuntimeWarning)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env=_lowered_limit_env(tmp_path, 300_000))
    assert done.returncode == 0, done.stderr
    assert _BOMB not in done.stderr
    assert "other runtime warning" in done.stderr


def test_library_leaves_warning_filters_alone(tmp_path: Path, mid_images: Path) -> None:
    before = list(warnings.filters)
    labeler.label_file(mid_images / "a.png", tmp_path / "o.png", AIGCLabel(content_producer=PRODUCER,
                                                                           produce_id="lib-1"))
    assert warnings.filters == before


def _live_cut(tmp_path: Path, fraction: float) -> Path:
    """samples/clip.mkv remuxed as a live recording (Segment size unknown), cut to ``fraction``."""
    live = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(SAMPLES / "clip.mkv"), "-c", "copy",
                           "-f", "matroska", "pipe:1"], capture_output=True, check=True, timeout=60).stdout
    assert live[4:8] != live[:4]  # an EBML stream
    cut = tmp_path / f"cut{int(fraction * 100)}.mkv"
    cut.write_bytes(live[:int(len(live) * fraction)])
    return cut


@pytest.mark.parametrize("fraction", [1 / 3, 1 / 2])
def test_cut_live_matroska_refused_by_visible_layer(tmp_path: Path, fraction: float) -> None:
    src = _live_cut(tmp_path, fraction)
    out = tmp_path / "out.mkv"
    label = AIGCLabel(content_producer=PRODUCER, produce_id="live-1")
    with pytest.raises(CorruptFile, match=r"^the file is cut short \(ffmpeg: file ended prematurely\)"):
        labeler.label_file(src, out, label, layers="visible")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".aigc")] == []


def test_whole_live_matroska_still_labeled_by_visible_layer(tmp_path: Path) -> None:
    src = _live_cut(tmp_path, 1.0)
    out = tmp_path / "out.mkv"
    result = labeler.label_file(src, out, AIGCLabel(content_producer=PRODUCER, produce_id="live-2"),
                                layers="visible")
    assert "visible" in result.layers and out.stat().st_size > 0


_PACKET = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
           b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
           b'rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:format>'
           + b"x" * (limits.MAX_XMP_PACKET + 1000)
           + b'</dc:format></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def _big_xmp(path: Path) -> Path:
    """A 1600 x 1200 image whose XMP packet is just over the limit, in ``path``'s format."""
    pixels = np.random.default_rng(3).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
    if path.suffix == ".png":
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", _PACKET.decode())
        Image.fromarray(pixels).save(path, pnginfo=info, compress_level=1)
    else:
        Image.fromarray(pixels).save(path, xmp=_PACKET, quality=80)
    return path


@pytest.mark.parametrize(("name", "message"), [
    ("big.png", r"^png xmp chunk at offset 33 is over the xmp packet limit$"),
    ("big.webp", rf"^webp XMP chunk is {len(_PACKET)} bytes, over the {limits.MAX_XMP_PACKET}-byte limit$"),
])
def test_oversized_xmp_refused_before_pixel_layers(tmp_path: Path, name: str, message: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import labeler.media.image as image_reader

    src = _big_xmp(tmp_path / name)

    def no_decode(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the pixels were decoded before the XMP packet was refused")

    monkeypatch.setattr(image_reader, "read_image", no_decode)
    key = seeded_key_file(tmp_path / "k.key").read_bytes()
    label = AIGCLabel(content_producer=PRODUCER, produce_id="xmp-1")
    started = time.perf_counter()
    with pytest.raises(UnsafeInput, match=message):
        labeler.label_file(src, tmp_path / f"o{src.suffix}", label, layers="watermark,visible,metadata",
                           key=key)
    assert time.perf_counter() - started < 2
    # the metadata stage alone gives the same line
    with pytest.raises(UnsafeInput, match=message):
        labeler.label_file(src, tmp_path / f"m{src.suffix}", label, layers="metadata")


def test_xmp_walk_reads_headers_only(tmp_path: Path) -> None:
    # A WebP whose XMP chunk claims more than the file holds is left to the stages (truncation), and
    # one at the limit passes.
    src = _big_xmp(tmp_path / "big.webp")
    data = src.read_bytes()
    at = data.index(b"XMP ")
    size = struct.unpack_from("<I", data, at + 4)[0]
    assert probe_path(src).xmp_chunks == ((at, size),)
    cut = tmp_path / "cut.webp"
    cut.write_bytes(data[:at + 100])
    assert probe_path(cut).xmp_chunks == ()
    small = tmp_path / "small.webp"
    packet = _PACKET.replace(b"x" * (limits.MAX_XMP_PACKET + 1000), b"small")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(small, xmp=packet)
    labeler.label_file(small, tmp_path / "s.webp", AIGCLabel(content_producer=PRODUCER, produce_id="ok-1"))
