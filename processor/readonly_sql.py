"""Which statements the read-only SQL paths (``/api/query``, ``llm-margin sql``, the read-only
ClickHouse HTTP interface) run.

ClickHouse's ``readonly = 1`` refuses writes, DDL, setting changes and table functions, but
not everything that changes the store or reaches the machine: ``INTO OUTFILE`` writes a file
where the engine runs (chDB handles it as clickhouse-local does, as its own client), ``SYSTEM
STOP MERGES`` pauses merges for the whole store, ``KILL QUERY`` cancels the processor's own
queries, the ``file()`` function reads any file and ``DESCRIBE url(...)`` (any table
function) fetches what it names. So these paths also require one statement of a reading kind
without ``INTO OUTFILE``, ``file()`` or a described table function. The statement is judged
on ClickHouse's own parse of it (``formatQuery``), never on the raw text: a second lexer would
have to mirror every comment, heredoc and quoting rule of ClickHouse's (``//`` comments,
nested ``/* */``, ``$$...$$``, Unicode quotes) or be fooled.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

READONLY_CODE = 164
# Bounds of every read-only session (set before readonly=1, which then freezes them): a
# remote caller's query must not hold a read client or the host's memory indefinitely. Far
# above what the reports need on a 10-million-call store (seconds, a few hundred MiB).
READ_LIMITS: dict[str, int] = {
    "max_execution_time": 300,
    "max_memory_usage": 4 * 1024**3,
}
# Default bound of one answer of the processor's read-only SQL paths (/api/query, the
# read-only ClickHouse HTTP interface): the whole answer is held in memory (as Python objects
# and a JSON body, or a formatted body), in the process that also ingests. Measured over
# /api/query: ~5 KiB of peak RSS per `SELECT *` row of llm_calls (~1 GiB for 200,000 calls,
# ~300 B each as ClickHouse counts them), ~0.4 KiB per two-column row. 32 MiB stops a wide
# answer near 65,000 rows (~0.4 GiB), 500,000 rows a narrow one near 0.2 GiB.
DEFAULT_MAX_RESULT_ROWS = 500_000
DEFAULT_MAX_RESULT_BYTES = 32 * 1024**2
# ClickHouse's TOO_MANY_ROWS_OR_BYTES; the engine stops the query when the result passes it.
RESULT_LIMIT_CODE = 396


@dataclass(frozen=True)
class ResultLimits:
    """Bound of one answer, as ClickHouse's max_result_rows / max_result_bytes (0: none)."""

    rows: int = DEFAULT_MAX_RESULT_ROWS
    bytes: int = DEFAULT_MAX_RESULT_BYTES

    def settings(self) -> dict[str, Any]:
        """The session or query settings; ``throw``: never a silently cut answer."""
        return {
            "max_result_rows": int(self.rows),
            "max_result_bytes": int(self.bytes),
            "result_overflow_mode": "throw",
        }

    def describe(self) -> str:
        parts = [
            f"{self.rows:,} rows" if self.rows else "",
            _size(self.bytes) if self.bytes else "",
        ]
        return " / ".join(p for p in parts if p) or "none"


class ResultTooLargeError(Exception):
    """A read-only query's answer passed the processor's ``ResultLimits``."""

    def __init__(self, limits: ResultLimits, detail: str) -> None:
        super().__init__(result_limit_message(limits, detail))
        self.limits = limits


def is_result_limit_error(message: str) -> bool:
    """Whether an engine error is the result bound (not another TOO_MANY_ROWS_OR_BYTES)."""
    return f"Code: {RESULT_LIMIT_CODE}." in message and "Limit for result exceeded" in message


def result_limit_message(limits: ResultLimits, detail: str) -> str:
    """What a caller over the bound is told: the bound, why, and what to do instead."""
    start = detail.find("Code: ")
    detail = " ".join(detail[max(start, 0) :].split("Stack trace", 1)[0].split())
    return (
        f"the answer is larger than this processor's result limit ({limits.describe()}), "
        "which keeps one query from exhausting the memory of the process that ingests: add "
        "LIMIT or aggregate in SQL (for billing lines use `llm-margin export`), or start "
        "serve with a higher --max-result-rows / --max-result-bytes (max_result_rows / "
        f"max_result_bytes in its config file; 0 = no limit). ClickHouse said: {detail}"
    )


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale:,} {unit}"
    return f"{n:,} bytes"


# The statement kinds that only read (ClickHouse's canonical spelling: DESC becomes DESCRIBE).
READ_KINDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "EXISTS", "EXPLAIN"})
# formatQuery's output quotes literals and identifiers one way each, with backslash escapes,
# and has no comments: simple enough to tokenise exactly.
_CANONICAL_TOKEN = re.compile(
    r"'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"|\w+|\S", re.S
)
# materialize(): the error of a statement that does not parse then reads like running it would
# (a constant argument would add the wrapper's "In scope SELECT formatQuery(...)").
FORMAT_QUERY_SQL = "SELECT formatQuery(materialize({statement:String}))"
_WRAPPER_CONTEXT = ": while executing 'FUNCTION formatQuery("
_CODE = re.compile(r"Code:\s*(\d+)")


class ReadOnlyStatementError(Exception):
    """A statement the read-only paths do not run; the message is ClickHouse-style."""

    def __init__(self, message: str, code: int = READONLY_CODE) -> None:
        super().__init__(message)
        self.code = code


def refusal(canonical: str) -> str | None:
    """Why a statement, as ``formatQuery`` printed it, may not run read-only (None: it may)."""
    tokens = [t.upper() for t in _CANONICAL_TOKEN.findall(canonical)]
    words = [t for t in tokens if t != "("]
    if not words or words[0] not in READ_KINDS:
        kind = words[0] if words else "an empty statement"
        return f"{kind} is not a reading statement"
    pairs = list(zip(tokens, tokens[1:], strict=False))
    if any(a == "INTO" and b == "OUTFILE" for a, b in pairs):
        return "INTO OUTFILE writes a file"
    # readonly=1 refuses the file() table function but not the file() function, which returns
    # any file the process can read (/proc/self/environ holds the auth token).
    if any(a == "FILE" and b == "(" for a, b in pairs):
        return "file() reads files"
    # readonly=1 refuses url(), s3(), remote(), mysql() ... in a SELECT, but DESCRIBE of a
    # table function still opens it to infer its schema: a request from the processor's host
    # whose first line came back as column names. A subquery is checked as any SELECT.
    target = tokens[2:] if tokens[1:2] == ["TABLE"] else tokens[1:]
    if words[0] == "DESCRIBE" and target[:1] != ["("] and "(" in target:
        return "DESCRIBE of a table function opens it (describe a subquery: DESCRIBE (SELECT ...))"
    return None


def check_read_statement(statement: str, format_query: Callable[[str], str]) -> None:
    """Raise ReadOnlyStatementError unless ``statement`` is one reading statement.

    ``format_query`` runs ``FORMAT_QUERY_SQL`` on the engine that will run the statement. A
    statement that does not parse is refused too (never run unchecked), with the syntax error
    ClickHouse gives for it.
    """
    try:
        canonical = format_query(statement)
    except Exception as exc:
        message = str(exc)
        if "Multi-statements are not allowed" in message:
            raise ReadOnlyStatementError(_message("multi-statements are not allowed")) from exc
        start, end = message.find("Code: "), message.find(_WRAPPER_CONTEXT)
        tail = message.rfind(". (")
        if 0 <= end < tail:  # drop the wrapper, keep the "(SYNTAX_ERROR)" name
            message = message[:end] + message[tail:]
        found = _CODE.search(message)
        code = int(found.group(1)) if found else READONLY_CODE
        raise ReadOnlyStatementError(message[max(start, 0) :], code) from exc
    reason = refusal(canonical)
    if reason is not None:
        raise ReadOnlyStatementError(_message(reason))


def _message(reason: str) -> str:
    return (
        f"Code: {READONLY_CODE}. DB::Exception: Cannot execute query in readonly mode: "
        f"{reason}. (READONLY)"
    )
