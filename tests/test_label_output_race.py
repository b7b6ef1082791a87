"""An output that appears while a label is being made is not replaced without ``overwrite``.

The "output exists" check runs before any work; a second writer given the same output (two threads of a
generation backend, two batch runs into one folder) could create it meanwhile, and the final rename then
replaced it silently: both callers were told they succeeded and one result was lost (10 of 10 trials of
two concurrent ``label`` calls, found 2026-12-07). The finished file is now linked into place, which
fails on an existing name (``labeler.atomic.place``).
"""

from __future__ import annotations

import os
import threading

import pytest
from conftest import SAMPLES

import labeler.pipeline
from labeler import AIGCLabel, label
from labeler.atomic import place
from labeler.errors import LabelerError

REC = AIGCLabel("001191110102MACQD9K64010000", "race-1")


def _appears_meanwhile(monkeypatch: pytest.MonkeyPatch, dst, content: bytes) -> None:
    """Make ``dst`` appear after the up-front checks, as another writer's output would."""
    real = labeler.pipeline.input_notes

    def notes(*args, **kwargs):
        dst.write_bytes(content)
        return real(*args, **kwargs)

    monkeypatch.setattr(labeler.pipeline, "input_notes", notes)


@pytest.mark.parametrize("layers", ["metadata", "watermark,metadata"])
def test_an_output_that_appeared_meanwhile_is_kept_and_the_label_refused(tmp_path, monkeypatch, layers):
    dst = tmp_path / "out.png"
    _appears_meanwhile(monkeypatch, dst, b"the other writer's output")
    with pytest.raises(LabelerError, match="exists"):
        label(SAMPLES / "photo.png", REC, dst=dst, layers=layers, key=b"k" * 32)
    assert dst.read_bytes() == b"the other writer's output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no staging folder or part file left


def test_with_overwrite_the_output_that_appeared_is_replaced(tmp_path, monkeypatch):
    dst = tmp_path / "out.png"
    _appears_meanwhile(monkeypatch, dst, b"old")
    label(SAMPLES / "photo.png", REC, dst=dst, layers="metadata", overwrite=True)
    assert dst.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_two_threads_labeling_to_one_output_one_succeeds_one_is_refused(tmp_path):
    dst = tmp_path / "out.png"
    barrier = threading.Barrier(2)
    outcome: dict[int, str] = {}

    def run(i: int) -> None:
        barrier.wait()
        try:
            label(SAMPLES / "photo.png", AIGCLabel("001191110102MACQD9K64010000", f"race-{i}"), dst=dst,
                  layers="metadata")
            outcome[i] = "ok"
        except LabelerError as exc:
            outcome[i] = "exists" if "exists" in str(exc) else str(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcome.values()) == ["exists", "ok"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_place_links_without_overwrite_and_replaces_with_it(tmp_path):
    staged, target = tmp_path / "staged", tmp_path / "target"
    staged.write_bytes(b"new")
    place(staged, target, overwrite=False)
    assert target.read_bytes() == b"new" and not staged.exists()
    staged.write_bytes(b"newer")
    with pytest.raises(LabelerError, match="exists"):
        place(staged, target, overwrite=False)
    assert target.read_bytes() == b"new"
    place(staged, target, overwrite=True)
    assert target.read_bytes() == b"newer" and not staged.exists()


def test_place_without_hard_links_still_refuses_an_existing_output(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(1, "Operation not permitted")  # EPERM: what a file system without links says

    monkeypatch.setattr(os, "link", no_links)
    staged, target = tmp_path / "staged", tmp_path / "target"
    staged.write_bytes(b"new")
    place(staged, target, overwrite=False)
    assert target.read_bytes() == b"new"
    staged.write_bytes(b"newer")
    with pytest.raises(LabelerError, match="exists"):
        place(staged, target, overwrite=False)


@pytest.mark.parametrize("name", ["0.png", "1.png", "out.png"])
def test_an_output_named_like_a_step_file_is_labeled(tmp_path, name):
    # the staged steps are named 0.png, 1.png...; the finished file has its own folder
    dst = tmp_path / name
    label(SAMPLES / "photo.png", REC, dst=dst, layers="watermark,visible,metadata", key=b"k" * 32)
    assert dst.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("layers", ["metadata", "watermark,visible,metadata"])
def test_a_failed_write_names_the_output_not_the_staged_file(tmp_path, monkeypatch, layers):
    """Every step writes inside a private staging folder; an error that names the file a step was
    writing (a full disk) says the output's path, the only one the user gave."""
    import labeler.metadata

    def full_disk(src, dst, *args, **kwargs):
        raise LabelerError(f"cannot write {dst}: No space left on device")

    monkeypatch.setattr(labeler.metadata, "write_label", full_disk)
    dst = tmp_path / "my photo.png"
    with pytest.raises(LabelerError) as err:
        label(SAMPLES / "photo.png", REC, dst=dst, layers=layers, key=b"k" * 32)
    assert str(err.value) == f"cannot write {dst}: No space left on device"
    assert list(tmp_path.iterdir()) == []  # no output, no staging folder left
