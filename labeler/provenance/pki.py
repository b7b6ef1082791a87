"""A private test PKI for C2PA signing during development: ``aigc keys init DIR``.

Three ES256 (ECDSA P-256 / SHA-256) certificates::

    root CA (self-signed, the trust anchor a verifier is given)
      -> intermediate CA (pathlen 0)
           -> signer (leaf: digitalSignature, EKU emailProtection + C2PA claim signing)

The profile is what c2pa-rs (the native library in c2pa-python 0.38) checks under its default settings:
a leaf must not be self-signed, must carry a critical ``keyUsage`` with ``digitalSignature``, an EKU that
its default ``trust_config`` accepts (emailProtection is; the C2PA claim-signing EKU
``1.3.6.1.4.1.62558.2.1`` alone is not under those defaults, so both are set), an Authority Key
Identifier, and ``basicConstraints CA:FALSE``. Certificates are for testing only: anyone who trusts the
root trusts whatever this directory's keys sign.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from labeler.atomic import _check_replaceable
from labeler.errors import OVERWRITE_HINT, LabelerError

__all__ = ["TestPki", "init_test_pki", "pki_paths", "C2PA_CLAIM_SIGNING_EKU", "FILE_NAMES"]

#: The C2PA claim-signing extended key usage (C2PA 2.x, "c2pa-kp-claimSigning").
C2PA_CLAIM_SIGNING_EKU = ObjectIdentifier("1.3.6.1.4.1.62558.2.1")

#: File names inside the PKI directory, by :class:`TestPki` attribute.
FILE_NAMES = {
    "root_cert": "root-ca.cert.pem",
    "root_key": "root-ca.key.pem",
    "intermediate_cert": "intermediate-ca.cert.pem",
    "intermediate_key": "intermediate-ca.key.pem",
    "signer_cert": "signer.cert.pem",
    "signer_key": "signer.key.pem",
    "chain": "signer-chain.pem",
    "trust_anchor": "trust-anchors.pem",
}

# Validity: long enough not to expire under a developer, short enough to be obviously not production.
_ROOT_DAYS, _INTERMEDIATE_DAYS, _SIGNER_DAYS = 3650, 1825, 730
# Backdating absorbs clock skew between the machine that makes the PKI and the one that verifies.
_BACKDATE = _dt.timedelta(hours=1)


@dataclass(frozen=True)
class TestPki:
    """Paths of the files :func:`init_test_pki` wrote (all PEM).

    Attributes
    ----------
    directory : Path
        The PKI directory.
    root_cert, root_key : Path
        Root CA certificate and private key.
    intermediate_cert, intermediate_key : Path
        Intermediate CA certificate and private key.
    signer_cert, signer_key : Path
        Signing (leaf) certificate and its private key: pass ``signer_key`` as ``--sign-key``.
    chain : Path
        Leaf then intermediate: pass it as ``--sign-cert`` (the chain embedded in each manifest).
    trust_anchor : Path
        The root certificate alone: pass it to verify as ``--trust-anchors``.
    """

    # pytest would otherwise try to collect this class when a test module imports it.
    __test__ = False

    directory: Path
    root_cert: Path
    root_key: Path
    intermediate_cert: Path
    intermediate_key: Path
    signer_cert: Path
    signer_key: Path
    chain: Path
    trust_anchor: Path


def pki_paths(directory: str | os.PathLike[str]) -> TestPki:
    """The paths a test PKI in ``directory`` has (whether or not the files exist)."""
    base = Path(directory)
    return TestPki(directory=base, **{attr: base / name for attr, name in FILE_NAMES.items()})


def init_test_pki(
    directory: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    organization: str = "aigc-labeler test PKI",
    signer_name: str = "aigc-labeler test signer",
    email: str | None = None,
) -> TestPki:
    """Create a root -> intermediate -> signer test PKI in ``directory`` (created if missing).

    Parameters
    ----------
    directory : path
        Where to write the PEM files (names in :data:`FILE_NAMES`).
    overwrite : bool
        Replace an existing PKI. Without it any existing PKI file makes this fail, because replacing
        the keys orphans every manifest signed with them. The replacement is all or nothing: what is in
        the way of any file (a folder, a link) is refused before anything is written, and if a write
        fails the old files are renamed back, so keys and certificates never come from two runs.
    organization : str
        ``O`` of all three subjects.
    signer_name : str
        ``CN`` of the signer; verifiers report it as the signer.
    email : str, optional
        An ``rfc822Name`` subject alternative name for the signer (emailProtection certificates
        usually carry one).

    Returns
    -------
    TestPki
        The paths written. Private keys are mode 0600. Nothing is printed: the caller warns the user
        that this PKI is for testing only.

    Raises
    ------
    LabelerError
        If files exist (without ``overwrite``) or cannot be written.
    """
    paths = pki_paths(directory)
    base = paths.directory
    if base.exists() and not base.is_dir():
        raise LabelerError(f"{base} exists and is not a folder")
    existing = [p.name for p in _files(paths) if p.exists()]
    if existing and not overwrite:
        raise LabelerError(f"{base} already holds a PKI ({existing[0]}); not overwriting ({OVERWRITE_HINT})")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabelerError(f"{base}: {exc.strerror}") from None

    now = _dt.datetime.now(_dt.timezone.utc) - _BACKDATE
    root_key = ec.generate_private_key(ec.SECP256R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(organization, f"{organization} root CA")
    inter_name = _name(organization, f"{organization} intermediate CA")
    root = _ca_cert(root_name, root_name, root_key, root_key, now, _ROOT_DAYS, path_length=1, issuer=None)
    inter = _ca_cert(inter_name, root_name, inter_key, root_key, now, _INTERMEDIATE_DAYS, path_length=0,
                     issuer=root)
    leaf = _signer_cert(_name(organization, signer_name), inter_name, leaf_key, inter_key, inter, now, email)

    def pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    # Keys first: if writing them fails, no certificate points at a key that does not exist. The chain a
    # manifest embeds is leaf first, then the issuers, without the root (C2PA x5chain).
    files = [(paths.root_key, _key_pem(root_key), True), (paths.intermediate_key, _key_pem(inter_key), True),
             (paths.signer_key, _key_pem(leaf_key), True), (paths.root_cert, pem(root), False),
             (paths.intermediate_cert, pem(inter), False), (paths.signer_cert, pem(leaf), False),
             (paths.chain, pem(leaf) + pem(inter), False), (paths.trust_anchor, pem(root), False)]
    if overwrite:
        # Everything that would stop the swap halfway (a folder or a link where a file goes) is refused
        # before anything is written: one replaced file and seven old ones sign with a key that no
        # certificate names.
        for path, _data, _private in files:
            _check_replaceable(path)
    saved = _save_old([path for path, _data, _private in files], base) if overwrite else None
    written: list[Path] = []
    try:
        for path, data, private in files:
            _write(path, data, private=private, overwrite=overwrite)
            written.append(path)
    except BaseException as exc:  # a full disk, an I/O error, Ctrl-C: all or nothing
        # A new PKI cut short is removed whole (half of one was refused by every later run as "already
        # holds a PKI"); one being replaced gets its old files back, each renamed into place, so the
        # key and certificate files never come from two different runs.
        if not _roll_back(written, saved) and saved is not None:
            kept, saved = saved[0], None  # not removed below: it holds the only copy of an old file
            raise LabelerError(f"{path}: {_reason(exc)}; the PKI being replaced could not be put back "
                               f"whole: its files are in {kept}") from None
        if isinstance(exc, OSError):
            raise LabelerError(f"{path}: {_reason(exc)}") from None
        raise
    finally:
        if saved is not None:
            shutil.rmtree(saved[0], ignore_errors=True)
    return paths


_Key = ec.EllipticCurvePrivateKey


def _ca_cert(subject: x509.Name, issuer_name: x509.Name, key: _Key, signing_key: _Key, now: _dt.datetime,
             days: int, *, path_length: int, issuer: x509.Certificate | None) -> x509.Certificate:
    """A CA certificate for ``key`` signed by ``signing_key`` (self-signed when ``issuer`` is None)."""
    builder = (
        _base(subject, issuer_name, key.public_key(), now, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(_aki(issuer), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _signer_cert(subject: x509.Name, issuer_name: x509.Name, key: _Key, signing_key: _Key,
                 issuer: x509.Certificate, now: _dt.datetime, email: str | None) -> x509.Certificate:
    """The C2PA claim-signing certificate: digitalSignature only, the C2PA and emailProtection EKUs."""
    builder = (
        _base(subject, issuer_name, key.public_key(), now, _SIGNER_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, C2PA_CLAIM_SIGNING_EKU]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_aki(issuer), critical=False)
    )
    if email:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _files(paths: TestPki) -> list[Path]:
    return [getattr(paths, attr) for attr in FILE_NAMES]


def _name(organization: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "FOR TESTING ONLY"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _base(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    start: _dt.datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + _dt.timedelta(days=days))
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8 is what c2pa-rs's PEM loader and most KMS import tools expect.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _save_old(targets: list[Path], base: Path) -> tuple[Path, dict[Path, Path]]:
    """Keep the files of the PKI being replaced in a private folder in ``base`` until the new one is
    written whole: hard links (nothing copied, the files stay in place), copies where links fail.

    Returns the folder and, for each existing target, its saved copy. If the process is killed (no
    ``except`` runs) the old PKI stays there, in ``.aigc-pki-old-*``, to be moved back by hand.
    """
    try:
        folder = Path(tempfile.mkdtemp(prefix=".aigc-pki-old-", dir=base))  # 0700: it holds private keys
    except OSError as exc:
        raise LabelerError(f"cannot write in {base}: {exc.strerror or exc}") from None
    saved: dict[Path, Path] = {}
    try:
        for target in targets:
            if not target.exists():
                continue
            keep = folder / target.name
            try:
                os.link(target, keep)
            except OSError:  # a file system without hard links
                shutil.copy2(target, keep)
            saved[target] = keep
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise LabelerError(f"cannot keep a copy of {target} while replacing it: {_reason(exc)}") from None
    return folder, saved


def _roll_back(written: list[Path], saved: tuple[Path, dict[Path, Path]] | None) -> bool:
    """Undo the files ``written``: the saved old file renamed back, or the new file removed.

    Returns False when an old file could not be renamed back (its saved copy is then still saved).
    """
    old = saved[1] if saved is not None else {}
    whole = True
    for path in reversed(written):
        try:
            if path in old:
                os.replace(old[path], path)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            whole = whole and path not in old  # a new file left over is harmless; a lost old one is not
    return whole


def _reason(exc: BaseException) -> str:
    """The one-line reason of an error (``strerror`` of an ``OSError``)."""
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__


def _write(path: Path, data: bytes, *, private: bool, overwrite: bool) -> None:
    # Whole files only, and with ``overwrite`` written beside and renamed: truncating in place wrote a
    # private key through a symbolic link into a file elsewhere (and made it 0600).
    from labeler.atomic import write_whole

    if not write_whole(path, data, private=private, overwrite=overwrite):
        raise LabelerError(f"{path} exists; refusing to overwrite it ({OVERWRITE_HINT})")
