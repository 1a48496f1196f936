"""Which statements the read-only SQL paths run, judged on ClickHouse's canonical form."""

from __future__ import annotations

import pytest
from llm_margin.processor.readonly_sql import (
    ReadOnlyStatementError,
    check_read_statement,
    refusal,
)


@pytest.mark.parametrize(
    "canonical",
    [
        "SELECT 1",
        "WITH a AS (SELECT 1) SELECT * FROM a\nFORMAT JSON",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "SHOW TABLES",
        "DESCRIBE TABLE llm_calls",
        "DESCRIBE TABLE llm_margin.llm_calls\nFORMAT JSON",
        "DESCRIBE TABLE\n(\n    SELECT now()\n)",
        "EXISTS TABLE llm_calls",
        "EXPLAIN\nSELECT 1",
        "SELECT 'INTO OUTFILE \\'x\\'' AS `into`, `outfile`",
        "SELECT 'file(\\'x\\')' AS `file`, file_name FROM t",
    ],
)
def test_reading_statements_run(canonical):
    assert refusal(canonical) is None


@pytest.mark.parametrize(
    "canonical",
    [
        "SELECT 1\nINTO OUTFILE 'x'",
        "SELECT *\nFROM t\nINTO OUTFILE 'x' AND STDOUT\nFORMAT CSV",
        "SYSTEM STOP MERGES",
        "KILL QUERY WHERE 1 ASYNC",
        "INSERT INTO t VALUES",
        "SET readonly = 0",
        "",
        "SELECT file('/proc/self/environ')",
        "SELECT extract(file('/etc/passwd'), 'root')",
        "SELECT FILE ('x')",
        # DESCRIBE opens a table function to infer its schema, readonly=1 or not.
        "DESCRIBE TABLE url('http://169.254.169.254/latest/meta-data/', 'CSVWithNames')",
        "DESCRIBE TABLE s3('http://10.0.0.1/bucket/x.csv')",
        "DESCRIBE TABLE remote('10.0.0.1:9000', system.one)",
    ],
)
def test_everything_else_is_refused(canonical):
    assert refusal(canonical)


def test_a_statement_that_does_not_parse_is_never_run_unchecked():
    def format_query(statement):
        raise RuntimeError(
            "Code: 62. DB::Exception: Syntax error: failed at position 7 (1): 1. Expected one "
            "of: end of query: while executing 'FUNCTION formatQuery(materialize('SELEC "
            "1'_String))'. (SYNTAX_ERROR)"
        )

    with pytest.raises(ReadOnlyStatementError) as info:
        check_read_statement("SELEC 1", format_query)
    assert info.value.code == 62
    assert str(info.value) == (
        "Code: 62. DB::Exception: Syntax error: failed at position 7 (1): 1. Expected one of: "
        "end of query. (SYNTAX_ERROR)"
    )


def test_multi_statements_are_refused():
    def format_query(statement):
        raise RuntimeError("Code: 62. Syntax error (Multi-statements are not allowed)")

    with pytest.raises(ReadOnlyStatementError) as info:
        check_read_statement("SELECT 1; SYSTEM STOP MERGES", format_query)
    assert info.value.code == 164
