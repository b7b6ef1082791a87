"""A manifest store: the watermark's soft binding -> the signed C2PA manifest, for durable credentials.

When :func:`labeler.label_file` signs a manifest for content it also watermarks, it keeps
``(alg, key_id, payload) -> manifest store`` here (and the AIGC label record). A verifier that finds
the watermark in a file whose metadata and manifest were stripped looks the payload up and validates
the manifest it gets back (C2PA 2.2 section 18.10, "durable content credentials"). The store holds
manifests and labels, never media, and is keyed by the key's public ID, never by the key.

Two backends with one interface: SQLite, a single file in WAL mode, safe for the processes of
``aigc batch`` writing at once (each write is one short transaction; a busy database is waited for, up
to :data:`BUSY_TIMEOUT_S`); and PostgreSQL through a ``postgresql://`` URL for many machines (the
``psycopg`` package, extra ``aigc-labeler[postgres]``). :func:`open_store` picks one from its argument.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeler.errors import LabelerError

#: Seconds a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 30.0
#: Largest manifest store kept (bytes): a manifest with a thumbnail is well under this.
MAX_MANIFEST_BYTES = 16 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (
    manifest_id TEXT PRIMARY KEY,
    mime TEXT NOT NULL,
    store BLOB NOT NULL,
    label TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS bindings (
    alg TEXT NOT NULL,
    key_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    manifest_id TEXT NOT NULL REFERENCES manifests(manifest_id),
    PRIMARY KEY (alg, key_id, payload, manifest_id)
);
CREATE INDEX IF NOT EXISTS bindings_by_payload ON bindings (payload, alg);
"""


# Two plain conditions rather than "(? IS NULL OR key_id = ?)", which would stop either index being
# used: the primary key serves lookups with a key ID, bindings_by_payload those without.
_WHERE_KEY = "b.alg = ? AND b.key_id = ? AND b.payload = ?"
_WHERE_ANY = "b.payload = ? AND b.alg = ?"


class StoreError(LabelerError):
    """The manifest store is missing, locked, corrupt, read-only or unreachable."""


@dataclass(frozen=True)
class StoredManifest:
    """One manifest found for a soft binding.

    Attributes
    ----------
    manifest_id : str
        The active manifest's label (URN).
    mime : str
        MIME type of the content it was signed for.
    store : bytes
        The whole C2PA manifest store (``application/c2pa``).
    label : str or None
        The AIGC label record (JSON) written with it.
    created : float
        When it was stored (Unix time, seconds).
    """

    manifest_id: str
    mime: str
    store: bytes
    label: str | None
    created: float


def _check_is_store(conn: sqlite3.Connection) -> None:
    """Refuse a database that holds tables of its own (another application's, given by mistake).

    Opening it as a store would add our tables to it and switch it to WAL; a lookup would read
    "no such table". An empty database (no tables at all) is a new store.

    Raises
    ------
    sqlite3.DatabaseError
        Not a manifest store (or not a database at all).
    """
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and not {"manifests", "bindings"} <= tables:
        raise sqlite3.DatabaseError("not a manifest store (it holds other tables: "
                                    f"{', '.join(sorted(tables)[:5])})")


def _prepare(conn: sqlite3.Connection) -> None:
    """Switch ``conn``'s database to WAL and create the tables, retrying while another process does.

    SQLite answers "database is locked" at once, without its busy handler, to a journal-mode change
    racing another connection's and to a schema write from a stale snapshot; both happen when batch
    workers open a new store together. The schema is written inside ``BEGIN IMMEDIATE`` (the write
    lock first, so never from a stale snapshot) and the whole step is retried up to
    :data:`BUSY_TIMEOUT_S`.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            _check_is_store(conn)  # before anything is written to someone else's database
            # WAL: readers never block the writer, and concurrent batch workers queue for the lock.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class SqliteStore:
    """The manifest store in one SQLite file (created on first write).

    Parameters
    ----------
    path : path-like
        The database file. Its folder must exist.
    readonly : bool
        Open for lookups only (a missing file is then an error, not created).
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if self.path.is_dir():
            # Said as such: a lookup called a folder a store that "does not exist", a write one that
            # "cannot be written (Is a directory)".
            raise StoreError(f"manifest store {self.path} is a folder, not a store file; give the path of "
                             "the SQLite file (created on first write) inside it")
        if readonly and not self.path.is_file():
            raise StoreError(f"manifest store {self.path} does not exist")
        if not readonly and not self.path.parent.is_dir():
            raise StoreError(f"manifest store folder does not exist: {self.path.parent}")

    def _connect(self) -> sqlite3.Connection:
        name = urllib.parse.quote(os.fspath(self.path))
        if not self.readonly:
            self._check_writable()
            uri = f"file:{name}?mode=rwc"
        elif os.path.exists(f"{self.path}-wal"):
            uri = f"file:{name}?mode=ro"  # a writer is at work: read through its WAL
        else:
            # No writer (a writer's last close checkpoints and removes the WAL): read the file as it is.
            # mode=ro on a WAL database still creates -shm / -wal files beside it, so a lookup wrote
            # beside the store and failed on read-only evidence media ("attempt to write a readonly
            # database"); immutable=1 takes no locks and creates nothing.
            uri = f"file:{name}?immutable=1"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"manifest store {self.path}: {exc}") from None
        try:
            if self.readonly:
                _check_is_store(conn)
            else:
                _prepare(conn)
            return conn
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"manifest store {self.path}: {exc}") from None

    def _check_writable(self) -> None:
        """Refuse an existing store file that cannot be opened for writing, before SQLite touches it.

        SQLite falls back to opening such a file read-only, and for a WAL database it then creates
        ``-wal`` and ``-shm`` files beside it that nobody removes once the write fails ("attempt to write
        a readonly database"); later lookups took them for a writer at work.
        """
        try:
            with open(self.path, "r+b"):
                pass
        except FileNotFoundError:
            return  # a new store: created by the connection
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise StoreError(f"manifest store {self.path}: cannot be written ({why})") from None

    def put(self, *, alg: str, key_id: str, payload: bytes, manifest_id: str, mime: str, store: bytes,
            label: str | None = None) -> None:
        """Keep ``store`` for the soft binding ``(alg, key_id, payload)``; storing it again changes nothing.

        Raises
        ------
        StoreError
            When the database cannot be written (locked longer than :data:`BUSY_TIMEOUT_S`, read-only,
            corrupt).
        """
        if len(store) > MAX_MANIFEST_BYTES:
            raise StoreError(f"manifest store of {len(store)} bytes is over {MAX_MANIFEST_BYTES}")
        conn = self._connect()
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT OR IGNORE INTO manifests VALUES (?, ?, ?, ?, ?)",
                             (manifest_id, mime, store, label, time.time()))
                conn.execute("INSERT OR IGNORE INTO bindings VALUES (?, ?, ?, ?)",
                             (alg, key_id, payload, manifest_id))
        except sqlite3.Error as exc:
            raise StoreError(f"manifest store {self.path}: {exc}") from None
        finally:
            conn.close()

    def find(self, *, alg: str, key_id: str | None, payload: bytes) -> list[StoredManifest]:
        """The manifests stored for a soft binding, newest first (empty when none).

        ``key_id`` None matches any key (a resolution query carries only the algorithm and value).

        Raises
        ------
        StoreError
            When the database cannot be read.
        """
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT m.manifest_id, m.mime, m.store, m.label, m.created FROM bindings b "
                "JOIN manifests m ON m.manifest_id = b.manifest_id "
                f"WHERE {_WHERE_KEY if key_id is not None else _WHERE_ANY} ORDER BY m.created DESC",
                (alg, key_id, payload) if key_id is not None else (payload, alg),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"manifest store {self.path}: {exc}") from None
        finally:
            conn.close()
        return [StoredManifest(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]

    def get(self, manifest_id: str) -> StoredManifest | None:
        """The manifest stored under ``manifest_id``, or None."""
        conn = self._connect()
        try:
            row = conn.execute("SELECT manifest_id, mime, store, label, created FROM manifests "
                               "WHERE manifest_id = ?", (manifest_id,)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"manifest store {self.path}: {exc}") from None
        finally:
            conn.close()
        return StoredManifest(row[0], row[1], bytes(row[2]), row[3], row[4]) if row else None

    def count(self) -> int:
        """Number of soft bindings stored."""
        conn = self._connect()
        try:
            return int(conn.execute("SELECT COUNT(*) FROM bindings").fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"manifest store {self.path}: {exc}") from None
        finally:
            conn.close()


class PostgresStore:
    """The manifest store in a PostgreSQL database (tables created on first write).

    Parameters
    ----------
    url : str
        A libpq URL, ``postgresql://USER:PASSWORD@HOST:PORT/DB`` (or ``postgres://``).
    readonly : bool
        Lookups only: the tables are not created.
    """

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        try:
            import psycopg  # noqa: F401 - checked here so a missing package is one clear line
        except ImportError:
            raise StoreError("a postgresql:// manifest store needs the psycopg package "
                             "(pip install 'aigc-labeler[postgres]')") from None
        self.url = url
        self.readonly = readonly

    def _connect(self) -> Any:
        import psycopg

        try:
            conn = psycopg.connect(self.url, connect_timeout=int(BUSY_TIMEOUT_S), autocommit=True)
            if not self.readonly:
                # Two writers may both create the tables at first use: IF NOT EXISTS plus a lock.
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(26045438)")
                    conn.execute(_SCHEMA.replace("BLOB", "BYTEA").replace("REAL", "DOUBLE PRECISION"))
            return conn
        except psycopg.Error as exc:
            raise StoreError(f"manifest store {_safe_url(self.url)}: {_one_line(exc)}") from None

    def put(self, *, alg: str, key_id: str, payload: bytes, manifest_id: str, mime: str, store: bytes,
            label: str | None = None) -> None:
        """As :meth:`SqliteStore.put`."""
        import psycopg

        if len(store) > MAX_MANIFEST_BYTES:
            raise StoreError(f"manifest store of {len(store)} bytes is over {MAX_MANIFEST_BYTES}")
        try:
            with self._connect() as conn, conn.transaction():
                conn.execute("INSERT INTO manifests VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                             (manifest_id, mime, store, label, time.time()))
                conn.execute("INSERT INTO bindings VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                             (alg, key_id, payload, manifest_id))
        except psycopg.Error as exc:
            raise StoreError(f"manifest store {_safe_url(self.url)}: {_one_line(exc)}") from None

    def find(self, *, alg: str, key_id: str | None, payload: bytes) -> list[StoredManifest]:
        """As :meth:`SqliteStore.find`."""
        import psycopg

        try:
            with self._connect() as conn:
                rows = conn.execute(
                    "SELECT m.manifest_id, m.mime, m.store, m.label, m.created FROM bindings b "
                    "JOIN manifests m ON m.manifest_id = b.manifest_id "
                    f"WHERE {_WHERE_KEY if key_id is not None else _WHERE_ANY} ORDER BY m.created DESC"
                    .replace("?", "%s"),
                    (alg, key_id, payload) if key_id is not None else (payload, alg),
                ).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"manifest store {_safe_url(self.url)}: {_one_line(exc)}") from None
        return [StoredManifest(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]

    def get(self, manifest_id: str) -> StoredManifest | None:
        """As :meth:`SqliteStore.get`."""
        import psycopg

        try:
            with self._connect() as conn:
                row = conn.execute("SELECT manifest_id, mime, store, label, created FROM manifests "
                                   "WHERE manifest_id = %s", (manifest_id,)).fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"manifest store {_safe_url(self.url)}: {_one_line(exc)}") from None
        return StoredManifest(row[0], row[1], bytes(row[2]), row[3], row[4]) if row else None

    def count(self) -> int:
        """Number of soft bindings stored."""
        import psycopg

        try:
            with self._connect() as conn:
                return int(conn.execute("SELECT COUNT(*) FROM bindings").fetchone()[0])
        except psycopg.Error as exc:
            raise StoreError(f"manifest store {_safe_url(self.url)}: {_one_line(exc)}") from None


def _safe_url(url: str) -> str:
    # Never print a password: postgresql://user:secret@host/db -> postgresql://user@host/db
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1@", url)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


class RemoteStore:
    """A C2PA Soft Binding Resolution API service (read only), e.g. another ``aigc serve``.

    ``find`` asks ``GET {base}/matches/byBinding?alg=...&value=...`` (value: base64 of the payload, the
    soft binding's own value; our services also take ``keyId``, others ignore it), then fetches each
    match with ``GET {endpoint or base}/manifests/{manifestId}`` (``application/c2pa``). Every request
    has a timeout; a service that is down, slow or answers garbage is a :class:`StoreError`, which
    ``verify`` reports as a warning.

    Parameters
    ----------
    base : str
        The service's base URL: ``https://...``; plain ``http://`` only for a service on this machine
        (127.0.0.1, ::1, localhost).
    token : str, optional
        Bearer token, default the ``AIGC_RESOLVER_TOKEN`` environment variable.
    timeout : float
        Seconds per request.
    """

    #: Matches fetched per lookup.
    MAX_RESULTS = 5

    def __init__(self, base: str, *, token: str | None = None, timeout: float = 5.0) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(base)
        local = parts.hostname in ("127.0.0.1", "::1", "localhost")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise StoreError(f"manifest store {base}: a resolution service must be https:// "
                             "(http:// only on this machine)")
        self.base = base.rstrip("/")
        self.token = token if token is not None else os.environ.get("AIGC_RESOLVER_TOKEN")
        self.timeout = timeout

    def _get(self, url: str, limit: int) -> tuple[bytes, str]:
        import http.client
        import urllib.error
        import urllib.request

        request = urllib.request.Request(url, headers={"Accept": "application/json, application/c2pa"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310 - scheme checked
                body = answer.read(limit + 1)
                kind = answer.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            raise StoreError(f"manifest store {self.base}: HTTP {exc.code} for {url}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StoreError(f"manifest store {self.base}: {_one_line(reason)}") from None
        except http.client.HTTPException as exc:
            # A peer that does not speak HTTP (BadStatusLine, LineTooLong, IncompleteRead) "answers
            # garbage": a warning like any other, not an internal error that ends the verify.
            raise StoreError(f"manifest store {self.base}: not an HTTP answer ({type(exc).__name__}: "
                             f"{_one_line(exc)[:80]})") from None
        if len(body) > limit:
            raise StoreError(f"manifest store {self.base}: answer over {limit} bytes")
        return body, kind

    def find(self, *, alg: str, key_id: str | None, payload: bytes) -> list[StoredManifest]:
        """As :meth:`SqliteStore.find`, over the network."""
        import base64
        import json
        from urllib.parse import quote, urlencode

        fields = {"alg": alg, "value": base64.b64encode(payload).decode(), "maxResults": self.MAX_RESULTS}
        query = urlencode({**fields, **({"keyId": key_id} if key_id else {})})
        body, _ = self._get(f"{self.base}/matches/byBinding?{query}", 1 << 20)
        try:
            matches = json.loads(body)["matches"]
            ids = [(str(m["manifestId"]), str(m.get("endpoint") or self.base).rstrip("/")) for m in matches]
        except (ValueError, KeyError, TypeError):
            raise StoreError(f"manifest store {self.base}: not a soft-binding query result") from None
        found = []
        for manifest_id, endpoint in ids[: self.MAX_RESULTS]:
            if endpoint != self.base:
                continue  # another service's manifest: not fetched (one trust decision per lookup)
            url = f"{self.base}/manifests/{quote(manifest_id, safe='')}"
            store, kind = self._get(url, MAX_MANIFEST_BYTES)
            if kind != "application/c2pa":
                raise StoreError(f"manifest store {self.base}: /manifests gave {kind}, not application/c2pa")
            found.append(StoredManifest(manifest_id, "", store, None, 0.0))
        return found

    def put(self, **_: object) -> None:
        """A resolution service is read only here."""
        raise StoreError(f"manifest store {self.base}: a resolution service is read only")


def open_store(spec: str | os.PathLike[str], *,
               readonly: bool = False) -> SqliteStore | PostgresStore | RemoteStore:
    """Open the manifest store that ``spec`` names: a file path, ``sqlite:///PATH``, ``postgresql://...``,
    or a resolution service's ``https://`` base URL (read only).

    Raises
    ------
    StoreError
        For a scheme this version cannot reach (e.g. ``ftp://``), a bad path, or a missing driver.
    """
    text = os.fspath(spec)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):]  # SQLAlchemy's form: sqlite:///relative, sqlite:////absolute
    elif text.startswith(("postgresql://", "postgres://")):
        return PostgresStore(text, readonly=readonly)
    elif text.startswith(("https://", "http://")):
        return RemoteStore(text)
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreError(f"manifest store {scheme}:// is not supported (a SQLite file path, a "
                         "postgresql:// URL or a resolution service's https:// URL)")
    return SqliteStore(text, readonly=readonly)
