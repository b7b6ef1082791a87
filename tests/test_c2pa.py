"""C2PA layer: test PKI, signing every supported format, validation, tampering, re-signing, threads, and
the c2pa-rs reference fixtures in ../shared/corpus/provenance (EXPECTED.tsv)."""

from __future__ import annotations

import csv
import io
import os
import random
import re
import stat
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import CORPUS, PRODUCER, SAMPLES, corpus_path, ffmpeg_exe
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from detectors import verify
from detectors.c2pa import read_c2pa
from labeler import AIGCLabel, label_file
from labeler.errors import LabelerError
from labeler.provenance.c2pa_sign import (
    AIGC_ASSERTION,
    C2paSignError,
    callback_signer,
    local_signer,
    sign_file,
)
from labeler.provenance.pki import C2PA_CLAIM_SIGNING_EKU, init_test_pki

FORMATS = ("jpg", "png", "webp", "mp4", "mov", "m4a", "wav", "mp3", "flac")
HASH_MISMATCH = re.compile(r"^assertion\.(data|bmff|boxes)Hash\.mismatch$")
SOFT = {"method": "dct", "payload": "0123456789abcdef", "key_id": "00112233aabbccdd", "strength": 3.0}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return init_test_pki(tmp_path_factory.mktemp("pki") / "keys")


@pytest.fixture(scope="module")
def signer(pki):
    return local_signer(pki.chain, pki.signer_key)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """One small unlabeled file per format (samples/, plus WebP from Pillow and MOV/M4A from ffmpeg)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("inputs")
    out = {
        "jpg": SAMPLES / "photo.jpg",
        "png": SAMPLES / "photo.png",
        "mp4": SAMPLES / "clip.mp4",
        "wav": SAMPLES / "speech.wav",
        "mp3": SAMPLES / "speech.mp3",
        "flac": SAMPLES / "speech.flac",
    }
    with Image.open(SAMPLES / "photo.png") as im:
        im.convert("RGB").resize((320, 240)).save(folder / "photo.webp", quality=80)
    out["webp"] = folder / "photo.webp"
    ff = ffmpeg_exe()
    clip = str(SAMPLES / "clip.mp4")
    for args, name in ((["-c", "copy", "-f", "mov"], "clip.mov"), (["-vn", "-c:a", "copy"], "clip.m4a")):
        subprocess.run([ff, "-v", "error", "-i", clip, *args, str(folder / name)], check=True)
    out["mov"], out["m4a"] = folder / "clip.mov", folder / "clip.m4a"
    return out


def _label(produce_id: str = "c2pa-test-1") -> AIGCLabel:
    return AIGCLabel(content_producer=PRODUCER, produce_id=produce_id)


def _payload_offset(path: Path) -> int:
    """An offset inside the media payload (not the manifest, not metadata)."""
    data = path.read_bytes()
    if data[4:8] == b"ftyp":  # ISO-BMFF: the middle of mdat
        pos = 0
        while pos + 8 <= len(data):
            size, kind = struct.unpack(">I4s", data[pos : pos + 8])
            if size == 1:
                size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            if kind == b"mdat":
                return pos + size // 2
            pos += size
        raise AssertionError("no mdat")
    if data[:4] == b"RIFF":  # WAV / WebP: the middle of the data / image chunk
        pos = 12
        while pos + 8 <= len(data):
            kind, size = struct.unpack("<4sI", data[pos : pos + 8])
            if kind in (b"data", b"VP8 ", b"VP8L"):
                return pos + 8 + size // 2
            pos += 8 + size + (size & 1)
        raise AssertionError("no payload chunk")
    # JPEG, PNG, MP3, FLAC: the manifest and labels sit at the front; the last quarter is payload.
    return len(data) * 3 // 4


# -- PKI ------------------------------------------------------------------------------------------------
def test_pki_profile_and_permissions(pki):
    for key in (pki.root_key, pki.intermediate_key, pki.signer_key):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    chain = x509.load_pem_x509_certificates(pki.chain.read_bytes())
    leaf, inter = chain
    root = x509.load_pem_x509_certificate(pki.trust_anchor.read_bytes())
    assert leaf.issuer == inter.subject and inter.issuer == root.subject and leaf.issuer != leaf.subject
    public = leaf.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION in eku and C2PA_CLAIM_SIGNING_EKU in eku
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_pki_refuses_to_overwrite(pki, tmp_path):
    with pytest.raises(LabelerError, match="already holds a PKI"):
        init_test_pki(pki.directory)
    again = init_test_pki(tmp_path / "p")
    old = again.signer_key.read_bytes()
    init_test_pki(tmp_path / "p", overwrite=True)
    assert again.signer_key.read_bytes() != old
    assert stat.S_IMODE(os.stat(again.signer_key).st_mode) == 0o600


# -- sign + verify per format ---------------------------------------------------------------------------
@pytest.mark.parametrize("ext", FORMATS)
def test_sign_and_verify_every_format(ext, inputs, pki, signer, tmp_path):
    label = _label(f"c2pa-{ext}")
    labeled = tmp_path / f"labeled.{ext}"
    label_file(inputs[ext], labeled, label)
    before = labeled.read_bytes()
    signed = tmp_path / f"signed.{ext}"
    result = sign_file(labeled, signed, signer=signer, label=label, soft_binding=SOFT)
    assert labeled.read_bytes() == before  # the input is never modified
    assert result.manifest.startswith("urn:c2pa:") and not result.parent and result.bytes_added > 0
    assert not list(tmp_path.glob(".*.part"))

    trusted = read_c2pa(signed, trust_anchors=[str(pki.trust_anchor)]).to_dict()
    assert trusted["present"] and trusted["state"] == "Trusted", trusted
    assert trusted["codes"] == [] and trusted["ai_generated"] is True
    assert trusted["signer"] == "aigc-labeler test signer"
    assert trusted["aigc_fields"] == label.as_dict()
    binding = dict(trusted["soft_binding"])
    timespan = binding.pop("timespan_ms")
    assert binding == {
        "alg": "aigc-labeler.wm.dct.1", "method": "dct", "key_id": SOFT["key_id"], "payload": SOFT["payload"]
    }
    # Audio and video bindings are scoped to the whole timeline (ms), images to the whole picture.
    timed = ext in ("wav", "mp3", "flac", "m4a", "mp4", "mov")
    assert (timespan is not None and timespan[0] == 0 and timespan[1] > 0) if timed else timespan is None
    untrusted = read_c2pa(signed).to_dict()
    assert untrusted["state"] == "Valid" and untrusted["codes"] == ["signingCredential.untrusted"]

    # The metadata label written before signing is still there, and still the only one.
    report = verify(signed)
    assert not report.errors, report.errors
    assert report.metadata.fields == label.as_dict()

    tampered = tmp_path / f"tampered.{ext}"
    data = bytearray(signed.read_bytes())
    data[_payload_offset(signed)] ^= 0x01
    tampered.write_bytes(bytes(data))
    bad = read_c2pa(tampered, trust_anchors=[str(pki.trust_anchor)]).to_dict()
    assert bad["state"] == "Invalid", bad
    assert any(HASH_MISMATCH.match(c) for c in bad["codes"]), bad["codes"]


def test_resigning_keeps_the_old_manifest_as_parent(inputs, pki, signer, tmp_path):
    first, second = tmp_path / "first.jpg", tmp_path / "second.jpg"
    sign_file(inputs["jpg"], first, signer=signer, label=_label("gen-1"), soft_binding=SOFT)
    result = sign_file(first, second, signer=signer, label=_label("gen-1").replace(propagate_id="plat-9"))
    assert result.parent
    layer = read_c2pa(second, trust_anchors=[str(pki.trust_anchor)])
    assert layer.state == "Trusted" and layer.ai_generated is True
    # The parent's validation was recorded when it was signed in (without our anchor: untrusted).
    parent = {"title": "first.jpg", "relationship": "parentOf", "manifest": True}
    assert layer.ingredients == [{**parent, "codes": ["signingCredential.untrusted"]}]
    assert layer.aigc_fields["PropagateID"] == "plat-9"
    assert layer.soft_binding is None  # not re-declared; the parent's one stays inside the ingredient


def test_thumbnail_only_when_asked(inputs, signer, tmp_path):
    small = sign_file(inputs["jpg"], tmp_path / "a.jpg", signer=signer)
    big = sign_file(inputs["jpg"], tmp_path / "b.jpg", signer=signer, thumbnail=True)
    assert big.thumbnail and big.manifest_bytes > small.manifest_bytes + 10_000


def test_callback_signer_with_cryptography(inputs, pki, tmp_path):
    key = serialization.load_pem_private_key(pki.signer_key.read_bytes(), password=None)
    calls = []

    def kms_sign(data: bytes) -> bytes:
        calls.append(len(data))
        return key.sign(data, ec.ECDSA(hashes.SHA256()))  # DER, as KMS APIs return it

    spec = callback_signer(kms_sign, pki.chain.read_text(), alg="es256")
    sign_file(inputs["png"], tmp_path / "cb.png", signer=spec, label=_label())
    assert calls
    assert read_c2pa(tmp_path / "cb.png", trust_anchors=[str(pki.trust_anchor)]).state == "Trusted"


def test_signing_errors_are_one_line(inputs, pki, signer, tmp_path):
    def broken(_: bytes) -> bytes:
        raise RuntimeError("HSM unavailable")

    dst = tmp_path / "x.png"
    with pytest.raises(C2paSignError, match="signing callback failed: HSM unavailable"):
        sign_file(inputs["png"], dst, signer=callback_signer(broken, pki.chain))
    assert not dst.exists() and not list(tmp_path.iterdir())
    with pytest.raises(C2paSignError, match="does not match"):
        local_signer(pki.chain, pki.intermediate_key)
    with pytest.raises(C2paSignError, match="self-signed"):
        local_signer(pki.trust_anchor, pki.root_key)
    with pytest.raises(LabelerError, match="refusing to overwrite the input"):
        sign_file(inputs["png"], inputs["png"], signer=signer)
    text = tmp_path / "notes.txt"
    text.write_text("not media")
    with pytest.raises(LabelerError) as err:
        sign_file(text, tmp_path / "y.txt", signer=signer)
    assert "\n" not in str(err.value)


def test_unsigned_and_bad_anchor_files(inputs, tmp_path):
    assert read_c2pa(inputs["jpg"]).to_dict() == {
        "present": False, "state": None, "ai_generated": None, "signer": None, "issuer": None, "codes": [],
        "aigc_fields": None, "soft_binding": None, "ingredients": [], "remote": False, "time_stamp": None,
        "error": None,
    }
    bogus = tmp_path / "anchors.pem"
    bogus.write_text("nothing here")
    with pytest.raises(LabelerError, match="no PEM certificate"):
        read_c2pa(inputs["jpg"], trust_anchors=[str(bogus)])
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(random.Random(22).randbytes(4096)))
    layer = read_c2pa(junk)
    assert not layer.present


def test_threads(inputs, pki, signer, tmp_path):
    key = serialization.load_pem_private_key(pki.signer_key.read_bytes(), password=None)
    via_callback = callback_signer(lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())), pki.chain)

    def job(i: int) -> str | None:
        src = inputs[("jpg", "wav", "mp4", "png")[i % 4]]
        dst = tmp_path / f"t{i}{src.suffix}"
        # One SignerSpec shared by all threads; sign_file makes the native objects per call.
        sign_file(src, dst, signer=via_callback if i % 3 == 0 else signer, label=_label(f"thread-{i}"))
        return read_c2pa(dst, trust_anchors=[str(pki.trust_anchor)]).state

    with ThreadPoolExecutor(4) as pool:
        states = list(pool.map(job, range(8)))
    assert states == ["Trusted"] * 8
    assert read_c2pa(tmp_path / "t4.jpg").aigc_fields["ProduceID"] == "thread-4"


def test_assertion_label_is_documented():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "c2pa.md").read_text()
    assert AIGC_ASSERTION in doc


# -- reference fixtures ---------------------------------------------------------------------------------
def _expected_rows() -> list[dict[str, str]]:
    table = CORPUS / "provenance" / "EXPECTED.tsv"
    if not table.exists():
        return []
    with table.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.mark.corpus
@pytest.mark.parametrize("row", _expected_rows() or [None], ids=lambda r: r["file"] if r else "absent")
def test_reference_fixtures_get_their_expected_state(row):
    if row is None:
        pytest.skip("../shared/corpus/provenance not available")
    layer = read_c2pa(CORPUS / "provenance" / row["file"]).to_dict()
    expected = row["state_offline_default_trust"]
    if expected == "NoManifest":
        assert not layer["present"] and layer["state"] is None and layer["error"] is None, layer
    elif expected == "ERROR":
        assert layer["state"] is None and layer["error"] and "\n" not in layer["error"], layer
        if "remote" in row["note"]:
            assert layer["present"] and layer["remote"]
    else:
        assert layer["present"] and layer["state"] == expected, layer
        assert sorted(layer["codes"]) == sorted(filter(None, row["codes"].split(","))), layer


@pytest.mark.corpus
def test_resigning_other_peoples_files(signer, pki, tmp_path):
    folder = corpus_path("provenance")
    # A tampered parent is kept, with its failures recorded in the ingredient; our manifest is valid.
    sign_file(folder / "XCA.jpg", tmp_path / "x.jpg", signer=signer, label=_label())
    layer = read_c2pa(tmp_path / "x.jpg", trust_anchors=[str(pki.trust_anchor)])
    assert layer.state == "Trusted" and layer.ingredients[0]["relationship"] == "parentOf"
    assert "assertion.dataHash.mismatch" in layer.ingredients[0]["codes"]
    # A remote-only manifest cannot be carried offline: refuse instead of dropping it.
    with pytest.raises(C2paSignError, match="remote"):
        sign_file(folder / "cloud.jpg", tmp_path / "c.jpg", signer=signer)
    with pytest.raises(C2paSignError, match="cannot parse"):
        sign_file(folder / "nested_moov_1000.mp4", tmp_path / "n.mp4", signer=signer)
    assert not list(tmp_path.glob("[cn].*"))


# -- the JPEG pre-scan that spares c2pa-rs files without a manifest --------------------------------------
def _with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """``jpeg`` with one more marker segment right after SOI."""
    return jpeg[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_jpeg_prescan_finds_every_place_a_manifest_can_be(monkeypatch, signer, tmp_path):
    import c2pa

    from labeler.metadata.jpeg import may_hold_c2pa

    plain = (SAMPLES / "photo.jpg").read_bytes()
    assert not may_hold_c2pa(io.BytesIO(plain))
    sign_file(SAMPLES / "photo.jpg", tmp_path / "signed.jpg", signer=signer, label=_label())
    signed = (tmp_path / "signed.jpg").read_bytes()
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta dcterms:provenance='https://example.com/m.c2pa'/>"
    for data in (signed,  # APP11 JUMBF
                 _with_segment(plain, 0xE1, xmp),  # a remote manifest's reference
                 _with_segment(plain, 0xE1, b"Exif\x00\x00")[:60],  # cut inside the segments
                 _with_segment(plain, 0xE1, b"x")[:2] + b"\x00\x00" + plain[2:],  # bytes that are no marker
                 b"\x89PNG\r\n\x1a\n" + plain[2:]):  # not a JPEG: c2pa-rs decides
        assert may_hold_c2pa(io.BytesIO(data))
    # Only the files the pre-scan cannot rule out reach c2pa-rs.
    made: list[str] = []
    real = c2pa.Reader.try_create

    def counting(*args, **kwargs):
        made.append("reader")
        return real(*args, **kwargs)

    monkeypatch.setattr(c2pa.Reader, "try_create", staticmethod(counting))
    skipped = read_c2pa(plain, mime="image/jpeg").to_dict()
    assert not made
    assert read_c2pa(signed, mime="image/jpeg").present and made == ["reader"]
    # What c2pa-rs itself says of the file the pre-scan ruled out: the same layer.
    monkeypatch.setattr("detectors.c2pa.may_hold_c2pa", lambda src: True)
    assert read_c2pa(plain, mime="image/jpeg").to_dict() == skipped and made == ["reader", "reader"]


@pytest.mark.corpus
def test_summary_says_why_a_manifest_was_not_validated(tmp_path) -> None:
    """The text line named an unreadable manifest 'c2pa unreadable signer=None' and said nothing at all
    when the file could not be parsed for C2PA: it now gives c2pa-rs's reason."""
    from detectors import verify

    folder = corpus_path("provenance")
    remote = verify(folder / "cloud.jpg").summary()
    assert "c2pa not validated (remote-only manifest at https://" in remote and "signer=None" not in remote
    bad = verify(folder / "sample3.invalid.wav").summary()
    assert "c2pa not read (" in bad and "Invalid RIFF" in bad
    assert "c2pa" not in verify(SAMPLES / "photo.jpg").summary()  # no manifest, nothing to say
