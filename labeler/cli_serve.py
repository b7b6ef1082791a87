"""``aigc serve``: the verification page and the HTTP API (:mod:`labeler.server`), on uvicorn.

Its options and their checks before the server starts (keys, signer, trust anchors read now, not on
the first request); the server itself is :func:`labeler.server.run.serve`. Registered with the
``aigc`` group of :mod:`labeler.cli`, which imports this module, as :mod:`labeler.cli_batch` is.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from labeler.cli import CliPath, _absolute_store, _fail, _read_key, _signer, _trust_anchors_option, cli
from labeler.errors import LabelerError


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Keep the default behind a reverse proxy (docs/server.md).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--key-file", "key_files", multiple=True, type=CliPath(dir_okay=False, path_type=str),
              help="Watermark key (repeatable): the first labels, each is tried when verifying.")
@click.option("--sign-cert", type=CliPath(dir_okay=False, path_type=str),
              help="C2PA signing certificate chain PEM: enables the c2pa layer of /v1/label.")
@click.option("--sign-key", type=CliPath(dir_okay=False, path_type=str), help="C2PA signing key.")
@_trust_anchors_option
@click.option("--token-file", type=CliPath(dir_okay=False, path_type=str),
              help="File whose first line is the bearer token /v1/label and /v1/propagate require.")
@click.option("--max-upload-mb", type=click.IntRange(1, 4096), default=200, show_default=True,
              help="Largest upload (413 beyond).")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Processes that run label and verify.")
@click.option("--max-concurrent", type=click.IntRange(0, 4096), default=16, show_default=True,
              help="Label/verify requests admitted at once (503 beyond).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(1, 86400), default=300, show_default=True,
              help="Seconds one request's upload may take (408 beyond), then seconds its work may take "
                   "(504 beyond).")
@click.option("--max-megapixels", type=click.IntRange(1, 268), default=50, show_default=True,
              help="Largest image decoded (422 beyond): bounds a worker's memory against image bombs.")
@click.option("--manifest-store", default=None, type=CliPath(dir_okay=False, path_type=str), metavar="STORE",
              help="Manifest store (SQLite file or postgresql:// URL): /v1/label keeps manifests there, "
              "/v1/verify recovers them, and the C2PA resolution API (/matches/byBinding) serves them.")
def serve_cmd(host: str, port: int, key_files: Sequence[str], sign_cert: str | None, sign_key: str | None,
              anchor_files: Sequence[str], token_file: str | None, max_upload_mb: int, workers: int,
              max_concurrent: int, timeout_s: float, max_megapixels: int, manifest_store: str | None) -> None:
    """Serve the verification page (GET /) and the HTTP API (/v1/verify, /v1/label, /v1/propagate,
    /v1/health).

    Labeling is enabled when the server has a watermark key or a C2PA signer; keys and signer are the
    server's, never sent by clients. Needs the serve extra: pip install 'aigc-labeler[serve]'.
    """
    try:
        from labeler.server.run import ServeOptions, serve
    except ImportError as exc:
        _fail(f"aigc serve needs the serve extra (pip install 'aigc-labeler[serve]', in a clone "
              f"pip install -e '.[serve]'): {exc}")
    from detectors.c2pa import load_trust_anchors
    from labeler.provenance.store import open_store

    try:
        keys = tuple(_read_key(path) for path in key_files)
        signer = _signer(sign_cert, sign_key, None)
        load_trust_anchors(anchor_files)  # fail now, not on the first request
        if manifest_store:
            # Now too: an unsupported scheme or a SQLite file in a missing folder started the server,
            # whose every c2pa label then failed. Opening checks the spec only (no connection, no file).
            open_store(_absolute_store(manifest_store))
        options = ServeOptions(host, port, keys, signer, tuple(anchor_files), token_file, max_upload_mb,
                               workers, max_concurrent, timeout_s, max_megapixels,
                               _absolute_store(manifest_store))
    except LabelerError as exc:
        _fail(str(exc))
    serve(options)
