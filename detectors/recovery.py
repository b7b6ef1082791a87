"""Durable credentials: find a stripped file's C2PA manifest again through its watermark.

When ``verify`` finds our watermark but no embedded manifest, it looks the watermark's soft binding
(algorithm, key ID, payload) up in a manifest store (:mod:`labeler.provenance.store`) and validates
each manifest found against the file in hand, with the same trust settings as an embedded one
(C2PA 2.2 section 18.10). A recovered manifest's hard binding (the hash of the bytes it was signed
for) cannot match a re-encoded copy, so those mismatch codes are expected and do not make it
``Invalid``: the state is then what the signature and the trust chain say. Its soft binding must
match what was found (section 18.10.5), or it is not taken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detectors.c2pa import C2paLayer, read_c2pa
from labeler.provenance.c2pa_sign import soft_binding_alg
from labeler.provenance.store import open_store

#: Failure codes of a hard binding that no longer matches the bytes (the content was re-encoded).
HARD_BINDING_MISMATCH = frozenset({
    "assertion.dataHash.mismatch", "assertion.bmffHash.mismatch", "assertion.boxesHash.mismatch",
    "assertion.collectionHash.mismatch",
})
#: Failure codes that only say the signer is not in the trust list: the manifest is still Valid.
_UNTRUSTED = frozenset({"signingCredential.untrusted"})
#: Stored manifests validated per lookup (each is a c2pa-rs read of the file in hand).
MAX_CANDIDATES = 10
#: Which of several candidates is reported: the best-validated first.
_STATE_RANK = {"Trusted": 0, "Valid": 1, "Invalid": 2}


#: Image methods that read one embedding: a mark made with "dct" and the per-image budget carries its
#: smooth areas as "dwt", so the detector may name either; both name the same soft binding's mark.
IMAGE_METHODS = ("dct", "dwt")


def _same_mark(method: str) -> tuple[str, ...]:
    """The methods whose soft bindings a mark read by ``method`` may have been stored under, that first."""
    if method in IMAGE_METHODS:
        return (method, *(m for m in IMAGE_METHODS if m != method))
    if method == "audio":
        # A video's soundtrack carries the video's payload under the same key, and its manifest is stored
        # under the video binding only: the soundtrack alone (ripped to M4A) or a video whose frames lost
        # the mark (read on its soundtrack, stream "audio") must find that manifest too.
        return ("audio", "video")
    return (method,)


def recover_manifest(spec: str, watermark: dict[str, Any], content: Path | bytes, mime: str,
                     trust_anchors: list[str] | None = None) -> dict[str, Any] | None:
    """The ``layers.c2pa`` entry of the manifest stored for ``watermark``'s payload, or None.

    Parameters
    ----------
    spec : str
        The manifest store (:func:`labeler.provenance.store.open_store`).
    watermark : dict
        ``layers.watermark`` of the report: ``method``, ``payload`` (hex) and ``key_id`` of a mark found.
    content : path or bytes
        The file in hand, to validate the manifest against.
    mime : str
        Its MIME type.
    trust_anchors : list of str, optional
        As for an embedded manifest.

    Returns
    -------
    dict or None
        As :meth:`detectors.c2pa.C2paLayer.to_dict`, plus ``source: "store"``, ``manifest_id``,
        ``hard_binding`` (``"match"`` or ``"mismatch"``: expected after a re-encode) and ``candidates``
        (how many stored manifests name this mark; the one returned is the first whose hard binding
        matches, else the best state, Trusted, Valid, Invalid; among equals the newest). None when the
        store holds no manifest whose soft binding (algorithm, payload and key ID) matches.

    Raises
    ------
    labeler.provenance.store.StoreError
        When the store is missing, locked or corrupt (the report keeps it as a warning).
    """
    method, payload, key_id = watermark.get("method"), watermark.get("payload"), watermark.get("key_id")
    if not (watermark.get("present") and method and payload and key_id):
        return None
    methods = _same_mark(str(method))
    store = open_store(spec, readonly=True)
    value = bytes.fromhex(str(payload))
    found = [m for name in methods
             for m in store.find(alg=soft_binding_alg(name), key_id=str(key_id), payload=value)]
    entries = []
    for stored in found[:MAX_CANDIDATES]:
        layer = read_c2pa(content, trust_anchors=trust_anchors, mime=mime, manifest_data=stored.store)
        binding = layer.soft_binding or {}
        # 18.10.5: the manifest's soft binding must be the mark found, key included: a resolution
        # service need not honour our keyId, and a payload is only a hash of the ProduceID.
        if (binding.get("method") not in methods or binding.get("payload") != payload
                or binding.get("key_id") != key_id):
            continue
        entries.append(_entry(layer, stored.manifest_id))
    if not entries:
        return None
    # Several manifests for one mark (the same ProduceID labeled twice): the store's order is newest
    # first, and a stable sort keeps it among equals.
    best = min(entries, key=lambda e: (e["hard_binding"] != "match", _STATE_RANK.get(e["state"], 3)))
    best["candidates"] = len(entries)
    return best


def _entry(layer: C2paLayer, manifest_id: str) -> dict[str, Any]:
    """``layer`` (a stored manifest validated against the file in hand) as a recovered ``layers.c2pa``."""
    entry = layer.to_dict()
    mismatched = [c for c in layer.codes if c in HARD_BINDING_MISMATCH]
    rest = set(layer.codes) - HARD_BINDING_MISMATCH
    if layer.error is None and rest <= _UNTRUSTED:
        entry["state"] = "Valid" if rest else "Trusted"
    # c2pa-rs calls a manifest given as detached data "not embedded" (remote); this one was not
    # referenced by URL and left unfetched, it came from the store (`source` says so).
    entry.update(remote=False, source="store", manifest_id=manifest_id,
                 hard_binding="mismatch" if mismatched else "match")
    return entry
