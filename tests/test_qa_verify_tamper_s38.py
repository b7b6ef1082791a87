"""QA (s38): ``aigc verify`` on files an investigator suspects: a C2PA manifest copied from a labeled file
onto other content names, in its soft binding, a watermark of the key given that the content does not
carry; the reasons say so (until 2026-12-07 nothing did: the only trace was the hash mismatch, and the
binding had to be compared with ``layers.watermark`` by hand).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, run_cli, seeded_key_file

NOT_FOUND = "the C2PA soft binding names a watermark of key {key} (payload {payload}) that was not found"
NOT_CHECKED = "not of the key given"


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(marker, start, end)`` of each JPEG marker segment up to the start of scan (SOS: to the end)."""
    out, i = [], 2
    while i < len(data):
        assert data[i] == 0xFF, f"not a marker at {i}"
        marker = data[i + 1]
        if marker == 0xDA:
            out.append((marker, i, len(data)))
            break
        end = i + 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
        out.append((marker, i, end))
        i = end
    return out


def transplant_manifest(signed: Path, target: Path, out: Path) -> None:
    """Copy the C2PA manifest (the APP11 JUMBF segments) of ``signed`` into ``target``, right after its
    SOI: what a forger does to lend an unlabeled picture another file's credentials."""
    src, dst = signed.read_bytes(), target.read_bytes()
    app11 = b"".join(src[a:b] for m, a, b in _segments(src) if m == 0xEB)
    assert app11, "the signed file holds no APP11 manifest"
    rest = b"".join(dst[a:b] for m, a, b in _segments(dst) if m != 0xEB)
    out.write_bytes(dst[:2] + app11 + rest)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("qa-tamper")
    run_cli("keys", "init", str(base / "pki"), check=True)
    key_a = seeded_key_file(base / "a.key", "test_qa_verify_tamper_s38-a")
    key_b = seeded_key_file(base / "b.key", "test_qa_verify_tamper_s38-b")
    signed = base / "signed.jpg"
    run_cli("label", str(SAMPLES / "photo.jpg"), str(signed), "--producer", PRODUCER,
            "--produce-id", "qa-s38-1", "--layers", "watermark,metadata,c2pa", "--key-file", str(key_a),
            "--sign-cert", str(base / "pki" / "signer-chain.pem"),
            "--sign-key", str(base / "pki" / "signer.key.pem"), check=True)
    forged = base / "forged.jpg"
    transplant_manifest(signed, SAMPLES / "photo.jpg", forged)
    return {"signed": signed, "forged": forged, "a": key_a, "b": key_b}


def verify_json(*args: str) -> dict:
    proc = run_cli("verify", "--json", "--no-visible", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_copied_manifest_whose_watermark_is_missing_is_named(case) -> None:
    report = verify_json(str(case["forged"]), "--key-file", str(case["a"]))
    c2pa, mark = report["layers"]["c2pa"], report["layers"]["watermark"]
    # the setting: a manifest that does not verify, its binding naming the key given, no mark of that key
    assert c2pa["state"] == "Invalid" and "assertion.dataHash.mismatch" in c2pa["codes"]
    binding = c2pa["soft_binding"]
    assert binding["key_id"] == mark["key_id"] and mark["checked"] and not mark["present"]
    expected = NOT_FOUND.format(key=binding["key_id"], payload=binding["payload"])
    assert any(r.startswith(expected) for r in report["reasons"]), report["reasons"]
    # a reason, not a contradiction: the verdict and confidence of docs/verdicts.md row 24 stand
    assert (report["verdict"], report["confidence"]) == ("possible", "low")
    assert not any(NOT_CHECKED in r for r in report["reasons"])


def test_other_key_and_the_genuine_file_get_no_such_line(case) -> None:
    other = verify_json(str(case["forged"]), "--key-file", str(case["b"]))
    assert any(NOT_CHECKED in r for r in other["reasons"])  # another key's binding: not checked
    assert not any("that was not found" in r for r in other["reasons"])
    genuine = verify_json(str(case["signed"]), "--key-file", str(case["a"]))
    assert genuine["layers"]["watermark"]["present"] and genuine["warnings"] == []
    assert not any("soft binding" in r for r in genuine["reasons"])
    # without a key the watermark was not looked for: nothing is said about it
    keyless = verify_json(str(case["forged"]))
    assert not any("soft binding" in r for r in keyless["reasons"])


def test_audio_contradictions_name_the_sound_not_pixels():
    """A WAV has no pixels: the contradictions about its watermark name what carried it."""
    from detectors.c2pa import C2paLayer
    from detectors.metadata import MetadataLayer
    from detectors.verdict import decide

    mark = {"present": True, "checked": True, "payload": "00" * 8, "p_value": 1e-20, "method": "audio",
            "matches_metadata": None, "key_id": "ab" * 8}
    manifest = C2paLayer(present=True, state="Valid", ai_generated=False, signer="test").to_dict()
    decision = decide(MetadataLayer(), mark, manifest)
    assert any("the sound samples carry the watermark" in c for c in decision.contradictions), decision
    assert not any("pixels" in c for c in decision.contradictions)
    picture = decide(MetadataLayer(), {**mark, "method": "dct"}, manifest)
    assert any("the pixels carry the watermark" in c for c in picture.contradictions)
