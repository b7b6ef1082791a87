"""Audio-only MP4, Matroska and WebM files are audio: sniffed by their tracks, labeled and verified as audio.

A voice note a browser records (Opus in WebM), audio exported as ``.mp4`` or a ``.mka`` used to be taken
for video: ``--layers watermark`` or ``visible`` then failed with "not a video", and verify looked for
frames instead of the audio watermark and cue.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, ffmpeg_exe, run_cli, run_ffmpeg, seeded_key_file

from labeler.errors import LabelerError
from labeler.formats import format_info, sniff, sniff_bytes, sniff_file
from labeler.media import ffmpeg as ff
from labeler.metadata import matroska
from labeler.metadata.bmff_boxes import track_handlers
from labeler.watermark import payload_from_produce_id


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """Audio-only files of the video containers (12 s of the sample speech, long enough for the
    watermark's payload), with a title tag, and a video WebM for contrast."""
    d = tmp_path_factory.mktemp("audio-only")
    speech = str(SAMPLES / "speech.wav")
    src = ["-stream_loop", "1", "-i", speech, "-t", "12", "-metadata", "title=voice note"]
    out = {"voice.webm": ["-c:a", "libopus", "-b:a", "48k"], "vorbis.webm": ["-c:a", "libvorbis"],
           "music.mka": ["-c:a", "libvorbis"], "aac.mkv": ["-c:a", "aac", "-b:a", "96k"],
           "pcm.mka": ["-c:a", "pcm_s16le"], "export.mp4": ["-c:a", "aac", "-b:a", "96k"]}
    paths = {}
    for name, codec in out.items():
        paths[name] = d / name
        run_ffmpeg(*src, *codec, str(paths[name]))
    return paths


@pytest.mark.parametrize(("name", "fmt"), [("voice.webm", "weba"), ("vorbis.webm", "weba"),
                                           ("music.mka", "mka"), ("aac.mkv", "mka"), ("pcm.mka", "mka"),
                                           ("export.mp4", "m4a")])
def test_sniffed_as_audio(made, name, fmt):
    data = made[name].read_bytes()
    assert sniff(data[:4096], name) != fmt  # the signature alone names the video container
    assert sniff_file(made[name]) == sniff_bytes(data, name) == fmt
    assert format_info(fmt).medium == "audio"


def test_video_files_stay_video():
    for name, fmt in (("clip.mp4", "mp4"), ("clip.mkv", "mkv"), ("clip.webm", "webm")):
        assert sniff_file(SAMPLES / name) == fmt
        assert sniff_bytes((SAMPLES / name).read_bytes()) == fmt
    with open(SAMPLES / "clip.mp4", "rb") as f:
        assert set(track_handlers(f)) == {b"vide", b"soun"}
    with open(SAMPLES / "clip.mkv", "rb") as f:
        assert sorted(matroska.track_types(f)) == [1, 2]


def test_a_video_named_or_branded_m4a_is_video(tmp_path):
    """The content decides: an MP4 with a picture track renamed .m4a, or muxed with the M4A brand, is
    video (watermark on the frames, the on-screen mark), not audio."""
    renamed = tmp_path / "clip.m4a"
    renamed.write_bytes((SAMPLES / "clip.mp4").read_bytes())
    branded = tmp_path / "branded.m4a"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(SAMPLES / "clip.mp4"), "-c", "copy",
                    "-brand", "M4A ", "-f", "mp4", str(branded)], check=True)
    assert branded.read_bytes()[8:12] == b"M4A "
    for path in (renamed, branded):
        data = path.read_bytes()
        assert sniff(data[:4096], path.name) == "m4a"  # what the brand or the name alone says
        assert sniff_file(path) == sniff_bytes(data, path.name) == "mp4"
    out = tmp_path / "labeled.m4a"
    done = run_cli("label", str(renamed), str(out), "--producer", PRODUCER, "--produce-id", "m4a-video",
                   "--layers", "visible,metadata", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["format"] == "mp4"
    report = json.loads(run_cli("verify", "--json", str(out)).stdout)
    assert (report["format"], report["medium"]) == ("mp4", "video")
    assert report["layers"]["visible"]["present"]


def test_damaged_containers_keep_the_video_format(made):
    """A track list that cannot be read says nothing: the video format stays and its readers explain."""
    data = made["export.mp4"].read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")  # ffmpeg writes moov last: cut it off
    assert sniff_bytes(data[: data.find(b"moov") - 4]) == "mp4"
    webm = made["voice.webm"].read_bytes()
    tracks = webm.find(b"\x16\x54\xae\x6b")
    assert sniff_bytes(webm[: tracks + 8]) == "webm"  # Tracks cut short
    rng = np.random.default_rng(5)
    for base in (data, webm):
        for _ in range(300):  # flipped bytes, cuts: a LabelerError or a format, nothing else
            buf = bytearray(base[: int(rng.integers(16, len(base) + 1))])
            buf[int(rng.integers(0, len(buf)))] ^= 0xFF
            with contextlib.suppress(LabelerError):
                assert sniff_bytes(bytes(buf)) in ("mp4", "m4a", "webm", "weba", "mkv", "mka", "mov")


def test_oversized_tracks_refused():
    huge = matroska.TRACKS.to_bytes(4, "big") + b"\x08" + (matroska.MAX_TAGS + 1).to_bytes(7, "big")
    head = (SAMPLES / "clip.webm").read_bytes()
    segment = head.find(b"\x18\x53\x80\x67")
    data = head[: segment + 12] + huge + bytes(64)
    with pytest.raises(LabelerError):
        matroska.track_types(io.BytesIO(data))
    assert sniff_bytes(data) == "webm"


def _verify(path: Path, key: Path) -> dict:
    proc = run_cli("verify", "--json", str(path), "--key-file", str(key))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize(("name", "codec"), [("voice.webm", "opus"), ("vorbis.webm", "vorbis"),
                                             ("aac.mkv", "aac"), ("pcm.mka", "flac"), ("export.mp4", "aac")])
def test_label_and_verify_as_audio(made, tmp_path, name, codec):
    key = tmp_path / "wm.key"
    seeded_key_file(key, "test_audio_only_containers-1")
    out = tmp_path / f"labeled-{name}"
    run_cli("label", str(made[name]), str(out), "--producer", PRODUCER, "--produce-id", f"ao-{name}",
            "--layers", "watermark,visible,metadata", "--key-file", str(key), check=True)
    report = _verify(out, key)
    assert report["medium"] == "audio" and report["verdict"] == "confirmed"
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(report, json.loads((SAMPLES.parent / "docs" / "report.schema.json").read_text()))
    wm = report["layers"]["watermark"]
    assert wm["method"] == "audio" and wm["payload"] == payload_from_produce_id(f"ao-{name}").hex()
    assert wm["matches_metadata"] is True and wm["p_value"] < 1e-6
    assert report["layers"]["visible"]["kind"] == "audio-rhythm"
    info = ff.probe(out)
    assert not info.video and [s.codec for s in info.audio] == [codec]  # the container's codec family
    assert sniff_file(out) == sniff_file(made[name])
    if not name.endswith(".mp4"):  # Matroska: the segment-wide tags are carried over
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True)
        assert "voice note" in proc.stderr


def test_bytes_in_bytes_out(made):
    from detectors import verify
    from labeler import AIGCLabel, label

    key = bytes(range(32))
    out = label(made["voice.webm"].read_bytes(), AIGCLabel(PRODUCER, "ao-bytes"),
                layers=("watermark", "metadata"), key=key)
    assert isinstance(out, bytes) and sniff_bytes(out) == "weba"
    report = verify(out, key=key)
    assert report.medium == "audio" and report.format == "weba"
    assert report.watermark["payload"] == payload_from_produce_id("ao-bytes").hex()
