"""`aigc batch label|verify` and `aigc propagate` through the CLI (the runner itself: test_batch.py)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, run_cli, seeded_key_file

from labeler.provenance.store import open_store


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


def test_batch_rerun_keeps_journaled_failures_failed(tmp_path):
    """A re-run skipped the journaled failures and said "0 done (nothing new)" with exit 0, as if the
    archive were clean: it exits 2 and says how many files still stand failed and how to redo them."""
    src, dst, report = tmp_path / "src", tmp_path / "dst", tmp_path / "report.jsonl"
    src.mkdir()
    shutil.copy(SAMPLES / "photo.png", src / "good.png")
    shutil.copy(SAMPLES / "photo.jpg", src / "good.jpg")
    (src / "notes.txt").write_text("not media\n")
    (src / "cut.png").write_bytes((SAMPLES / "photo.png").read_bytes()[:2000])
    label = ("batch", "label", str(src), str(dst), "--producer", PRODUCER, "--workers", "2", "--no-progress")
    first = run_cli(*label)
    assert first.returncode == 2 and "error 2, ok 2" in first.stderr, first.stderr
    again = run_cli(*label)
    assert again.returncode == 2, again.stderr
    assert "4 skipped (2 still failed from an earlier run: --retry-errors redoes them)" in again.stderr
    verify = ("batch", "verify", str(src), "--report", str(report), "--workers", "2", "--no-progress")
    assert run_cli(*verify).returncode == 2
    again = run_cli(*verify)
    assert again.returncode == 2 and "2 still failed from an earlier run" in again.stderr, again.stderr
    # once the failures are gone from SRC (and redone), nothing stands failed
    (src / "notes.txt").unlink()
    (src / "cut.png").unlink()
    clean = run_cli(*label)
    assert clean.returncode == 0 and "still failed" not in clean.stderr, clean.stderr


@pytest.mark.parametrize("command", [("batch", "label", "s3://bucket/in", "out", "--producer", PRODUCER,
                                      "--produce-id", "u-1"),
                                     ("batch", "verify", "gs://bucket/in", "--report", "r.jsonl")])
def test_batch_src_url_is_refused_with_the_documented_line(command, tmp_path, monkeypatch):
    # docs/batch.md: a URL is refused with "URLs are not supported yet"; click's exists check answered
    # "Directory 's3://bucket/in' does not exist." for SRC before the runner could say so.
    monkeypatch.chdir(tmp_path)
    proc = run_cli(*command)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f"aigc: error: SRC {command[2]}: URLs are not supported yet")
    assert list(tmp_path.iterdir()) == []  # nothing written
    missing = run_cli("batch", "verify", str(tmp_path / "nope"), "--report", "r.jsonl")
    assert missing.returncode == 2 and "SRC is not a folder" in missing.stderr


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


def test_batch_label_gives_every_option_group_to_the_workers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the manifest store is given relative to this folder
    seeded_key_file(Path("wm.key"), "test_cli_batch-1")
    run_cli("keys", "init", "pki", check=True)
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    shutil.copy(SAMPLES / "photo.png", src / "sub" / "a.png")
    shutil.copy(SAMPLES / "photo.jpg", src / "b.jpg")
    looks = ["--producer", PRODUCER, "--layers", "watermark,visible,metadata", "--key-file", "wm.key",
             "--watermark-method", "dwt", "--text", "AI合成", "--position", "top-left", "--quality", "80"]
    run_cli("batch", "label", str(src), str(dst), "--produce-id", "b-{path_hash}", *looks, "--workers", "2",
            "--no-progress", check=True)
    # Each output is byte for byte what `aigc label` writes with the same options and ID.
    for rel in ("sub/a.png", "b.jpg"):
        one = tmp_path / f"one{Path(rel).suffix}"
        path_hash = hashlib.sha256(rel.encode()).hexdigest()[:16]
        run_cli("label", str(src / rel), str(one), "--produce-id", f"b-{path_hash}", *looks, "--overwrite",
                check=True)
        assert (dst / rel).read_bytes() == one.read_bytes(), rel
    # The signer (rebuilt in each worker from its paths) and the store (a path relative to here).
    signed, report = tmp_path / "signed", tmp_path / "report.jsonl"
    run_cli("batch", "label", str(src), str(signed), "--producer", PRODUCER, "--layers",
            "watermark,metadata,c2pa", "--key-file", "wm.key", "--sign-cert", "pki/signer-chain.pem",
            "--sign-key", "pki/signer.key.pem", "--manifest-store", "manifests.db", "--workers", "2",
            "--no-progress", check=True)
    run_cli("batch", "verify", str(signed), "--report", str(report), "--key-file", "wm.key",
            "--trust-anchors", "pki/trust-anchors.pem", "--no-visible", "--no-progress", check=True)
    reports = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(reports) == 2 and all(r["layers"]["c2pa"]["state"] == "Trusted" for r in reports)
    assert all(r["verdict"] == "confirmed" and r["layers"]["watermark"]["present"] for r in reports)
    assert open_store(tmp_path / "manifests.db", readonly=True).count() == 2
