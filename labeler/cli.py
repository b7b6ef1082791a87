"""The ``aigc`` command line: ``aigc label`` writes labels, ``aigc verify`` reads and judges them.

Exit codes (stable, for scripts):

* 0 - success (``verify``: every file was read, whatever its verdict);
* 1 - an unexpected internal error (a bug: please report it); also, silently, a reader of standard
  output that went away (``aigc verify ... | head -1``: click's handling of a broken pipe);
* 2 - bad input or usage (``verify``: at least one file could not be read), or a standard output that
  cannot be written (full, or closed: ``>&-``);
* 130 - interrupted (Ctrl-C, or SIGTERM from a scheduler).

Errors are one line on stderr: ``aigc: error: FILE: reason``, usage errors ``aigc: error: reason``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence

import click

from labeler import __version__
from labeler.environment import BLAS_THREAD_VARIABLES
from labeler.errors import LabelerError
from labeler.options import VISIBLE_POSITIONS, LabelOptions, SignerRef, parse_cue_places, parse_video_places
from labeler.pipeline import AVAILABLE_LAYERS, LAYER_ORDER, label_file, parse_layers
from labeler.record import AIGCLabel

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    click.echo(f"aigc: error: {_one_line(message)}", err=True)
    sys.exit(code)


def _one_line(text: str) -> str:
    """``text`` with its control characters escaped (a file name with a newline in an error message)."""
    try:
        from detectors.report import printable
    except Exception:  # noqa: BLE001 - the error being reported may be this import's own
        return " ".join(text.splitlines())
    return printable(text)


def _about(src: str, reason: str) -> str:
    """``SRC: reason``, the documented form of an error about one file; a library reason that is in that
    form already ("SRC: no such file") keeps the name once, not twice."""
    return reason if reason.startswith(f"{src}: ") else f"{src}: {reason}"


def _echo_json(obj: object) -> None:
    """Print ``obj`` as one line of JSON (:func:`detectors.report.json_line`: a file name that is not
    valid UTF-8 keeps its bytes as ``\\udcXX`` escapes), as UTF-8 bytes whatever the locale's encoding
    (RFC 8259, docs/report.md): a Latin-1 or Windows code page stdout cannot even encode AI生成."""
    from detectors.report import json_line

    click.echo(json_line(obj).encode("utf-8"))


class CliPath(click.Path):
    """``click.Path`` that refuses an empty path and ``-``. ``Path("")`` is the current folder, so an unset
    shell variable (``aigc batch label "$SRC" ...``) would label or verify the whole current folder, write
    a test PKI there or read a key from it; ``-`` reads as standard output to a script author, but no
    command streams, so ``aigc label in.jpg - | upload`` made a file named ``-`` and piped the result
    line. A file path (``dir_okay=False``) that ends in ``/`` is refused too. ``aigc verify``'s FILES keep
    ``click.Path``: a bad name there is one unreadable result.

    ``folder_hint``, for a file argument, replaces click's "Invalid value for 'SRC': File 'x' is a
    directory." with the tool's one line, ``x: is a folder, not a file; HINT`` (what to do instead).
    """

    def __init__(self, *args: object, folder_hint: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.folder_hint = folder_hint

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        if value == "":
            self.fail("empty path (an unset shell variable?)", param, ctx)
        if value == "-":
            self.fail("'-' (standard input or output) is not supported; give a path (./- for a file "
                      "named -)", param, ctx)
        if self.folder_hint and not self.dir_okay and isinstance(value, str) and os.path.isdir(value):
            # a UsageError's message is printed as it is: no "Invalid value for 'SRC':" before it
            raise click.UsageError(f"{value}: is a folder, not a file; {self.folder_hint}", ctx)
        if (not self.dir_okay and isinstance(value, str) and value.endswith(("/", os.sep))
                and "://" not in value):  # a store's https:// URL may end in /
            # A trailing slash names a folder (open() and cat refuse "photo.jpg/"), but pathlib drops it:
            # `aigc label in.jpg new/` wrote a file named "new", `o.jpg/ --overwrite` replaced o.jpg.
            self.fail(f"{value!r} ends with '/', which names a folder; give a file path", param, ctx)
        return super().convert(value, param, ctx)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from labeler.environment import describe_environment, summary_lines

    # The version plus what it runs with: the ffmpeg build and the C2PA library decide what a file becomes.
    lines = summary_lines(describe_environment())
    click.echo(f"aigc {__version__}")
    click.echo("\n".join(line for line in lines if line.startswith(("ffmpeg:", "c2pa:"))))
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version, the ffmpeg program in use and the C2PA library, then exit.")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Label AI-generated media (GB 45438-2025) and verify labels."""
    if sys.stdout is None and ctx.invoked_subcommand not in ("batch", "serve"):
        # Started with standard output closed (`aigc verify x >&-`): Python has no stdout and click.echo
        # drops every line, so a verify ended with exit 0 and no result anywhere. batch and serve write
        # their results elsewhere (the journal, the network) and need no stdout.
        raise LabelerError("standard output is closed: the results are written there "
                           "(>/dev/null discards them)")
    if ctx.invoked_subcommand != "serve":  # the server handles SIGTERM itself (graceful shutdown)
        _term_as_interrupt()


def _term_as_interrupt() -> None:
    """SIGTERM (a scheduler's or a container's stop) does what Ctrl-C does: the running file's
    temporary outputs and staging folders are removed, ffmpeg children are stopped, a batch journals
    what finished; by default Python would die on the spot and leave them behind."""
    import signal
    import threading

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


# Options several commands share; click builds a fresh Option each time one is applied.
_no_visible_option = click.option(
    "--no-visible", is_flag=True,
    help="Skip the search for our visible mark / audio cue (the slow layer: 0.03-0.5 s per file).",
)
_verify_layers_option = click.option(
    "--layers", "verify_layers", default=None, metavar="LAYERS",
    help="Comma-separated layers to examine (metadata, c2pa, watermark, visible; default all); the report's "
    "'examined' lists them, so a layer left out reads as not examined, never as absent.",
)
_quick_option = click.option(
    "--quick", is_flag=True,
    help="Triage: metadata, C2PA and (with --key-file) the watermark only, no visible search "
    "(= --layers metadata,c2pa,watermark).",
)
_store_option = click.option(
    "--manifest-store", default=None, type=CliPath(dir_okay=False, path_type=str), metavar="STORE",
    help="Manifest store (SQLite file, postgresql:// URL, or a resolution service's https:// URL): a file "
    "whose manifest was stripped but whose watermark is found gets its manifest back from there (needs "
    "--key-file).",
)
_trust_anchors_option = click.option(
    "--trust-anchors", "anchor_files", multiple=True, type=CliPath(dir_okay=False, path_type=str),
    help="PEM file of trusted C2PA root certificates (repeatable); a chain to one gives Trusted.",
)


def _label_options(batch: bool):
    """The options ``aigc label`` and ``aigc batch label`` share (one definition, one behaviour)."""
    produce_help = (
        "ProduceID template per file: text with {path_hash} (stable per relative path) and/or {content_hash}."
        if batch
        else "ProduceID: the provider's unique ID for this content."
    )
    options = [
        click.option("--producer", required=True, help="ContentProducer: 27-char TC260 code, or a name."),
        # No default=None for `label`: click 8.3+ treats an explicit None default as a value, and the
        # option would stop being required (a record with ProduceID "None" was written).
        click.option("--produce-id", **({"default": "{path_hash}", "show_default": True} if batch
                                         else {"required": True}), help=produce_help),
        click.option("--label", "label_value", type=click.Choice(["1", "2", "3"]), default="1",
                     show_default=True, help="1 AI-generated, 2 possibly, 3 suspected."),
        click.option("--propagator", default=None, help="ContentPropagator (default: the producer)."),
        click.option("--propagate-id", default=None, help="PropagateID (default: the produce ID)."),
        click.option("--reserved1", default="", help="ReservedCode1: producer's protection data."),
        click.option("--reserved2", default="", help="ReservedCode2: propagator's protection data."),
        click.option("--layers", default="metadata", show_default=True,
                     help=f"Comma-separated layers to add, applied in the order {', '.join(LAYER_ORDER)} "
                     f"(available: {', '.join(AVAILABLE_LAYERS)})."),
        click.option("--key-file", type=CliPath(dir_okay=False, path_type=str), help="Watermark key."),
        click.option("--watermark-method", type=click.Choice(["dct", "dwt"]), default="dct",
                     show_default=True,
                     help="Image watermark domain: dct (block DCT) or dwt (Haar wavelet: more robust to blur "
                          "and downscaling, a little more visible). Audio and video use their own."),
        click.option("--watermark-strength", type=click.FloatRange(0.25, 16), default=None,
                     help="Fixed image/video watermark strength: RMS luma change in 8-bit levels in textured "
                          "areas. Default: a budget per image (per video) that keeps the quality floors of "
                          "docs/watermark.md (PSNR >= 40 dB, SSIM >= 0.98 on images). Audio keeps its own."),
        click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
                     help="JPEG/WebP quality when a pixel layer (watermark, visible) re-encodes."),
        click.option("--text", default="AI生成", show_default=True,
                     help="Visible label wording (needs AI/人工智能 and 生成/合成)."),
        # PLACE, the choices in the help: click's [a|b|...] list of six made a 98-column line
        click.option("--position", type=click.Choice(VISIBLE_POSITIONS), default="bottom-right",
                     show_default=True, metavar="PLACE",
                     help=f"Where the visible label goes: {', '.join(VISIBLE_POSITIONS)}."),
        click.option("--duration", type=click.FloatRange(min=2.0), default=3.0, show_default=True,
                     help="Video: seconds the visible label shows from the start (GB 45438: at least 2)."),
        click.option("--whole", is_flag=True, help="Video: show the visible label for the whole duration."),
        click.option("--video-at", default="start", show_default=True,
                     help="Video: where the visible label shows (--duration s each), comma-separated: "
                          "start (required), middle, end."),
        click.option("--cue", default="start", show_default=True,
                     help="Audio: where the audio label goes, comma-separated: start, end, middle."),
        click.option("--audio-label", type=click.Choice(("rhythm", "voice", "both")), default="rhythm",
                     show_default=True,
                     help="Audio: Morse 'AI' rhythm cue, spoken prompt, or the cue then the prompt."),
        click.option("--voice-language", type=click.Choice(("zh", "en")), default="zh", show_default=True,
                     help="Audio: language of the spoken prompt (本内容由人工智能生成 / This content is "
                          "AI-generated)."),
        click.option("--sign-cert", type=CliPath(dir_okay=False, path_type=str),
                     help="C2PA signing certificate chain PEM (leaf first)."),
        click.option("--sign-key", type=CliPath(dir_okay=False, path_type=str),
                     help="C2PA signing key."),
        click.option("--tsa", default=None, help="RFC 3161 time-stamp authority URL for the C2PA signature."),
        click.option("--c2pa-thumbnail", is_flag=True, help="Embed a claim thumbnail in the C2PA manifest."),
        click.option("--manifest-store", default=None, type=CliPath(dir_okay=False, path_type=str),
                     metavar="STORE",
                     help="With c2pa and watermark: keep the signed manifest in this store (SQLite file or "
                     "postgresql:// URL), under the watermark's payload, so verify --manifest-store finds it "
                     "in a stripped copy."),
        click.option("--overwrite", is_flag=True, help="Replace existing outputs (never inputs)."),
    ]

    def apply(func):
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def _label_groups(opts: dict) -> tuple[LabelOptions, SignerRef | None]:
    """The option groups of ``aigc label`` and ``aigc batch label`` from their shared options
    (:func:`_label_options`): the :class:`LabelOptions`, without a signer, and the C2PA signer's paths.

    Raises :class:`LabelerError` (one line) for a bad layer list, cue or video place, or key file.
    """
    if (opts["sign_cert"] is None) != (opts["sign_key"] is None):
        raise LabelerError("--sign-cert and --sign-key go together")
    signer = SignerRef(opts["sign_cert"], opts["sign_key"], opts["tsa"]) if opts["sign_cert"] else None
    options = LabelOptions.build(
        layers=parse_layers(opts["layers"]), key=_read_key(opts["key_file"]),
        watermark_method=opts["watermark_method"], watermark_strength=opts["watermark_strength"],
        quality=opts["quality"], overwrite=opts["overwrite"], c2pa_thumbnail=opts["c2pa_thumbnail"],
        manifest_store=_absolute_store(opts["manifest_store"]), text=opts["text"], position=opts["position"],
        visible_seconds=None if opts["whole"] else opts["duration"],
        cue_positions=parse_cue_places(opts["cue"]), video_at=parse_video_places(opts["video_at"]),
        audio_label=opts["audio_label"], voice_language=opts["voice_language"],
    )
    return options, signer


def _absolute_store(spec: str | None) -> str | None:
    """A manifest store spec with its file path absolute: batch and server workers (Dask ones too) may
    run in another folder. URLs (``postgresql://``, ``https://``) are left as they are."""
    if not spec:
        return None
    if spec.startswith("sqlite:///"):
        return "sqlite:///" + os.path.abspath(spec[len("sqlite:///"):])
    return spec if "://" in spec else os.path.abspath(spec)


def _record(opts: dict) -> AIGCLabel:
    return AIGCLabel(
        content_producer=opts["producer"],
        produce_id=opts["produce_id"],
        label=opts["label_value"],
        reserved_code1=opts["reserved1"],
        content_propagator=opts["propagator"],
        propagate_id=opts["propagate_id"],
        reserved_code2=opts["reserved2"],
    )


@cli.command("label")
@click.argument("src", type=CliPath(dir_okay=False, path_type=str,
                                    folder_hint="to label every file in it use aigc batch label SRC DST"))
@click.argument("dst", type=CliPath(dir_okay=False, path_type=str,
                                    folder_hint="give the output a file name inside it"))
@_label_options(batch=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def label_cmd(src: str, dst: str, as_json: bool, **opts) -> None:
    """Copy SRC to DST with AIGC labels added.

    The metadata and c2pa layers never re-encode the media; the watermark and visible layers re-encode
    it once, together.
    """
    from pathlib import Path

    from labeler.atomic import clean_stale_staging

    # A run killed mid-write (SIGKILL, power loss) leaves its staging folder beside DST; its owner is gone.
    for stale in clean_stale_staging(Path(dst).parent):
        click.echo(f"aigc: warning: removed {stale} (left by an interrupted run)", err=True)
    try:
        options, signer = _label_groups(opts)
        if signer is not None:
            options = options.with_signer(signer.build())
        result = label_file(src, dst, _record(opts), options=options)
    except LabelerError as exc:
        _fail(_about(src, str(exc)))
    except OSError as exc:
        _fail(f"{exc.filename or src}: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback, even for a bug
        _fail(f"{src}: internal error ({type(exc).__name__}: {exc}); please report it", EXIT_INTERNAL)
    from detectors.read_back import unread_watermark

    unread = unread_watermark(dst, result, options.watermark.key, quality=options.output.quality)
    if unread:
        result.warnings.append(unread)
    if as_json:
        _echo_json(result.to_dict())
    else:
        done = ", ".join(_describe(name, info) for name, info in result.layers.items())
        # a file name or a certificate subject may hold a line break: one line per file, escaped
        click.echo(_one_line(f"{dst}: labeled {result.format} - {done}"))
    for warning in result.warnings:
        click.echo(_one_line(f"aigc: warning: {dst}: {warning}"), err=True)


def _describe(name: str, info: dict) -> str:
    if name == "metadata":
        return f"metadata in {info['carrier']} ({info['bytes_added']:+d} bytes)"  # a relabel may shrink it
    if name == "watermark":
        if info.get("embedded") is False:
            return f"watermark not embedded (nothing for the {info['method']} mark to ride on)"
        return f"watermark {info['method']} payload {info['payload']} key {info['key_id']}"
    if name == "visible":
        if info.get("kind") == "audio-rhythm":
            return f"audio rhythm cue (Morse AI) at {', '.join(info['where'])}"
        if info.get("kind") == "audio-voice":
            cue = "rhythm cue + " if "audio-rhythm" in info.get("kinds", ()) else ""
            return f"audio {cue}voice prompt ({info.get('language')}) at {', '.join(info['where'])}"
        share = f"{info['height_ratio']:.1%} of the short side"
        shown = f", first {info['seconds']:g} s" if info.get("seconds") else ""
        if info.get("whole"):
            shown = ", whole duration"
        elif len(info.get("at", ())) > 1:
            shown = f", {info['seconds']:g} s at {' + '.join(info['at'])}"
        return f"visible {info['text']!r} at {info['position']} ({share}{shown})"
    if name == "c2pa":
        return f"c2pa manifest signed by {info['signer']} ({info['bytes_added']:+d} bytes)"
    return name


def _signer(cert: str | None, key: str | None, tsa: str | None):
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise LabelerError("--sign-cert and --sign-key go together")
    from labeler.provenance.c2pa_sign import local_signer

    return local_signer(cert, key, tsa_url=tsa)


def _read_key(key_file: str | None) -> bytes | None:
    if key_file is None:
        return None
    from labeler.watermark.keyfile import read_key_file

    return read_key_file(key_file)


@cli.command("verify")
# readable=False: click would stop the whole run at the first unreadable file, before any result; each
# file's own report says why it could not be read (README: a list of files is never cut short).
@click.argument("files", nargs=-1, required=True, type=click.Path(readable=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file (JSON Lines).")
@click.option("--key-file", type=CliPath(dir_okay=False, path_type=str),
              help="Watermark key: also look for our invisible watermark (images, audio, video).")
@_trust_anchors_option
@_no_visible_option
@_verify_layers_option
@_quick_option
@_store_option
def verify_cmd(
    files: Sequence[str], as_json: bool, key_file: str | None, anchor_files: Sequence[str], no_visible: bool,
    verify_layers: str | None, quick: bool, manifest_store: str | None,
) -> None:
    """Read and judge the labels of FILES: confirmed, possible, suspected or none."""
    from detectors import verify
    from detectors.c2pa import load_trust_anchors
    from detectors.report import Report

    try:
        key = _read_key(key_file)
        layers = _layers_to_verify(verify_layers, quick, no_visible, key, manifest_store)
        load_trust_anchors(anchor_files)  # fail early, once, on an unreadable anchor file
    except LabelerError as exc:
        _fail(str(exc))
    unreadable = 0
    for path in files:
        if not path:  # an unset shell variable: Path("") is ".", which would be reported as a folder
            report = Report(file=path, errors=["empty file name"])
        else:
            report = verify(path, key=key, trust_anchors=list(anchor_files) or None, layers=layers,
                            manifest_store=manifest_store)
        if not report.ok:
            unreadable += 1
        # Both forms escape what the file controls (its name, its label): one report, one line each.
        if as_json:
            _echo_json(report.to_dict())  # what report.to_json() gives, as UTF-8 bytes
        else:
            click.echo("\n".join(report.text_lines()))
    sys.exit(EXIT_BAD_INPUT if unreadable else EXIT_OK)


def _layers_to_verify(spec: str | None, quick: bool, no_visible: bool, key: bytes | None,
                      manifest_store: str | None = None) -> tuple[str, ...]:
    """The ``layers`` of :func:`detectors.verify` for ``aigc verify`` / ``aigc batch verify``.

    ``--quick`` and ``--layers quick`` give ``("quick",)``, not its layer names: the library's triage
    (the image watermark read at the geometry as given, its ``note`` saying so), the same on both
    commands. ``LabelerError`` (one line) on misuse.
    """
    from detectors import parse_verify_layers

    if quick and spec:
        raise LabelerError("--quick and --layers are exclusive (--quick is --layers metadata,c2pa,watermark)")
    quick = quick or (spec is not None and [n.strip() for n in spec.split(",") if n.strip()] == ["quick"])
    layers = parse_verify_layers("quick" if quick else spec)
    if spec and not quick and "watermark" in layers and key is None:
        raise LabelerError("--layers watermark needs --key-file")
    if manifest_store is not None and (key is None or "watermark" not in layers):
        raise LabelerError("--manifest-store needs the watermark layer and --key-file (the store is searched "
                           "by the watermark's payload)")
    if quick:  # verify reads the watermark only with a key, and never the visible layer, in quick mode
        return ("quick",)
    if key is None:  # by default the watermark is read when there is a key to read it with
        layers = tuple(n for n in layers if n != "watermark")
    return tuple(n for n in layers if not (no_visible and n == "visible"))


@cli.command("propagate")
@click.argument("src", type=CliPath(dir_okay=False, path_type=str,
                                    folder_hint="to propagate every file in it use aigc batch propagate "
                                                "SRC DST"))
@click.argument("dst", type=CliPath(dir_okay=False, path_type=str,
                                    folder_hint="give the output a file name inside it"))
@click.option("--propagator", required=True, help="ContentPropagator: the platform's code or name.")
@click.option("--propagate-id", required=True, help="PropagateID: the platform's ID for this content.")
@click.option("--reserved2", default="", help="ReservedCode2: the platform's protection data.")
@click.option("--declared-ai", is_flag=True, help="The uploader declares the content AI-generated.")
@click.option("--key-file", type=CliPath(dir_okay=False, path_type=str),
              help="Watermark key: a found watermark counts as a trace of AI generation.")
@_trust_anchors_option
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def propagate_cmd(src: str, dst: str, propagator: str, propagate_id: str, reserved2: str, declared_ai: bool,
                  key_file: str | None, anchor_files: Sequence[str], overwrite: bool, as_json: bool) -> None:
    """What a distribution platform does on upload (Labeling Measures Art. 6), SRC to DST.

    A labeled file keeps the producer's fields and gets the platform's ContentPropagator and
    PropagateID; an unlabeled file declared AI (--declared-ai) gets Label 2, one with detected traces
    Label 3; a file with nothing found is copied unchanged. See docs/verdicts.md.
    """
    from labeler.propagate import propagate_file

    try:
        result = propagate_file(src, dst, propagator=propagator, propagate_id=propagate_id,
                                declared_ai=declared_ai, reserved_code2=reserved2, key=_read_key(key_file),
                                trust_anchors=list(anchor_files) or None, overwrite=overwrite)
    except LabelerError as exc:
        _fail(_about(src, str(exc)))
    except OSError as exc:
        _fail(f"{exc.filename or src}: {exc.strerror or exc}")
    if as_json:
        _echo_json(result.to_dict())
    else:
        click.echo(_one_line(f"{dst}: {result.action} (input verdict {result.verdict})"))
    for warning in result.warnings:
        click.echo(_one_line(f"aigc: warning: {dst}: {warning}"), err=True)


# `aigc batch` (its commands, options and the end of a run) is labeler.cli_batch, which imports the
# helpers above from this module and registers itself with @cli.group("batch"). Imported here, after
# those helpers, so the import cycle finds them defined; a plain import, not `from ... import`: when
# labeler.cli_batch is imported first, this line finds it half-initialised (it registers on resuming).
import labeler.cli_batch  # noqa: E402, F401 - registers `aigc batch`; see above
import labeler.cli_serve  # noqa: E402, F401 - registers `aigc serve`, the same way


@cli.group("keys")
def keys_group() -> None:
    """C2PA signing keys."""


@keys_group.command("init")
@click.argument("directory", type=CliPath(file_okay=False, path_type=str))
@click.option("--overwrite", is_flag=True, help="Replace a PKI already in DIRECTORY.")
def keys_init_cmd(directory: str, overwrite: bool) -> None:
    """Create a private TEST PKI in DIRECTORY: root -> intermediate -> ES256 C2PA signer."""
    from labeler.provenance.pki import init_test_pki

    try:
        pki = init_test_pki(directory, overwrite=overwrite)
    except LabelerError as exc:
        _fail(str(exc))
    click.echo(
        "aigc: warning: this PKI is for testing only; its root is trusted by nobody but you. "
        "Sign production content with a certificate from a CA on the C2PA trust list.",
        err=True,
    )
    click.echo(_one_line(f"sign with:   --sign-cert {pki.chain} --sign-key {pki.signer_key}"))
    click.echo(_one_line(f"verify with: --trust-anchors {pki.trust_anchor}"))


@cli.command("keygen")
@click.argument("key_file", type=CliPath(dir_okay=False, path_type=str))
@click.option("--overwrite", is_flag=True,
              help="Replace an existing key file (its marks become unreadable); a symbolic link is refused.")
def keygen_cmd(key_file: str, overwrite: bool) -> None:
    """Write a random 256-bit watermark key to KEY_FILE (mode 0600) and print its public key ID."""
    from labeler.watermark.keyfile import key_id, write_key_file

    try:
        key = write_key_file(key_file, overwrite=overwrite)
    except LabelerError as exc:
        _fail(str(exc))
    click.echo(_one_line(f"{key_file}: watermark key {key_id(key)} (keep this file secret)"))


@cli.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def doctor_cmd(as_json: bool) -> None:
    """Show what aigc runs with: ffmpeg (path, version, encoders), C2PA, libraries.

    The ffmpeg program is $AIGC_FFMPEG (a path, a command, or "bundled" for the imageio-ffmpeg
    binary), else the one on PATH, else the imageio-ffmpeg binary. Exits 2 when something the default
    layers need is missing.
    """
    from labeler.environment import describe_environment, summary_lines

    env = describe_environment()
    if as_json:
        _echo_json(env)
    else:
        click.echo("\n".join(summary_lines(env)))
    if env["problems"]:
        sys.exit(EXIT_BAD_INPUT)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after ``aigc``; default ``sys.argv[1:]``.

    Notes
    -----
    Exits with the codes in the module docstring. Usage errors (a bad option or argument, a missing
    one, an unknown command) are one line on stderr, ``aigc: error: REASON``, exit 2; ``--help`` and a
    bare ``aigc`` or ``aigc batch`` print the help as usual.
    """
    # OpenCV's own TIFF warnings (an unknown tag such as C2PA's 0xcd41 in every signed TIFF) are not the
    # user's business on a command line whose errors are one line; the environment variable reaches cv2
    # when it is first imported here and in worker processes, and a user's own setting wins. The library
    # leaves the log level alone (process-wide state).
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")  # its ERROR lines too: our one-line error says it
    # One BLAS thread (NumPy is not loaded yet, so this reaches it here and in batch workers; a user's
    # own setting wins). Our products are small (band energies, luma weights): extra BLAS threads only
    # spin. Measured on 2 cores: a 2-minute WAV's watermark label 1.29 -> 0.77 s CPU (wall 0.84 ->
    # 0.80 s), its verify with the key 1.52 -> 1.00 s CPU (wall 1.10 -> 0.96 s); a batch's workers
    # would each start a thread per core. The library leaves this alone (process-wide state).
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    from labeler.media.pillow_guard import quiet_pillow_warnings  # here: its package loads NumPy

    quiet_pillow_warnings()
    # Human lines and diagnostics in a locale that cannot encode some of their text (AI生成 on a Latin-1
    # or Windows code page stream): \uXXXX escapes, not a UnicodeEncodeError reported as an internal
    # error after the work was done. JSON is written as UTF-8 bytes (_echo_json).
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        # Not click's standalone mode: it prints a usage error as a four-line block (usage, a --help
        # hint, a blank line, the error); here it becomes the documented one line. click still quiets a
        # closed stdout (`aigc verify ... | head -1`) itself, in either mode (exit 1, no message).
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="aigc",
                        standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # `aigc` alone: the help is the answer
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # UsageError and BadParameter included
        _fail(exc.format_message(), exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):  # click turns a Ctrl-C in a command into Abort
        click.echo("aigc: interrupted", err=True)
        sys.exit(130)
    except LabelerError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001 - every command: one line, never a traceback
        _fail(f"internal error ({type(exc).__name__}: {exc}); please report it", EXIT_INTERNAL)
    finally:
        # The work is done (or reported): a Ctrl-C now would only interrupt the interpreter's exit
        # handlers (pool threads, temp-dir cleanup) and print a traceback instead of our last line.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A command that returns normally gives None; --help, --version and ctx.exit() give their code.
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    # `python -m labeler.cli` runs this file as __main__, a copy of labeler.cli; labeler.cli_batch
    # imported the real labeler.cli and registered `aigc batch` there, so that module's main runs.
    from labeler.cli import main as _main

    _main()
