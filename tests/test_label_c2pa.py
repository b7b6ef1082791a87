"""All three implicit layers through the CLI: watermark, metadata, C2PA; verify with and without anchors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, run_cli, seeded_key_file


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("c2pa")
    proc = run_cli("keys", "init", str(base / "pki"))
    assert proc.returncode == 0, proc.stderr
    assert "for testing only" in proc.stderr
    seeded_key_file(base / "wm.key", "test_label_c2pa-1")
    pki = base / "pki"
    paths = {"chain": pki / "signer-chain.pem", "key": pki / "signer.key.pem",
             "anchor": pki / "trust-anchors.pem", "wm": base / "wm.key", "base": base}
    for name in ("chain", "key", "anchor"):
        assert paths[name].exists(), f"keys init did not write {paths[name].name}"
    return paths


def sign_args(setup) -> list[str]:
    return ["--sign-cert", str(setup["chain"]), "--sign-key", str(setup["key"])]


def verify_json(*args: str) -> dict:
    proc = run_cli("verify", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", ["photo.jpg", "speech.mp3", "clip.mp4"])
def test_all_layers_then_verify(setup, name):
    out = setup["base"] / f"all-{name}"
    layers = "watermark,metadata,c2pa" if name.endswith(".jpg") else "metadata,c2pa"
    extra = ["--key-file", str(setup["wm"])] if name.endswith(".jpg") else []
    run_cli("label", str(SAMPLES / name), str(out), "--producer", PRODUCER, "--produce-id", f"c-{name}",
            "--layers", layers, *extra, *sign_args(setup), check=True)
    trusted = verify_json(str(out), "--trust-anchors", str(setup["anchor"]), *extra)
    c2pa = trusted["layers"]["c2pa"]
    assert c2pa["state"] == "Trusted" and c2pa["ai_generated"] is True
    assert c2pa["aigc_fields"] == trusted["layers"]["metadata"]["fields"]
    assert trusted["verdict"] == "confirmed" and trusted["warnings"] == []
    if extra:
        assert c2pa["soft_binding"]["payload"] == trusted["layers"]["watermark"]["payload"]
    untrusted = verify_json(str(out))["layers"]["c2pa"]
    assert untrusted["state"] == "Valid" and "signingCredential.untrusted" in untrusted["codes"]


def test_c2pa_alone_decides_when_metadata_is_gone(setup, tmp_path):
    # Sign without the metadata layer: the C2PA manifest is the only declaration.
    out = tmp_path / "signed.png"
    run_cli("label", str(SAMPLES / "photo.png"), str(out), "--producer", PRODUCER, "--produce-id", "p-1",
            "--layers", "c2pa", *sign_args(setup), check=True)
    report = verify_json(str(out))
    assert report["layers"]["metadata"]["present"] is False
    assert report["verdict"] == "confirmed"
    assert report["reasons"][0].startswith("C2PA manifest (Valid")
    assert report["warnings"] == [
        "the C2PA manifest carries an AIGC assertion but the file has no metadata label"
    ]


def test_relabel_after_signing_breaks_and_is_reported(setup, tmp_path):
    signed = tmp_path / "signed.jpg"
    run_cli("label", str(SAMPLES / "photo.jpg"), str(signed), "--producer", PRODUCER, "--produce-id", "orig",
            "--layers", "metadata,c2pa", *sign_args(setup), check=True)
    changed = tmp_path / "changed.jpg"
    done = run_cli("label", str(signed), str(changed), "--producer", PRODUCER, "--produce-id", "changed",
                   check=True)
    # label says beforehand what it undoes: the manifest's hash, and the label it replaces
    assert "the file's C2PA manifest will no longer match its bytes" in done.stderr
    assert "replaces the file's existing AIGC label" in done.stderr and "'orig'" in done.stderr
    report = verify_json(str(changed))
    assert report["layers"]["c2pa"]["state"] == "Invalid"
    assert any("dataHash.mismatch" in code for code in report["layers"]["c2pa"]["codes"])
    assert any("differs from the metadata label in ProduceID" in w for w in report["warnings"])


def test_c2pa_errors_are_one_line(setup, tmp_path):
    out = tmp_path / "o.jpg"
    proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(out), "--producer", PRODUCER, "--produce-id", "x",
                   "--layers", "metadata,c2pa")
    assert proc.returncode == 2 and "needs a signer" in proc.stderr
    proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(out), "--producer", PRODUCER, "--produce-id", "x",
                   "--layers", "metadata,c2pa", "--sign-cert", str(setup["chain"]))
    assert proc.returncode == 2 and "go together" in proc.stderr
    proc = run_cli("verify", str(SAMPLES / "photo.jpg"), "--trust-anchors", str(tmp_path / "missing.pem"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == []
    again = run_cli("keys", "init", str(setup["base"] / "pki"))
    assert again.returncode == 2 and "not overwriting" in again.stderr


def test_reports_with_c2pa_match_schema(setup, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "report.schema.json").read_text())
    signed = tmp_path / "s.jpg"
    layers = ["--layers", "watermark,metadata,c2pa", "--key-file", str(setup["wm"])]
    run_cli("label", str(SAMPLES / "photo.jpg"), str(signed), "--producer", PRODUCER, "--produce-id", "s",
            *layers, *sign_args(setup), check=True)
    proc = run_cli("verify", "--json", "--key-file", str(setup["wm"]), str(signed), str(SAMPLES / "clip.mp4"))
    for line in proc.stdout.splitlines():
        jsonschema.validate(json.loads(line), schema)


def test_relabel_notes_only_when_something_is_undone(setup, tmp_path):
    """The same label again, or a file without a manifest: no such warning; re-signing (c2pa layer) with
    the same label: none either (the old manifest becomes the parent ingredient)."""
    signed = tmp_path / "signed.jpg"
    run_cli("label", str(SAMPLES / "photo.jpg"), str(signed), "--producer", PRODUCER, "--produce-id", "same",
            "--layers", "metadata,c2pa", *sign_args(setup), check=True)
    again = run_cli("label", str(signed), str(tmp_path / "again.jpg"), "--producer", PRODUCER,
                    "--produce-id", "same", "--layers", "metadata,c2pa", *sign_args(setup), check=True)
    assert "warning" not in again.stderr
    plain = run_cli("label", str(SAMPLES / "photo.jpg"), str(tmp_path / "plain.jpg"), "--producer", PRODUCER,
                    "--produce-id", "p", check=True)
    assert "warning" not in plain.stderr


def test_pixel_layer_on_a_signed_file_says_the_manifest_is_dropped(setup, tmp_path):
    """A watermark on a signed JPEG drops the manifest (Pillow writes no APP11), but the warning said it
    would be 'Invalid' and verify then showed no manifest at all (QA)."""
    signed = tmp_path / "signed.jpg"
    run_cli("label", str(SAMPLES / "photo.jpg"), str(signed), "--producer", PRODUCER, "--produce-id", "orig",
            "--layers", "metadata,c2pa", *sign_args(setup), check=True)
    marked = tmp_path / "marked.jpg"
    done = run_cli("label", str(signed), str(marked), "--producer", PRODUCER, "--produce-id", "orig",
                   "--layers", "watermark", "--key-file", str(setup["wm"]), check=True)
    assert "the watermark layer re-encodes the file: the manifest is dropped" in done.stderr
    assert verify_json(str(marked))["layers"]["c2pa"]["present"] is False


def test_resigning_through_label_names_the_parent_after_the_input(setup, tmp_path):
    """With metadata before c2pa the signer reads a staged copy: the parent ingredient was titled with
    the copy's name (``0.jpg``), not the input's (QA, investigator pass)."""
    signed = tmp_path / "first-signed.jpg"
    run_cli("label", str(SAMPLES / "photo.jpg"), str(signed), "--producer", PRODUCER, "--produce-id", "p1",
            "--layers", "metadata,c2pa", *sign_args(setup), check=True)
    again = tmp_path / "again.jpg"
    run_cli("label", str(signed), str(again), "--producer", PRODUCER, "--produce-id", "p1",
            "--layers", "metadata,c2pa", *sign_args(setup), check=True)
    ingredients = verify_json(str(again))["layers"]["c2pa"]["ingredients"]
    assert [i["title"] for i in ingredients if i["relationship"] == "parentOf"] == ["first-signed.jpg"]
