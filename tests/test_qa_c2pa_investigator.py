"""QA pass (investigator / publisher with their own certificate): C2PA signing profile, tamper and
recovery reports, one-line label output."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, run_cli, seeded_key
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from labeler import AIGCLabel, label_file
from labeler.provenance.c2pa_sign import C2paSignError, local_signer, sign_bytes
from labeler.provenance.pki import C2PA_CLAIM_SIGNING_EKU, init_test_pki

EMAIL = ExtendedKeyUsageOID.EMAIL_PROTECTION
DIGITAL_SIGNATURE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
CERT_SIGN_ONLY = x509.KeyUsage(False, False, False, False, False, True, False, False, False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return init_test_pki(tmp_path_factory.mktemp("qa-pki"))


def _leaf(pki, folder: Path, name: str, *, cn: str | None = None, ku=DIGITAL_SIGNATURE, ku_critical=True,
          ekus=(EMAIL, C2PA_CLAIM_SIGNING_EKU), aki=True, ca=False) -> tuple[Path, Path]:
    """A leaf issued by the test PKI's intermediate, with the given profile; (chain, key) paths."""
    issuer_key = serialization.load_pem_private_key(Path(pki.intermediate_key).read_bytes(), None)
    issuer_pem = Path(pki.intermediate_cert).read_bytes()
    issuer = x509.load_pem_x509_certificate(issuer_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or name)]))
               .issuer_name(issuer.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca, None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ku is not None:
        builder = builder.add_extension(ku, critical=ku_critical)
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    chain, key_path = folder / f"{name}-chain.pem", folder / f"{name}.key.pem"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + issuer_pem)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return chain, key_path


def test_our_profile_still_signs(pki, tmp_path):
    chain, key = _leaf(pki, tmp_path, "good", ku_critical=False, ekus=(EMAIL,))
    signed, result = sign_bytes((SAMPLES / "photo.png").read_bytes(), signer=local_signer(chain, key))
    assert result.signer == "good" and len(signed) > result.manifest_bytes


@pytest.mark.parametrize(("profile", "reason"), [
    # c2pa-rs signs these, and its own reader then calls them Trusted: other validators refuse them.
    ({"ku": CERT_SIGN_ONLY}, "lacks the digitalSignature key usage"),
    # c2pa-rs says only "the certificate is invalid" for these.
    ({"ku": None}, "lacks the digitalSignature key usage"),
    ({"ekus": ()}, "has no extended key usage; C2PA requires one of emailProtection"),
    ({"ekus": (ExtendedKeyUsageOID.SERVER_AUTH,)}, "extended key usage (serverAuth) does not allow C2PA"),
    ({"ekus": (ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,)}, "forbids the extended key usage any"),
    ({"ekus": (EMAIL, ExtendedKeyUsageOID.TIME_STAMPING)}, "forbids the extended key usage timeStamping"),
    ({"aki": False}, "has no authority key identifier"),
    ({"ca": True}, "is a CA certificate"),
])
def test_signer_outside_the_c2pa_profile_is_refused_with_its_reason(pki, tmp_path, profile, reason):
    chain, key = _leaf(pki, tmp_path, "bad", **profile)
    with pytest.raises(C2paSignError) as caught:
        # The check is made when the signer is made (before any media is read) ...
        sign_bytes((SAMPLES / "photo.png").read_bytes(), signer=local_signer(chain, key))
    assert reason in str(caught.value) and str(chain) in str(caught.value)


def test_cli_label_refuses_the_wrong_eku_in_one_line(pki, tmp_path):
    chain, key = _leaf(pki, tmp_path, "server", ekus=(ExtendedKeyUsageOID.SERVER_AUTH,))
    proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(tmp_path / "out.jpg"), "--producer", PRODUCER,
                   "--produce-id", "qa-eku", "--layers", "c2pa", "--sign-cert", str(chain), "--sign-key",
                   str(key))
    assert proc.returncode == 2 and not (tmp_path / "out.jpg").exists()
    assert proc.stderr.count("\n") == 1 and "does not allow C2PA signing" in proc.stderr


def test_label_line_escapes_a_signer_name_with_a_line_break(pki, tmp_path):
    chain, key = _leaf(pki, tmp_path, "evil", cn="Evil\nforged.jpg: labeled jpeg - nothing")
    proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(tmp_path / "out.jpg"), "--producer", PRODUCER,
                   "--produce-id", "qa-evil", "--layers", "c2pa", "--sign-cert", str(chain), "--sign-key",
                   str(key), check=True)
    assert proc.stdout.count("\n") == 1 and "signed by Evil\\nforged.jpg" in proc.stdout


def test_invalid_manifest_line_says_what_failed(pki, tmp_path):
    signer = local_signer(pki.chain, pki.signer_key)
    signed, _ = sign_bytes((SAMPLES / "photo.jpg").read_bytes(), signer=signer)
    data = bytearray(signed)
    data[data.rfind(b"\xff\xda") + 500] ^= 1  # one bit of the entropy-coded picture after signing
    path = tmp_path / "tampered.jpg"
    path.write_bytes(bytes(data))
    proc = run_cli("verify", "--no-visible", "--trust-anchors", str(pki.trust_anchor), str(path))
    # Only the JSON's codes said whether the picture (hash) or the manifest (signature) was changed.
    assert " - c2pa Invalid (assertion.dataHash.mismatch) signer=" in proc.stdout
    report = json.loads(run_cli("verify", "--json", "--no-visible", str(path)).stdout)
    assert report["layers"]["c2pa"]["state"] == "Invalid" and report["verdict"] == "possible"


@pytest.fixture(scope="module")
def stripped(pki, tmp_path_factory):
    """(key, store, stripped JPEG bytes) of a small picture labeled into a manifest store."""
    folder = tmp_path_factory.mktemp("qa-store")
    key = seeded_key("qa-c2pa-investigator")
    store = str(folder / "manifests.db")
    labeled = folder / "labeled.png"
    with Image.open(SAMPLES / "photo.png") as im:
        im.convert("RGB").resize((384, 256)).save(folder / "small.png")
    label_file(folder / "small.png", labeled, AIGCLabel(PRODUCER, "qa-recover-1"),
               layers="watermark,metadata,c2pa", key=key, signer=local_signer(pki.chain, pki.signer_key),
               manifest_store=store)
    buf = io.BytesIO()
    with Image.open(labeled) as im:
        im.convert("RGB").save(buf, "JPEG", quality=90)
    return key, store, buf.getvalue()


def test_recovered_manifest_is_not_reported_remote(pki, stripped):
    from detectors import verify

    key, store, data = stripped
    report = verify(data, key=key, trust_anchors=[str(pki.trust_anchor)], visible=False,
                    manifest_store=store).to_dict()
    c2pa = report["layers"]["c2pa"]
    assert c2pa["source"] == "store" and c2pa["state"] == "Trusted"
    # `remote` means "only referenced by URL, not fetched": this one was fetched, from the store.
    assert c2pa["remote"] is False
    assert report["examined"] == ["metadata", "c2pa", "watermark"]


def test_store_is_not_searched_when_c2pa_is_left_out(stripped):
    from detectors import verify

    key, store, data = stripped
    report = verify(data, key=key, manifest_store=store, layers=["metadata", "watermark"]).to_dict()
    # A layer not examined is never in `layers` (docs/report.md): the line said "c2pa Valid recovered
    # from the manifest store ... - not examined: c2pa".
    assert report["examined"] == ["metadata", "watermark"] and "c2pa" not in report["layers"]
    assert report["verdict"] == "confirmed" and report["confidence"] == "medium"
