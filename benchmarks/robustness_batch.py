"""Batch reliability: a hostile mixed archive, SIGKILL and resume, parser fuzzing, scaling, memory (issue #6).

Usage::

    python benchmarks/robustness_batch.py --quick             # a couple of minutes, every part
    python benchmarks/robustness_batch.py --write             # full run; writes its RESULTS.md section
    python benchmarks/robustness_batch.py --only fuzz --fuzz-seconds 600

Parts (``--only``, comma-separated):

archive
    Builds a mixed archive of >= 500 files from ``samples/`` and ``../shared/corpus`` (every format, nested
    folders, unicode / space / newline / non-UTF-8 names, zero-byte and truncated files, wrong extensions,
    symlink loops, a FIFO, decompression bombs, a read-only file, the corpus's hostile ``provenance/``
    fixtures), runs ``aigc batch label --layers metadata`` and ``aigc batch verify`` on it as a user would
    (subprocesses) and checks: every good file labeled and verified ``confirmed`` with its expected
    ProduceID, every bad file journaled with a one-line reason, inputs byte-identical (SHA-256, mode, mtime),
    no partial outputs, the journal valid JSON Lines with one line per file. Then a
    ``--layers watermark,visible,metadata`` run on an image subset (bombs included).
kill
    Starts the same label batch, SIGKILLs its process group after N journal lines, re-runs it to the end and
    checks that every file is in the journal exactly once, every output is complete, nothing partial is
    left. Full mode kills at several points, and once kills the resumed run too.
fuzz
    Mutates real files of every format, labeled and not (bit flips, interesting integers, chunk/box/segment
    length corruption, truncation, splices, label-text edits) and feeds each mutant to
    ``labeler.metadata.read_labels`` (must raise nothing but ``LabelerError``), ``detectors.verify(...,
    visible=False)`` (must raise nothing, and no "internal error" in the report) and, for one case in four,
    ``labeler.metadata.write_label`` (nothing but ``LabelerError``; a written output must read back).
    Failing inputs are saved for reproduction (``--fuzz-out``).
scaling
    ``batch verify`` (``--no-visible`` and default) and ``batch label`` over corpus copies with 1 and 2
    workers: files/s and the ratio; for label also the sum of per-file times (journal ``seconds``) divided
    by the workers against the wall time. Only meaningful on an otherwise idle machine.
memory
    A 10,000-file tree (hard links to small files; 2,000 with ``--quick``) verified with ``aigc batch verify
    --no-visible --workers 2``; the RSS of the driver and of every worker is sampled (psutil, else
    ``/proc``) and the peak per process reported. Target: < 500 MB per worker.

Exit status 1 when any check fails. Timings are wall clock on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# The harness (batch_harness), the parts (batch_parts, batch_fuzz, batch_memory) and the attacks are modules
# beside this script; batch_harness puts the project root on the path.
from attacks import Mutator
from batch_fuzz import fuzz_one, fuzz_seeds, part_fuzz
from batch_harness import (
    CORPUS,
    ID_TEMPLATE,
    PARTS,
    ROOT,
    Archive,
    Checks,
    build_archive,
    expected_produce_id,
    fingerprint,
    leftovers,
    make_bases,
    outputs,
    produce_id_of,
)
from batch_memory import part_memory
from batch_parts import part_archive, part_kill, part_scaling

# What tests/test_batch_archive.py uses (as ``robustness_batch.X``), and main.
__all__ = ["ID_TEMPLATE", "Archive", "Mutator", "build_archive", "expected_produce_id", "fingerprint",
           "fuzz_one", "fuzz_seeds", "leftovers", "make_bases", "main", "outputs", "produce_id_of"]


# -- main -----------------------------------------------------------------------------------------------
PART_FUNCS: dict[str, Callable[..., Checks]] = {
    "archive": part_archive, "kill": part_kill, "fuzz": part_fuzz, "scaling": part_scaling,
    "memory": part_memory,
}
TITLES = {"archive": "Mixed archive (label, verify, inputs untouched)", "kill": "SIGKILL and resume",
          "fuzz": "Parser fuzzing", "scaling": "Scaling, 1 -> 2 workers", "memory": "Memory on a large tree"}


def _parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The options, with the mode-dependent defaults filled in, and the parts to run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a couple of minutes: fewer kills, short fuzz")
    parser.add_argument("--write", action="store_true", help="write the section into benchmarks/RESULTS.md")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts ({','.join(PARTS)})")
    parser.add_argument("--workers", type=int, default=2, help="workers for the archive/kill runs [2]")
    parser.add_argument("--fuzz-seconds", type=float, default=None, help="fuzzing budget [180; quick 20]")
    parser.add_argument("--fuzz-hang", type=int, default=20,
                        help="seconds before a case counts as a hang [20]")
    parser.add_argument("--fuzz-out", default=str(ROOT / "build" / "fuzz-failures"),
                        help="where failing fuzz inputs are saved [build/fuzz-failures]")
    parser.add_argument("--seed", type=int, default=None, help="fuzz seed [random, printed]")
    parser.add_argument("--memory-files", type=int, default=None,
                        help="files in the memory tree [10000; quick 2000]")
    parser.add_argument("--keep", metavar="DIR",
                        help="build everything in DIR and keep it (default: a temp dir)")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    args.fuzz_seconds = args.fuzz_seconds or (20.0 if args.quick else 180.0)
    args.memory_files = args.memory_files or (2000 if args.quick else 10_000)
    args.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    args.archive_good = 450
    args.layers_subset = 6 if args.quick else 30
    args.verify_visible = not args.quick  # full mode also runs the visible-mark search over the archive
    return args, parts


def part_section(part: str, checks: Checks) -> str:
    """The RESULTS.md section of one part: its summary, its checks table, the hostile files' outcomes."""
    body = f"#### {TITLES[part]}\n\n{checks.summary}\n\n{checks.table()}"
    hostile = checks.hostile
    if hostile:
        body += ("\n\nHostile files (either outcome is allowed; this is what happened):\n\n"
                 "| file | outcome |\n|---|---|\n"
                 + "\n".join(f"| {rel} | {str(out).replace('|', '/')[:150]} |"
                             for rel, out in hostile.items()))
    return body


def _run_parts(work: Path, args: argparse.Namespace, parts: list[str], corpus: Path | None
               ) -> tuple[list[str], list[str]]:
    """Run each part in ``work``, printing its table: (RESULTS.md sections, the parts that failed)."""
    sections, failed = [], []
    bases = make_bases(work / "bases", corpus)
    for part in parts:
        t0 = time.perf_counter()
        checks = PART_FUNCS[part](work, args, bases, corpus)
        took = time.perf_counter() - t0
        print(f"\n## {TITLES[part]} ({took:.0f} s)\n")
        print(checks.table())
        print()
        if not checks.ok:
            failed.append(part)
        sections.append(part_section(part, checks))
    return sections, failed


def main(argv: list[str] | None = None) -> int:
    args, parts = _parse_args(argv)
    corpus = CORPUS if CORPUS.is_dir() else None
    if corpus is None:
        print(f"note: {CORPUS} not found; samples/ only, no provenance/ fixtures")
    mode = "quick" if args.quick else "full"
    print(f"robustness_batch: parts {', '.join(parts)}; {mode}; fuzz seed {args.seed}")
    load_start = _load()
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = Path(args.keep)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aigc-robust-")))
            stack.callback(_unlock, work)  # the read-only input must not stop the clean-up
        sections, failed = _run_parts(work, args, parts, corpus)
    verdict = "all checks pass" if not failed else f"FAILED: {', '.join(failed)}"
    print(f"robustness_batch: {verdict}")
    if args.write:
        from results import write_section

        head = (f"### Batch robustness (`python benchmarks/robustness_batch.py --write`, "
                f"{'quick' if args.quick else 'full'} run, {verdict})\n\n"
                "Timings are wall clock of the `aigc` CLI, worker start-up included; load average "
                f"{load_start} at the start, {_load()} at the end (speed figures need an idle machine).")
        write_section("batch:robustness", head + "\n\n" + "\n\n".join(sections))
    return 1 if failed else 0


def _load() -> str:
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _unlock(work: Path) -> None:
    for folder, dirs, files in os.walk(work):
        for name in dirs + files:
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                # Owner read/write (and search on folders) only where missing: everything here was made
                # by this run, and a file that already allows it is left exactly as it is.
                need = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
                if not stat.S_ISLNK(st.st_mode) and st.st_mode & need != need:
                    os.chmod(path, st.st_mode | need)


if __name__ == "__main__":
    sys.exit(main())
