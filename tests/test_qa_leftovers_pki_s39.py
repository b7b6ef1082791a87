"""`aigc keys init --overwrite` that fails midway is all or nothing (QA, December 2026).

Before, a folder where ``signer.cert.pem`` goes (or a full disk after the first files) left the three new
keys and the new root/intermediate certificates beside the old signer certificate and chain: a PKI
whose chain no longer matched its keys, with the old one gone.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

import labeler.provenance.pki as pki
from labeler.errors import LabelerError


def _digests(folder: Path) -> dict[str, str]:
    files = (p for p in sorted(folder.iterdir()) if p.is_file())
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _aigc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labeler.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_a_folder_in_the_way_leaves_the_old_pki_untouched(tmp_path):
    keys = tmp_path / "keys"
    assert _aigc("keys", "init", str(keys)).returncode == 0
    (keys / "signer.cert.pem").unlink()
    (keys / "signer.cert.pem").mkdir()
    before = _digests(keys)
    done = _aigc("keys", "init", str(keys), "--overwrite")
    assert done.returncode != 0
    assert "signer.cert.pem" in done.stderr and "Traceback" not in done.stderr
    assert _digests(keys) == before  # not one new key beside the old certificates
    assert sorted(p.name for p in keys.iterdir() if not p.is_file()) == ["signer.cert.pem"]


@pytest.mark.parametrize("error", [LabelerError("No space left on device"),
                                   OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_write_failing_after_the_keys_puts_the_old_pki_back(tmp_path, monkeypatch, error):
    first = pki.init_test_pki(tmp_path / "keys")
    before = _digests(first.directory)
    real = pki._write
    calls: list[Path] = []

    def failing(path, data, *, private, overwrite):
        calls.append(path)
        if len(calls) == 6:  # three keys and two certificates replaced: the disk is full
            raise error
        real(path, data, private=private, overwrite=overwrite)

    monkeypatch.setattr(pki, "_write", failing)
    with pytest.raises((LabelerError, KeyboardInterrupt)):
        pki.init_test_pki(first.directory, overwrite=True)
    assert _digests(first.directory) == before
    assert sorted(p.name for p in first.directory.iterdir()) == sorted(before)  # no folder of old files left
    assert first.root_key.stat().st_mode & 0o777 == 0o600
    monkeypatch.setattr(pki, "_write", real)
    pki.init_test_pki(first.directory, overwrite=True)  # and a later run replaces it whole
    after = _digests(first.directory)
    assert all(after[name] != digest for name, digest in before.items())


def test_a_partly_present_pki_gets_back_exactly_what_it_had(tmp_path, monkeypatch):
    first = pki.init_test_pki(tmp_path / "keys")
    first.chain.unlink()
    first.trust_anchor.unlink()
    before = _digests(first.directory)
    real = pki._write

    def failing(path, data, *, private, overwrite):
        if path == first.trust_anchor:  # the last file: the chain was new and must go again
            raise LabelerError(f"{path}: Input/output error")
        real(path, data, private=private, overwrite=overwrite)

    monkeypatch.setattr(pki, "_write", failing)
    with pytest.raises(LabelerError, match="Input/output error"):
        pki.init_test_pki(first.directory, overwrite=True)
    assert _digests(first.directory) == before
