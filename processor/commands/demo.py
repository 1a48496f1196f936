"""`llm-margin demo`: run the whole pipeline locally and print the margin report."""

from __future__ import annotations

import argparse
import importlib.util

from llm_margin.processor.commands._common import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run processor + simulator + an instrumented demo app, then print the report",
        description=(
            "End-to-end demo on the embedded store: starts a processor, the provider simulator "
            "and an app run under opentelemetry-instrument, sends a workload with every kind of "
            "spend, then prints the customer report and the weekly page (written as HTML into "
            "--data-dir). Needs llm-margin[processor,demo] (or [dev])."
        ),
    )
    parser.add_argument(
        "--data-dir",
        default="./llm-margin-demo-data",
        help="embedded store for the demo (default ./llm-margin-demo-data); wiped at start, so "
        "it must be new, empty or made by an earlier demo",
    )
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="format of the customer report (default table); with csv or json, stdout has "
        "only the report and progress goes to stderr",
    )
    parser.set_defaults(handler=run)


# What the demo app (a subprocess under opentelemetry-instrument) imports, by the extra that
# brings it: without them it dies before serving, with its own traceback.
DEMO_APP_MODULES = (
    "openai",
    "anthropic",
    "opentelemetry.distro",
    "opentelemetry.exporter.otlp.proto.grpc",
    "opentelemetry.instrumentation.wsgi",
)


def missing_modules(names: tuple[str, ...]) -> list[str]:
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(name)
    return missing


def run(args: argparse.Namespace) -> int:
    missing = missing_modules(DEMO_APP_MODULES)
    if missing:
        raise CommandError(
            f"the demo needs {', '.join(missing)}: install the extras, from a checkout of "
            "llm-margin: pip install '.[processor,demo]'"
        )
    from llm_margin.demo.run import DemoDirectoryError, run_demo

    try:
        return run_demo(args.data_dir, args.format)
    except DemoDirectoryError as exc:
        raise CommandError(str(exc)) from exc
