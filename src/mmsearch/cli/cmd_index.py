"""``mmsearch index PATH...``: add files and folders to a library (incremental)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from mmsearch.cli.main import add_library_args

if TYPE_CHECKING:
    from mmsearch.ingest.report import IngestReport


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", help="files or folders to index")
    p.add_argument(
        "--reembed",
        action="store_true",
        help="embed every item again with --model (e.g. a fine-tuned model folder); "
        "resumable: run it again after an interruption",
    )
    add_library_args(p)
    p.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="user metadata for every item of this run (repeatable; filter with --where)",
    )
    p.add_argument("--workers", type=int, default=None, help="decode processes (0 = in-process)")
    p.add_argument("--batch-size", type=int, default=64, help="files per commit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="try again files that failed before, even if they have not changed",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="keep files matching this gitignore-style pattern out of the library, now and in "
        "later runs (remembered; repeatable); a .mmsearchignore file in a folder works too",
    )
    p.add_argument(
        "--no-exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="forget a pattern given with --exclude earlier",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="cap the model's CPU threads (1 is often fastest on a machine shared with other jobs)",
    )
    p.add_argument(
        "--text-model",
        metavar="SPEC",
        help="sentence-embedding model for text-to-text search over captions, text files, "
        "subtitles and transcripts, e.g. st:sentence-transformers/all-MiniLM-L6-v2, "
        "st:BAAI/bge-m3, st:intfloat/multilingual-e5-base or a local folder; adds the "
        "library's text space (remembered; text indexed before is embedded on this run)",
    )
    av = p.add_argument_group("video and audio")
    av.add_argument(
        "--audio-model",
        metavar="SPEC",
        help="text–audio model (CLAP), e.g. hf:laion/clap-htsat-unfused or a local folder; "
        "adds the library's audio space (remembered)",
    )
    av.add_argument(
        "--video-model",
        metavar="SPEC",
        help="text–video model (X-CLIP), e.g. hf:microsoft/xclip-base-patch32 (remembered)",
    )
    av.add_argument(
        "--asr-model",
        metavar="SPEC",
        help="speech recognition (Whisper), e.g. hf:openai/whisper-base: transcripts become "
        "searchable text with timestamps (remembered)",
    )
    av.add_argument("--fps", type=float, default=1.0, help="video frames sampled per second")
    av.add_argument("--max-frames", type=int, default=2000, help="frame cap per video")
    av.add_argument(
        "--merge-threshold",
        type=float,
        default=0.95,
        help="neighbouring frames at least this similar merge into one segment",
    )
    av.add_argument(
        "--audio-window", type=float, help="audio window seconds (default: the model's)"
    )
    av.add_argument("--audio-hop", type=float, help="seconds between windows (default: half)")
    av.add_argument(
        "--asr-language",
        metavar="LANG",
        help="spoken language (en, zh, ...) when known: skips per-window detection",
    )


def run(args: argparse.Namespace) -> int:
    from mmsearch.encoders.registry import split_spec
    from mmsearch.errors import QueryError
    from mmsearch.ingest.pipeline import IngestOptions
    from mmsearch.ingest.report import IngestAborted
    from mmsearch.ingest.timed import TimedOptions
    from mmsearch.library import Library
    from mmsearch.media.discover import display_path
    from mmsearch.search.filters import parse_where

    if not args.paths and not (args.reembed or args.exclude or args.no_exclude or args.text_model):
        raise QueryError("give files or folders to index (or --reembed)")
    missing = [p for p in args.paths if not os.path.lexists(os.path.expanduser(p))]
    if missing:
        raise QueryError(f"no such file or folder: {', '.join(map(display_path, missing))}")
    if args.model and split_spec(args.model)[0] == "st":
        raise QueryError(
            f"{args.model} is a text-only sentence-embedding model: give it as --text-model "
            "(--model is the image–text model that embeds pictures)"
        )
    metadata = dict(parse_where(m) for m in args.meta)
    options = IngestOptions(
        batch_size=args.batch_size,
        workers=args.workers,
        metadata=metadata,
        progress=not (args.no_progress or args.json) and sys.stderr.isatty(),
        threads=args.threads,
        retry_failed=args.retry_failed,
        timed=TimedOptions(
            fps=args.fps,
            max_frames=args.max_frames,
            merge_threshold=args.merge_threshold,
            audio_window_s=args.audio_window,
            audio_hop_s=args.audio_hop,
            asr_language=args.asr_language,
        ),
    )
    with Library.open(
        args.library,
        model=None if args.reembed else args.model,
        audio_model=args.audio_model,
        video_model=args.video_model,
        text_model=None if args.reembed else args.text_model,
        asr_model=args.asr_model,
    ) as lib:
        if args.exclude:
            lib.exclude(args.exclude)
        if args.no_exclude:
            lib.unexclude(args.no_exclude)
        report = None
        try:
            if args.reembed and (args.model or not args.text_model):
                report = lib.reembed(args.model, options=options)
            if args.reembed and args.text_model:
                if "text" not in lib.spaces:
                    raise QueryError(
                        "this library has no text space to re-embed: add one with "
                        f"`mmsearch index --text-model {args.text_model}` (no --reembed)"
                    )
                report = lib.reembed_text(args.text_model, options=options)
            if args.paths:
                report = lib.add(args.paths, options=options)
            elif args.text_model and not args.reembed:
                report = lib.add([], options=options)  # embeds the text indexed before
        except IngestAborted as exc:
            _show(exc.report, args.json)
            raise
    if report is not None:
        _show(report, args.json)
    return 0


def _show(report: IngestReport, as_json: bool) -> None:
    from mmsearch.cli.output import emit_json, format_report

    if as_json:
        emit_json(report.to_dict())
    else:
        print(format_report(report))
