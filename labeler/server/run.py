"""Running the app under uvicorn for ``aigc serve``: the private temporary folder, the config, the banner."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import os
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from labeler.errors import LabelerError
from labeler.server.app import SERVER_PREFIX, create_app
from labeler.server.config import ServerConfig, read_token_file


@dataclass(frozen=True)
class ServeOptions:
    """``aigc serve``'s options, checked by the CLI (keys read, signer built, anchors loadable)."""

    host: str
    port: int
    keys: tuple[bytes, ...]
    signer: Any
    trust_anchors: tuple[str, ...]
    token_file: str | None
    max_upload_mb: int
    workers: int
    max_concurrent: int
    timeout_s: float
    max_megapixels: int
    manifest_store: str | None = None


def serve(options: ServeOptions) -> None:
    """Serve until interrupted; the private temporary folder is removed on the way out.

    Raises
    ------
    LabelerError
        An unreadable token file, python-multipart missing, or an address that cannot be listened on
        (:func:`check_port`).
    """
    import importlib.util

    import uvicorn

    if not (importlib.util.find_spec("python_multipart") or importlib.util.find_spec("multipart")):
        # Starlette imports without it and would fail on the first upload instead.
        raise LabelerError("aigc serve needs python-multipart: pip install 'aigc-labeler[serve]' "
                           "(in a clone: pip install -e '.[serve]')")
    token = read_token_file(options.token_file) if options.token_file else None
    # --port 0: the port the system picked, for the banner and uvicorn (it would show 0 and pick another)
    options = dataclasses.replace(options, port=check_port(options.host, options.port))
    # One private folder (mode 0700) for everything the server writes: the multipart parser's spooled
    # files (anonymous, via tempfile.tempdir), the requests' folders, and - through TMPDIR, which the
    # worker processes inherit - the library's own aigc-label-*/aigc-verify-* folders.
    root = tempfile.mkdtemp(prefix=SERVER_PREFIX)
    tempfile.tempdir = root
    os.environ["TMPDIR"] = root
    config = ServerConfig(keys=options.keys, signer=options.signer, trust_anchors=options.trust_anchors,
                          token=token, max_upload_bytes=options.max_upload_mb << 20, workers=options.workers,
                          max_concurrent=options.max_concurrent, timeout_s=options.timeout_s, temp_dir=root,
                          max_pixels=options.max_megapixels * 1_000_000,
                          manifest_store=options.manifest_store)
    _banner(options, config)
    # uvicorn re-raises SIGTERM after its graceful shutdown; make that an exit that runs our finally
    # (the default action would end the process before the folder is removed).
    signal.signal(signal.SIGTERM, _terminated)
    try:
        uvicorn.run(create_app(config), host=options.host, port=options.port, log_level="info",
                    server_header=False, timeout_graceful_shutdown=10)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def check_port(host: str, port: int) -> int:
    """Bind ``host:port`` for a moment as uvicorn will, so a taken port is one line before the banner;
    return the port checked.

    uvicorn binds each address ``host`` resolves to with ``SO_REUSEADDR`` (asyncio's ``create_server``),
    so this does the same: a port held by connections in TIME_WAIT is free for both. Without this check
    uvicorn prints the banner, then its own ``ERROR: [Errno 98]`` log line, and exits 3. Port 0 is checked
    too (the address may not be this machine's): the system picks a free port on the first address and
    that port is checked on the others and returned, for the caller to give uvicorn and show.

    Raises
    ------
    LabelerError
        The port is in use, may not be used (a privileged port), or ``host`` is not an address here.
    """
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise LabelerError(f"cannot listen on {host}: {exc.strerror}") from None
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio: the IPv4 address is bound on its own
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((*address[:1], port, *address[2:]))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise LabelerError(f"port {port} is already in use on {host}: stop what holds it "
                                       "or give another --port") from None
                raise LabelerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
            port = port or sock.getsockname()[1]  # 0: the system's pick, then the same on every address
    return port


def _terminated(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _banner(options: ServeOptions, config: ServerConfig) -> None:
    labeling = (f"labeling enabled ({', '.join(config.labeling_layers)}"
                f"{', token required' if config.token else ', NO token'})" if config.labeling_enabled
                else "labeling disabled (no --key-file or --sign-cert/--sign-key)")
    shown = f"[{options.host}]" if ":" in options.host else options.host
    print(f"aigc serve: http://{shown}:{options.port}/ - {labeling}; {options.workers} worker(s), "
          f"uploads up to {options.max_upload_mb} MB", file=sys.stderr, flush=True)
    if not _loopback(options.host):
        print(f"aigc: warning: listening on {options.host}, not only this machine: put it behind a "
              "reverse proxy with TLS (docs/server.md)" + ("" if config.token or not config.labeling_enabled
                                                          else ", and give /v1/label a --token-file"),
              file=sys.stderr, flush=True)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
