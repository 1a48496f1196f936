"""`llm-margin`: the command line. Subcommands live in llm_margin.processor.commands."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from llm_margin.processor.commands._common import CommandError
from llm_margin.processor.reports.terminal import terminal_text

# Order here is the order in --help.
COMMAND_MODULES = ("serve", "demo", "report", "sql", "prices", "reprice", "export", "reconcile")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-margin",
        description="Per-customer LLM cost and gross margin from OpenTelemetry spans.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"llm_margin.processor.commands.{name}").register(subparsers)
    return parser


# Top-level modules of the optional dependencies (pyproject.toml) -> the extra that brings them:
# an app-side install (`pip install llm-margin`) has the CLI but not the processor's packages.
_PROCESSOR_MODULES = frozenset(
    {"chdb", "clickhouse_connect", "genai_prices", "grpc", "google", "yaml"}
)
_DEMO_MODULES = frozenset({"openai", "anthropic", "opentelemetry"})


QUIET_LIBRARY_LOGGERS = ("urllib3", "clickhouse_connect")


def quiet_libraries(record: logging.LogRecord) -> bool:
    """Log filter: the HTTP libraries' records below ERROR are dropped."""
    if record.levelno >= logging.ERROR:
        return True
    return not any(
        record.name == name or record.name.startswith(name + ".") for name in QUIET_LIBRARY_LOGGERS
    )


def missing_extra(module: str) -> str | None:
    """The extra to install for a missing top-level module, or None if it is not one of ours."""
    top = module.partition(".")[0]
    if top in _PROCESSOR_MODULES:
        return "processor"
    if top in _DEMO_MODULES:
        return "processor,demo"
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
    except ImportError as exc:  # app-side install without the processor extra
        print(
            f"llm-margin: {exc}. Install the processor, from a checkout of llm-margin: "
            "pip install '.[processor]'",
            file=sys.stderr,
        )
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose and args.command != "serve":
        # A one-shot command reports a failure as its one error line; the HTTP libraries'
        # retry warnings before it only repeat it. serve keeps them: there they tell of a
        # ClickHouse server that comes and goes.
        # A filter on the handler: clickhouse_connect resets urllib3's level when imported.
        for handler in logging.getLogger().handlers:
            handler.addFilter(quiet_libraries)
    try:
        status = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not as "Exception ignored" at exit
        return status
    except BrokenPipeError:  # `llm-margin report ... | head`: the reader has what it wanted
        _discard_stdout()
        return 0
    except KeyboardInterrupt:  # Ctrl-C during a long query: one line, not a traceback
        print(f"llm-margin {args.command}: interrupted", file=sys.stderr)
        return 130
    except CommandError as exc:
        _error(args.command, str(exc))
        return 2
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc.name or "")
        if extra is None:
            raise
        print(
            f"llm-margin {args.command}: needs the Python package {exc.name!r}: install the "
            f"extra, from a checkout of llm-margin: pip install '.[{extra}]'",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:
        # A running processor's or a ClickHouse server's refusal (wrong password, read-only
        # user, missing table) is the user's to read, not a traceback, whichever command
        # asked it.
        from clickhouse_connect.driver.exceptions import ClickHouseError
        from llm_margin.processor.commands._common import query_error_message
        from llm_margin.processor.remote import RemoteError

        if isinstance(exc, RemoteError):
            _error(args.command, str(exc))
        elif isinstance(exc, ClickHouseError):
            _error(args.command, query_error_message(exc))
        else:
            raise
        return 2


def _error(command: str, message: str) -> None:
    """The one error line on stderr. Messages quote ids, file contents and ClickHouse's words,
    which quote stored values with raw escape characters: shown escaped, never acted on."""
    print(terminal_text(f"llm-margin {command}: {message}"), file=sys.stderr)


def _discard_stdout() -> None:
    """After a broken pipe, send what is still buffered to /dev/null: the interpreter's own
    flush at exit would fail again and print "Exception ignored ... BrokenPipeError"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
