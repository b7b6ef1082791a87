"""What our C2PA manifest says: the assertion labels, the MIME types and the manifest definition.

Pure data building, no native calls and no I/O: :mod:`labeler.provenance.c2pa_sign` hands the
definition to c2pa-rs, and :mod:`detectors.c2pa` reads the same labels back. The manifest (details
and choices in ``docs/c2pa.md``) holds:

- ``c2pa.actions.v2`` with one ``c2pa.created`` action, digitalSourceType
  ``http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia`` and our softwareAgent
  (``c2pa.opened`` of the parent instead, when the input already had a manifest);
- ``cn.tc260.aigc``: the seven GB 45438-2025 Appendix E fields, as ``AIGCLabel.as_dict()`` gives them;
- ``c2pa.soft-binding`` naming our invisible watermark (method, key id, payload) when there is one.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from labeler.errors import LabelerError
from labeler.formats import FORMAT_TABLE
from labeler.record import AIGCLabel

__all__ = [
    "AIGC_ASSERTION",
    "SOFT_BINDING_ASSERTION",
    "TRAINED_ALGORITHMIC_MEDIA",
    "MIME_TYPES",
    "PARENT_ID",
    "soft_binding_alg",
    "our_assertions",
    "manifest_definition",
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
#: Ingredient id of the input's own manifest store, named by the ``c2pa.opened`` action.
PARENT_ID = "parent"


def soft_binding_alg(method: str) -> str:
    """The soft-binding ``alg`` for a watermark method (``dct`` -> ``aigc-labeler.wm.dct.1``).

    Not in the C2PA soft-binding algorithm list: only this toolkit's detector reads the mark.
    """
    return f"aigc-labeler.wm.{method}.1"


def our_assertions(label: AIGCLabel | None, soft_binding: Mapping[str, Any] | None,
                   timespan: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """The AIGC label and soft-binding assertions (the label validated first).

    Parameters
    ----------
    label : AIGCLabel, optional
        Gives the ``cn.tc260.aigc`` assertion.
    soft_binding : mapping, optional
        The watermark layer's result (``method``, hex ``payload``, ``key_id``).
    timespan : (int, int), optional
        Audio and video: ``(0, duration)`` in milliseconds, the soft binding's scope; None for images.

    Raises
    ------
    LabelerError
        An invalid label, or a soft binding without a method or a hex payload.
    """
    assertions: list[dict[str, Any]] = []
    if label is not None:
        label.check()
        assertions.append({"label": AIGC_ASSERTION, "data": label.as_dict()})
    if soft_binding is not None:
        data = _soft_binding_data(soft_binding, timespan)
        assertions.append({"label": SOFT_BINDING_ASSERTION, "data": data})
    return assertions


def manifest_definition(title: str, mime: str, parent: bool, digital_source_type: str,
                        software_agent: str | None, assertions: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest definition c2pa-rs signs: the created/opened action first, then our assertions.

    Parameters
    ----------
    title : str
        The asset's title (the output's file name, or ``"<bytes>"``).
    mime : str
        The asset's MIME type (:data:`MIME_TYPES`).
    parent : bool
        The input has a manifest of its own: the action is ``c2pa.opened`` of that ingredient.
    digital_source_type : str
        IPTC digital source type of the action.
    software_agent : str or None
        ``"name version"``; None: ``aigc-labeler <version>``.
    assertions : list of dict
        What :func:`our_assertions` built.
    """
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
        action["parameters"] = {"ingredientIds": [PARENT_ID]}
    return {
        "claim_generator_info": [{"name": "aigc-labeler", "version": __version__}],
        "title": title,
        "format": mime,
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [action]}}, *assertions],
    }


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
