"""A small hostile archive through the batch runner, and seeded fuzzing of the metadata readers.

The archive builder and the mutator are those of ``benchmarks/robustness_batch.py`` (which runs the same
checks at scale, through the CLI, with SIGKILLs); here ~90 files with every bad kind go through
:func:`labeler.batch.run_batch` in-process so the behaviour is tested in CI.
"""

from __future__ import annotations

import io
import json
import os
import random
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import CORPUS, PRODUCER, ROOT

from detectors import verify
from labeler.batch import LABEL_JOURNAL, BatchTask, RecordTemplate, VerifySettings, run_batch
from labeler.errors import CorruptFile
from labeler.metadata import read_labels, riff

sys.path.insert(0, str(ROOT / "benchmarks"))
import robustness_batch as rb  # noqa: E402


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    # samples/ and formats converted from them: every supported container, small.
    return rb.make_bases(tmp_path_factory.mktemp("bases"), None)


@pytest.fixture
def archive(tmp_path: Path, bases: list[Path]) -> rb.Archive:
    corpus = CORPUS if CORPUS.is_dir() else None  # adds the provenance/ fixtures when present
    return rb.build_archive(tmp_path, bases, 16, corpus)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_archive_good_files_labeled_bad_files_explained(archive: rb.Archive, tmp_path: Path) -> None:
    kinds = Counter(e.kind for e in archive.entries.values())
    assert kinds["bad"] >= 40 and kinds["good"] >= 20 and kinds["hostile"] >= 9
    before = rb.fingerprint(archive.src)
    dst = tmp_path / "dst"
    task = BatchTask("label", os.fspath(archive.src), os.fspath(dst),
                     RecordTemplate(PRODUCER, rb.ID_TEMPLATE))
    summary = run_batch(task, workers=2, progress=False)
    assert not summary.interrupted

    raw = (dst / LABEL_JOURNAL).read_bytes()
    assert raw.endswith(b"\n")
    records = lines(dst / LABEL_JOURNAL)
    by_path = {r["path"]: r for r in records}
    assert len(records) == len(by_path) == len(archive.entries)  # one line per file, none twice
    assert set(by_path) == set(archive.entries)
    for rel, entry in archive.entries.items():
        rec = by_path[rel]
        if entry.kind == "good":
            assert rec["status"] == "ok", (entry, rec)
            assert rec["produce_id"] == rb.expected_produce_id(rel)
        elif entry.kind == "bad":
            assert rec["status"] == "error", (entry, rec)
        if rec["status"] == "error":
            assert rec["error"] and "\n" not in rec["error"], (entry, rec)
            assert "internal error" not in rec["error"], (entry, rec)
    loops = [by_path[r]["error"] for r, e in archive.entries.items() if "loop" in e.what or "cycle" in e.what]
    assert len(loops) == 4 and all("symlink loop" in why for why in loops)
    assert "not a regular file" in by_path["bad/pipe.wav"]["error"]
    assert "does not fit" in by_path["bad/wrong extension/png as.jpg"]["error"]

    # Outputs exist exactly for the labeled files: nothing partial, no temporary leftovers.
    labeled = {rel for rel, r in by_path.items() if r["status"] == "ok"}
    assert rb.outputs(dst) == labeled
    assert rb.leftovers(dst) == []
    assert rb.fingerprint(archive.src) == before  # content, mode and mtime of every input

    report = tmp_path / "verify.jsonl"
    run_batch(BatchTask("verify", os.fspath(dst), verify=VerifySettings(visible=False)), workers=2,
              journal_path=report, progress=False)
    reports = {r["batch"]["path"]: r for r in lines(report)}
    assert set(reports) == labeled
    for rel, rep in reports.items():
        assert rep["verdict"] == "confirmed", rep
        assert rb.produce_id_of(rep) == rb.expected_produce_id(rel)

    again = run_batch(task, workers=1, progress=False)
    assert again.done == 0 and again.skipped == len(archive.entries)
    assert rb.fingerprint(archive.src) == before


def test_archive_verify_reads_or_explains_every_file(archive: rb.Archive, tmp_path: Path) -> None:
    report = tmp_path / "src.jsonl"
    run_batch(BatchTask("verify", os.fspath(archive.src), verify=VerifySettings(visible=False)), workers=2,
              journal_path=report, progress=False)
    reports = {r["batch"]["path"]: r for r in lines(report)}
    assert set(reports) == set(archive.entries)
    for rel, entry in archive.entries.items():
        rep = reports[rel]
        assert "internal error" not in json.dumps(rep, ensure_ascii=False), rep
        if entry.kind == "good":
            assert not rep["errors"] and rep["verdict"] == "none", rep
        elif entry.kind == "bad":
            # verify goes by content: a wrong extension is only a warning there, and so is a PNG cut in
            # its picture data, read as far as it goes as a JPEG is ("damaged png file: ...").
            assert rep["errors"] or any("extension" in w or w.startswith("damaged ")
                                        for w in rep["warnings"]), rep


def test_header_only_wav_is_corrupt_not_unlabeled(tmp_path: Path) -> None:
    # Found by the archive benchmark: 16 bytes of a WAV verified as a readable file with no label.
    head = (ROOT / "samples" / "speech.wav").read_bytes()[:16]
    for data in (head, head[:12]):
        with pytest.raises(CorruptFile, match="truncated"):
            riff.read(io.BytesIO(data))
    path = tmp_path / "cut.wav"
    path.write_bytes(head)
    with pytest.raises(CorruptFile):
        read_labels(path)
    assert "truncated" in verify(path, visible=False).errors[0]


def test_seeded_mutants_never_crash_the_readers(tmp_path: Path, bases: list[Path]) -> None:
    seeds = rb.fuzz_seeds(tmp_path / "seeds", bases, None)
    assert {ext for ext, _ in seeds} >= {".jpg", ".png", ".webp", ".tiff", ".gif", ".wav", ".mp3", ".flac",
                                         ".m4a", ".mp4", ".mov"}
    rng = random.Random(20251123)
    mutator = rb.Mutator([s for _, s in seeds], rng)
    outcomes: Counter[str] = Counter()
    failures = []
    for n in range(300):
        ext, seed = seeds[n % len(seeds)]
        data, ops = mutator.mutate(seed)
        path = tmp_path / f"case{ext}"
        path.write_bytes(data)
        errs = rb.fuzz_one(path, tmp_path, write=n % 3 == 0, outcomes=outcomes)
        failures += [f"{ext} {ops}: {e.splitlines()[0]}" for e in errs]
    assert failures == []
    # The mutants reach the label parsers, not only the header checks.
    assert outcomes["label"] > 30 and outcomes["rejected"] > 30, outcomes
