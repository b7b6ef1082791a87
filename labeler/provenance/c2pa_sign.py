"""Sign media with a C2PA manifest that declares it AI-generated: the last labeling layer.

::

    >>> from labeler.provenance.c2pa_sign import local_signer, sign_file
    >>> signer = local_signer("pki/signer-chain.pem", "pki/signer.key.pem")
    >>> sign_file("out.labeled.jpg", "out.signed.jpg", signer=signer, label=label).assertions
    ['c2pa.actions.v2', 'cn.tc260.aigc']

The manifest (details and choices in ``docs/c2pa.md``) holds:

- ``c2pa.actions.v2`` with one ``c2pa.created`` action, digitalSourceType
  ``http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia`` and our softwareAgent
  (``c2pa.opened`` of the parent instead, when the input already had a manifest);
- ``cn.tc260.aigc``: the seven GB 45438-2025 Appendix E fields, as ``AIGCLabel.as_dict()`` gives them;
- ``c2pa.soft-binding`` naming our invisible watermark (method, key id, payload) when there is one.

Every call builds its own native objects (Signer, Context, Builder): c2pa-python objects must not be
shared between threads, and a Signer is consumed by the Builder that uses it. The ``SignerSpec`` a
caller holds is plain Python and may be shared freely.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from labeler.atomic import atomic_output, check_paths
from labeler.errors import LabelerError
from labeler.formats import FORMAT_TABLE, sniff_file
from labeler.record import AIGCLabel

__all__ = [
    "AIGC_ASSERTION",
    "SOFT_BINDING_ASSERTION",
    "TRAINED_ALGORITHMIC_MEDIA",
    "MIME_TYPES",
    "C2paSignError",
    "SignerSpec",
    "SignResult",
    "local_signer",
    "callback_signer",
    "sign_file",
    "soft_binding_alg",
]

#: Label of our custom assertion carrying the seven Appendix E fields. Defined by this toolkit (TC260
#: has not defined a C2PA assertion); the ``cn.tc260`` prefix says what the content is, not who owns it.
AIGC_ASSERTION = "cn.tc260.aigc"
#: The standard C2PA soft-binding assertion label.
SOFT_BINDING_ASSERTION = "c2pa.soft-binding"
#: IPTC digital source type for content made by a trained model (what GB 45438 calls AI-generated).
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
#: Our formats -> the MIME type c2pa-rs is told (from the content, never from the file name).
MIME_TYPES = {f.name: f.mime for f in FORMAT_TABLE}
_ALGS = {"es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"}
# ECDSA: c2pa-rs wants the raw r||s form (IEEE P1363) from a callback; these are the halves' lengths.
_EC_HALF = {"es256": 32, "es384": 48, "es512": 66}
_MAX_PEM = 1 << 20
_PARENT_ID = "parent"
# c2pa-rs reports a failed time-stamp request as a Signature error carrying the HTTP client's words
# ("error sending request for url ...", "service responded with an HTTP error (status = 500 ...)").
_TSA_FAILURE = re.compile(r"http|time.?stamp|resolver", re.IGNORECASE)

if TYPE_CHECKING:
    import c2pa


class C2paSignError(LabelerError):
    """Signing failed (bad key or certificate, unsupported input, native library error)."""


# -- signers --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignerSpec:
    """How to sign: algorithm, certificate chain and either a private key or a signing callback.

    Plain Python, safe to share between threads; :func:`sign_file` makes a fresh native signer from
    it for each call. Build one with :func:`local_signer` or :func:`callback_signer`.

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


# -- signing --------------------------------------------------------------------------------------------
@dataclass
class SignResult:
    """What :func:`sign_file` wrote.

    Attributes
    ----------
    src, dst : str
        Input and output paths.
    format, mime : str
        Container format (from the content) and the MIME type c2pa-rs was given.
    manifest : str
        Label (URN) of the new active manifest.
    manifest_bytes : int
        Size of the signed manifest store.
    bytes_added : int
        ``size(dst) - size(src)``.
    assertions : list of str
        Labels of the assertions we put in the manifest (c2pa-rs adds its hash and ingredient ones).
    parent : bool
        True when the input's own manifest became a ``parentOf`` ingredient.
    thumbnail : bool
        Whether c2pa-rs was allowed to add a claim thumbnail.
    signer : str
        The signing certificate's subject.
    seconds : float
        Wall time.
    store : bytes
        The signed manifest store itself (``application/c2pa``), for a manifest repository
        (:mod:`labeler.provenance.store`); not in :meth:`to_dict`.
    """

    src: str
    dst: str
    format: str
    mime: str
    manifest: str
    manifest_bytes: int
    bytes_added: int
    assertions: list[str]
    parent: bool
    thumbnail: bool
    signer: str
    seconds: float = 0.0
    store: bytes = field(default=b"", repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``LabelResult.layers["c2pa"]`` can hold)."""
        return {
            "manifest": self.manifest,
            "format": self.format,
            "manifest_bytes": self.manifest_bytes,
            "bytes_added": self.bytes_added,
            "assertions": list(self.assertions),
            "parent": self.parent,
            "thumbnail": self.thumbnail,
            "signer": self.signer,
            "seconds": round(self.seconds, 6),
        }


def soft_binding_alg(method: str) -> str:
    """The soft-binding ``alg`` for a watermark method (``dct`` -> ``aigc-labeler.wm.dct.1``).

    Not in the C2PA soft-binding algorithm list: only this toolkit's detector reads the mark.
    """
    return f"aigc-labeler.wm.{method}.1"


def sign_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    signer: SignerSpec,
    label: AIGCLabel | None = None,
    soft_binding: Mapping[str, Any] | None = None,
    software_agent: str | None = None,
    thumbnail: bool = False,
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA,
    overwrite: bool = True,
    fmt: str | None = None,
) -> SignResult:
    """Copy ``src`` to ``dst`` with a signed C2PA manifest declaring the content AI-generated.

    Parameters
    ----------
    src : path
        Input media (JPEG, PNG, WebP, TIFF, GIF, WAV, MP3, FLAC, M4A, MP4, MOV); never modified.
        If it already has a C2PA manifest, that manifest store becomes a ``parentOf`` ingredient.
    dst : path
        Output; written to a temporary file beside it, read back, then renamed into place.
    signer : SignerSpec
        From :func:`local_signer` or :func:`callback_signer`.
    label : AIGCLabel, optional
        Adds the ``cn.tc260.aigc`` assertion with its seven fields (validated first).
    soft_binding : mapping, optional
        The watermark layer's result: ``method`` (``dct``/``dwt``), ``payload`` (hex) and ``key_id``
        (what ``LabelResult.layers["watermark"]`` holds); adds a ``c2pa.soft-binding`` assertion.
    software_agent : str, optional
        The action's softwareAgent; default ``aigc-labeler <version>``.
    thumbnail : bool
        Let c2pa-rs embed a claim thumbnail (images; adds 35-440 KB). Off by default.
    digital_source_type : str
        IPTC digital source type of the ``c2pa.created`` action (default trainedAlgorithmicMedia).
    overwrite : bool
        Replace an existing ``dst`` (never ``src``).
    fmt : str, optional
        ``src``'s format when the caller has probed it already (:class:`labeler.probe.Probe`);
        sniffed from the content otherwise.

    Returns
    -------
    SignResult

    Raises
    ------
    LabelerError
        One-line reason (:class:`C2paSignError` for signing failures); ``dst`` is then left as it was.
    """
    import c2pa

    started = time.perf_counter()
    src_p, dst_p = check_paths(src, dst, overwrite=overwrite)
    if not isinstance(signer, SignerSpec):
        raise C2paSignError("signer must come from local_signer() or callback_signer()")
    fmt = fmt or sniff_file(src_p)
    mime = MIME_TYPES.get(fmt)
    if mime is None:
        raise C2paSignError(f"C2PA signing does not support {fmt} files")
    assertions = _our_assertions(label, soft_binding, _timespan_ms(src_p, fmt) if soft_binding else None)
    failures: list[BaseException] = []
    try:
        with open(src_p, "rb") as source:
            parent = _has_manifest(source, mime)
            manifest = _manifest(dst_p.name, mime, parent, digital_source_type, software_agent, assertions)
            store, active = _sign(manifest, source, dst_p, src_p.name, mime, parent, signer, failures,
                                  thumbnail)
    except LabelerError:
        raise
    except c2pa.C2paError as exc:
        raise _signing_error(exc, signer, failures) from None
    except OSError as exc:
        raise LabelerError(f"{exc.filename or src_p}: {exc.strerror or exc}") from None
    return SignResult(
        src=os.fspath(src),
        dst=os.fspath(dst),
        format=fmt,
        mime=mime,
        manifest=active,
        manifest_bytes=len(store),
        store=bytes(store),
        bytes_added=dst_p.stat().st_size - src_p.stat().st_size,
        assertions=["c2pa.actions.v2", *(a["label"] for a in assertions)],
        parent=parent,
        thumbnail=bool(thumbnail),
        signer=signer.subject,
        seconds=time.perf_counter() - started,
    )


# -- helpers --------------------------------------------------------------------------------------------
_READ_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": False}}


def _has_manifest(source: io.BufferedReader, mime: str) -> bool:
    """True if ``source`` holds a C2PA manifest store (embedded or a remote reference)."""
    import c2pa
    source.seek(0)
    try:
        with closing_native(c2pa.Context.from_dict(_READ_SETTINGS)) as ctx:
            reader = c2pa.Reader.try_create(mime, source, None, ctx)
            if reader is not None:
                reader.close()
                return True
            return False
    except c2pa.C2paError as exc:
        if str(exc).startswith("Remote"):
            # A remote-only manifest cannot be carried as an ingredient offline; re-signing would lose the
            # link to it, so refuse rather than drop it silently.
            raise C2paSignError(
                "the input refers to a remote C2PA manifest, which cannot be kept offline; not signing"
            ) from None
        reason = _one_line(exc).removeprefix("Other: ")
        if reason.startswith("asset could not be parsed"):
            raise C2paSignError(f"C2PA cannot parse this file: {reason.split(': ', 1)[-1]}") from None
        raise C2paSignError(
            f"the input's C2PA manifest cannot be read ({reason}); not signing, it would be lost"
        ) from None


def _read_back(out: Any, mime: str) -> str:
    """Read the manifest just written from the temporary output; return its label."""
    import c2pa
    ctx = c2pa.Context.from_dict(_READ_SETTINGS)
    with closing_native(ctx), closing_native(c2pa.Reader(mime, out, None, ctx)) as r:
        state = r.get_validation_state()
        active = r.get_active_manifest() or {}
        label = active.get("label")
        if state == "Invalid" or not label:
            results = r.get_validation_results() or {}
            codes = [f.get("code") for f in results.get("activeManifest", {}).get("failure", [])]
            why = ", ".join(map(str, codes)) or state
            raise C2paSignError(f"the signed output does not validate ({why})")
        return str(label)


def _timespan_ms(path: Path, fmt: str) -> tuple[int, int] | None:
    """``(0, duration)`` in milliseconds for audio and video (the soft binding's scope), else None."""
    from labeler.formats import medium

    if medium(fmt) == "image":
        return None
    from labeler.media.ffmpeg import probe

    try:
        duration = probe(path).duration
    except LabelerError:
        return None
    return (0, round(duration * 1000)) if duration else None


def _our_assertions(label: AIGCLabel | None, soft_binding: Mapping[str, Any] | None,
                    timespan: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """The AIGC label and soft-binding assertions (the label validated first)."""
    assertions: list[dict[str, Any]] = []
    if label is not None:
        label.check()
        assertions.append({"label": AIGC_ASSERTION, "data": label.as_dict()})
    if soft_binding is not None:
        data = _soft_binding_data(soft_binding, timespan)
        assertions.append({"label": SOFT_BINDING_ASSERTION, "data": data})
    return assertions


def _manifest(title: str, mime: str, parent: bool, digital_source_type: str, software_agent: str | None,
              assertions: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest definition c2pa-rs signs: the created/opened action first, then our assertions."""
    from labeler import __version__

    agent_name, _, agent_version = (software_agent or f"aigc-labeler {__version__}").partition(" ")
    agent = {"name": agent_name, **({"version": agent_version} if agent_version else {})}
    action: dict[str, Any] = {
        "action": "c2pa.opened" if parent else "c2pa.created",
        "digitalSourceType": digital_source_type,
        "softwareAgent": agent,
    }
    if parent:
        # C2PA requires c2pa.opened to name its ingredient; c2pa-rs resolves this id to the
        # ingredient assertion's hashed URI.
        action["parameters"] = {"ingredientIds": [_PARENT_ID]}
    return {
        "claim_generator_info": [{"name": "aigc-labeler", "version": __version__}],
        "title": title,
        "format": mime,
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [action]}}, *assertions],
    }


def _sign(manifest: dict[str, Any], source: BinaryIO, dst: Path, src_name: str, mime: str, parent: bool,
          signer: SignerSpec, failures: list[BaseException], thumbnail: bool) -> tuple[bytes, str]:
    """Sign ``source`` into ``dst`` atomically; return the manifest store and the active manifest's label."""
    import c2pa

    settings = {
        # Our own read-back of the written file (_read_back) replaces c2pa-rs's verify-after-sign,
        # which would hash the whole output a second time.
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_after_sign": False},
        "builder": {"thumbnail": {"enabled": bool(thumbnail)}},
    }
    ctx = c2pa.Context.from_dict(settings)
    with closing_native(ctx), closing_native(c2pa.Builder(manifest, ctx)) as builder:
        if parent:
            source.seek(0)
            # The old store travels whole inside the new one, with its validation results;
            # c2pa-rs links it to the c2pa.opened action as that action's ingredient.
            builder.add_ingredient({"title": src_name, "relationship": "parentOf", "label": _PARENT_ID}, mime,
                                   source)
        source.seek(0)
        with atomic_output(dst) as out, closing_native(signer._native(failures)) as native:
            store = builder.sign(native, mime, source, out)
            out.flush()
            out.seek(0)
            return bytes(store), _read_back(out, mime)


def _signing_error(exc: BaseException, signer: SignerSpec, failures: list[BaseException]) -> LabelerError:
    """One line for a failed signing: the callback's own error, the TSA, or c2pa-rs's reason."""
    if failures:
        return C2paSignError(f"signing callback failed: {_one_line(failures[0])}")
    text = _one_line(exc)
    if signer.tsa_url and text.startswith("Signature") and _TSA_FAILURE.search(text):
        # The TSA is the only network peer of a signing: name it, so the user knows what to fix.
        reason = re.sub(r"^Signature: (?:internal error )?\((.*)\)$", r"\1", text)
        return C2paSignError(f"time-stamp authority {signer.tsa_url} failed: {reason}")
    return C2paSignError(f"C2PA signing failed: {text}")


def _soft_binding_data(sb: Mapping[str, Any], timespan: tuple[int, int] | None = None) -> dict[str, Any]:
    method = str(sb.get("method") or "")
    key_id = str(sb.get("key_id") or "")
    payload_hex = str(sb.get("payload") or "")
    if not method or not payload_hex:
        raise LabelerError("soft_binding needs 'method' and hex 'payload' (the watermark layer's result)")
    try:
        payload = bytes.fromhex(payload_hex)
    except ValueError:
        raise LabelerError(f"soft_binding payload is not hex: {payload_hex[:40]!r}") from None
    return {
        "alg": soft_binding_alg(method),
        # One block for the whole asset: the mark is tiled over every pixel (empty scope) or repeated
        # over the whole timeline (a timespan in milliseconds from the media start, C2PA 2.x).
        "blocks": [{"scope": {"timespan": {"start": timespan[0], "end": timespan[1]}} if timespan else {},
                    "value": base64.b64encode(payload).decode("ascii")}],
        "pad": [],
        "name": f"aigc-labeler {method} watermark",
        # Not in the C2PA soft-binding schema; c2pa-rs keeps unknown keys. Names the key without revealing it.
        "key_id": key_id,
    }


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
    pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)
    return pem, certs


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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


@contextlib.contextmanager
def closing_native(obj: Any) -> Any:
    """Context manager that closes a c2pa native object (Context, Builder, Reader, Signer) on exit.

    Native handles are freed here, on this thread, rather than by ``__del__`` at an arbitrary time on
    an arbitrary thread (shared or late-freed handles crash the native library under threads).
    """
    try:
        yield obj
    finally:
        with contextlib.suppress(Exception):
            obj.close()

