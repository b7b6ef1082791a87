"""QA (audio and video watermark through the higher-level paths): a batch label warns, as ``aigc label``
does, when the mark it wrote cannot be read back; a stripped video's soundtrack, alone or as what is
left of the mark in a video whose frames lost it, finds the video's manifest in the store again."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, run_ffmpeg, seeded_key

from detectors import verify
from detectors.read_back import UNREAD_WATERMARK_NOTE
from labeler import AIGCLabel, label_file
from labeler.batch import BatchTask, RecordTemplate
from labeler.batch.jobs import process_file
from labeler.options import LabelOptions, WatermarkOptions
from labeler.provenance.c2pa_sign import local_signer
from labeler.provenance.pki import init_test_pki
from labeler.watermark import payload_from_produce_id

KEY = seeded_key("qa-av-paths-s36")


def _label_task(src: Path, dst: Path) -> BatchTask:
    options = LabelOptions(layers=("watermark", "metadata"), watermark=WatermarkOptions(key=KEY))
    return BatchTask(kind="label", src_root=str(src), dst_root=str(dst),
                     record=RecordTemplate(producer=PRODUCER), options=options).check()


def _journal_line(task: BatchTask, rel: str) -> dict:
    stat = (Path(task.src_root) / rel).stat()
    return process_file(task, rel, stat.st_size, stat.st_mtime_ns)


def test_batch_label_warns_when_the_audio_mark_does_not_read_back(tmp_path: Path) -> None:
    """A held tone labeled alone (``aigc label``, ``/v1/label``) is warned about: its mark cannot be read
    back. ``aigc batch label`` journaled it ``ok`` with ``warnings: []``, and verify then found no mark."""
    src = tmp_path / "src"
    src.mkdir()
    # a held tone in Ogg Vorbis: written with the mark, which the Vorbis re-encode leaves unreadable
    run_ffmpeg("-f", "lavfi", "-i", "sine=f=500:d=3", "-c:a", "libvorbis", str(src / "tone.ogg"))
    (src / "speech.wav").write_bytes((SAMPLES / "speech.wav").read_bytes())
    task = _label_task(src, tmp_path / "dst")
    tone = _journal_line(task, "tone.ogg")
    assert tone["status"] == "ok" and tone["layers"] == ["watermark", "metadata"], tone
    assert verify(tmp_path / "dst" / "tone.ogg", key=KEY, layers="watermark").watermark["present"] is False
    assert tone["warnings"] == [UNREAD_WATERMARK_NOTE]
    speech = _journal_line(task, "speech.wav")  # a mark that reads back: no warning
    assert speech["status"] == "ok" and speech["warnings"] == [], speech


@pytest.fixture(scope="module")
def labeled_clip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """samples/clip.mp4 (320 x 240, 4 s, AAC soundtrack) labeled with watermark, metadata and C2PA,
    its manifest kept in a store."""
    d = tmp_path_factory.mktemp("av-durable-s36")
    pki = init_test_pki(d / "pki")
    store = d / "manifests.db"
    out = d / "clip.labeled.mp4"
    label_file(SAMPLES / "clip.mp4", out, AIGCLabel(PRODUCER, "s36-av-clip"),
               layers="watermark,metadata,c2pa", key=KEY, signer=local_signer(pki.chain, pki.signer_key),
               manifest_store=str(store))
    return {"dir": d, "out": out, "store": str(store), "anchors": [str(pki.trust_anchor)]}


@pytest.mark.parametrize("case", ["soundtrack-m4a", "frames-lost"])
def test_a_stripped_videos_soundtrack_recovers_the_videos_manifest(labeled_clip: dict, case: str) -> None:
    """The soundtrack carries the video's payload under the same key, but the manifest is stored under the
    video soft binding only: the lookup for an audio read asked for ``aigc-labeler.wm.audio.1`` alone, so
    the soundtrack ripped to AAC 64k, or the video shrunk until only its soundtrack kept the mark, was
    "watermark only" with the manifest sitting in the store."""
    d = labeled_clip["dir"]
    if case == "soundtrack-m4a":
        stripped = d / "soundtrack.m4a"
        run_ffmpeg("-i", str(labeled_clip["out"]), "-vn", "-map_metadata", "-1", "-c:a", "aac", "-b:a", "64k",
                   str(stripped))
    else:
        stripped = d / "tiny.mp4"
        # frames shrunk to 48 x 36: the video mark is gone, the soundtrack's is not
        run_ffmpeg("-i", str(labeled_clip["out"]), "-map_metadata", "-1", "-vf", "scale=48:36",
                   "-c:v", "libx264", "-crf", "28", "-c:a", "aac", "-b:a", "64k", str(stripped))
    report = verify(stripped, key=KEY, trust_anchors=labeled_clip["anchors"],
                    manifest_store=labeled_clip["store"], visible=False)
    mark = report.watermark
    assert mark["present"] and mark["method"] == "audio", mark
    assert mark["payload"] == payload_from_produce_id("s36-av-clip").hex()
    assert report.metadata is None or not report.metadata.present
    c2pa = report.c2pa
    assert c2pa["present"] and c2pa["source"] == "store", c2pa
    assert c2pa["state"] == "Trusted" and c2pa["hard_binding"] == "mismatch" and c2pa["candidates"] == 1
    assert c2pa["soft_binding"]["method"] == "video" and c2pa["soft_binding"]["payload"] == mark["payload"]
    assert any("recovered from the manifest store" in reason for reason in report.reasons), report.reasons
