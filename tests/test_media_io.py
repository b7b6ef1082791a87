"""Media I/O layer (labeler.media): images, audio and video as arrays, with metadata kept.

Test media are made with real encoders (Pillow, soundfile/libsndfile, ffmpeg) and
results are checked against independent decoders (Pillow, OpenCV, soundfile, ffmpeg run
directly) where the module under test could otherwise agree with itself.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import zlib
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf
from conftest import corpus_path, ffmpeg_exe
from PIL import Image, ImageCms

from labeler.errors import CorruptFile, LabelerError, UnsafeInput, UnsupportedFormat
from labeler.media import (
    ImageData,
    VideoWriter,
    audio_info,
    encode_image,
    image_from_array,
    iter_audio_blocks,
    probe,
    read_audio,
    read_image,
    read_video_frames,
    video_info,
    write_audio,
    write_image,
)
from labeler.media import ffmpeg as ff

RNG = np.random.default_rng(45438)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/x"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def make_exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[271] = "TestCam"  # Make
    exif[274] = orientation
    exif[0x8769] = {0x9003: "2025:09:01 12:00:00"}  # Exif IFD: DateTimeOriginal
    return exif.tobytes()


def exif_tags(data: bytes) -> tuple[dict, dict]:
    exif = Image.Exif()
    exif.load(data)
    return {k: v for k, v in exif.items() if k != 0x8769}, dict(exif.get_ifd(0x8769))


def random_pixels(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return RNG.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


def ffmpeg_children() -> list[str]:
    """ffmpeg processes (running or zombie) that are children of this test process."""
    tasks = Path(f"/proc/{os.getpid()}/task")
    if not tasks.is_dir():
        pytest.skip("needs /proc to list child processes")
    found = []
    for task in tasks.iterdir():
        for pid in (task / "children").read_text().split():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except FileNotFoundError:
                continue
            if "ffmpeg" in stat.split(")")[0]:
                found.append(stat)
    return found


# ============================================================================ images

LAYOUTS = [
    ((29, 41), np.uint8),
    ((29, 41, 2), np.uint8),
    ((29, 41, 3), np.uint8),
    ((29, 41, 4), np.uint8),
    ((29, 41), np.uint16),
    ((29, 41, 2), np.uint16),
    ((29, 41, 3), np.uint16),
    ((29, 41, 4), np.uint16),
]


@pytest.mark.parametrize(("shape", "dtype"), LAYOUTS)
def test_png_round_trip_is_exact_and_standard(tmp_path: Path, shape: tuple[int, ...], dtype: type) -> None:
    pixels = random_pixels(shape, dtype)
    path = tmp_path / "x.png"
    write_image(path, pixels)
    back = read_image(path)
    assert back.format == "png"
    assert back.pixels.dtype == dtype and back.pixels.shape == shape
    np.testing.assert_array_equal(back.pixels, pixels)
    # An independent decoder sees the same samples (OpenCV: BGR order, grey+alpha widened to BGRA).
    other = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert other.dtype == dtype
    if len(shape) == 2:
        np.testing.assert_array_equal(other, pixels)
    elif shape[2] == 2:
        np.testing.assert_array_equal(other[..., [0, 3]], pixels)
    else:
        np.testing.assert_array_equal(other[..., [2, 1, 0, 3][: shape[2]]], pixels)
    assert no_temp_files(tmp_path)


TIFF_LAYOUTS = [layout for layout in LAYOUTS if layout != ((29, 41, 2), np.uint16)]


@pytest.mark.parametrize(("shape", "dtype"), TIFF_LAYOUTS)
def test_tiff_round_trip_is_exact_and_keeps_metadata(tmp_path: Path, shape: tuple, dtype: type) -> None:
    pixels = random_pixels(shape, dtype)
    like = ImageData(pixels, icc=SRGB, exif=make_exif(), xmp=XMP, dpi=(300.0, 150.0))
    path = tmp_path / "x.tif"
    write_image(path, pixels, like=like)
    back = read_image(path)
    np.testing.assert_array_equal(back.pixels, pixels)
    assert back.pixels.dtype == dtype
    assert back.icc == (SRGB if len(shape) == 3 and shape[2] >= 3 else None)  # an RGB profile only on colour
    assert exif_tags(back.exif) == exif_tags(like.exif)
    assert back.xmp == XMP
    assert back.dpi == (300.0, 150.0)
    if dtype == np.uint16 and len(shape) == 3:
        other = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # libtiff reads our 16-bit writer's output
        np.testing.assert_array_equal(other[..., [2, 1, 0, 3][: shape[2]]], pixels)


def test_16bit_grey_alpha_tiff_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat):
        write_image(tmp_path / "x.tif", random_pixels((4, 4, 2), np.uint16))
    assert not list(tmp_path.iterdir())


def test_jpeg_icc_and_exif_survive_read_and_write(tmp_path: Path) -> None:
    exif = make_exif()
    src = tmp_path / "src.jpg"
    Image.fromarray(random_pixels((32, 48, 3), np.uint8)).save(
        src, quality=90, icc_profile=SRGB, exif=exif, xmp=XMP, dpi=(200, 200)
    )
    img = read_image(src)
    assert img.format == "jpeg" and img.mode == "RGB"
    assert img.icc == SRGB
    assert img.exif == exif  # Pillow's convention: b"Exif\0\0" + TIFF structure, byte for byte
    assert img.xmp == XMP
    assert img.dpi == (200.0, 200.0)

    out = tmp_path / "out.jpg"
    write_image(out, img.pixels, like=img)
    again = read_image(out)
    assert (again.icc, again.exif, again.xmp, again.dpi) == (img.icc, img.exif, img.xmp, img.dpi)
    with Image.open(out) as im:  # an independent reader agrees
        assert im.info["icc_profile"] == SRGB
        assert im.getexif()[271] == "TestCam"

    for fmt in ("png", "webp", "tiff"):
        path = tmp_path / f"out.{fmt}"
        write_image(path, img)  # an ImageData carries its own metadata
        other = read_image(path)
        assert other.icc == SRGB, fmt
        assert other.xmp == XMP, fmt
        assert exif_tags(other.exif) == exif_tags(exif), fmt
        if fmt != "tiff":
            assert other.exif == exif, fmt  # PNG eXIf / WebP EXIF chunk hold the same TIFF structure


def test_orientation_is_not_applied(tmp_path: Path) -> None:
    pixels = random_pixels((20, 30, 3), np.uint8)
    like = ImageData(pixels, exif=make_exif(orientation=6))
    for name in ("o.png", "o.tif", "o.jpg"):
        write_image(tmp_path / name, pixels, like=like)
        back = read_image(tmp_path / name)
        assert back.pixels.shape == (20, 30, 3), name  # stored, not displayed (30x20), orientation
        assert exif_tags(back.exif)[0][274] == 6, name
        if not name.endswith(".jpg"):
            np.testing.assert_array_equal(back.pixels, pixels)
    # 16-bit TIFF goes through OpenCV, which turns pixels too; all eight orientations come back stored.
    deep = random_pixels((5, 7, 3), np.uint16)
    for orientation in range(1, 9):
        data = encode_image(deep, "tiff", like=ImageData(deep, exif=make_exif(orientation)))
        np.testing.assert_array_equal(read_image(data).pixels, deep)


def test_palette_bilevel_and_cmyk_conversions() -> None:
    pal = Image.new("P", (6, 4))
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    pal.putdata([0, 1, 2] * 8)
    buf = io.BytesIO()
    pal.save(buf, "PNG")
    img = read_image(buf.getvalue())
    assert img.mode == "P" and img.pixels.shape == (4, 6, 3)
    assert img.pixels[0, :3].tolist() == [[0, 0, 0], [255, 0, 0], [0, 255, 0]]

    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=1)
    img = read_image(buf.getvalue())
    assert img.pixels.shape == (4, 6, 4)
    assert img.pixels[0, :3, 3].tolist() == [255, 0, 255]

    buf = io.BytesIO()
    Image.new("1", (5, 3), 1).save(buf, "PNG")
    img = read_image(buf.getvalue())
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == (3, 5) and set(img.pixels.ravel()) == {255}

    buf = io.BytesIO()
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(buf, "JPEG", quality=95)
    img = read_image(buf.getvalue())
    assert img.mode == "CMYK" and img.pixels.shape == (8, 8, 3) and img.icc is None
    assert img.pixels[4, 4].tolist() == pytest.approx([255, 0, 0], abs=3)


def test_gif_keeps_palette_colours_and_binary_alpha(tmp_path: Path) -> None:
    colours = RNG.integers(0, 256, (12, 3), dtype=np.uint8)
    rgba = np.zeros((16, 24, 4), np.uint8)
    rgba[..., :3] = colours[RNG.integers(0, 12, (16, 24))]
    rgba[..., 3] = 255
    rgba[:4, :4, 3] = 0
    write_image(tmp_path / "x.gif", rgba)
    back = read_image(tmp_path / "x.gif")
    assert back.pixels.shape == rgba.shape
    np.testing.assert_array_equal(back.pixels[..., 3], rgba[..., 3])
    opaque = rgba[..., 3] == 255
    np.testing.assert_array_equal(back.pixels[opaque], rgba[opaque])


def test_image_from_array_checks_layouts() -> None:
    like = ImageData(np.zeros((1, 1, 3), np.uint8), format="png", icc=SRGB, dpi=(72.0, 72.0))
    img = image_from_array(np.zeros((3, 4, 1), np.uint16), like=like)
    assert img.pixels.shape == (3, 4) and img.icc == SRGB and img.format == "png"
    for bad in (np.zeros((3, 4), np.float32), np.zeros((3, 4, 5), np.uint8), np.zeros((0, 4), np.uint8)):
        with pytest.raises(ValueError):
            image_from_array(bad)
    assert image_from_array(np.zeros((2, 2, 3), np.uint8)).pixels.flags.c_contiguous


def test_write_refuses_what_the_format_cannot_hold_and_leaves_target(tmp_path: Path) -> None:
    target = tmp_path / "keep.jpg"
    target.write_bytes(b"old")
    with pytest.raises(UnsupportedFormat):
        write_image(target, np.zeros((4, 4, 4), np.uint8))  # alpha in JPEG
    with pytest.raises(UnsupportedFormat):
        write_image(target, np.zeros((4, 4, 3), np.uint16))  # 16 bits in JPEG
    with pytest.raises(UnsupportedFormat):
        write_image(tmp_path / "x.bmp", np.zeros((4, 4, 3), np.uint8))
    assert target.read_bytes() == b"old"
    assert no_temp_files(tmp_path)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def test_bad_image_files_raise_labeler_errors(tmp_path: Path) -> None:
    good = io.BytesIO()
    Image.fromarray(random_pixels((64, 64, 3), np.uint8)).save(good, "PNG")
    cases = {
        "empty.png": (b"", CorruptFile),
        "truncated.png": (good.getvalue()[: len(good.getvalue()) // 2], CorruptFile),
        "garbage.png": (np.random.default_rng(12).bytes(3000), UnsupportedFormat),
        "header-only.jpg": (b"\xff\xd8\xff\xe0" + bytes(40), CorruptFile),
    }
    for name, (data, error) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(error) as info:
            read_image(tmp_path / name)
        assert "\n" not in str(info.value), name


def test_decompression_bomb_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(bytes(1000))) + png_chunk(b"IEND", b"")
    )
    with pytest.raises(UnsafeInput):
        read_image(bomb)  # 10^10 pixels: 30 GB if it were decoded
    # With Pillow's own check switched off, this module's bound still holds.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(UnsafeInput, match="over the limit"):
        read_image(bomb)


def test_corpus_jpeg_metadata_round_trip(tmp_path: Path) -> None:
    src = corpus_path("provenance", "cloud.jpg")
    img = read_image(src)
    assert img.pixels.shape == (375, 375, 3)
    assert img.icc and img.exif and img.xmp
    write_image(tmp_path / "cloud.jpg", img)
    again = read_image(tmp_path / "cloud.jpg")
    assert (again.icc, again.exif, again.xmp, again.dpi) == (img.icc, img.exif, img.xmp, img.dpi)
    assert np.abs(again.pixels.astype(int) - img.pixels).mean() < 3  # quality 95 re-encode


# ============================================================================ audio


def test_wav_and_flac_round_trips_are_sample_exact(tmp_path: Path) -> None:
    ints = RNG.integers(-32768, 32768, (5000, 2), dtype=np.int16)
    ints[:4, 0] = [-32768, 32767, 0, -1]
    for name in ("a.wav", "a.flac"):
        write_audio(tmp_path / name, ints, 22050)
        data = read_audio(tmp_path / name)
        assert data.sample_rate == 22050 and data.samples.dtype == np.float32
        assert data.samples.shape == (5000, 2) and data.subtype == "PCM_16"
        np.testing.assert_array_equal(data.samples * 32768, ints)
        # What was read writes back to the same integers.
        write_audio(tmp_path / ("b" + name), data.samples, data.sample_rate)
        np.testing.assert_array_equal(sf.read(tmp_path / ("b" + name), dtype="int16")[0], ints)
    ints24 = RNG.integers(-(2**23), 2**23, (3000, 1), dtype=np.int32)
    write_audio(tmp_path / "c.flac", ints24 << 8, 48000, subtype="PCM_24")
    data = read_audio(tmp_path / "c.flac")
    assert data.subtype == "PCM_24" and data.channels == 1
    np.testing.assert_array_equal((data.samples.astype(np.float64) * 2**23).astype(np.int64), ints24)
    assert no_temp_files(tmp_path)


def sine(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 1000 * t + 1)], 1)


@pytest.mark.parametrize(("name", "slack"), [("a.mp3", 1152), ("a.m4a", 2048)])
def test_lossy_round_trip_keeps_length_and_signal(tmp_path: Path, name: str, slack: int) -> None:
    x = sine(1.0, 44100).astype(np.float32)
    write_audio(tmp_path / name, x, 44100)
    info = audio_info(tmp_path / name)
    assert (info.decoder, info.sample_rate, info.channels) == ("ffmpeg", 44100, 2)
    data = read_audio(tmp_path / name)
    assert abs(data.frames - len(x)) <= slack  # within one codec frame
    n = min(data.frames, len(x))
    for ch in range(2):
        assert np.corrcoef(data.samples[:n, ch], x[:n, ch])[0, 1] > 0.9
    blocks = list(iter_audio_blocks(tmp_path / name, 4096))
    assert all(b.shape[1] == 2 for b in blocks) and all(len(b) == 4096 for b in blocks[:-1])
    np.testing.assert_array_equal(np.concatenate(blocks), data.samples)


def test_audio_blocks_stream_and_stop_cleanly(tmp_path: Path) -> None:
    x = sine(2.0, 8000)
    write_audio(tmp_path / "a.wav", x, 8000)
    blocks = list(iter_audio_blocks(tmp_path / "a.wav", 3000))
    assert [len(b) for b in blocks] == [3000] * 5 + [1000]
    write_audio(tmp_path / "a.mp3", x, 8000, bitrate="64k")
    blocks = iter_audio_blocks(tmp_path / "a.mp3", 256)
    first = next(blocks)
    assert first.shape == (256, 2) and first.flags.writeable
    blocks.close()  # abandons the decode: ffmpeg must be killed and reaped
    assert ffmpeg_children() == []


def test_write_audio_options_and_clipping(tmp_path: Path) -> None:
    write_audio(tmp_path / "loud.wav", np.array([1.5, -2.0, 0.25, np.nan]), 8000, subtype="FLOAT")
    data = read_audio(tmp_path / "loud.wav")
    assert data.samples[:, 0].tolist() == [1.0, -1.0, 0.25, 0.0]
    with pytest.raises(UnsupportedFormat):
        write_audio(tmp_path / "x.aiff", np.zeros(10), 8000)
    with pytest.raises(UnsupportedFormat):
        write_audio(tmp_path / "x.flac", np.zeros(10), 8000, subtype="FLOAT")
    with pytest.raises(ValueError):
        write_audio(tmp_path / "x.wav", np.zeros(10), 8000, bitrate="128k")
    with pytest.raises(LabelerError, match="ffmpeg"):
        write_audio(tmp_path / "x.mp3", np.zeros(1000), 8000, bitrate="lots")
    assert not (tmp_path / "x.mp3").exists() and no_temp_files(tmp_path)


def test_bad_audio_files_raise_labeler_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    junk = np.random.default_rng(13).bytes(2000)
    (tmp_path / "garbage.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + junk)
    (tmp_path / "garbage.mp3").write_bytes(np.random.default_rng(14).bytes(3000))
    for name in ("empty.wav", "garbage.wav", "garbage.mp3"):
        with pytest.raises(LabelerError) as info:
            read_audio(tmp_path / name)
        assert "\n" not in str(info.value)


HOSTILE = ["riff_bomb_1000.wav", "sample3.invalid.wav", "id3v23_compression_underflow.mp3"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_corpus_audio_fails_cleanly(name: str) -> None:
    path = corpus_path("provenance", name)
    try:
        data = read_audio(path)
    except LabelerError:
        return
    assert data.samples.dtype == np.float32 and data.samples.ndim == 2 and np.isfinite(data.samples).all()


def test_corpus_speech_info() -> None:
    info = audio_info(corpus_path("audio", "speech-en.wav"))
    assert (info.sample_rate, info.channels, info.decoder) == (22050, 1, "soundfile")
    assert info.frames == sf.info(str(corpus_path("audio", "speech-en.wav"))).frames
    assert info.duration == pytest.approx(info.frames / 22050) and 20 < info.duration < 35


# ============================================================================ video


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s, 64x48, 25 fps H.264 with a 440 Hz AAC track and a title."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    subprocess.run(
        [
            ffmpeg_exe(), "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
            "-metadata", "title=Media IO test", str(path),
        ],
        check=True,
    )
    return path


def packet_hashes(path: Path, stream: str) -> list[str]:
    """Per-packet MD5 of one stream without decoding (ffmpeg framemd5 on a stream copy)."""
    out = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", stream, "-c", "copy", "-f", "framemd5", "-"],
        capture_output=True, text=True, check=True,
    ).stdout
    return [line.split(",")[-1].strip() for line in out.splitlines() if not line.startswith("#")]


def test_video_info_and_frames(clip: Path) -> None:
    info = video_info(clip)
    assert (info.width, info.height, info.fps, info.frame_rate) == (64, 48, 25.0, "25")
    assert info.codec == "h264" and info.audio_streams == 1 and info.duration == pytest.approx(1.0, abs=0.05)
    frames = list(read_video_frames(clip))
    assert len(frames) == 25
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    # The same pixels as ffmpeg's own rgb24 decode.
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(clip), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout
    np.testing.assert_array_equal(np.stack(frames), np.frombuffer(raw, np.uint8).reshape(25, 48, 64, 3))
    grey = next(read_video_frames(clip, pix_fmt="gray16le"))
    assert grey.shape == (48, 64) and grey.dtype == np.uint16


def test_video_writer_copies_audio_and_metadata(clip: Path, tmp_path: Path) -> None:
    frames = list(read_video_frames(clip))
    out = tmp_path / "out.mp4"
    rate = video_info(clip).frame_rate
    with VideoWriter(out, 64, 48, rate, audio_from=clip, metadata={"comment": "x"}) as w:
        for frame in frames:
            w.write(frame)
    assert w.frames == 25 and no_temp_files(tmp_path)
    info = probe(out)
    assert [s.kind for s in info.streams] == ["video", "audio"]
    video = info.video[0]
    assert (video.width, video.height, video.fps, video.codec) == (64, 48, 25.0, "h264")
    assert info.metadata["title"] == "Media IO test" and info.metadata["comment"] == "x"
    assert packet_hashes(out, "0:a") == packet_hashes(clip, "0:a")  # audio copied, not re-encoded
    back = np.stack(list(read_video_frames(out))).astype(float)
    psnr = 10 * np.log10(255**2 / np.mean((back - np.stack(frames)) ** 2))
    assert psnr > 30


def test_video_writer_rotation_tag(clip: Path, tmp_path: Path) -> None:
    frame = next(read_video_frames(clip))
    for exe in dict.fromkeys([ff.ffmpeg_exe(), imageio_ffmpeg.get_ffmpeg_exe()]):
        # Both the ffmpeg on PATH and the bundled one (>= 6.0 and older take different routes).
        out = tmp_path / f"rot{ff.ffmpeg_version(exe)[0]}.mp4"
        writer = VideoWriter(out, 64, 48, 25, rotation=90)
        original = ff.ffmpeg_exe
        try:
            ff.ffmpeg_exe = lambda exe=exe: exe  # type: ignore[assignment]
            with writer as w:
                for _ in range(3):
                    w.write(frame)
        finally:
            ff.ffmpeg_exe = original  # type: ignore[assignment]
        info = video_info(out)
        assert info.rotation == 90.0 and (info.width, info.height) == (64, 48)
        assert next(read_video_frames(out)).shape == (48, 64, 3)  # stored orientation
    assert no_temp_files(tmp_path)


def test_video_writer_failures_leave_nothing_behind(clip: Path, tmp_path: Path) -> None:
    frame = next(read_video_frames(clip))
    target = tmp_path / "t.mp4"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), VideoWriter(target, 64, 48, 25) as w:
        w.write(frame)
        raise RuntimeError("caller failed")
    with pytest.raises(ValueError), VideoWriter(target, 64, 48, 25) as w:
        w.write(frame[:, :32])
    with pytest.raises(LabelerError, match="encoder"), VideoWriter(target, 64, 48, 25, codec="no-such") as w:
        for _ in range(50):
            w.write(frame)
    w = VideoWriter(target, 64, 48, 25).open()
    w.write(frame)
    w._proc.kill()  # ffmpeg dies mid-stream
    with pytest.raises(LabelerError, match="signal|stopped|failed"):
        for _ in range(200):
            w.write(frame)
        w.close()
    with pytest.raises(LabelerError, match="no video frames"), VideoWriter(target, 64, 48, 25):
        pass
    assert target.read_bytes() == b"old"
    assert no_temp_files(tmp_path)
    assert ffmpeg_children() == []


def test_reader_stops_ffmpeg_when_abandoned(clip: Path) -> None:
    frames = read_video_frames(clip)
    next(frames)
    frames.close()
    for index, _ in enumerate(read_video_frames(clip)):
        if index == 2:
            break
    assert ffmpeg_children() == []


def test_corrupt_video_raises_corrupt_file(clip: Path, tmp_path: Path) -> None:
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(15).bytes(4000))
    data = clip.read_bytes()
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])  # moov is at the end
    for name in ("noise.mp4", "half.mp4"):
        with pytest.raises(CorruptFile) as info:
            read_video_frames(tmp_path / name)
        assert "\n" not in str(info.value)
    (tmp_path / "audio.wav").write_bytes(b"")
    write_audio(tmp_path / "audio.wav", np.zeros(800), 8000)
    with pytest.raises(UnsupportedFormat, match="no video"):
        video_info(tmp_path / "audio.wav")


def test_corpus_720p_info_and_first_frames() -> None:
    path = corpus_path("video", "pan-720p.mp4")
    info = video_info(path)
    assert (info.width, info.height, info.frame_rate, info.codec) == (1280, 720, "25", "h264")
    assert info.duration == pytest.approx(6.0, abs=0.05) and info.audio_streams == 1
    assert info.media.audio[0].sample_rate == 44100 and info.media.audio[0].channels == 2
    first = []
    for frame in read_video_frames(path):
        first.append(frame)
        if len(first) == 3:
            break
    assert [f.shape for f in first] == [(720, 1280, 3)] * 3
    assert ffmpeg_children() == []


# ============================================================================ ffmpeg banner parsing

BANNER = """\
[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55] stream 0, timescale not set
Input #0, matroska,webm, from 'file:/x/ch.mkv':
  Metadata:
    title           : Top
                    : second line
    ENCODER         : Lavf59.27.100
  Duration: 00:01:02.50, start: 0.000000, bitrate: 202 kb/s
  Chapters:
    Chapter #0:0: start 0.000000, end 0.500000
      Metadata:
        title           : Intro chapter
  Program 1
    Metadata:
      service_name    : Svc
  Stream #0:0[0x1](eng): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709/bt709/bt709, \
progressive), 720x1280 [SAR 1:1 DAR 9:16], 2626 kb/s, 29.97 fps, 29.97 tbr, 1k tbn (default)
    Metadata:
      handler_name    : VideoHandler
    Side data:
      displaymatrix: rotation of -90.00 degrees
  Stream #0:1: Audio: aac (LC), 48000 Hz, 5.1(side), fltp, 314 kb/s
  Stream #0:2: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 600x600, 90k tbr, \
90k tbn (attached pic)
  Stream #0:3: Audio: pcm_s24le, 96000 Hz, 3 channels, s32 (24 bit), 6912 kb/s
At least one output file must be specified
"""


def test_banner_parser_reads_streams_and_skips_chapter_tags() -> None:
    info = ff.parse_banner(BANNER)
    assert info is not None
    assert info.container == "matroska,webm" and info.duration == 62.5 and info.bitrate == 202_000
    assert info.metadata == {"title": "Top\nsecond line", "ENCODER": "Lavf59.27.100"}
    video, audio, cover, pcm = info.streams
    assert (video.width, video.height, video.frame_rate) == (720, 1280, "30000/1001")
    assert video.pix_fmt == "yuv420p"
    assert (video.color_space, video.color_range, video.rotation) == ("bt709", "tv", -90.0)
    assert (video.language, video.default, video.bitrate) == ("eng", True, 2_626_000)
    assert video.metadata == {"handler_name": "VideoHandler"}
    assert (audio.sample_rate, audio.channels, audio.sample_fmt) == (48000, 6, "fltp")
    assert cover.attached_pic and info.video == (video,)
    assert (pcm.channels, pcm.sample_fmt, pcm.codec) == (3, "s32", "pcm_s24le")
    assert info.audio == (audio, pcm)
    assert ff.parse_banner("file:/x: Invalid data found when processing input\n") is None


def test_error_line_picks_the_reason() -> None:
    stderr = (
        "[in#0 @ 0x5625] Format mov,mp4,m4a,3gp,3g2,mj2 detected only with low score of 1, "
        "misdetection possible!\n"
        "[in#0 @ 0x5625] moov atom not found\n"
        "[in#0 @ 0x5625] Error opening input: Invalid data found when processing input\n"
        "Error opening input file file:/tmp/x.mp4.\n"
        "Error opening input files: Invalid data found when processing input\n"
    )
    assert ff.error_line(stderr, ["file:/tmp/x.mp4"]) == "moov atom not found"
    plain = "file:/tmp/x.mp4: Invalid data found when processing input\n"
    assert ff.error_line(plain, ["file:/tmp/x.mp4"]) == "invalid data found when processing input"
    assert ff.channel_count("7.1.4") == 12 and ff.channel_count("quad(side)") == 4
    assert ff.rate_text(23.976) == "24000/1001" and ff.rate_text("25") == "25"


def test_frame_pipes_are_widened_where_the_system_allows(tmp_path: Path) -> None:
    """widen_pipe asks Linux for a 1 MiB pipe (fewer wake-ups per raw frame); anything else gets 0."""
    import sys

    proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        granted = ff.widen_pipe(proc.stdout)
        if sys.platform.startswith("linux"):
            assert granted >= ff.PIPE_BYTES or granted == 0  # 0: pipe-max-size set below 1 MiB
            assert ff.widen_pipe(proc.stdin, 1 << 16) >= 1 << 16
    finally:
        ff.stop(proc, kill=True)
    with (tmp_path / "f").open("wb") as handle:
        assert ff.widen_pipe(handle) == 0  # not a pipe: left alone
    assert ff.widen_pipe(io.BytesIO()) == 0  # no descriptor


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_full_disk_while_encoding_audio_is_one_oserror(tmp_path, monkeypatch, capfd, fmt) -> None:
    """soundfile writes through a C callback, where a raised OSError is only printed (a traceback on
    stderr) and soundfile then fails an assertion ("internal error"); the disk's error comes out instead,
    as for any other output, and nothing is left behind."""
    import contextlib
    import errno

    import labeler.media.audio_write as audio_mod

    class Full(io.BytesIO):
        def write(self, data):  # noqa: ANN001, ANN202 - a file
            if self.tell() + len(data) > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    @contextlib.contextmanager
    def full_disk(path):  # noqa: ANN001, ANN202 - atomic_output's shape
        yield Full()

    monkeypatch.setattr(audio_mod, "atomic_output", full_disk)
    samples = np.random.default_rng(0).normal(0, 0.1, (44100, 2)).astype(np.float32)
    with pytest.raises(OSError) as caught:
        audio_mod.write_audio(tmp_path / f"x.{fmt}", samples, 44100)
    assert caught.value.errno == errno.ENOSPC
    assert "Exception ignored" not in capfd.readouterr().err


@pytest.mark.parametrize(("subsampling", "progressive"), [(0, True), (1, False), (2, True)])
def test_jpeg_rewrite_keeps_subsampling_and_progressive(subsampling, progressive) -> None:
    """A pixel layer re-encodes a JPEG: a 4:4:4 (or 4:2:2) source is not turned 4:2:0, a progressive one
    stays progressive (Pillow's defaults are 4:2:0 baseline)."""
    from PIL import JpegImagePlugin

    from labeler.media.image import read_image
    from labeler.media.image_write import encode_image

    rng = np.random.default_rng(3)
    src = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(
        src, "JPEG", quality=90, subsampling=subsampling, progressive=progressive)
    image = read_image(src.getvalue())
    assert (image.subsampling, image.progressive) == (subsampling, progressive)
    with Image.open(io.BytesIO(encode_image(image.pixels, "jpeg", like=image))) as out:
        assert JpegImagePlugin.get_sampling(out) == subsampling
        assert bool(out.info.get("progressive")) == progressive


def test_cmyk_jpeg_under_a_pixel_layer_is_reported(tmp_path) -> None:
    from labeler import AIGCLabel, label_file

    src = tmp_path / "cmyk.jpg"
    rng = np.random.default_rng(4)
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).convert("CMYK").save(src, "JPEG")
    rec = AIGCLabel("001191110102MACQD9K64010000", "cmyk")
    res = label_file(src, tmp_path / "o.jpg", rec, layers="visible")
    assert any("CMYK image written as RGB" in w for w in res.warnings), res.warnings
    with Image.open(tmp_path / "o.jpg") as im:
        assert im.mode == "RGB"
    # a CMYK JPEG that carries a profile the conversion cannot use (an RGB one) is not said to have none
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    odd = tmp_path / "cmyk-rgb-profile.jpg"
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).convert("CMYK").save(
        odd, "JPEG", icc_profile=srgb)
    res = label_file(odd, tmp_path / "o2.jpg", rec, layers="visible")
    note = next(w for w in res.warnings if "CMYK image written as RGB" in w)
    assert "no CMYK ICC profile that could be used" in note and "(no ICC profile)" not in note
