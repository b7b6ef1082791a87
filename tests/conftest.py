"""Shared fixtures: paths to samples/ and ../shared/corpus, the CLI runner, decoders for identity checks."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labeler.media.ffmpeg import ffmpeg_exe as _project_ffmpeg_exe

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
CORPUS = ROOT.parent / "shared" / "corpus"
PRODUCER = "001191110102MACQD9K64010000"


def corpus_path(*parts: str) -> Path:
    """A path inside ../shared/corpus; skips the test when the corpus is absent."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus file {path} not available")
    return path


def run_cli(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``aigc ARGS`` in a subprocess (real exit codes, real stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "labeler.cli", *args], capture_output=True, text=True, timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"aigc {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def seeded_key(seed: str) -> bytes:
    """A 32-byte watermark key fixed by ``seed``: different per test, the same on every run.

    A test that reads a mark back after a lossy step must not depend on a fresh random key: on a
    small picture a few keys in a thousand land in the code's tail (measured 2026-12-06: a 320 x 240
    AVIF failed once in CI with ``aigc keygen``'s key), and CI would fail by chance.
    """
    return hashlib.sha256(b"aigc-test-key:" + seed.encode()).digest()


def seeded_key_file(path: Path, seed: str | None = None) -> Path:
    """Write :func:`seeded_key` (seeded by ``seed``, else the file name) as an ``aigc keygen`` key file."""
    from labeler.watermark.keyfile import write_key_file

    write_key_file(path, seeded_key(seed if seed is not None else path.name))
    return path


def tagged_photo(path: Path, orientation: int, size: tuple[int, int]) -> Path:
    """samples/photo.jpg resized to ``size`` (w, h) as a JPEG (q92) whose EXIF Orientation tag is
    ``orientation``: a phone photo stored sideways, as viewers turn it."""
    from PIL import Image

    exif = Image.Exif()
    exif[274] = orientation
    with Image.open(SAMPLES / "photo.jpg") as im:
        im.convert("RGB").resize(size).save(path, "JPEG", quality=92, exif=exif)
    return path


def ffmpeg_exe() -> str:
    """The ffmpeg the project itself runs ($AIGC_FFMPEG, else PATH, else the imageio-ffmpeg wheel's)."""
    return _project_ffmpeg_exe()


def run_ffmpeg(*args: str | os.PathLike[str]) -> Path:
    """Run the project's ffmpeg quietly on ``args`` (output overwritten); raise on failure.

    Returns the last argument as a path: the output, when ``args`` end with it.
    """
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *map(str, args)],
                   check=True, capture_output=True, timeout=120)
    return Path(args[-1])


@functools.lru_cache(maxsize=4)
def _encoder_names(exe: str) -> frozenset[str]:
    out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True,
                         timeout=60).stdout
    return frozenset(line.split()[1] for line in out.splitlines() if len(line.split()) > 1)


def has_encoder(name: str) -> bool:
    """Whether the project's ffmpeg has the encoder ``name`` (``libopus``, ``libvorbis``...)."""
    return name in _encoder_names(ffmpeg_exe())


# A log context such as "[aist#0:0/pcm_s16le @ 0x55f1b5bc25c0]" names the object's memory address,
# which differs in every process: what a message says is the rest of the line.
_ADDRESS = re.compile(r" @ 0x[0-9a-fA-F]+")


def tool_messages(stderr: str, *paths: str | os.PathLike[str]) -> list[str]:
    """The lines a tool printed, comparable across processes and machines.

    Memory addresses are removed and each of ``paths`` (as given, absolute, or as a ``file:`` URL)
    becomes ``FILE``, so two runs on two files compare by what the tool said about them.
    """
    text = _ADDRESS.sub("", stderr)
    for path in paths:
        absolute = os.path.abspath(os.fspath(path))
        for form in (f"file:{absolute}", absolute, os.fspath(path)):
            text = text.replace(form, "FILE")
    return [line.rstrip() for line in text.strip().splitlines()]


def decoded_digest(path: Path) -> str:
    """Digest of the decoded media: pixels for images (Pillow), every decoded stream otherwise (ffmpeg)."""
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff"):
        from PIL import Image

        with Image.open(path) as im:
            frames = []
            for index in range(getattr(im, "n_frames", 1)):
                im.seek(index)
                frames.append(np.asarray(im.convert("RGBA") if im.mode == "P" else im).tobytes())
        return hashlib.sha256(b"".join(frames)).hexdigest()
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0", "-f", "framemd5", "-"],
        capture_output=True,
        check=True,
    )
    lines = [ln for ln in proc.stdout.splitlines() if not ln.startswith(b"#")]
    return hashlib.sha256(b"\n".join(lines)).hexdigest()


def ffmpeg_warnings(path: Path) -> list[str]:
    """What ffmpeg says at warning level or above while decoding the whole file (see :func:`tool_messages`).

    A non-zero exit is the last line, so a file that fails to decode never equals one that decodes.
    """
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "warning", "-nostdin", "-i", str(path), "-map", "0", "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    return tool_messages(proc.stderr, path) + ([] if proc.returncode == 0 else [f"(exit {proc.returncode})"])


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def aigc_serve(tmp_path_factory: pytest.TempPathFactory, *args: str):
    """Run `aigc serve ARGS` on a free loopback port; yield its base URL; stop it; check its temp folder.

    A generator for module fixtures (``yield from aigc_serve(...)``).
    """
    import json
    import time
    import urllib.request

    port = free_port()
    tmp = tmp_path_factory.mktemp("serve-tmp")
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    env = {**os.environ, "TMPDIR": str(tmp)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "labeler.cli", "serve", "--port", str(port), *args],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v1/health", timeout=2) as response:
                    json.load(response)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"aigc serve did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert list(tmp.iterdir()) == [], "aigc serve left files in its temporary folder"


def make_heic(path: Path, width: int = 256, height: int = 192, source: Path | None = None) -> Path:
    """Write a real HEIC still (one x265 intra frame in an ISO/IEC 23008-12 file) to ``path``: a test
    pattern, or the picture ``source`` (cropped to even sides, CRF 16).

    ffmpeg writes no HEIF, so the frame is encoded to a one-sample MP4 and its ``hvcC`` configuration
    and sample are moved into the HEIF item boxes (``hvc1`` item, ``hvcC`` and ``ispe`` properties),
    as libheif lays out a camera's HEIC.
    """
    import struct

    from PIL import Image

    from labeler.metadata.bmff_boxes import Box, Budget, child_boxes, load_moov, moov_root, top_level

    mp4 = path.with_suffix(".tmp.mp4")
    picture = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}"]
    if source is not None:
        with Image.open(source) as im:
            width, height = im.width // 2 * 2, im.height // 2 * 2
        picture = ["-i", str(source), "-vf", f"crop={width}:{height}:0:0"]
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *picture, "-frames:v", "1", "-c:v", "libx265",
                    "-x265-params", "log-level=none:crf=16", "-tag:v", "hvc1", "-pix_fmt", "yuv420p",
                    str(mp4)], check=True, capture_output=True)
    with open(mp4, "rb") as f:
        budget = Budget()
        layout = top_level(f, budget)
        _, moov = load_moov(f, layout)
        node = moov_root(moov)
        for kind in (b"trak", b"mdia", b"minf", b"stbl"):
            node = next(b for b in child_boxes(moov, node, budget)[0] if b.type == kind)
        tables = {b.type: b for b in child_boxes(moov, node, budget)[0]}
        stsd = tables[b"stsd"]
        entry_size = struct.unpack_from(">I", moov, stsd.content + 8)[0]
        entry = Box(b"hvc1", stsd.content + 8, 8, stsd.content + 8 + entry_size)
        hvcc = next(b for b in child_boxes(moov, entry, budget, entry.content + 78)[0] if b.type == b"hvcC")
        stsz = tables[b"stsz"].content  # version/flags, sample_size (0: a table of sizes follows), count
        size = struct.unpack_from(">I", moov, stsz + 4)[0] or struct.unpack_from(">I", moov, stsz + 12)[0]
        offset = struct.unpack_from(">I", moov, tables[b"stco"].content + 8)[0]
        f.seek(offset)
        sample = f.read(size)
    mp4.unlink()

    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I4s", 8 + len(body), kind) + body

    def full(kind: bytes, body: bytes, version: int = 0) -> bytes:
        return box(kind, struct.pack(">B3x", version) + body)

    ftyp = box(b"ftyp", b"heic" + bytes(4) + b"mif1heic")
    ispe = full(b"ispe", struct.pack(">II", width, height))
    iprp = box(b"iprp", box(b"ipco", bytes(moov[hvcc.start:hvcc.end]) + ispe)
               + full(b"ipma", struct.pack(">IHBBB", 1, 1, 2, 0x81, 0x02)))
    head = (full(b"hdlr", bytes(4) + b"pict" + bytes(12) + b"\x00") + full(b"pitm", struct.pack(">H", 1))
            + full(b"iinf", struct.pack(">H", 1) + full(b"infe", struct.pack(">HH", 1, 0) + b"hvc1\x00", 2)))

    def meta(at: int) -> bytes:
        iloc = full(b"iloc", struct.pack(">HH", 0x4400, 1) + struct.pack(">HHHII", 1, 0, 1, at, len(sample)))
        return full(b"meta", head + iloc + iprp)

    start = len(ftyp) + len(meta(0)) + 8
    path.write_bytes(ftyp + meta(start) + box(b"mdat", sample))
    return path


def label_json(produce_id: str) -> str:
    """A compliant label value (the seven Appendix E keys), ``produce_id`` its ProduceID and PropagateID."""
    import json

    return json.dumps({"Label": "1", "ContentProducer": "x", "ProduceID": produce_id, "ReservedCode1": "",
                       "ContentPropagator": "x", "PropagateID": produce_id, "ReservedCode2": ""},
                      separators=(",", ":"))


def assert_carrier_fails_cleanly(carrier, base: bytes, seed: int, rounds: int = 300,
                                 shortest: int = 4) -> None:
    """Cut and bit-flipped copies of ``base``: the carrier's read and write raise a LabelerError or work,
    never another exception (a hostile or damaged file is a one-line error)."""
    import contextlib
    import io

    from labeler.errors import LabelerError

    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        buf = bytearray(base[: int(rng.integers(shortest, len(base) + 1))])
        buf[int(rng.integers(0, len(buf)))] ^= 1 << int(rng.integers(0, 8))
        with contextlib.suppress(LabelerError):
            carrier.read(io.BytesIO(bytes(buf)))
        with contextlib.suppress(LabelerError):
            carrier.write(io.BytesIO(bytes(buf)), io.BytesIO(), label_json("mutant"))


@pytest.fixture(params=["system", "bundled"])
def which_ffmpeg(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the ffmpeg on PATH, then with the imageio-ffmpeg wheel's (skipped when absent).

    On a machine without a system ffmpeg both runs use the wheel's (aigc's own fallback)."""
    from labeler.media import ffmpeg as ff

    if request.param == "bundled":
        pytest.importorskip("imageio_ffmpeg")
        monkeypatch.setenv(ff.FFMPEG_ENV, ff.BUNDLED)
    else:
        monkeypatch.delenv(ff.FFMPEG_ENV, raising=False)
    try:
        ff.ffmpeg_exe()
    except Exception as exc:  # noqa: BLE001 - no such ffmpeg here: nothing to test
        pytest.skip(f"no {request.param} ffmpeg: {exc}")
    return request.param


def mov_keys(path: Path) -> list[bytes]:
    """The key names of the first keyed (``mdta``) metadata of an MP4 (the table ffmpeg reads), found
    by a plain scan for the ``keys`` box (test files only: a ``keys`` byte run elsewhere would fool it)."""
    data = path.read_bytes()
    at = data.find(b"keys")
    if at < 0:
        return []
    count = int.from_bytes(data[at + 8:at + 12], "big")
    names, pos = [], at + 12
    for _ in range(count):
        size = int.from_bytes(data[pos:pos + 4], "big")
        names.append(data[pos + 8:pos + size])
        pos += size
    return names
