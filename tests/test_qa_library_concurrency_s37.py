"""The library inside a long-running multi-threaded service: label() from many threads gives what it gives
serially (two keys and two producers at once never mix), many calls leave no file descriptor, temporary
file, thread or child process behind, and a failure in the middle (the output folder removed, a staged
file gone, an encoder that fails mid-stream) is a one-line LabelerError that leaves nothing behind: no
output, no temporary file and no ffmpeg process, even while the caller still holds the exception."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, seeded_key

from labeler import AIGCLabel, LabelerError, label
from labeler.media import read_image

KEYS = (seeded_key("qa-concurrency-s37-a"), seeded_key("qa-concurrency-s37-b"))
RECORDS = (AIGCLabel(PRODUCER, "qa-conc-a"), AIGCLabel("another-producer", "qa-conc-b"))

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")


def _children() -> set[int]:
    """Processes whose parent is this one (running or zombie): ffmpeg children not yet reaped."""
    me, found = str(os.getpid()), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if fields[1] == me:
            found.add(int(entry))
    return found


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """A temporary folder of the test's own (what TMPDIR gives a service), checked empty at the end."""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    yield private
    assert os.listdir(private) == [], "temporary files left behind"


def _digest(out: bytes | np.ndarray) -> str:
    raw = out.tobytes() if isinstance(out, np.ndarray) else out
    return hashlib.sha256(raw).hexdigest()


def test_threads_match_serial_and_keys_never_mix(tmp_path, private_tmp):
    jpeg, wav = (SAMPLES / "photo.jpg").read_bytes(), (SAMPLES / "speech.wav").read_bytes()
    pixels = read_image(SAMPLES / "photo.png").pixels[:256, :256]
    jobs = []
    for n, (key, rec) in enumerate(zip(KEYS, RECORDS, strict=True)):
        jobs += [(jpeg, rec, {"layers": "watermark,metadata", "key": key}),
                 (pixels, rec, {"layers": "watermark,visible", "key": key}),
                 (wav, rec, {"layers": "watermark,metadata", "key": key}),
                 (SAMPLES / "photo.jpg", rec, {"layers": "watermark,metadata", "key": key, "dst": n})]

    def run(job: tuple, tag: str) -> str:
        source, rec, kwargs = job
        kwargs = dict(kwargs)
        if "dst" in kwargs:
            kwargs["dst"] = tmp_path / f"{tag}-{kwargs['dst']}.jpg"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = label(source, rec, **kwargs)
        return _digest(out) if not isinstance(source, Path) else _digest(Path(kwargs["dst"]).read_bytes())

    serial = [run(job, "serial") for job in jobs]
    first, second = serial[:4], serial[4:]
    assert all(a != b for a, b in zip(first, second, strict=True))  # each key and producer: its own output
    assert first[0] == first[3] and second[0] == second[3]  # bytes in: the bytes the path form writes
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(run, jobs * 2, [f"t{i}" for i in range(len(jobs) * 2)]))
    assert threaded == serial * 2


def test_many_calls_leave_no_descriptor_file_thread_or_process(private_tmp):
    jpeg, mp3 = (SAMPLES / "photo.jpg").read_bytes(), (SAMPLES / "speech.mp3").read_bytes()
    pixels = read_image(SAMPLES / "photo.png").pixels[:256, :256]
    calls = [lambda: label(jpeg, RECORDS[0]),
             lambda: label(pixels, RECORDS[1], layers="watermark", key=KEYS[1]),
             lambda: label(mp3, RECORDS[0]),
             lambda: label(jpeg[:5000], RECORDS[0], layers="watermark,metadata", key=KEYS[0])]

    def run(i: int) -> None:
        with contextlib.suppress(LabelerError):  # the cut JPEG: refused, and must leave nothing behind
            calls[i % len(calls)]()

    run(0), run(1), run(2), run(3)  # warm-up: imports, caches, a first thread pool of a library
    fds, threads, kids = len(os.listdir("/proc/self/fd")), threading.active_count(), _children()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(run, range(120)))
    assert len(os.listdir("/proc/self/fd")) == fds
    assert threading.active_count() == threads
    assert _children() <= kids


def test_output_folder_removed_during_a_video_pass_is_one_line(tmp_path, private_tmp, monkeypatch):
    # The folder vanished while ffmpeg wrote into it (a clean-up job, a volume unmounted): the staged file
    # was then opened again and a bare FileNotFoundError naming the staging folder came out of label().
    import labeler.watermark.video as video

    out = tmp_path / "gone"
    out.mkdir()
    real = video.drop_derived_keys

    def folder_removed(path: str) -> None:
        shutil.rmtree(out)
        real(path)

    monkeypatch.setattr(video, "drop_derived_keys", folder_removed)
    with pytest.raises(LabelerError) as info:
        label(SAMPLES / "clip.mp4", RECORDS[0], dst=out / "clip.mp4", layers="watermark,metadata",
              key=KEYS[0])
    assert str(info.value) == f"output folder {out} was removed while labeling"
    assert not out.exists()


def test_staged_file_gone_names_the_output(tmp_path, private_tmp, monkeypatch):
    import labeler.watermark.video as video

    real = video.drop_derived_keys

    def staged_gone(path: str) -> None:
        os.unlink(path)  # the staged output, under the staging folder: as a full or failing disk may
        real(path)

    monkeypatch.setattr(video, "drop_derived_keys", staged_gone)
    dst = tmp_path / "clip.mp4"
    with pytest.raises(LabelerError) as info:
        label(SAMPLES / "clip.mp4", RECORDS[0], dst=dst, layers="watermark", key=KEYS[0])
    assert str(info.value) == f"cannot write {dst}: No such file or directory"
    assert os.listdir(tmp_path) == ["tmp"]  # no output, no staging folder


def test_encoder_failing_mid_stream_leaves_no_ffmpeg_while_the_error_is_held(tmp_path, private_tmp,
                                                                           monkeypatch):
    # The streamed audio rewrite decodes with one ffmpeg and encodes with another; when the encoder
    # failed, the decoder's generator stayed reachable from the exception's traceback (a closure in the
    # rewriter's frame), so a service that kept the exception (an error log, a retry queue) kept an
    # unreaped ffmpeg too, even through gc.collect().
    import gc

    import labeler.media.ffmpeg as ff

    monkeypatch.setattr(ff, "reproducible", lambda path: ["-no_such_option_for_this_test"])
    before = _children()
    held = []
    for layers in ("watermark", "visible", "watermark,visible,metadata"):
        with pytest.raises(LabelerError) as info:
            label(SAMPLES / "speech.mp3", RECORDS[0], dst=tmp_path / f"{len(held)}.mp3", layers=layers,
                  key=KEYS[0])
        assert "\n" not in str(info.value)
        held.append(info.value)
    gc.collect()
    assert _children() - before == set()
    assert os.listdir(tmp_path) == ["tmp"]
