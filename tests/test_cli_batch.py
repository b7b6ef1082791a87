"""`aigc batch label|verify` and `aigc propagate` through the CLI (the runner itself: test_batch.py)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, run_cli


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_batch_label_verify_resume(tmp_path):
    src, dst, report = tmp_path / "src", tmp_path / "dst", tmp_path / "report.jsonl"
    (src / "deep" / "er").mkdir(parents=True)
    for name in ("photo.jpg", "speech.mp3", "clip.mp4"):
        shutil.copy(SAMPLES / name, src / "deep" / name)
    shutil.copy(SAMPLES / "photo.png", src / "deep" / "er" / "图 片.png")
    (src / "empty.wav").write_bytes(b"")
    before = tree(src)
    proc = run_cli("batch", "label", str(src), str(dst), "--producer", PRODUCER,
                   "--produce-id", "b-{path_hash}", "--workers", "2", "--no-progress")
    assert proc.returncode == 2, proc.stderr  # one bad file
    assert "Traceback" not in proc.stderr and "error 1, ok 4" in proc.stderr
    assert tree(src) == before
    journal = [json.loads(line) for line in (dst / ".aigc-journal.jsonl").read_text().splitlines()]
    failed = [j for j in journal if j.get("status") == "error"]
    assert len(journal) == 5 and len(failed) == 1 and "empty" in json.dumps(failed[0])
    proc = run_cli("batch", "verify", str(dst), "--report", str(report), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    reports = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(r["verdict"] for r in reports) == ["confirmed"] * 4
    ids = {r["layers"]["metadata"]["fields"]["ProduceID"] for r in reports}
    assert len(ids) == 4 and all(i.startswith("b-") for i in ids)
    again = run_cli("batch", "verify", str(dst), "--report", str(report), "--no-progress")
    assert again.returncode == 0 and "4 skipped" in again.stderr
    assert len(report.read_text().splitlines()) == 4


def test_propagate_cli(tmp_path):
    labeled = tmp_path / "l.jpg"
    run_cli("label", str(SAMPLES / "photo.jpg"), str(labeled), "--producer", PRODUCER, "--produce-id", "p-1",
            check=True)
    out = tmp_path / "platform.jpg"
    proc = run_cli("propagate", str(labeled), str(out), "--propagator", "platformX", "--propagate-id", "px-9")
    assert proc.returncode == 0 and "propagated" in proc.stdout
    fields = json.loads(run_cli("verify", "--json", str(out)).stdout)["layers"]["metadata"]["fields"]
    assert (fields["ContentProducer"], fields["ProduceID"]) == (PRODUCER, "p-1")
    assert (fields["ContentPropagator"], fields["PropagateID"]) == ("platformX", "px-9")
    declared = tmp_path / "declared.png"
    run_cli("propagate", str(SAMPLES / "photo.png"), str(declared), "--propagator", "platformX",
            "--propagate-id", "px-10", "--declared-ai", check=True)
    assert json.loads(run_cli("verify", "--json", str(declared)).stdout)["verdict"] == "possible"


@pytest.mark.parametrize(("spec", "expected"), [
    ("store.db", "{cwd}/store.db"),
    ("sqlite:///store.db", "sqlite:///{cwd}/store.db"),
    ("sqlite:////var/store.db", "sqlite:////var/store.db"),
    ("postgresql://user@db.example/manifests", "postgresql://user@db.example/manifests"),
    ("https://resolver.example/v1", "https://resolver.example/v1"),
    (None, None),
])
def test_batch_and_serve_give_workers_an_absolute_manifest_store(spec, expected, tmp_path, monkeypatch):
    from labeler.cli import _absolute_store

    monkeypatch.chdir(tmp_path)
    # Workers may run in another folder; a URL is not a path (it was once joined to the folder).
    assert _absolute_store(spec) == (expected.format(cwd=os.getcwd()) if expected else None)
