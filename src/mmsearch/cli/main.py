"""``mmsearch`` entry point. Parses arguments and dispatches; imports heavy code lazily.

``main(argv)`` is callable from tests. Library errors (``MMSearchError``) become
one-line messages (control characters escaped) and exit code 2, as do values an
argparse type refuses (``cli/search_args.py``); nothing here
imports torch until a command needs a model, and the model libraries stay quiet
unless ``-v`` is given (``cli.quiet``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from mmsearch import __version__

# subcommand -> (module in mmsearch.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "index": ("cmd_index", "index files and folders (incremental)"),
    "search": ("cmd_search", "search by text, image, item or a weighted mix"),
    "recommend": ("cmd_recommend", "more like these: items near a history of item ids"),
    "remove": ("cmd_remove", "remove items by id, file or folder"),
    "info": ("cmd_info", "show what a library holds and what failed"),
    "demo": ("cmd_demo", "build a small library offline and run example searches"),
    "models": ("cmd_models", "list model backends; export a model to ONNX"),
    "train": (
        "cmd_train",
        "fine-tune a model on caption pairs, train one from scratch, or train a "
        "cross-attention reranker (--reranker)",
    ),
    "eval": ("cmd_eval", "measure retrieval (Recall@K, ranks, mAP, nDCG) of models on pairs"),
    "datasets": ("cmd_datasets", "write a synthetic pairs dataset; inspect a pairs file"),
    "serve": ("cmd_serve", "HTTP API and web page over a library (clip-retrieval compatible)"),
}


def default_library() -> str:
    env = os.environ.get("MMSEARCH_LIBRARY")
    if env:
        return env
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "mmsearch", "library")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmsearch",
        description="Multimodal semantic search over your photos, videos, audio recordings "
        "and texts: find images, video moments, stretches of sound and passages by meaning, "
        "with text, an image, a clip or an item as the query.",
    )
    parser.add_argument("--version", action="version", version=f"mmsearch {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _command_module(module).add_arguments(p)
        # The subcommand's own parser rides along, so its usage comes with its errors.
        p.set_defaults(_module=module, _parser=p)
    return parser


def _command_module(module: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"mmsearch.cli.{module}")


def add_library_args(p: argparse.ArgumentParser, *, model: bool = True) -> None:
    p.add_argument(
        "--library",
        "-l",
        default=default_library(),
        help="library folder (default: $MMSEARCH_LIBRARY or ~/.local/share/mmsearch/library)",
    )
    if model:
        p.add_argument(
            "--model",
            "-m",
            default=None,
            help="model spec: hf:ID, openclip:ARCH/TAG, onnx:DIR, builtin:demo or a folder "
            "(default: the library's own model; for a new library "
            "hf:google/siglip2-base-patch16-256)",
        )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def main(argv: Sequence[str] | None = None) -> int:
    from mmsearch.errors import MMSearchError

    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
    except MMSearchError as exc:  # a value refused by its argparse type (cli/search_args.py)
        return _error(exc)
    if extras:
        # argparse reports a subcommand's unknown flag with the top-level usage; show
        # the subcommand's, which lists the flags that were probably meant.
        (getattr(args, "_parser", None) or parser).error(
            f"unrecognized arguments: {' '.join(extras)}"
        )
    if args.command is None:
        parser.print_help()
        return 0
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    from mmsearch.cli.quiet import quiet_model_libraries

    try:
        with quiet_model_libraries(enabled=args.verbose == 0):
            return int(_command_module(args._module).run(args) or 0)
    except MMSearchError as exc:
        return _error(exc)
    except KeyboardInterrupt:
        print(
            "mmsearch: interrupted (committed work is kept; run again to resume)", file=sys.stderr
        )
        return 130


def _error(exc: Exception) -> int:
    """One line on stderr (control characters escaped); exit status 2."""
    from mmsearch.cli.output import printable

    print(f"mmsearch: error: {printable(str(exc))}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
