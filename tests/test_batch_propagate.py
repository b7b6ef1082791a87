"""`aigc batch propagate`: the platform step (Labeling Measures Art. 6) over a folder tree, on the batch
machinery: every outcome journaled and counted, the PropagateID from a template or an ID list, resume
after a kill, bad files journaled, Dask."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PRODUCER, ROOT, SAMPLES, run_cli, seeded_key_file
from PIL import Image

from labeler.batch import (
    LABEL_JOURNAL,
    BatchTask,
    PropagateSettings,
    RecordTemplate,
    read_ids,
    read_journal,
    run_batch,
)
from labeler.errors import LabelerError
from labeler.metadata import read_labels
from labeler.record import parse_label

PLATFORM = "001191110102MACQD9K64099999"


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def by_path(journal: Path) -> dict[str, dict]:
    return {rec["path"]: rec for rec in lines(journal)}


def checksums(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def fields(path: Path) -> dict:
    _, found = read_labels(path)
    return parse_label(found[0].raw).fields


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Uploads made once: samples labeled with `aigc label`, one watermarked only, one plain."""
    root = tmp_path_factory.mktemp("media")
    key = seeded_key_file(root / "wm.key")
    for name, sample in (("labeled.jpg", "photo.jpg"), ("labeled.mp3", "speech.mp3")):
        run_cli("label", str(SAMPLES / sample), str(root / name), "--producer", PRODUCER,
                "--produce-id", f"gen-{name}", "--layers", "metadata", check=True)
    run_cli("label", str(SAMPLES / "photo.jpg"), str(root / "watermarked.jpg"), "--layers", "watermark",
            "--key-file", str(key), "--producer", PRODUCER, "--produce-id", "gen-wm", check=True)
    Image.new("RGB", (160, 120), (90, 120, 200)).save(root / "plain.jpg", quality=90)
    return {"key": key, **{p.name: p for p in root.iterdir() if p.suffix != ".key"}}


def make_src(root: Path, media: dict[str, Path], layout: dict[str, str]) -> Path:
    """SRC with ``layout`` (relative path -> media name, or bytes for a bad file)."""
    for rel, name in layout.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(name, bytes):
            (root / rel).write_bytes(name)
        else:
            shutil.copy(media[name], root / rel)
    return root


def task(src: Path, dst: Path, **settings) -> BatchTask:
    settings.setdefault("propagator", PLATFORM)
    if "ids_file" not in settings:
        settings.setdefault("propagate_id", "px-{path_hash}")
    return BatchTask("propagate", os.fspath(src), os.fspath(dst), propagate=PropagateSettings(**settings))


def test_every_outcome_journaled_and_counted_from_the_cli(media, tmp_path):
    src = make_src(tmp_path / "src", media, {
        "a/labeled.jpg": "labeled.jpg", "a/b/labeled.mp3": "labeled.mp3", "wm.jpg": "watermarked.jpg",
        "plain.jpg": "plain.jpg", "a/bad.jpg": b"this is text, not a JPEG\n"})
    before = checksums(src)
    dst = tmp_path / "dst"
    proc = run_cli("batch", "propagate", str(src), str(dst), "--propagator", PLATFORM, "--propagate-id",
                   "px-{stem}", "--key-file", str(media["key"]), "--workers", "2", "--no-progress")
    assert proc.returncode == 2, proc.stderr  # the bad file
    assert "Traceback" not in proc.stderr
    assert "propagate finished: 5 done (copied 1, error 1, propagated 2, traces 1)" in proc.stderr
    journal = by_path(dst / LABEL_JOURNAL)
    assert {rel: rec["outcome"] for rel, rec in journal.items()} == {
        "a/labeled.jpg": "propagated", "a/b/labeled.mp3": "propagated", "wm.jpg": "traces",
        "plain.jpg": "copied", "a/bad.jpg": None}
    bad = journal["a/bad.jpg"]
    assert bad["status"] == "error" and "unrecognised file content" in bad["error"]
    assert not (dst / "a/bad.jpg").exists()
    for rel in ("a/labeled.jpg", "a/b/labeled.mp3"):  # the producer's fields kept, the platform's added
        got = fields(dst / rel)
        producer = (got["ContentProducer"], got["ProduceID"], got["Label"])
        assert producer == (PRODUCER, f"gen-{Path(rel).name}", "1")
        assert (got["ContentPropagator"], got["PropagateID"]) == (PLATFORM, f"px-{Path(rel).stem}")
        assert journal[rel]["propagate_id"] == f"px-{Path(rel).stem}" and journal[rel]["status"] == "ok"
    traces = fields(dst / "wm.jpg")
    assert (traces["Label"], traces["ContentProducer"], traces["PropagateID"]) == ("3", PLATFORM, "px-wm")
    assert journal["wm.jpg"]["label"] == "3" and journal["wm.jpg"]["action"] == "labeled"
    assert (dst / "plain.jpg").read_bytes() == (src / "plain.jpg").read_bytes()
    assert checksums(src) == before  # inputs never modified
    # a re-run skips everything, and the bad file still stands failed
    again = run_cli("batch", "propagate", str(src), str(dst), "--propagator", PLATFORM, "--propagate-id",
                    "px-{stem}", "--key-file", str(media["key"]), "--no-progress")
    assert again.returncode == 2 and "0 done (nothing new), 5 skipped (1 still failed" in again.stderr


def test_declared_ai_gives_label_2_and_kept_outputs_need_the_same_task(media, tmp_path):
    src = make_src(tmp_path / "src", media, {"plain.jpg": "plain.jpg", "labeled.jpg": "labeled.jpg"})
    dst = tmp_path / "dst"
    first = run_batch(task(src, dst, declared_ai=True), workers=1, progress=False)
    assert first.counts == {"declared": 1, "propagated": 1}
    assert fields(dst / "plain.jpg")["Label"] == "2"
    # killed after the outputs were renamed into place but before their lines: found complete, kept
    (dst / LABEL_JOURNAL).unlink()
    kept = run_batch(task(src, dst, declared_ai=True), workers=1, progress=False)
    assert kept.counts == {"declared": 1, "propagated": 1}
    assert {r["status"] for r in lines(dst / LABEL_JOURNAL)} == {"kept"}
    # outputs another task wrote are not taken as this one's: refused, until --overwrite
    (dst / LABEL_JOURNAL).unlink()
    other = run_batch(task(src, dst, declared_ai=True, propagate_id="other-{path_hash}"), workers=1,
                      progress=False)
    assert other.counts == {"error": 2}
    assert all("exists" in r["error"] for r in lines(dst / LABEL_JOURNAL))
    redone = run_batch(task(src, dst, declared_ai=True, propagate_id="other-{path_hash}", overwrite=True),
                       workers=1, progress=False)
    assert redone.counts == {"declared": 1, "propagated": 1}
    assert fields(dst / "plain.jpg")["PropagateID"].startswith("other-")


def test_id_template_fields_and_a_bad_id_is_one_journaled_failure(media, tmp_path):
    src = make_src(tmp_path / "src", media, {"d/labeled.jpg": "labeled.jpg", "d/图片.jpg": "labeled.jpg"})
    dst = tmp_path / "dst"
    template = "{relpath}|{name}|{stem}|{path_hash}|{content_hash}"
    summary = run_batch(task(src, dst, propagate_id=template), workers=1, progress=False)
    assert summary.counts == {"propagated": 1, "error": 1}
    journal = by_path(dst / LABEL_JOURNAL)
    path_hash = hashlib.sha256(b"d/labeled.jpg").hexdigest()[:16]
    content_hash = hashlib.sha256((src / "d/labeled.jpg").read_bytes()).hexdigest()[:16]
    expected = f"d/labeled.jpg|labeled.jpg|labeled|{path_hash}|{content_hash}"
    assert journal["d/labeled.jpg"]["propagate_id"] == expected
    assert fields(dst / "d/labeled.jpg")["PropagateID"] == expected
    # a name outside Appendix E's characters makes a PropagateID that is refused, for that file only
    assert "PropagateID has characters outside" in journal["d/图片.jpg"]["error"]
    assert not (dst / "d/图片.jpg").exists()


def test_bad_templates_and_options_are_refused_before_anything_is_written(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SAMPLES / "photo.jpg", src / "photo.jpg")
    dst = tmp_path / "dst"
    for settings, words in (({"propagate_id": "{nope}"}, "unknown placeholder {nope}"),
                            ({"propagate_id": "has space {stem}"}, "PropagateID has characters outside"),
                            ({"propagate_id": "x", "ids_file": "ids.csv"}, "one of a PropagateID template"),
                            ({"propagator": "bad name"}, "ContentPropagator has characters outside")):
        with pytest.raises(LabelerError, match=words.replace("{", r"\{")):
            run_batch(task(src, dst, **settings), workers=1, progress=False)
    assert not dst.exists()
    proc = run_cli("batch", "propagate", str(src), str(dst), "--propagator", PLATFORM)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("aigc: error: give one of --propagate-id")
    assert not dst.exists()


def test_id_list_missing_id_is_a_journaled_failure_then_retried(media, tmp_path):
    src = make_src(tmp_path / "src", media, {"a.jpg": "labeled.jpg", "sub/b c.jpg": "labeled.jpg",
                                              "sub/c.mp3": "labeled.mp3"})
    ids = tmp_path / "ids.csv"
    ids.write_text("\ufeffpath,id\n# the platform's IDs\n./a.jpg,up-1\n\n\"sub/b c.jpg\",up-2\n",
                   encoding="utf-8")
    dst = tmp_path / "dst"
    first = run_batch(task(src, dst, ids_file=os.fspath(ids)), workers=2, progress=False)
    assert first.counts == {"propagated": 2, "error": 1} and first.errors == 1
    journal = by_path(dst / LABEL_JOURNAL)
    assert (journal["a.jpg"]["propagate_id"], journal["sub/b c.jpg"]["propagate_id"]) == ("up-1", "up-2")
    assert "no PropagateID for sub/c.mp3 in the ID list" in journal["sub/c.mp3"]["error"]
    assert not (dst / "sub/c.mp3").exists()  # never a made-up ID
    with open(ids, "a", encoding="utf-8") as handle:
        handle.write("sub/c.mp3,up-3\n")
    again = run_batch(task(src, dst, ids_file=os.fspath(ids)), workers=1, retry_errors=True, progress=False)
    assert (again.done, again.skipped, again.counts, again.errors) == (1, 2, {"propagated": 1}, 0)
    assert fields(dst / "sub/c.mp3")["PropagateID"] == "up-3"


def test_an_id_list_inside_src_is_not_an_upload(media, tmp_path):
    src = make_src(tmp_path / "src", media, {"a.jpg": "labeled.jpg"})
    (src / "ids.csv").write_text("a.jpg,up-1\n", encoding="utf-8")
    summary = run_batch(task(src, tmp_path / "dst", ids_file=os.fspath(src / "ids.csv")), workers=1,
                        progress=False)
    assert (summary.done, summary.counts) == (1, {"propagated": 1})
    assert not (tmp_path / "dst" / "ids.csv").exists()


@pytest.mark.parametrize(("text", "words"), [
    ("a.jpg,1\na.jpg,2\n", "row 2: a.jpg is listed twice with two IDs"),
    ("a.jpg,1,extra\n", "row 1: 3 cell(s), expected 2"),
    ("a.jpg,\n", "row 1: empty PropagateID"),
    ('"a.jpg,1\n', "not CSV"),
])
def test_bad_id_lists_are_refused_in_one_line(tmp_path, text, words):
    ids = tmp_path / "ids.csv"
    ids.write_text(text, encoding="utf-8")
    with pytest.raises(LabelerError, match=re.escape(words)):
        read_ids(ids)
    src = tmp_path / "src"
    src.mkdir()
    proc = run_cli("batch", "propagate", str(src), str(tmp_path / "dst"), "--propagator", PLATFORM,
                   "--ids", str(ids))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and words in proc.stderr
    assert not (tmp_path / "dst").exists()


def test_a_label_journal_is_not_taken_for_a_propagate_journal(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    shutil.copy(SAMPLES / "photo.jpg", src / "photo.jpg")
    run_batch(BatchTask("label", os.fspath(src), os.fspath(dst), RecordTemplate(PRODUCER)), workers=1,
              progress=False)
    journal = (dst / LABEL_JOURNAL).read_bytes()
    with pytest.raises(LabelerError, match="is not a batch propagate journal"):
        run_batch(task(src, dst), workers=1, progress=False)
    assert (dst / LABEL_JOURNAL).read_bytes() == journal


# -- interruption ----------------------------------------------------------------------------------------
def test_sigkill_then_resume_does_every_file_once(media, tmp_path):
    src = make_src(tmp_path / "src", media, {f"d{i % 3}/f{i:02d}.jpg": "labeled.jpg" for i in range(24)})
    dst = tmp_path / "dst"
    journal = dst / LABEL_JOURNAL
    code = (
        "from labeler.batch import BatchTask, PropagateSettings, run_batch; "
        f"t = BatchTask('propagate', {os.fspath(src)!r}, {os.fspath(dst)!r}, "
        f"propagate=PropagateSettings({PLATFORM!r}, 'k-{{stem}}')); run_batch(t, workers=1, progress=False)"
    )
    # Own session: the test kills the batch and its workers as one group, and nothing else.
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60  # a guard against a hung test, not a timing assertion
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.005)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with open(journal, "ab") as handle:  # a torn last line, as a kill in mid-write leaves it
        handle.write(b'{"path":"d0/f00.jpg","si')
    done_before, _, _ = read_journal(journal, kind="propagate")
    summary = run_batch(task(src, dst, propagate_id="k-{stem}"), workers=2, progress=False)
    assert 0 < len(done_before) < 24 and summary.skipped == len(done_before)
    records = lines(journal)  # whole JSON lines again
    assert sorted(r["path"] for r in records) == sorted(checksums(src))
    assert all(r["status"] in ("ok", "kept") and r["outcome"] == "propagated" for r in records)
    for rel in checksums(src):
        assert fields(dst / rel)["PropagateID"] == f"k-{Path(rel).stem}"
    assert [p for p in dst.rglob("*") if p.name.endswith(".part") or p.name.startswith(".aigc-")
            and p.name != LABEL_JOURNAL] == []


# -- Dask ------------------------------------------------------------------------------------------------
def test_dask_gives_the_pool_records(media, tmp_path):
    distributed = pytest.importorskip("distributed")
    import logging

    src = make_src(tmp_path / "src", media, {"a.jpg": "labeled.jpg", "b/c.mp3": "labeled.mp3",
                                              "b/bad.jpg": b"nope"})
    ids = tmp_path / "ids.csv"
    ids.write_text("a.jpg,id-a\nb/c.mp3,id-c\nb/bad.jpg,id-bad\n", encoding="utf-8")
    pool = run_batch(task(src, tmp_path / "pool", ids_file=os.fspath(ids)), workers=1, progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        summary = run_batch(task(src, tmp_path / "dask", ids_file=os.fspath(ids)), dask=client,
                            progress=False)
    assert summary.counts == pool.counts == {"propagated": 2, "error": 1}

    def comparable(root: Path) -> dict[str, dict]:
        out = {}
        for rel, rec in by_path(root / LABEL_JOURNAL).items():
            rec.pop("seconds")
            rec["dst"] = rec["dst"] and os.path.relpath(rec["dst"], root)  # absolute with --dask
            out[rel] = rec
        return out

    assert comparable(tmp_path / "dask") == comparable(tmp_path / "pool")
    for rel in ("a.jpg", "b/c.mp3"):
        assert (tmp_path / "dask" / rel).read_bytes() == (tmp_path / "pool" / rel).read_bytes()
