"""Options shared by the commands that read stored data, and opening what they read from."""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from typing import Any

from llm_margin.processor.reports.period import resolve_period
from llm_margin.processor.reports.render import FORMATS


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("LLM_MARGIN_DATA_DIR", "./llm-margin-data"),
        help="embedded store directory (env LLM_MARGIN_DATA_DIR; default ./llm-margin-data)",
    )
    parser.add_argument(
        "--clickhouse-url",
        default=os.environ.get("LLM_MARGIN_CLICKHOUSE_URL"),
        help="ClickHouse server URL, e.g. http://user:pass@host:8123 (server mode; env "
        "LLM_MARGIN_CLICKHOUSE_URL)",
    )
    parser.add_argument("--database", default="llm_margin", help="database (default llm_margin)")
    parser.add_argument(
        "--auth-token",
        default=os.environ.get("LLM_MARGIN_AUTH_TOKEN"),
        help="bearer token of a running processor (env LLM_MARGIN_AUTH_TOKEN)",
    )


def add_read_options(parser: argparse.ArgumentParser) -> None:
    add_store_options(parser)
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument(
        "--since", help="start of the period: 2026-11-01, 2026-11-01T08:00, or 7d / 24h ago"
    )
    parser.add_argument("--until", help="end of the period (exclusive); default now")


def period(args: argparse.Namespace, default_span: timedelta | None = None):
    """[since, until) from --since/--until; without --since, ``default_span`` before until
    (else from the start of its month)."""
    try:
        return resolve_period(args.since, args.until, default_span=default_span)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc


def open_reader(args: argparse.Namespace) -> Any:
    """The running processor if it owns --data-dir, else the store itself."""
    from llm_margin.processor.remote import RemoteReader, running_server
    from llm_margin.processor.storage import Store, StoreLockedError

    if args.clickhouse_url:
        return Store.open(
            clickhouse_url=checked_clickhouse_url(args), database=args.database, create_schema=False
        )
    require_data_dir(args.data_dir)
    url = running_server(args.data_dir)
    if url:
        return RemoteReader(url, args.auth_token)
    try:
        return Store.open(data_dir=args.data_dir, database=args.database)
    except StoreLockedError as exc:
        raise CommandError(
            f"{exc}; start `llm-margin serve` there or stop the process holding it"
        ) from exc


def checked_clickhouse_url(args: argparse.Namespace) -> str:
    """--clickhouse-url, refused unless it is a URL: the client read `host:8123` or a typo as
    no address at all and connected to localhost:8123, naming that in its error."""
    from llm_margin.processor.config import CLICKHOUSE_URL_SCHEMES

    url = args.clickhouse_url
    if not url.startswith(CLICKHOUSE_URL_SCHEMES):
        raise CommandError(
            f"--clickhouse-url must be an http(s) URL such as http://user:pass@host:8123, got {url!r}"
        )
    return url


def require_data_dir(data_dir: str) -> None:
    """Commands that read fail on a directory holding no store: opening one would create an
    empty store, so a mistyped --data-dir would report zeros. (`serve` and `demo` create it.)"""
    path = os.path.abspath(data_dir)
    # chDB creates metadata/ when it first opens a directory.
    if not os.path.isdir(os.path.join(path, "metadata")):
        raise CommandError(f"no llm-margin data at {path}")


def query_error_message(exc: BaseException) -> str:
    """ClickHouse's own words for a failed query, on one line: the HTTP client prefixes them
    with its own, and syntax errors span lines."""
    from llm_margin.processor.remote import RemoteError

    if isinstance(exc, RemoteError) and exc.status != 400:  # not the query's fault
        return str(exc)
    text = exc.detail if isinstance(exc, RemoteError) else str(exc)
    start = text.find("Code: ")
    if start > 0:
        text = text[start:]
    text = text.split("Stack trace", 1)[0]
    return " ".join(text.split())
