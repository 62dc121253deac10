"""``mmsearch models``: list backends and the default model; export a model to ONNX."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="models_command", metavar="ACTION")
    sub.add_parser("list", help="list model backends and defaults")
    ex = sub.add_parser("export-onnx", help="export a model's towers to ONNX for fast CPU serving")
    ex.add_argument("spec", help="model spec to export (hf:..., openclip:..., a folder)")
    ex.add_argument(
        "--out", required=True, help="output folder (use it as --model DIR or onnx:DIR)"
    )
    ex.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="dynamic int8 quantisation (faster on CPU, small accuracy cost)",
    )


def run(args: argparse.Namespace) -> int:
    if args.models_command == "export-onnx":
        from mmsearch.encoders.onnx_export import export_onnx_command

        out = export_onnx_command(args.spec, args.out, args.quantize)
        print(f"exported to {out}; use it with --model {out}")
        return 0
    from mmsearch.encoders.registry import DEFAULT_MODEL, DEMO_MODEL, backends

    print("backends: " + ", ".join(f"{b}:" for b in backends()) + " (or a local model folder)")
    print(f"default model (needs a model hub or a cached copy): {DEFAULT_MODEL}")
    print(f"offline demo model (shipped): {DEMO_MODEL}")
    print("see docs/MODELS.md for the supported families and their published recall")
    return 0
