"""Progress on stderr while a batch runs: a tqdm bar with an ETA on a terminal (the sources are counted
on a background thread), else a plain line every few seconds."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import IO

from labeler.batch.plan import iter_sources


class Progress:
    """A tqdm bar on a terminal, else a plain line every ``interval`` seconds; both on stderr."""

    def __init__(self, enabled: bool, kind: str, interval: float, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.kind, self.interval = kind, interval
        self.enabled = enabled
        self.started = self.last = time.monotonic()
        self.total: int | None = None  # set by the counting thread when it is done
        self.done = self.skipped = 0
        self.bar = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=None, unit="file", desc=f"aigc batch {kind}", file=self.stream,
                            dynamic_ncols=True, smoothing=0.05)

    def update(self, done: int = 0, skipped: int = 0, force: bool = False) -> None:
        self.done += done
        self.skipped += skipped
        if not self.enabled:
            return
        if self.bar is not None:
            if self.total is not None and self.bar.total != self.total - self.skipped:
                self.bar.total = max(self.total - self.skipped, self.done)
                self.bar.refresh()
            if done:
                self.bar.update(done)
            return
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            self.last = now
            elapsed = now - self.started
            rate = self.done / elapsed if elapsed > 0 else 0.0
            tail = ""
            if self.total is not None and rate > 0:
                left = max(self.total - self.skipped - self.done, 0)
                tail = f", {left} left, ETA {_hms(left / rate)}"
            print(f"aigc batch {self.kind}: {self.done} done, {self.skipped} skipped, {rate:.1f} files/s, "
                  f"elapsed {_hms(elapsed)}{tail}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def count_in_background(progress: Progress, src: Path, list_file: Path | None,
                        exclude: tuple[Path, ...], stop: threading.Event) -> threading.Thread:
    """Count the sources on a thread so the bar gets an ETA without holding the paths."""

    def count() -> None:
        n = 0
        for _ in iter_sources(src, list_file=list_file, exclude=exclude):
            n += 1
            if stop.is_set():
                return
        progress.total = n

    thread = threading.Thread(target=count, name="aigc-batch-count", daemon=True)
    thread.start()
    return thread
