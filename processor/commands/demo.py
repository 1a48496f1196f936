"""`llm-margin demo`: run the whole pipeline locally and print the margin report."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run processor + simulator + an instrumented demo app, then print the report",
        description="End-to-end demo on the embedded store. Needs llm-margin[dev] or [demo].",
    )
    parser.add_argument(
        "--data-dir",
        default="./llm-margin-demo-data",
        help="embedded store for the demo (wiped at start; default ./llm-margin-demo-data)",
    )
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from llm_margin.demo.run import run_demo

    return run_demo(args.data_dir, args.format)
