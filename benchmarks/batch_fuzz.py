"""Part of the batch robustness benchmark: seeded fuzzing of the metadata readers, verify and the writer."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import random
import signal
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from attacks import Mutator
from batch_harness import PRODUCER, Checks


# -- part 3: fuzzing -------------------------------------------------------------------------------------
def fuzz_seeds(scratch: Path, bases: list[Path], corpus: Path | None) -> list[tuple[str, bytes]]:
    """(extension, bytes) of small real files: each base unlabeled and labeled, and the hostile fixtures."""
    from labeler import AIGCLabel, label_file

    label = AIGCLabel(PRODUCER, "fuzz-0001", content_propagator="platformX", propagate_id="p-1")
    seeds = []
    out = scratch / "labeled"
    out.mkdir(parents=True, exist_ok=True)
    for n, base in enumerate(bases):
        if base.stat().st_size > 1 << 20:
            continue
        seeds.append((base.suffix.lower(), base.read_bytes()))
        dst = out / f"{n}{base.suffix.lower()}"
        try:
            label_file(base, dst, label, overwrite=True)
            seeds.append((base.suffix.lower(), dst.read_bytes()))
        except Exception:  # noqa: BLE001, S110 - a base that cannot be labeled is still a seed unlabeled
            pass
    if corpus is not None and (corpus / "provenance").is_dir():
        seeds += [(p.suffix.lower(), p.read_bytes()) for p in sorted((corpus / "provenance").iterdir())
                  if p.suffix.lower() != ".tsv" and p.stat().st_size <= 1 << 20]
    return seeds


class _Hang(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise _Hang()


def fuzz_one(path: Path, out_dir: Path, write: bool, outcomes: Counter[str] | None = None) -> list[str]:
    """Feed one file to the readers (and the writer): the failures, each a line plus its traceback.

    ``outcomes`` counts what ``read_labels`` made of the file (``rejected``, ``no label``, ``label``), to
    show how deep the mutants get.
    """
    outcomes = outcomes if outcomes is not None else Counter()
    from detectors import verify
    from labeler.errors import LabelerError
    from labeler.metadata import read_labels, write_label

    failures = []
    try:
        _, found = read_labels(path)
        outcomes["label" if found else "no label"] += 1
    except LabelerError:
        outcomes["rejected"] += 1
    except _Hang:
        raise
    except Exception as exc:  # noqa: BLE001 - the finding
        failures.append(f"read_labels raised {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    try:
        report = verify(path, visible=False)
        bad = [m for m in report.errors + report.warnings if "internal error" in m]
        if bad:
            failures.append(f"verify reported {bad[0]}")
    except _Hang:
        raise
    except Exception as exc:  # noqa: BLE001 - the finding
        failures.append(f"verify raised {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    if write:
        dst = out_dir / f"written{path.suffix}"
        value = '{"Label":"1","ContentProducer":"001191110102MACQD9K64010000","ProduceID":"fz-1",' \
                '"ReservedCode1":"","ContentPropagator":"001191110102MACQD9K64010000",' \
                '"PropagateID":"fz-1","ReservedCode2":""}'
        try:
            write_label(path, dst, value)
            _, found = read_labels(dst)
            if not found or found[0].raw != value:
                failures.append("write_label succeeded but the output does not read back the label")
        except LabelerError:
            pass
        except _Hang:
            raise
        except Exception as exc:  # noqa: BLE001 - the finding
            failures.append(f"write_label raised {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        with contextlib.suppress(OSError):
            dst.unlink()
    return failures


def part_fuzz(work: Path, args: argparse.Namespace, bases: list[Path], corpus: Path | None) -> Checks:
    checks = Checks("fuzz")
    scratch = work / "fuzz"
    scratch.mkdir(parents=True, exist_ok=True)
    seeds = fuzz_seeds(scratch, bases, corpus)
    rng = random.Random(args.seed)
    mutator = Mutator([s for _, s in seeds], rng)
    out_dir = Path(args.fuzz_out)
    cases, failures, hangs, slowest = 0, 0, 0, (0.0, "")
    by_op: Counter[str] = Counter()
    by_ext: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    found: list[str] = []
    previous = signal.signal(signal.SIGALRM, _alarm)
    deadline = time.monotonic() + args.fuzz_seconds
    try:
        while time.monotonic() < deadline:
            ext, seed = rng.choice(seeds)
            data, ops = mutator.mutate(seed)
            # Now and then a wrong extension: the readers go by content, the judges compare the two.
            name_ext = rng.choice((".jpg", ".png", ".mp4", ".wav", ".bin")) if rng.random() < 0.1 else ext
            path = scratch / f"case{name_ext}"
            path.write_bytes(data)
            t0 = time.perf_counter()
            signal.alarm(args.fuzz_hang)
            try:
                errs = fuzz_one(path, scratch, write=cases % 4 == 0, outcomes=outcomes)
            except _Hang:
                errs = [f"hang: no answer within {args.fuzz_hang} s"]
                hangs += 1
            finally:
                signal.alarm(0)
            took = time.perf_counter() - t0
            if took > slowest[0]:
                slowest = (took, f"{ext} {ops}")
            cases += 1
            by_op[ops.split("+")[0]] += 1
            by_ext[ext] += 1
            if errs:
                failures += 1
                digest = hashlib.sha256(data).hexdigest()[:12]
                out_dir.mkdir(parents=True, exist_ok=True)
                (out_dir / f"fail-{digest}{name_ext}").write_bytes(data)
                (out_dir / f"fail-{digest}.txt").write_text(f"mutations: {ops}\n\n" + "\n\n".join(errs))
                first = errs[0].splitlines()[0]
                if len(found) < 20:
                    found.append(f"{digest}{name_ext} ({ops}): {first}")
                print(f"  FUZZ FAILURE {digest}{name_ext} ({ops}): {first}")
    finally:
        signal.signal(signal.SIGALRM, previous)
    seconds = args.fuzz_seconds
    print(f"fuzz: {cases} cases in {seconds} s from {len(seeds)} seeds, {failures} failing, {hangs} hangs; "
          f"slowest {slowest[0] * 1e3:.0f} ms ({slowest[1]})")
    checks("0 uncaught exceptions / internal errors", failures == 0,
           f"{failures} of {cases}; saved under {out_dir}; " + "; ".join(found[:3]))
    checks(f"no case slower than {args.fuzz_hang} s", hangs == 0,
           f"slowest {slowest[0]:.2f} s ({slowest[1]})")
    checks.summary = (f"{cases} mutants in {seconds} s ({cases / seconds:.0f}/s) of {len(seeds)} seed files "
                      f"(every format, unlabeled and labeled, plus corpus provenance/), seed {args.seed}; "
                      f"read_labels + verify(visible=False) on each, write_label on one in four; "
                      f"{failures} failing, slowest case {slowest[0] * 1e3:.0f} ms.\n\n"
                      f"read_labels outcomes: {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}.\n"
                      f"Cases by first mutation: {', '.join(f'{k} {v}' for k, v in sorted(by_op.items()))}.\n"
                      f"Cases by seed format: {', '.join(f'{k} {v}' for k, v in sorted(by_ext.items()))}.")
    return checks
