"""The library as a generation backend embeds it: a bad path (None, bytes, a missing file, a folder) at a
public file-reading or file-writing function is a one-line LabelerError (InvalidArgument for a value that
is not a path), never an OSError, TypeError or AttributeError from the internals; an output that cannot
be written (a folder that refuses the staging folder, a rename that fails) is a LabelerError too and
leaves nothing behind."""

from __future__ import annotations

import os
import tempfile

import pytest
from conftest import PRODUCER, SAMPLES, seeded_key

from labeler import AIGCLabel, LabelerError, label_file, read_labels, write_label
from labeler.errors import InvalidArgument
from labeler.media import read_audio, read_image
from labeler.watermark import payload_from_produce_id
from labeler.watermark.keyfile import read_key_file

REC = AIGCLabel(PRODUCER, "qa-library-api")
KEY = seeded_key("test_qa_library_api")
VALUE = REC.to_json()


def _one_line(info: pytest.ExceptionInfo[BaseException]) -> None:
    assert str(info.value) and "\n" not in str(info.value)


def _bad_paths(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir(exist_ok=True)
    return [(None, InvalidArgument), (b"/tmp/x.png", InvalidArgument),
            (tmp_path / "missing.png", LabelerError), (folder, LabelerError)]


def test_read_labels_bad_paths(tmp_path):
    for path, error in _bad_paths(tmp_path):
        with pytest.raises(error) as info:
            read_labels(path)
        _one_line(info)


def test_write_label_bad_paths_leave_nothing(tmp_path):
    out = tmp_path / "out.png"
    for path, error in _bad_paths(tmp_path):
        with pytest.raises(error) as info:
            write_label(path, out, VALUE)
        _one_line(info)
    with pytest.raises(InvalidArgument):
        write_label(SAMPLES / "photo.png", None, VALUE)
    with pytest.raises(LabelerError, match="is a folder"):
        write_label(SAMPLES / "photo.png", tmp_path / "folder", VALUE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]
    assert os.listdir(tmp_path / "folder") == []


def test_a_failed_rename_is_one_line_and_leaves_no_part_file(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(LabelerError, match="Permission denied") as info:
        write_label(SAMPLES / "photo.png", tmp_path / "out.png", VALUE)
    _one_line(info)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_refuses_the_staging_folder_is_one_line(tmp_path, monkeypatch):
    # What a read-only output folder does to a multi-step label (watermark, then metadata), also as root.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", refuse)
    with pytest.raises(LabelerError, match="Permission denied") as info:
        label_file(SAMPLES / "photo.png", tmp_path / "out.png", REC, layers="watermark,metadata", key=KEY)
    _one_line(info)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_folder_for_a_multi_step_label(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(LabelerError, match="Permission denied"):
            label_file(SAMPLES / "photo.png", folder / "out.png", REC, layers="watermark,metadata", key=KEY)
        assert os.listdir(folder) == []
    finally:
        folder.chmod(0o755)


def test_video_writers_check_their_paths_before_ffmpeg(tmp_path):
    from labeler.visible import add_video_label
    from labeler.watermark.video import watermark_video

    payload = payload_from_produce_id("qa")
    out = tmp_path / "out.mp4"
    for path, error in _bad_paths(tmp_path):
        with pytest.raises(error) as info:
            add_video_label(path, out)
        _one_line(info)
        with pytest.raises(error) as info:
            watermark_video(path, out, payload, key=KEY)
        _one_line(info)
    with pytest.raises(LabelerError, match="is a folder"):
        add_video_label(SAMPLES / "clip.mp4", tmp_path / "folder")
    existing = tmp_path / "existing.mp4"
    existing.write_bytes(b"keep")
    with pytest.raises(LabelerError, match="exists"):
        add_video_label(SAMPLES / "clip.mp4", existing)
    assert existing.read_bytes() == b"keep"
    assert not out.exists()


def test_audio_label_files_check_their_paths(tmp_path):
    from labeler.visible import add_audio_label_file, add_voice_prompt_file
    from labeler.visible.audio import add_audio_cue_file

    out = tmp_path / "out.flac"
    for fn in (add_audio_cue_file, add_audio_label_file, add_voice_prompt_file):
        for path, error in _bad_paths(tmp_path):
            # bytes: a path given as bytes, not a file in memory (read_audio would decode it as one)
            with pytest.raises(error) as info:
                fn(path, out)
            _one_line(info)
        with pytest.raises(LabelerError, match="is a folder"):
            fn(SAMPLES / "speech.flac", tmp_path / "folder")
    assert not out.exists()


def test_readers_refuse_what_is_not_a_path():
    with pytest.raises(InvalidArgument):
        read_key_file(None)
    with pytest.raises(InvalidArgument):
        read_key_file(b"wm.key")
    with pytest.raises(InvalidArgument):
        read_image(None)
    with pytest.raises(InvalidArgument):
        read_audio(None)


def test_detectors_on_files_check_their_paths(tmp_path):
    from detectors.c2pa import read_c2pa
    from detectors.visible import detect_video_label
    from detectors.watermark_video import detect_video

    for path, error in _bad_paths(tmp_path):
        if not isinstance(path, bytes):  # detect_video says "pass its path" for bytes, a WatermarkError
            with pytest.raises(error) as info:
                detect_video(path, key=KEY)
            _one_line(info)
        with pytest.raises(error) as info:
            detect_video_label(path)
        _one_line(info)
    with pytest.raises(InvalidArgument):
        read_c2pa(None)
    # a bytearray is a file in memory, as bytes are (it used to be handed to open())
    assert read_c2pa(bytearray((SAMPLES / "photo.png").read_bytes()), mime="image/png").present is False
