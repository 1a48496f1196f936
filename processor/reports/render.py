"""Render report rows as an aligned table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from llm_margin.processor.reports.terminal import display_width, pad, terminal_text
from llm_margin.processor.reports.values import json_value

FORMATS = ("table", "csv", "json")
# A spreadsheet runs a cell that starts with one of these as a formula; ids and model names
# come from untrusted span attributes (=HYPERLINK(...) would leak data or phish).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` for a CSV cell: text a spreadsheet would run as a formula gets a leading
    ``'`` (OWASP's advice); numbers, negative ones included, are left alone."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def render(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    fmt: str,
    *,
    footer: dict[str, Any] | None = None,
    title: str | None = None,
) -> str:
    """JSON is the rows only (a footer such as TOTAL is not a row of data there). Every format
    ends with a newline."""
    if fmt == "json":
        rows_json = [{c: json_value(r.get(c)) for c in columns} for r in rows]
        return json.dumps(rows_json, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in list(rows) + ([footer] if footer else []):
            writer.writerow(["" if row.get(c) is None else csv_cell(row.get(c)) for c in columns])
        return buffer.getvalue()
    if fmt == "table":
        return _table(rows, columns, footer, title)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def _cell(value: Any) -> str:
    # The table goes to a terminal: untrusted text is shown, its control characters escaped.
    return "-" if value is None or value == "" else terminal_text(str(value))


def _table(rows, columns, footer, title) -> str:
    body = [[_cell(r.get(c)) for c in columns] for r in rows]
    foot = [_cell(footer.get(c)) for c in columns] if footer else None
    head = [terminal_text(c) for c in columns]
    # Display columns, not characters: a CJK id takes two per character, a combining mark none.
    widths = [display_width(c) for c in head]
    for line in body + ([foot] if foot else []):
        widths = [max(w, display_width(v)) for w, v in zip(widths, line, strict=True)]

    def fmt_line(values: Sequence[str]) -> str:
        cells = []
        for value, width, column in zip(values, widths, columns, strict=True):
            numeric = column not in ("customer_id", "plan", "status", "feature", "route")
            cells.append(pad(value, width, right=numeric))
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = []
    if title:
        out.append(terminal_text(title))
    out += [fmt_line(head), rule] + [fmt_line(line) for line in body]
    if foot:
        out += [rule, fmt_line(foot)]
    return "\n".join(out) + "\n"
