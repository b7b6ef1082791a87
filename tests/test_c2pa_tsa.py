"""C2PA time-stamping (``--tsa``) against a local RFC 3161 authority: OpenSSL's ``ts`` behind http.server.

The authority listens on 127.0.0.1 only (a free port chosen by the OS); its key and certificate are made
here, so nothing leaves the machine. Skipped when ``openssl`` is not installed.
"""

from __future__ import annotations

import datetime
import json
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, run_cli
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed (needed for a local TSA)")

TSA_NAME = "aigc-labeler test TSA"
LOOPBACK = "127.0.0.1"


def _tsa_pki(base: Path) -> None:
    """Write a root CA and a time-stamping leaf (critical EKU timeStamping) and an openssl.cnf [tsa]."""
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aigc-labeler test TSA root")])
    root = (
        x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(valid[0]).not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TSA_NAME)]))
        .issuer_name(root_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(valid[0]).not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                       critical=True)
        # RFC 3161 section 2.3: the TSA certificate has exactly this EKU, marked critical.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                       critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (base / "tsa.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (base / "tsa.crt").write_bytes(leaf.public_bytes(pem))
    (base / "tsa-root.crt").write_bytes(root.public_bytes(pem))
    (base / "serial").write_text("01\n")
    (base / "openssl.cnf").write_text(
        "[tsa]\ndefault_tsa = tsa_config\n\n[tsa_config]\n"
        f"dir = {base}\nserial = $dir/serial\ncrypto_device = builtin\nsigner_cert = $dir/tsa.crt\n"
        "certs = $dir/tsa-root.crt\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\n"
        "default_policy = 1.2.3.4.1\nother_policies = 1.2.3.4.5\ndigests = sha256, sha384, sha512\n"
        "accuracy = secs:1\nordering = yes\ntsa_name = yes\n"
        "ess_cert_id_chain = no\ness_cert_id_alg = sha256\n"
    )


class _TsaHandler(BaseHTTPRequestHandler):
    """RFC 3161 over HTTP (RFC 3161 section 3.4): a DER TimeStampReq in, a DER TimeStampResp out."""

    server: _TsaServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        query = self.rfile.read(length)
        if self.server.broken or self.headers.get("Content-Type") != "application/timestamp-query":
            self.send_error(500 if self.server.broken else 415)
            return
        with self.server.lock, tempfile.TemporaryDirectory(dir=self.server.base) as work:
            # One request at a time: openssl ts increments the serial file in place.
            (Path(work) / "q.tsq").write_bytes(query)
            proc = subprocess.run(
                [OPENSSL, "ts", "-reply", "-config", str(self.server.base / "openssl.cnf"),
                 "-queryfile", f"{work}/q.tsq", "-out", f"{work}/r.tsr"],
                capture_output=True, timeout=30,
            )
            reply = (Path(work) / "r.tsr").read_bytes() if proc.returncode == 0 else b""
        if not reply:
            self.send_error(500)
            return
        self.server.stamped += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:  # keep pytest's output clean
        pass


class _TsaServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, base: Path) -> None:
        super().__init__((LOOPBACK, 0), _TsaHandler)
        self.base = base
        self.lock = threading.Lock()
        self.stamped = 0
        self.broken = False

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}/"


@pytest.fixture(scope="module")
def tsa(tmp_path_factory) -> Iterator[_TsaServer]:
    base = tmp_path_factory.mktemp("tsa")
    _tsa_pki(base)
    server = _TsaServer(base)
    assert server.server_address[0] == LOOPBACK
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("pki")
    run_cli("keys", "init", str(base), check=True)
    return base


def _label(pki: Path, out: Path, tsa_url: str):
    return run_cli("label", str(SAMPLES / "photo.jpg"), str(out), "--producer", PRODUCER,
                   "--produce-id", "ts-1", "--layers", "metadata,c2pa",
                   "--sign-cert", str(pki / "signer-chain.pem"), "--sign-key", str(pki / "signer.key.pem"),
                   "--tsa", tsa_url)


def test_tsa_time_stamps_the_manifest_and_verify_shows_it(tsa, pki, tmp_path):
    out = tmp_path / "stamped.jpg"
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    stamped_before = tsa.stamped
    proc = _label(pki, out, tsa.url)
    assert proc.returncode == 0, proc.stderr
    assert tsa.stamped > stamped_before, "the label call never reached the local TSA"

    # Without the TSA's root: the stamp is checked (digest matches) but its certificate is untrusted.
    report = json.loads(run_cli("verify", "--json", str(out), check=True).stdout)
    stamp = report["layers"]["c2pa"]["time_stamp"]
    assert stamp is not None, "verify reports no time-stamp for a file signed with --tsa"
    assert "timeStamp.validated" in stamp["codes"] and "timeStamp.untrusted" in stamp["codes"]
    assert stamp["tsa"] == TSA_NAME
    when = datetime.datetime.fromisoformat(stamp["time"])
    assert before - datetime.timedelta(seconds=2) <= when <= datetime.datetime.now(datetime.timezone.utc)

    # With the TSA's root among the anchors the time-stamp is trusted too.
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes((pki / "trust-anchors.pem").read_bytes() + (tsa.base / "tsa-root.crt").read_bytes())
    proc = run_cli("verify", "--json", "--trust-anchors", str(anchors), str(out), check=True)
    trusted = json.loads(proc.stdout)
    c2pa = trusted["layers"]["c2pa"]
    assert c2pa["state"] == "Trusted" and c2pa["codes"] == []
    assert "timeStamp.trusted" in c2pa["time_stamp"]["codes"]

    human = run_cli("verify", str(out), check=True).stdout
    assert f"time-stamped {stamp['time']} by {TSA_NAME}" in human

    # A file signed without --tsa has no time-stamp.
    plain = tmp_path / "plain.jpg"
    run_cli("label", str(SAMPLES / "photo.jpg"), str(plain), "--producer", PRODUCER, "--produce-id", "ts-0",
            "--layers", "metadata,c2pa", "--sign-cert", str(pki / "signer-chain.pem"),
            "--sign-key", str(pki / "signer.key.pem"), check=True)
    unstamped = json.loads(run_cli("verify", "--json", str(plain), check=True).stdout)
    assert unstamped["layers"]["c2pa"]["time_stamp"] is None
    assert "time-stamped" not in run_cli("verify", str(plain), check=True).stdout


def test_time_stamped_report_matches_schema(tsa, pki, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "report.schema.json").read_text())
    out = tmp_path / "stamped.jpg"
    assert _label(pki, out, tsa.url).returncode == 0
    jsonschema.validate(json.loads(run_cli("verify", "--json", str(out), check=True).stdout), schema)


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("how", ["down", "http-500"])
def test_tsa_unavailable_is_one_line_error(tsa, pki, tmp_path, how):
    out = tmp_path / "never.jpg"
    if how == "down":
        url = f"http://{LOOPBACK}:{_free_loopback_port()}/"  # nothing listens there any more
        proc = _label(pki, out, url)
    else:
        tsa.broken = True
        try:
            url = tsa.url
            proc = _label(pki, out, url)
        finally:
            tsa.broken = False
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert f"time-stamp authority {url}" in proc.stderr, proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
