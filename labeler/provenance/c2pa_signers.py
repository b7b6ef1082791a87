"""Who signs a C2PA manifest: a :class:`SignerSpec` from PEM files or from a signing callback (KMS, HSM).

A ``SignerSpec`` is plain Python and may be shared between threads; :meth:`SignerSpec._native` makes
the native c2pa-python signer, which a Builder consumes, once per signing
(:mod:`labeler.provenance.c2pa_sign`). Keys and chains are checked here, when the signer is made,
so a bad key is reported before any media is read.
"""

from __future__ import annotations

import binascii
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from labeler.errors import LabelerError

if TYPE_CHECKING:
    import c2pa

__all__ = ["C2paSignError", "SignerSpec", "local_signer", "callback_signer", "SIGNING_ALGORITHMS"]

#: The algorithms C2PA allows (and c2pa-rs signs with).
SIGNING_ALGORITHMS = frozenset({"es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"})
_ALGS = SIGNING_ALGORITHMS
# ECDSA: c2pa-rs wants the raw r||s form (IEEE P1363) from a callback; these are the halves' lengths.
_EC_HALF = {"es256": 32, "es384": 48, "es512": 66}
_MAX_PEM = 1 << 20
# C2PA 2.x, "Certificate profile": a signing certificate's EKU must name one of these, and must not name
# anyExtendedKeyUsage, timeStamping or OCSPSigning; its key usage must assert digitalSignature.
_SIGNING_EKUS = {
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ObjectIdentifier("1.3.6.1.5.5.7.3.36"): "documentSigning",
    ObjectIdentifier("1.3.6.1.4.1.62558.2.1"): "C2PA claim signing",
}
_FORBIDDEN_EKUS = {
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
}


class C2paSignError(LabelerError):
    """Signing failed (bad key or certificate, unsupported input, native library error)."""


@dataclass(frozen=True)
class SignerSpec:
    """How to sign: algorithm, certificate chain and either a private key or a signing callback.

    Plain Python, safe to share between threads; :func:`~labeler.provenance.c2pa_sign.sign_file` makes
    a fresh native signer from it for each call. Build one with :func:`local_signer` or
    :func:`callback_signer`.

    Attributes
    ----------
    alg : str
        ``es256``, ``es384``, ``es512``, ``ps256``, ``ps384``, ``ps512`` or ``ed25519``.
    cert_chain_pem : str
        Signing certificate first, then its issuers (not the root).
    tsa_url : str or None
        RFC 3161 time-stamp authority; ``None`` signs without a trusted time stamp (offline).
    subject : str
        The signing certificate's common name (or full subject), for messages and reports.
    """

    alg: str
    cert_chain_pem: str
    tsa_url: str | None = None
    subject: str = ""
    _key_pem: str | None = field(default=None, repr=False)
    _sign_fn: Callable[[bytes], bytes] | None = field(default=None, repr=False)

    def _native(self, failures: list[BaseException]) -> c2pa.Signer:
        """A new native signer (consumed by one signing); callback exceptions go to ``failures``."""
        import c2pa  # loaded on first use: it is most of `import detectors`' time
        if self._key_pem is not None:
            info = c2pa.C2paSignerInfo(
                self.alg.encode(),
                self.cert_chain_pem.encode(),
                self._key_pem.encode(),
                self.tsa_url.encode() if self.tsa_url else None,
            )
            return c2pa.Signer.from_info(info)
        assert self._sign_fn is not None
        sign_fn, alg = self._sign_fn, self.alg

        def wrapped(data: bytes) -> bytes:
            # c2pa-python turns a raising callback into a bare "-1"; keep the exception for the message.
            try:
                return _to_raw_signature(sign_fn(data), alg)
            except BaseException as exc:  # noqa: BLE001 - re-raised by sign_file as a one-line error
                failures.append(exc)
                raise

        return c2pa.Signer.from_callback(wrapped, _signing_alg(alg), self.cert_chain_pem, self.tsa_url)


def local_signer(
    cert_chain_pem_path: str | os.PathLike[str],
    key_pem_path: str | os.PathLike[str],
    tsa_url: str | None = None,
) -> SignerSpec:
    """A signer from a certificate chain file and an unencrypted private key file (PEM).

    The algorithm follows from the key: EC P-256/384/521 -> ES256/384/512, RSA -> PS256, Ed25519.

    Parameters
    ----------
    cert_chain_pem_path : path
        Signing certificate then intermediates (``signer-chain.pem`` of ``aigc keys init``).
    key_pem_path : path
        The signing certificate's private key (PKCS#8 or SEC1/PKCS#1 PEM).
    tsa_url : str, optional
        RFC 3161 time-stamp authority URL (network access at signing time).

    Raises
    ------
    C2paSignError
        Unreadable files, a key that does not match the certificate, an expired certificate.
    """
    chain_text = _read_pem(cert_chain_pem_path, "certificate chain")
    chain_pem, certs = _load_chain(chain_text, str(cert_chain_pem_path))
    key_text = _read_pem(key_pem_path, "private key")
    try:
        key = serialization.load_pem_private_key(key_text.encode(), password=None)
    except TypeError:
        raise C2paSignError(f"private key {key_pem_path} is encrypted; give an unencrypted key") from None
    except (ValueError, binascii.Error):
        raise C2paSignError(f"{key_pem_path} is not a PEM private key") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}.get(key.curve.name)
        if alg is None:
            raise C2paSignError(f"EC curve {key.curve.name} is not allowed by C2PA (P-256, P-384, P-521)")
    elif isinstance(key, rsa.RSAPrivateKey):
        alg = "ps256"
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        alg = "ed25519"
    else:
        raise C2paSignError(f"{type(key).__name__} keys cannot sign C2PA manifests")
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, pub) != certs[0].public_key().public_bytes(
        serialization.Encoding.DER, pub
    ):
        raise C2paSignError(f"private key {key_pem_path} does not match the chain's signing certificate")
    # c2pa-rs reads PKCS#8 reliably for every algorithm; convert SEC1 / PKCS#1 keys in memory.
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return SignerSpec(alg, chain_pem, _check_tsa(tsa_url), _subject(certs[0]), _key_pem=pkcs8)


def callback_signer(
    sign_fn: Callable[[bytes], bytes],
    cert_chain_pem: str | bytes | os.PathLike[str],
    alg: str = "es256",
    tsa_url: str | None = None,
) -> SignerSpec:
    """A signer whose private key stays elsewhere (KMS, HSM): ``sign_fn(data) -> signature``.

    Parameters
    ----------
    sign_fn : callable
        Signs the bytes it is given with the certificate's key and returns the signature. For ECDSA
        either the DER form (what AWS/GCP KMS and ``cryptography`` return) or raw ``r||s`` is accepted;
        DER is converted. For ``ps*``: RSASSA-PSS with the matching SHA-2 and MGF1, salt = hash length.
        It may be called from any thread, once per signed file.
    cert_chain_pem : str, bytes or path
        The chain as PEM text (signing certificate first), or the path of a file holding it.
    alg : str
        ``es256`` (default), ``es384``, ``es512``, ``ps256``, ``ps384``, ``ps512`` or ``ed25519``.
    tsa_url : str, optional
        RFC 3161 time-stamp authority URL.

    Raises
    ------
    C2paSignError
        Unknown algorithm, unreadable chain.
    """
    alg = alg.lower()
    if alg not in _ALGS:
        raise C2paSignError(f"unknown signing algorithm {alg!r} (one of {', '.join(sorted(_ALGS))})")
    if not callable(sign_fn):
        raise C2paSignError("sign_fn must be callable")
    if isinstance(cert_chain_pem, bytes):
        text = cert_chain_pem.decode("ascii", errors="replace")
        where = "certificate chain"
    elif isinstance(cert_chain_pem, str) and "-----BEGIN" in cert_chain_pem:
        text, where = cert_chain_pem, "certificate chain"
    else:
        text, where = _read_pem(cert_chain_pem, "certificate chain"), str(cert_chain_pem)
    chain_pem, certs = _load_chain(text, where)
    return SignerSpec(alg, chain_pem, _check_tsa(tsa_url), _subject(certs[0]), _sign_fn=sign_fn)



def _read_pem(path: str | os.PathLike[str], what: str) -> str:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_MAX_PEM + 1)
    except OSError as exc:
        raise C2paSignError(f"{what} {os.fspath(path)}: {exc.strerror}") from None
    if len(raw) > _MAX_PEM:
        raise C2paSignError(f"{what} {os.fspath(path)} is too large to be a PEM file")
    return raw.decode("ascii", errors="replace")


def _load_chain(text: str, where: str) -> tuple[str, list[x509.Certificate]]:
    try:
        certs = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        raise C2paSignError(f"{where}: no PEM certificate found") from None
    leaf = certs[0]
    now = time.time()
    if leaf.not_valid_after_utc.timestamp() < now:
        raise C2paSignError(f"{where}: signing certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
    if leaf.not_valid_before_utc.timestamp() > now:
        raise C2paSignError(f"{where}: signing certificate not valid before {leaf.not_valid_before_utc}")
    if len(certs) == 1 and leaf.issuer == leaf.subject:
        raise C2paSignError(f"{where}: self-signed certificates cannot sign C2PA (see aigc keys init)")
    _check_profile(leaf, where)
    pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)
    return pem, certs


def _check_profile(leaf: x509.Certificate, where: str) -> None:
    """Refuse a signing certificate outside the C2PA certificate profile, with the reason.

    c2pa-rs reports most of these as a bare "the certificate is invalid", and signs with a key usage
    that lacks digitalSignature (other validators then reject the manifest); name what is wrong instead.
    """
    try:
        extensions = leaf.extensions
    except ValueError as exc:  # duplicate or malformed extensions
        raise C2paSignError(f"{where}: signing certificate extensions cannot be read ({exc})") from None
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise C2paSignError(f"{where}: signing certificate is a CA certificate (basicConstraints "
                                "CA:TRUE); C2PA signs with an end-entity certificate")
    except x509.ExtensionNotFound:
        pass
    try:
        extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        raise C2paSignError(f"{where}: signing certificate has no authority key identifier, which C2PA "
                            "requires") from None
    try:
        ku = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    if ku is None or not ku.digital_signature:
        raise C2paSignError(f"{where}: signing certificate lacks the digitalSignature key usage C2PA "
                            "requires")
    wanted = ", ".join(_SIGNING_EKUS.values())
    try:
        ekus = list(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        raise C2paSignError(f"{where}: signing certificate has no extended key usage; C2PA requires one of "
                            f"{wanted}") from None
    forbidden = [name for oid, name in _FORBIDDEN_EKUS.items() if oid in ekus]
    if forbidden:
        raise C2paSignError(f"{where}: C2PA forbids the extended key usage {', '.join(forbidden)} on a "
                            "signing certificate")
    if not any(oid in _SIGNING_EKUS for oid in ekus):
        names = ", ".join(getattr(oid, "_name", None) or oid.dotted_string for oid in ekus)
        raise C2paSignError(f"{where}: signing certificate's extended key usage ({names}) does not allow "
                            f"C2PA signing; C2PA requires one of {wanted}")


def _subject(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def _check_tsa(url: str | None) -> str | None:
    if url and not url.startswith(("http://", "https://")):
        raise C2paSignError(f"time-stamp authority URL must be http(s): {url[:80]!r}")
    return url or None


def _signing_alg(alg: str) -> c2pa.C2paSigningAlg:
    import c2pa
    return c2pa.C2paSigningAlg[alg.upper()]


def _to_raw_signature(sig: bytes, alg: str) -> bytes:
    """Convert a DER ECDSA signature to the raw ``r||s`` form c2pa-rs expects; others pass through."""
    sig = bytes(sig)
    half = _EC_HALF.get(alg)
    if half is None or len(sig) == 2 * half or not sig.startswith(b"\x30"):
        return sig
    r, s = decode_dss_signature(sig)
    return r.to_bytes(half, "big") + s.to_bytes(half, "big")


def one_line(exc: BaseException) -> str:
    """An exception as one line of at most 300 characters (native errors span several)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
