"""A video's soundtrack carries the same audio watermark: found alone, and when the frames lose theirs."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import PRODUCER, SAMPLES, ffmpeg_exe, run_cli, seeded_key_file


def _ff(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", *args], check=True)


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    d = tmp_path_factory.mktemp("soundtrack")
    seeded_key_file(d / "wm.key", "test_video_soundtrack-1")
    # 360p frames with 16.6 s of speech (the sample twice) as AAC 128k: the audio mark wants >= ~10 s
    # of speech to carry its payload reliably (docs/watermark-audio.md).
    clip = d / "clip.mp4"
    _ff("-f", "lavfi", "-i", "testsrc2=s=640x360:d=17:r=10", "-stream_loop", "1", "-i",
        str(SAMPLES / "speech.wav"), "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-crf", "18",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest", str(clip))
    out = d / "labeled.mp4"
    proc = run_cli("label", str(clip), str(out), "--producer", PRODUCER, "--produce-id", "vid-sound",
                   "--layers", "watermark,metadata", "--key-file", str(d / "wm.key"), "--json", check=True)
    return d, out, json.loads(proc.stdout)


def _watermark(d, path):
    proc = run_cli("verify", "--json", "--key-file", str(d / "wm.key"), str(path))
    return json.loads(proc.stdout)


def test_label_marks_the_soundtrack_too(labeled):
    d, out, result = labeled
    wm = result["layers"]["watermark"]
    assert wm["method"] == "video" and wm["audio"] == "marked" and wm["codec"] == "aac"
    report = _watermark(d, out)
    assert report["layers"]["watermark"]["stream"] == "video" and report["verdict"] == "confirmed"


def test_soundtrack_alone_after_aac_64k(labeled):
    d, out, result = labeled
    sound = d / "sound.m4a"
    _ff("-i", str(out), "-vn", "-map_metadata", "-1", "-c:a", "aac", "-b:a", "64k", str(sound))
    report = _watermark(d, sound)
    assert report["layers"]["watermark"]["present"] and report["layers"]["watermark"]["method"] == "audio"
    assert report["layers"]["watermark"]["payload"] == result["layers"]["watermark"]["payload"]


def test_the_soundtrack_answers_when_the_frames_cannot(labeled):
    d, out, result = labeled
    tiny = d / "tiny.mp4"  # frames far too small for the frame mark; sound copied
    _ff("-i", str(out), "-map_metadata", "-1", "-vf", "scale=128:72", "-c:v", "libx264", "-crf", "45",
        "-c:a", "copy", str(tiny))
    wm = _watermark(d, tiny)["layers"]["watermark"]
    assert wm["present"] and wm["stream"] == "audio"
    assert wm["payload"] == result["layers"]["watermark"]["payload"]


def test_a_failing_soundtrack_leaves_no_output(labeled, tmp_path, monkeypatch):
    from labeler import AIGCLabel, label_file
    from labeler.errors import LabelerError
    from labeler.watermark import soundtrack
    from labeler.watermark.keyfile import read_key_file

    d, _, _ = labeled

    def broken(*args, **kwargs):
        raise LabelerError("marking the soundtrack failed: simulated")

    monkeypatch.setattr(soundtrack, "mark_soundtrack", broken)
    out = tmp_path / "out.mp4"
    with pytest.raises(LabelerError, match="soundtrack failed"):
        label_file(d / "clip.mp4", out, AIGCLabel(PRODUCER, "x"), layers="watermark",
                   key=read_key_file(d / "wm.key"))
    assert list(tmp_path.iterdir()) == []  # no output, no staging folder


def test_the_soundtrack_is_marked_as_it_is_decoded_to_the_same_bytes(labeled, tmp_path, monkeypatch):
    # Streamed block by block (bounded memory for an hour's soundtrack): the marked file does not
    # depend on the block size, one block for the whole sound included (what decoding it whole gave).
    import shutil

    from labeler.watermark import soundtrack
    from labeler.watermark.keyfile import read_key_file

    d, _, _ = labeled
    key = read_key_file(d / "wm.key")
    outs = []
    for frames in (1 << 30, 4001):
        monkeypatch.setattr(soundtrack, "_BLOCK_FRAMES", frames)
        out = tmp_path / f"blocks-{frames}.mp4"
        shutil.copy(d / "clip.mp4", out)
        assert soundtrack.mark_soundtrack(out, bytes(range(8)), key=key)["audio"] == "marked"
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0] != (d / "clip.mp4").read_bytes()


@pytest.mark.parametrize("sound", ["anullsrc=r=44100:cl=stereo:d=4", "sine=f=440:d=0.5"])
def test_a_silent_or_too_short_soundtrack_is_left_as_it_was(sound, tmp_path):
    from labeler.watermark import soundtrack

    clip = tmp_path / "clip.mp4"
    _ff("-f", "lavfi", "-i", "testsrc2=s=160x120:d=4:r=5", "-f", "lavfi", "-i", sound, "-c:v", "libx264",
        "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip))
    before = clip.read_bytes()
    done = soundtrack.mark_soundtrack(clip, bytes(range(8)), key=b"k" * 32)
    assert done == {"audio": "copied (too short or silent for the audio mark)"}
    assert clip.read_bytes() == before and list(tmp_path.iterdir()) == [clip]  # no copy left behind


def test_a_silent_soundtrack_is_not_encoded_at_all(tmp_path, monkeypatch):
    # The silence is known once it is decoded; nothing is encoded or muxed for it (an hour's silent
    # track of a generated clip was encoded and written whole, then dropped)
    from labeler.media import ffmpeg as ff
    from labeler.watermark import soundtrack

    clip = tmp_path / "clip.mp4"
    _ff("-f", "lavfi", "-i", "testsrc2=s=160x120:d=12:r=5", "-f", "lavfi", "-i",
        "anullsrc=r=44100:cl=stereo:d=12", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip))

    def no_encode(*args, **kwargs):
        raise AssertionError("the silent soundtrack was encoded")

    monkeypatch.setattr(ff, "feed", no_encode)
    monkeypatch.setattr(soundtrack, "_BLOCK_FRAMES", 8192)  # many silent blocks
    done = soundtrack.mark_soundtrack(clip, bytes(range(8)), key=b"k" * 32)
    assert done == {"audio": "copied (too short or silent for the audio mark)"}


def test_a_soundtrack_that_starts_silent_is_marked_as_if_read_whole(tmp_path, monkeypatch):
    # the silent blocks before the first sound are given again as zeros: the same bytes as one block
    import shutil

    from labeler.watermark import soundtrack

    clip = tmp_path / "clip.mp4"
    _ff("-f", "lavfi", "-i", "testsrc2=s=160x120:d=12:r=5", "-f", "lavfi", "-i",
        "anullsrc=r=22050:cl=mono:d=3", "-i", str(SAMPLES / "speech.wav"), "-filter_complex",
        "[1:a][2:a]concat=n=2:v=0:a=1[a]", "-map", "0:v", "-map", "[a]", "-c:v", "libx264",
        "-pix_fmt", "yuv420p", "-c:a", "flac", "-shortest", str(tmp_path / "clip.mkv"))
    clip = tmp_path / "clip.mkv"
    outs = []
    for frames in (1 << 30, 4096):
        monkeypatch.setattr(soundtrack, "_BLOCK_FRAMES", frames)
        out = tmp_path / f"blocks-{frames}.mkv"
        shutil.copy(clip, out)
        assert soundtrack.mark_soundtrack(out, bytes(range(8)), key=b"k" * 32)["audio"] == "marked"
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0] != clip.read_bytes()


def test_frames_and_soundtrack_are_two_tests_of_one_file(labeled, tmp_path):
    # verify reads the frames, then (when they give nothing) the soundtrack: two looks at one file. Each
    # is decided at half the threshold and the p-value reported doubled (each at 1e-6 allowed 2e-6 per
    # file and key, QA); a file without a soundtrack is one test, reported as the frames' read gives it.
    from detectors import verify
    from detectors.watermark_video import detect_video
    from labeler.watermark.keyfile import read_key_file

    d, out, _ = labeled
    key = read_key_file(d / "wm.key")
    frames = detect_video(out, key=key)
    wm = verify(out, key=key, layers="watermark").watermark
    assert wm["present"] and wm["stream"] == "video"
    assert wm["p_value"] == pytest.approx(2 * frames.p_value, rel=1e-9, abs=0)
    silent = tmp_path / "no-sound.mp4"
    _ff("-i", str(out), "-an", "-c", "copy", str(silent))
    alone = detect_video(silent, key=key)
    wm = verify(silent, key=key, layers="watermark").watermark
    assert wm["present"] and wm["p_value"] == pytest.approx(alone.p_value, rel=1e-9, abs=0)
    sound = tmp_path / "sound-only.mp4"  # frames too small for their mark; the soundtrack carries it
    _ff("-i", str(out), "-vf", "scale=64:36", "-c:v", "libx264", "-c:a", "copy", str(sound))
    wm = verify(sound, key=key, layers="watermark").watermark
    assert wm["present"] and wm["stream"] == "audio" and wm["p_value"] <= 1e-6


def test_every_soundtrack_is_marked_and_each_carries_the_payload_alone(tmp_path):
    # two audio streams (dubbed languages): each is marked in its own pass; a platform that keeps one
    # language keeps the mark. Until 2026-12-07 neither was marked ("copied (several audio streams)").
    from detectors import verify
    from labeler.watermark import payload_from_produce_id
    from labeler.watermark.keyfile import read_key_file

    clip = tmp_path / "two.mkv"
    _ff("-f", "lavfi", "-i", "testsrc2=s=320x240:d=17:r=5", "-stream_loop", "1", "-i",
        str(SAMPLES / "speech.wav"), "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono:d=17", "-map", "0:v",
        "-map", "1:a", "-map", "1:a",
        "-map", "2:a", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "flac", "-shortest",
        "-metadata:s:a:1", "language=fra", str(clip))
    seeded_key_file(tmp_path / "wm.key", "test_video_soundtrack-two")
    out = tmp_path / "out.mkv"
    proc = run_cli("label", str(clip), str(out), "--producer", PRODUCER, "--produce-id", "two-tracks",
                   "--layers", "watermark", "--key-file", str(tmp_path / "wm.key"), "--json", check=True)
    wm = json.loads(proc.stdout)["layers"]["watermark"]
    assert wm["audio"] == "marked" and [s["audio"] for s in wm["streams"]] == [
        "marked", "marked", "copied (too short or silent for the audio mark)"]
    key = read_key_file(tmp_path / "wm.key")
    for n in (0, 1):  # each language alone, as a platform keeping one would serve it
        alone = tmp_path / f"track{n}.flac"
        _ff("-i", str(out), "-map", f"0:a:{n}", "-c", "copy", str(alone))
        found = verify(alone, key=key, layers="watermark").watermark
        assert found["present"] and found["payload"] == payload_from_produce_id("two-tracks").hex()
    probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True)
    assert probe.stderr.count("Audio: flac") == 3 and "(fra)" in probe.stderr  # streams and tags kept


@pytest.mark.parametrize(("rate", "layout"), [(22050, "mono"), (16000, "mono"), (44100, "stereo")])
def test_a_vorbis_soundtrack_is_encoded_at_a_quality_libvorbis_takes(tmp_path, rate, layout):
    # MKV / WebM state no per-stream bit rate, so the default 128k was asked of libvorbis, which refuses
    # it for mono at 16-22.05 kHz ("marking the soundtrack failed: encoder setup failed", no output)
    from labeler.watermark import soundtrack

    clip = tmp_path / "clip.mkv"
    _ff("-f", "lavfi", "-i", "testsrc2=s=160x120:d=3:r=5", "-f", "lavfi", "-i",
        f"sine=f=440:d=3:r={rate}", "-ac", "1" if layout == "mono" else "2", "-c:v", "libx264",
        "-pix_fmt", "yuv420p", "-c:a", "libvorbis", str(clip))
    done = soundtrack.mark_soundtrack(clip, bytes(range(8)), key=b"k" * 32)
    assert done["audio"] == "marked" and done["codec"] == "libvorbis"
    probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(clip)], capture_output=True, text=True)
    assert f"Audio: vorbis, {rate} Hz, {layout}" in probe.stderr, probe.stderr
