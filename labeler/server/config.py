"""What one ``aigc serve`` instance runs with: the server's keys, signer, trust anchors and limits.

Everything secret (watermark keys, the C2PA signer, the API token) is the server's and comes from
its command line; a client never sends any of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labeler.errors import LabelerError

if TYPE_CHECKING:
    from labeler.provenance.c2pa_sign import SignerSpec

#: Default largest upload (GB 45438 media are rarely larger; a longer video can be labeled by the CLI).
DEFAULT_MAX_UPLOAD_MB = 200
#: Default seconds one label or verify job may take before the client gets 504.
DEFAULT_TIMEOUT_S = 300.0
#: Default requests admitted at once (uploading, queued or running) before 503.
DEFAULT_MAX_CONCURRENT = 16
#: Default largest image (megapixels) the server decodes: 50 MP covers 48 MP phone photos, and one
#: decode then costs about 1 GB instead of the 5+ GB the toolkit's own bound (16384 x 16384) allows.
DEFAULT_MAX_MEGAPIXELS = 50
#: Most files one ``POST /v1/verify`` may carry.
MAX_FILES_PER_REQUEST = 32


@dataclass(frozen=True)
class ServerConfig:
    """The settings of one server.

    Attributes
    ----------
    keys : tuple of bytes
        Watermark keys. The first one labels; verifying tries each in turn (key rotation: old keys
        keep recognising old files).
    signer : SignerSpec or None
        C2PA signer for the ``c2pa`` layer of ``/v1/label``.
    trust_anchors : tuple of str
        PEM files of trusted C2PA roots for ``/v1/verify``.
    token : str or None
        Bearer token ``/v1/label`` requires; None: no token asked.
    max_upload_bytes : int
        Largest file accepted (413 beyond it).
    workers : int
        Processes of the pool that runs label and verify.
    max_concurrent : int
        Label and verify requests admitted at once (503 beyond); 0 refuses every one (maintenance).
    timeout_s : float
        Seconds a job may run before the client gets 504.
    max_pixels : int
        Largest image (width x height) the server decodes; beyond it verify answers 422 and label
        refuses the pixel layers (422). The toolkit's own limits apply below it.
    temp_dir : str or None
        Folder under which each request gets its private folder; None: :func:`tempfile.gettempdir`.
    manifest_store : str or None
        Manifest store (:func:`labeler.provenance.store.open_store`): ``/v1/label`` keeps signed
        manifests there, ``/v1/verify`` recovers stripped files' manifests from it, and the C2PA Soft
        Binding Resolution API (``/matches/byBinding``, ``/manifests/{id}``) serves it.
    """

    keys: tuple[bytes, ...] = ()
    signer: SignerSpec | None = None
    trust_anchors: tuple[str, ...] = ()
    token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB << 20
    workers: int = 1
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_pixels: int = DEFAULT_MAX_MEGAPIXELS * 1_000_000
    temp_dir: str | None = None
    manifest_store: str | None = None

    @property
    def labeling_layers(self) -> tuple[str, ...]:
        """Layers ``/v1/label`` can write with this configuration."""
        layers = ["metadata", "visible"]
        if self.keys:
            layers.insert(0, "watermark")
        if self.signer is not None:
            layers.append("c2pa")
        return tuple(layers)

    @property
    def labeling_enabled(self) -> bool:
        """Labeling is offered only by a server that holds a watermark key or a C2PA signer.

        A server started without either is a verification service: it must not hand out labels in a
        provider's name that carry none of the provider's own secrets.
        """
        return bool(self.keys) or self.signer is not None


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The bearer token in ``path``: its first line, stripped; at least 16 characters.

    Raises
    ------
    LabelerError
        Unreadable file, or a token too short to be a secret.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise LabelerError(f"{path}: cannot read the token file ({reason})") from None
    if len(token) < 16 or any(ch.isspace() or not ch.isprintable() for ch in token):
        raise LabelerError(f"{path}: the token must be one line of at least 16 printable characters, "
                           "no spaces")
    return token
