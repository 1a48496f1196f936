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

READONLY_CODE = 164
# Bounds of every read-only session (set before readonly=1, which then freezes them): a
# remote caller's query must not hold a read client or the host's memory indefinitely. Far
# above what the reports need on a 10-million-call store (seconds, a few hundred MiB).
READ_LIMITS: dict[str, int] = {
    "max_execution_time": 300,
    "max_memory_usage": 4 * 1024**3,
}
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
