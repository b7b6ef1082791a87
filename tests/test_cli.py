"""End to end through the ``aigc`` CLI on the project's samples: label, verify, bad input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    PRODUCER,
    SAMPLES,
    corpus_path,
    decoded_digest,
    ffmpeg_exe,
    ffmpeg_warnings,
    run_cli,
    seeded_key,
)

from labeler.record import AIGCLabel

MEDIA = {
    "photo.jpg": ("jpeg", "xmp-tc260"),
    "photo.png": ("png", "xmp-tc260"),
    "speech.wav": ("wav", "riff-aigc"),
    "speech.flac": ("flac", "vorbis-comment"),
    "speech.mp3": ("mp3", "id3-txxx"),
    "clip.mp4": ("mp4", "mp4-keys"),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def labeled(tmp_path_factory) -> dict[str, Path]:
    """Every sample labeled once through the CLI (plus WebP/M4A/MOV made from the samples)."""
    out = tmp_path_factory.mktemp("labeled")
    src_dir = tmp_path_factory.mktemp("extra")
    sources = {name: SAMPLES / name for name in MEDIA}
    # Formats without a committed sample are made from the samples with real encoders.
    from PIL import Image

    Image.open(SAMPLES / "photo.png").save(src_dir / "photo.webp", quality=80)
    ff = ffmpeg_exe()
    subprocess.run([ff, "-v", "error", "-i", str(SAMPLES / "speech.wav"), "-c:a", "aac", "-b:a", "48k",
                    str(src_dir / "speech.m4a")], check=True)
    subprocess.run([ff, "-v", "error", "-i", str(SAMPLES / "clip.mp4"), "-c", "copy", "-f", "mov",
                    str(src_dir / "clip.mov")], check=True)
    for name in ("photo.webp", "speech.m4a", "clip.mov"):
        sources[name] = src_dir / name
    result = {}
    for name, src in sources.items():
        before = sha256(src)
        dst = out / name
        run_cli("label", str(src), str(dst), "--producer", PRODUCER, "--produce-id", f"id-{name}", check=True)
        assert sha256(src) == before, f"{name}: input was modified"
        result[name] = dst
    result["_sources"] = sources  # type: ignore[assignment]
    return result


ALL = [*MEDIA, "photo.webp", "speech.m4a", "clip.mov"]
FORMATS = {k: v[0] for k, v in MEDIA.items()} | {"photo.webp": "webp", "speech.m4a": "m4a", "clip.mov": "mov"}


@pytest.mark.parametrize("name", ALL)
def test_label_then_verify_returns_the_seven_fields(labeled, name):
    proc = run_cli("verify", "--json", str(labeled[name]))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    expected = AIGCLabel(PRODUCER, f"id-{name}").as_dict()
    md = report["layers"]["metadata"]
    assert report["format"] == FORMATS[name]
    assert report["verdict"] == "confirmed"
    assert md["present"] and md["valid"], md["problems"]
    assert md["fields"] == expected
    if name in MEDIA:
        assert md["carrier"] == MEDIA[name][1]
    assert report["errors"] == []


@pytest.mark.parametrize("name", ALL)
def test_decoded_media_identical(labeled, name):
    assert decoded_digest(labeled[name]) == decoded_digest(labeled["_sources"][name])


@pytest.mark.parametrize("name", [n for n in ALL if not n.startswith("photo")])
def test_ffmpeg_decodes_labeled_audio_video_cleanly(labeled, name):
    # Some ffmpeg versions warn about the input itself (e.g. "Guessed Channel Layout" for a WAV
    # without a channel mask); labeling must add no warning of its own.
    assert ffmpeg_warnings(labeled[name]) == ffmpeg_warnings(labeled["_sources"][name])


def test_unlabeled_samples_verify_none():
    proc = run_cli("verify", "--json", *(str(SAMPLES / n) for n in MEDIA))
    assert proc.returncode == 0
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["verdict"] for r in reports] == ["none"] * len(MEDIA)
    assert all(r["layers"]["metadata"]["present"] is False for r in reports)


def test_relabel_replaces_not_duplicates(labeled, tmp_path):
    dst = tmp_path / "again.jpg"
    run_cli("label", str(labeled["photo.jpg"]), str(dst), "--producer", PRODUCER, "--produce-id", "second",
            "--label", "2", "--propagator", "platformA", "--propagate-id", "pa-1", check=True)
    report = json.loads(run_cli("verify", "--json", str(dst)).stdout)
    md = report["layers"]["metadata"]
    assert report["verdict"] == "possible"
    assert md["fields"]["ProduceID"] == "second" and md["fields"]["ContentPropagator"] == "platformA"
    assert len(md["copies"]) == 1
    assert md["warnings"] == ["ContentPropagator 'platformA' is not a 27-character TC260 provider code"]


def test_human_summary(labeled):
    proc = run_cli("verify", str(labeled["photo.jpg"]), str(SAMPLES / "photo.jpg"))
    lines = proc.stdout.splitlines()
    assert lines[0].endswith(
        f"confirmed (medium) - metadata xmp-tc260 Label=1 producer={PRODUCER} id=id-photo.jpg")
    assert lines[1].endswith("photo.jpg: none - no AIGC label found - not examined: watermark")


# -- bad input -------------------------------------------------------------------------------------


def _assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aigc: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_refuses_to_overwrite_input(tmp_path):
    src = tmp_path / "a.jpg"
    shutil.copy(SAMPLES / "photo.jpg", src)
    before = sha256(src)
    proc = run_cli("label", str(src), str(src), "--producer", PRODUCER, "--produce-id", "x")
    _assert_one_line_error(proc, "refusing to overwrite the input")
    assert sha256(src) == before


def test_existing_output_needs_overwrite(tmp_path):
    dst = tmp_path / "out.jpg"
    dst.write_bytes(b"keep me")
    proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(dst), "--producer", PRODUCER, "--produce-id", "x")
    _assert_one_line_error(proc, "exists")
    assert dst.read_bytes() == b"keep me"
    run_cli("label", str(SAMPLES / "photo.jpg"), str(dst), "--producer", PRODUCER, "--produce-id", "x",
            "--overwrite", check=True)
    assert json.loads(run_cli("verify", "--json", str(dst)).stdout)["verdict"] == "confirmed"


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(b"this is not an image, just text\n" * 10), "unrecognised file content"),
        (lambda p: p.write_bytes((SAMPLES / "photo.jpg").read_bytes()[:3000]), "truncated"),
        (lambda p: p.write_bytes((SAMPLES / "clip.mp4").read_bytes()[:5000]), ""),
        (lambda p: p.write_bytes((SAMPLES / "photo.png").read_bytes()[:20000]), ""),
        (lambda p: p.write_bytes((SAMPLES / "speech.wav").read_bytes()[:30]), ""),
    ],
    ids=["zero-bytes", "text-as-jpg", "truncated-jpeg", "truncated-mp4", "truncated-png", "truncated-wav"],
)
def test_bad_input_one_line_error_no_output(tmp_path, make, needle):
    src = tmp_path / "bad.jpg"
    make(src)
    before = src.read_bytes()
    dst = tmp_path / "out.jpg"
    proc = run_cli("label", str(src), str(dst), "--producer", PRODUCER, "--produce-id", "x")
    _assert_one_line_error(proc, str(src), needle)
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jpg"], "a partial output was left behind"
    assert src.read_bytes() == before


def test_missing_file_and_folder(tmp_path):
    missing, out = str(tmp_path / "no.jpg"), str(tmp_path / "o.jpg")
    proc = run_cli("label", missing, out, "--producer", "p", "--produce-id", "x")
    _assert_one_line_error(proc, "no such file")
    proc = run_cli("verify", "--json", str(tmp_path), str(tmp_path / "nope.jpg"))
    assert proc.returncode == 2
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["verdict"] for r in reports] == [None, None]
    assert reports[0]["errors"] == ["is a folder, not a file"]
    assert reports[1]["errors"] == ["No such file or directory"]


def test_invalid_label_values_rejected(tmp_path):
    proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(tmp_path / "o.jpg"), "--producer", "Mini Max",
                   "--produce-id", "x")
    _assert_one_line_error(proc, "ContentProducer has characters outside")
    assert not (tmp_path / "o.jpg").exists()


def test_wrong_output_extension_and_unknown_layer(tmp_path):
    proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(tmp_path / "o.png"), "--producer", "p",
                   "--produce-id", "x")
    _assert_one_line_error(proc, "does not fit the input's format (jpeg)")
    proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(tmp_path / "o.jpg"), "--producer", "p",
                   "--produce-id", "x", "--layers", "metadata,sparkles")
    _assert_one_line_error(proc, "unknown layer 'sparkles'")


def test_wrong_extension_is_read_by_content(tmp_path):
    src = tmp_path / "really-a-png.jpg"
    shutil.copy(SAMPLES / "photo.png", src)
    report = json.loads(run_cli("verify", "--json", str(src)).stdout)
    assert report["format"] == "png"
    assert report["warnings"] == ["extension .jpg does not match the content (png)"]


def test_verify_exit_code_mixed(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\xff" * 50)
    proc = run_cli("verify", "--json", str(SAMPLES / "photo.jpg"), str(bad))
    assert proc.returncode == 2
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    assert first["errors"] == [] and first["verdict"] == "none"
    assert second["errors"] and second["verdict"] is None
    assert "Traceback" not in proc.stderr


@pytest.mark.corpus
def test_hostile_corpus_files_give_clean_results():
    folder = corpus_path("provenance")
    files = sorted(p for p in folder.iterdir() if p.suffix != ".tsv")
    proc = run_cli("verify", "--json", *map(str, files))
    assert "Traceback" not in proc.stderr
    reports = {Path(r["file"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(reports) == {p.name for p in files}
    for name, report in reports.items():
        assert not any("internal error" in e for e in report["errors"]), (name, report["errors"])
        assert (report["verdict"] is None) == bool(report["errors"]), name
    # The hostile containers must be refused with a reason, not half-read.
    assert reports["nested_moov_1000.mp4"]["errors"]


@pytest.mark.corpus
@pytest.mark.parametrize("rel", ["images/mate-Aqua.jpg", "images/skimage-coffee.png", "audio/music-piano.wav",
                                 "video/pan-720p.mp4"])
def test_corpus_roundtrip(tmp_path, rel):
    src = corpus_path(*rel.split("/"))
    dst = tmp_path / src.name
    run_cli("label", str(src), str(dst), "--producer", PRODUCER, "--produce-id", "corpus-1", check=True)
    report = json.loads(run_cli("verify", "--json", str(dst)).stdout)
    assert report["verdict"] == "confirmed" and report["layers"]["metadata"]["valid"]
    assert decoded_digest(dst) == decoded_digest(src)



def test_reports_match_the_documented_schema(labeled, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "report.schema.json").read_text())
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 7)
    files = [str(labeled[n]) for n in ALL] + [str(SAMPLES / "photo.jpg"), str(bad), str(tmp_path / "missing")]
    proc = run_cli("verify", "--json", *files)
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(reports) == len(files)
    for report in reports:
        jsonschema.validate(report, schema)


@pytest.mark.exiftool
@pytest.mark.parametrize(("name", "tag"), [("photo.jpg", "XMP-TC260:AIGC"), ("photo.png", "XMP-TC260:AIGC"),
                                           ("photo.webp", "XMP-TC260:AIGC"), ("clip.mp4", "Keys:AIGC"),
                                           ("clip.mov", "Keys:AIGC"), ("speech.m4a", "Keys:AIGC")])
def test_exiftool_reads_the_label(labeled, name, tag):
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        pytest.skip("exiftool is not installed")
    proc = subprocess.run([exiftool, "-s3", f"-{tag}", str(labeled[name])], capture_output=True, text=True)
    assert proc.stdout.strip() == AIGCLabel(PRODUCER, f"id-{name}").to_json()


def test_label_cleans_staging_folders_of_dead_runs_only(tmp_path):
    # What a SIGKILL mid-label leaves: a staging folder named after its (now dead) process.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f".aigc-{gone.pid}-k1ll3d"
    dead.mkdir()
    (dead / "0.jpg").write_bytes(b"partial")
    live = tmp_path / f".aigc-{os.getpid()}-inuse"  # this test's process is alive: a concurrent run
    live.mkdir()
    unrelated = tmp_path / ".aigc-notours"
    unrelated.mkdir()
    proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(tmp_path / "out.jpg"), "--producer", PRODUCER,
                   "--produce-id", "x", check=True)
    assert not dead.exists() and live.is_dir() and unrelated.is_dir()
    assert f"removed {dead}" in proc.stderr
    assert (tmp_path / "out.jpg").is_file()


def test_label_without_produce_id_is_refused_and_writes_nothing(tmp_path):
    # click 8.3+ took the old explicit default=None as a value: the record was written with ProduceID "None".
    out = tmp_path / "o.jpg"
    proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(out), "--producer", PRODUCER)
    assert proc.returncode == 2 and "Missing option '--produce-id'" in proc.stderr
    assert not out.exists()


def test_sigterm_while_labeling_a_video_leaves_nothing(tmp_path) -> None:
    """A stop from a scheduler or a container (SIGTERM) cleans up like Ctrl-C: the staged frames, the
    staging folder and ffmpeg go; no partial output stays beside DST (QA: a 3.4 MB .part file did)."""
    import signal
    import time

    from labeler.watermark.keyfile import write_key_file

    src, out = tmp_path / "long.mp4", tmp_path / "out"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=30:d=8",
                    "-c:v", "libx264", "-preset", "ultrafast", str(src)], check=True)
    out.mkdir()
    write_key_file(tmp_path / "k.key", seeded_key("test_cli-1"))
    proc = subprocess.Popen([sys.executable, "-m", "labeler.cli", "label", str(src), str(out / "x.mp4"),
                             "--producer", "P", "--produce-id", "x", "--layers", "watermark",
                             "--key-file", str(tmp_path / "k.key")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while proc.poll() is None and not any(out.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the label pass has started writing beside DST
    if proc.poll() is not None:
        pytest.skip("the label finished before it could be stopped")
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert list(out.iterdir()) == []


def test_label_reads_its_watermark_back(tmp_path) -> None:
    """aigc label checks the mark it promised: on pure noise (nothing for an invisible mark to ride on) it
    says the mark cannot be read back; on a photo it says nothing."""
    import numpy as np
    from PIL import Image

    from detectors.read_back import UNREAD_WATERMARK_NOTE
    from labeler.watermark.keyfile import write_key_file

    key = tmp_path / "k.key"
    # a fixed key: on pure noise a random one still reads back about one time in four (measured)
    write_key_file(key, bytes(range(32)))
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(noise)
    for src, unread in ((noise, True), (SAMPLES / "photo.jpg", False)):
        out = tmp_path / f"out{src.suffix}"
        done = run_cli("label", str(src), str(out), "--producer", PRODUCER, "--produce-id", "rb",
                       "--layers", "watermark", "--key-file", str(key), "--json", "--overwrite")
        assert done.returncode == 0, done.stderr
        assert (UNREAD_WATERMARK_NOTE in json.loads(done.stdout)["warnings"]) is unread
        assert (UNREAD_WATERMARK_NOTE in done.stderr) is unread


def test_opencv_warnings_stay_off_the_command_line(tmp_path, monkeypatch):
    """A 16-bit TIFF with a tag libtiff does not know (C2PA's 0xcd41 is in every signed TIFF) made OpenCV
    print '[ WARN:0@0.1] global grfmt_tiff.cpp:123 TIFF_Warning ...' above verify's one-line answer."""
    import struct

    import numpy as np

    from labeler.media.image16 import encode_tiff16

    pixels = np.random.default_rng(0).integers(0, 65535, (64, 96, 3)).astype(np.uint16)
    data = bytearray(encode_tiff16(pixels, icc=None, exif=None, xmp=None, dpi=None))
    assert data[:2] == b"II"
    ifd = struct.unpack("<I", data[4:8])[0]
    last = ifd + 2 + 12 * (struct.unpack("<H", data[ifd : ifd + 2])[0] - 1)
    assert struct.unpack("<H", data[last : last + 2])[0] == 339  # SampleFormat, the highest tag
    data[last : last + 2] = struct.pack("<H", 65000)  # a private tag nobody registered
    tif = tmp_path / "deep.tif"
    tif.write_bytes(bytes(data))
    monkeypatch.delenv("OPENCV_LOG_LEVEL", raising=False)
    proc = run_cli("verify", str(tif))
    assert proc.returncode == 0 and proc.stdout.startswith(f"{tif}: none")
    assert "WARN" not in proc.stderr and "TIFF" not in proc.stderr, proc.stderr


def test_the_watermark_strength_help_states_the_default_the_label_uses(tmp_path: Path) -> None:
    """``--watermark-strength`` left out means the per-image budget, and the help says so (it said
    'default: 2.0', the fixed strength of an earlier version)."""
    from labeler.watermark.keyfile import write_key_file

    text = " ".join(run_cli("label", "--help", check=True).stdout.split())
    start = text.index("--watermark-strength")
    option = text[start : text.index("--quality", start)]
    assert "budget" in option and "2.0" not in option
    write_key_file(tmp_path / "k.key", seeded_key("test_cli-strength"))
    proc = run_cli("label", str(SAMPLES / "photo.png"), str(tmp_path / "o.png"), "--producer", PRODUCER,
                   "--produce-id", "s1", "--layers", "watermark", "--key-file", str(tmp_path / "k.key"),
                   "--json", check=True)
    assert json.loads(proc.stdout)["layers"]["watermark"]["strength"] == "budget"
