"""C2PA layer of verify: read and validate a file's manifest, offline, into a JSON-ready layer.

::

    >>> from detectors.c2pa import read_c2pa
    >>> layer = read_c2pa("signed.jpg", trust_anchors=["pki/trust-anchors.pem"])
    >>> layer.state, layer.ai_generated, layer.codes
    ('Trusted', True, [])

Validation is c2pa-rs's (the native library of c2pa-python 0.38): ``Trusted`` when the signing chain
ends at a given trust anchor, ``Valid`` when every hash and the signature check out but the signer is
not trusted (code ``signingCredential.untrusted``), ``Invalid`` otherwise (e.g.
``assertion.dataHash.mismatch`` after one changed byte). Remote manifests are never fetched and OCSP is
never queried, so a report does not depend on the network. Each call makes its own native Context and
Reader, so calls may run on many threads at once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labeler.errors import InvalidArgument, LabelerError
from labeler.metadata.jpeg import may_hold_c2pa
from labeler.provenance.c2pa_manifest import AIGC_ASSERTION, SOFT_BINDING_ASSERTION
from labeler.provenance.c2pa_sign import closing_native
from labeler.provenance.c2pa_walk import too_many_chunks
from labeler.record import FIELD_NAMES, LabelParseError, parse_label

__all__ = ["C2paLayer", "read_c2pa", "load_trust_anchors", "AI_SOURCE_TYPES", "AIGC_ASSERTION"]

#: Digital source types (last path segment of the IPTC / C2PA URI) that mean "made or changed by AI".
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"})
_OUR_ALG = re.compile(r"^aigc-labeler\.wm\.([a-z0-9]+)\.1$")
# A label may carry a version (".v2") or an instance suffix ("__1") (C2PA assertion label rules).
_LABEL_SUFFIX = re.compile(r"(\.v\d+)?(__\d+)?$")
_MAX_PEM = 1 << 20
_REMOTE_URL = re.compile(r"https?://\S+")
# "timestamp message digest matched: Test TSA", "timestamp cert untrusted: Test TSA" (c2pa-rs 0.91).
_TSA_NAME = re.compile(r"^timestamp [^:]*:\s*([^,]+)")


@dataclass
class C2paLayer:
    """The C2PA layer of a verification report.

    Attributes
    ----------
    present : bool
        A manifest store was found: embedded, or referenced remotely (then ``remote`` is true).
    state : str or None
        ``Trusted``, ``Valid`` or ``Invalid`` (c2pa-rs validation state); None when there is no manifest
        or it could not be validated (see ``error``).
    ai_generated : bool or None
        From the active manifest's actions: True if one has an AI digitalSourceType
        (:data:`AI_SOURCE_TYPES`), False if they have source types and none is AI, None if none.
    signer : str or None
        The signing certificate's common name, else its issuer organisation.
    issuer : str or None
        The signing certificate's issuer organisation.
    codes : list of str
        Validation failure codes of the active manifest, in c2pa-rs order, without repeats (e.g.
        ``signingCredential.untrusted``, ``assertion.dataHash.mismatch``).
    aigc_fields : dict or None
        The seven Appendix E fields of our ``cn.tc260.aigc`` assertion (a missing field is None).
    soft_binding : dict or None
        The first ``c2pa.soft-binding`` assertion: ``alg``, ``method`` and ``key_id`` (ours only), and
        ``payload`` (hex of the first block's value).
    ingredients : list of dict
        Per ingredient: ``title``, ``relationship`` (``parentOf``...), ``manifest`` (whether it carries
        one) and ``codes`` (its failure codes, e.g. a tampered parent's ``assertion.dataHash.mismatch``).
    remote : bool
        The manifest is only referenced by URL (not fetched: verification is offline).
    time_stamp : dict or None
        The RFC 3161 time-stamp on the active manifest's signature (signed with ``--tsa``): ``time``
        (ISO 8601, UTC, the TSA's time of signing), ``tsa`` (the time-stamp certificate's common
        name, as c2pa-rs names it; None if it does not) and ``codes`` (the ``timeStamp.*`` status
        codes, e.g. ``timeStamp.validated``, ``timeStamp.trusted`` or ``timeStamp.untrusted``).
        None when the signature carries no time-stamp.
    error : str or None
        One line when a manifest exists (or may) but could not be read or validated.
    """

    present: bool = False
    state: str | None = None
    ai_generated: bool | None = None
    signer: str | None = None
    issuer: str | None = None
    codes: list[str] = field(default_factory=list)
    aigc_fields: dict[str, str | None] | None = None
    soft_binding: dict[str, Any] | None = None
    ingredients: list[dict[str, Any]] = field(default_factory=list)
    remote: bool = False
    time_stamp: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, keys in a stable order."""
        return {
            "present": self.present,
            "state": self.state,
            "ai_generated": self.ai_generated,
            "signer": self.signer,
            "issuer": self.issuer,
            "codes": list(self.codes),
            "aigc_fields": dict(self.aigc_fields) if self.aigc_fields is not None else None,
            "soft_binding": dict(self.soft_binding) if self.soft_binding is not None else None,
            "ingredients": [dict(i) for i in self.ingredients],
            "remote": self.remote,
            "time_stamp": dict(self.time_stamp, codes=list(self.time_stamp["codes"]))
            if self.time_stamp is not None else None,
            "error": self.error,
        }


def load_trust_anchors(paths: Iterable[str | os.PathLike[str]]) -> str:
    """Concatenate the PEM certificates of ``paths`` (each must hold at least one certificate).

    Raises
    ------
    LabelerError
        A file cannot be read or holds no PEM certificate.
    """
    out = []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                raw = handle.read(_MAX_PEM + 1)
        except OSError as exc:
            raise LabelerError(f"trust anchors {os.fspath(path)}: {exc.strerror}") from None
        if len(raw) > _MAX_PEM:
            raise LabelerError(f"trust anchors {os.fspath(path)}: too large for a PEM file")
        text = raw.decode("ascii", errors="replace")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise LabelerError(f"trust anchors {os.fspath(path)}: no PEM certificate in it")
        out.append(text if text.endswith("\n") else text + "\n")
    return "".join(out)


def read_c2pa(path: str | os.PathLike[str] | bytes, *, trust_anchors: list[str] | None = None,
              mime: str | None = None, manifest_data: bytes | None = None) -> C2paLayer:
    """Read and validate the C2PA manifest of the file at ``path`` (or of an encoded file in memory).

    Parameters
    ----------
    path : path or bytes
        Any file; its type is detected from the content. ``bytes`` are read from memory through
        c2pa-python's stream API (no temporary file); ``mime`` must then name their type.
    mime : str, optional
        MIME type of the content (:data:`labeler.formats.FORMAT_TABLE`); required for ``bytes``.
    manifest_data : bytes, optional
        A manifest store kept apart from the file (``application/c2pa``, e.g. from a manifest
        repository) to validate against the content instead of an embedded one.
    trust_anchors : list of paths, optional
        PEM files of root certificates to trust (e.g. ``trust-anchors.pem`` of ``aigc keys init``).
        A manifest whose signing chain ends at one of them is ``Trusted``.

    Returns
    -------
    C2paLayer
        A JPEG without an APP11 segment or an XMP reference to a remote store
        (:func:`labeler.metadata.jpeg.may_hold_c2pa`) is not handed to c2pa-rs: it holds no manifest.
        A malformed or hostile container, or a manifest that cannot be parsed, gives a layer with
        ``error`` set (``present`` true when a manifest was seen), never an exception.

    Raises
    ------
    LabelerError
        Only when ``path`` or a trust-anchor file cannot be opened (``InvalidArgument`` when ``path``
        is neither a path nor bytes).
    """
    import c2pa  # loaded on first use: it is most of `import detectors`' time
    settings: dict[str, Any] = {
        # Offline and deterministic: no remote manifests, no OCSP; trust is checked against the anchors.
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True},
    }
    if trust_anchors:
        # user_anchors add to c2pa-rs's own (empty by default) anchors instead of replacing them.
        settings["trust"] = {"user_anchors": load_trust_anchors(trust_anchors)}
    layer = C2paLayer()
    if not isinstance(path, (str, os.PathLike, bytes, bytearray, memoryview)):
        raise InvalidArgument(f"read_c2pa reads a path or bytes, not {type(path).__name__}")
    try:
        # Closed below, after the Reader that borrows it.
        handle = (io.BytesIO(bytes(path)) if isinstance(path, (bytes, bytearray, memoryview))
                  else open(path, "rb"))  # noqa: SIM115
    except OSError as exc:
        raise LabelerError(exc.strerror or str(exc)) from None
    with handle:
        if mime in (None, "image/jpeg") and manifest_data is None and not may_hold_c2pa(handle):
            # Most JPEGs carry no manifest: c2pa-rs would find none either, for ~0.3-0.7 ms a file.
            return layer
        handle.seek(0)
        too_many = too_many_chunks(handle)
        if too_many is not None:
            layer.error = f"C2PA: not read: {too_many} (unsafe input)"
            return layer
        handle.seek(0)
        try:
            with closing_native(c2pa.Context.from_dict(settings)) as ctx:
                reader = c2pa.Reader.try_create(mime, handle, manifest_data, ctx)
                if reader is None:
                    return layer
                with closing_native(reader):
                    layer.present = True
                    layer.remote = not reader.is_embedded()
                    store = json.loads(reader.json())
        except c2pa.C2paError as exc:
            return _error_layer(layer, exc)
        except (ValueError, RecursionError) as exc:
            layer.error = f"C2PA manifest store is not readable JSON ({type(exc).__name__})"
            return layer
    _fill(layer, store)
    return layer


def _error_layer(layer: C2paLayer, exc: BaseException) -> C2paLayer:
    import c2pa
    text = " ".join(str(exc).split())
    if text.startswith("Remote") or isinstance(exc, c2pa.C2paError.RemoteManifest):
        url = _REMOTE_URL.search(text)
        layer.present, layer.remote = True, True
        layer.error = f"remote-only manifest{' at ' + url.group(0) if url else ''}; not fetched (offline)"
        return layer
    # "Other: asset could not be parsed: ..." -> keep the library's reason, drop its type prefix.
    reason = re.sub(r"^(?:[A-Za-z]+: )+", "", text)[:300] or type(exc).__name__
    if isinstance(exc, c2pa.C2paError.NotSupported):
        layer.error = f"C2PA cannot read this file type ({reason})"
    else:
        layer.error = f"C2PA: {reason}"
    return layer


def _fill(layer: C2paLayer, store: Mapping[str, Any]) -> None:
    """Fill ``layer`` from the Reader's JSON manifest store."""
    manifests = store.get("manifests") if isinstance(store.get("manifests"), Mapping) else {}
    active = manifests.get(store.get("active_manifest")) if manifests else None
    state = store.get("validation_state")
    layer.state = state if state in ("Trusted", "Valid", "Invalid") else None
    layer.codes = _failure_codes(store)
    if not isinstance(active, Mapping):
        layer.error = layer.error or "C2PA manifest store has no active manifest"
        return
    info = active.get("signature_info")
    if isinstance(info, Mapping):
        layer.issuer = _text(info.get("issuer"))
        layer.signer = _text(info.get("common_name")) or layer.issuer
    layer.time_stamp = _time_stamp(store, info if isinstance(info, Mapping) else {})
    assertions = [a for a in active.get("assertions") or [] if isinstance(a, Mapping)]
    layer.ai_generated = _ai_generated(assertions)
    for assertion in assertions:
        base = _LABEL_SUFFIX.sub("", str(assertion.get("label", "")))
        data = assertion.get("data")
        if base == AIGC_ASSERTION and layer.aigc_fields is None:
            layer.aigc_fields = _aigc_fields(data)
        elif base == SOFT_BINDING_ASSERTION and layer.soft_binding is None and isinstance(data, Mapping):
            layer.soft_binding = _soft_binding(data)
    for ing in active.get("ingredients") or []:
        if isinstance(ing, Mapping):
            layer.ingredients.append(
                {
                    "title": _text(ing.get("title")),
                    "relationship": _text(ing.get("relationship")),
                    "manifest": bool(ing.get("active_manifest")),
                    # The ingredient's own validation, as c2pa-rs recorded it when the ingredient was added.
                    "codes": _failure_codes(ing),
                }
            )


def _failure_codes(store: Mapping[str, Any]) -> list[str]:
    codes: list[str] = []
    results = store.get("validation_results")
    if isinstance(results, Mapping):
        active = results.get("activeManifest")
        entries = active.get("failure", []) if isinstance(active, Mapping) else []
    else:
        # Older stores report a flat validation_status list (failures only).
        entries = store.get("validation_status") or []
    for entry in entries if isinstance(entries, list) else []:
        code = entry.get("code") if isinstance(entry, Mapping) else None
        if isinstance(code, str) and code not in codes:
            codes.append(code)
    return codes


def _time_stamp(store: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any] | None:
    """The signature's RFC 3161 time-stamp: time, TSA name and ``timeStamp.*`` codes, or None."""
    codes: list[str] = []
    tsa = None
    results = store.get("validation_results")
    active = results.get("activeManifest") if isinstance(results, Mapping) else None
    for kind in ("success", "informational", "failure"):
        entries = active.get(kind) if isinstance(active, Mapping) else None
        for entry in entries if isinstance(entries, list) else []:
            code = entry.get("code") if isinstance(entry, Mapping) else None
            if not (isinstance(code, str) and code.startswith("timeStamp.")):
                continue
            if code not in codes:
                codes.append(code)
            # c2pa-rs names the TSA only in its explanations ("timestamp cert trusted: NAME, trust list:
            # ..."); there is no structured field for it in 0.91.
            match = _TSA_NAME.match(str(entry.get("explanation") or ""))
            if tsa is None and match:
                tsa = match.group(1).strip() or None
    time = _text(info.get("time"))
    if time is None and not codes:
        return None
    return {"time": time, "tsa": tsa, "codes": codes}


def _ai_generated(assertions: list[Mapping[str, Any]]) -> bool | None:
    seen = False
    for assertion in assertions:
        if _LABEL_SUFFIX.sub("", str(assertion.get("label", ""))) != "c2pa.actions":
            continue
        data = assertion.get("data")
        actions = data.get("actions") if isinstance(data, Mapping) else None
        for action in actions if isinstance(actions, list) else []:
            if not isinstance(action, Mapping):
                continue
            dst = action.get("digitalSourceType")
            if isinstance(dst, str) and dst:
                seen = True
                if dst.rstrip("/").rsplit("/", 1)[-1] in AI_SOURCE_TYPES:
                    return True
    return False if seen else None


def _aigc_fields(data: Any) -> dict[str, str | None]:
    try:
        parsed = parse_label(data if isinstance(data, (Mapping, str, bytes)) else json.dumps(data))
    except (LabelParseError, TypeError, ValueError):
        return dict.fromkeys(FIELD_NAMES)
    return {name: parsed.fields.get(name) for name in FIELD_NAMES}


def _soft_binding(data: Mapping[str, Any]) -> dict[str, Any]:
    alg = _text(data.get("alg"))
    ours = _OUR_ALG.match(alg or "")
    payload = None
    blocks = data.get("blocks")
    if isinstance(blocks, list) and blocks and isinstance(blocks[0], Mapping):
        value = blocks[0].get("value")
        if isinstance(value, str):
            with contextlib.suppress(binascii.Error, ValueError):
                payload = base64.b64decode(value, validate=True).hex()
    timespan = None
    if isinstance(blocks, list) and blocks and isinstance(blocks[0], Mapping):
        scope = blocks[0].get("scope")
        span = scope.get("timespan") if isinstance(scope, Mapping) else None
        if isinstance(span, Mapping) and all(isinstance(span.get(k), int) for k in ("start", "end")):
            timespan = [span["start"], span["end"]]
    return {
        "alg": alg,
        "method": ours.group(1) if ours else None,
        "key_id": _text(data.get("key_id")) if ours else None,
        "payload": payload,
        "timespan_ms": timespan,
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None



