"""`aigc keys init` cut short (a full disk) leaves no half PKI (QA, December 2026): the files written
before the failure stayed, and every later run refused the folder as "already holds a PKI"."""

from __future__ import annotations

import pytest

import labeler.provenance.pki as pki
from labeler.errors import LabelerError


def test_a_pki_cut_short_is_removed_whole_and_can_be_made_again(tmp_path, monkeypatch):
    real = pki._write
    calls = []

    def failing(path, data, *, private, overwrite):
        calls.append(path)
        if len(calls) == 4:  # after the three keys: the disk is full
            raise LabelerError(f"{path}: No space left on device")
        real(path, data, private=private, overwrite=overwrite)

    monkeypatch.setattr(pki, "_write", failing)
    with pytest.raises(LabelerError, match="No space left"):
        pki.init_test_pki(tmp_path / "keys")
    assert not [p for p in (tmp_path / "keys").rglob("*") if p.is_file()]
    monkeypatch.setattr(pki, "_write", real)
    made = pki.init_test_pki(tmp_path / "keys")
    assert made.signer_key.is_file() and made.trust_anchor.is_file()


def test_an_existing_pki_is_not_removed_when_overwrite_fails(tmp_path, monkeypatch):
    first = pki.init_test_pki(tmp_path / "keys")
    real = pki._write

    def failing(path, data, *, private, overwrite):
        if path == first.root_cert:
            raise LabelerError(f"{path}: No space left on device")
        real(path, data, private=private, overwrite=overwrite)

    monkeypatch.setattr(pki, "_write", failing)
    with pytest.raises(LabelerError):
        pki.init_test_pki(tmp_path / "keys", overwrite=True)
    # the cleanup is for a new PKI only: the files of the one being replaced are never deleted
    assert all(p.is_file() for p in (first.root_key, first.signer_key, first.root_cert, first.trust_anchor))
