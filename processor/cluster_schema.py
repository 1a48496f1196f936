"""The ClickHouse cluster schema (``clickhouse/cluster/*.sql``) rendered for one cluster.

With ``cluster_name`` set (server mode only) the processor creates, instead of the single-server
tables of ``clickhouse/schema/``:

- ``<table>_local``: ReplicatedReplacingMergeTree on every shard (``{shard}``/``{replica}``
  macros from each server's config), and ``<table>``: a Distributed table over it with a
  sharding key that keeps the rows that replace each other on one shard (``llm_calls``,
  ``llm_task_spans``, ``llm_tasks``, ``llm_usage_hourly``);
- small tables (``plans``, ``customers``, ``llm_alerts``) replicated in full to every node, so
  queries join them locally on each shard.

Readers and writers keep using the plain table names, so no query changes. Every statement
runs ``ON CLUSTER``; the files hold ``'__CLUSTER__'`` and ``'__DATABASE__'`` as quoted
placeholders, filled here with escaped literals. Upgrades mirror ``schema_upgrade.py``: a
column a newer release declares is added ``ON CLUSTER`` to the local table, then to the
Distributed one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from importlib import resources

from llm_margin.processor.schema_upgrade import declared_columns

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_ON_CLUSTER = re.compile(r"\s+ON\s+CLUSTER\s+'(?:[^'\\]|\\.)*'", re.IGNORECASE)
_DISTRIBUTED_OVER = re.compile(
    r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+`?(?P<table>\w+)`?.*?\bAS\s+`?(?P<local>\w+)`?\s+"
    r"ENGINE\s*=\s*Distributed",
    re.IGNORECASE | re.DOTALL,
)


def validate_cluster_name(name: str) -> str:
    """The name, if it can be a ClickHouse cluster name (a remote_servers entry)."""
    if not isinstance(name, str) or not _CLUSTER_NAME.match(name):
        raise ValueError(
            f"cluster_name must be letters, digits, '_', '.', '-' (as in remote_servers), "
            f"got {name!r}"
        )
    return name


def sql_literal(value: str) -> str:
    """A ClickHouse single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cluster_sql_files() -> list[tuple[str, str]]:
    """(file name, text) of ``clickhouse/cluster/*.sql`` in their numbered order."""
    folder = resources.files("llm_margin.clickhouse").joinpath("cluster")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(n, folder.joinpath(n).read_text(encoding="utf-8")) for n in names]


def render(sql: str, cluster: str, database: str) -> str:
    validate_cluster_name(cluster)
    return sql.replace("'__CLUSTER__'", sql_literal(cluster)).replace(
        "'__DATABASE__'", sql_literal(database)
    )


def cluster_schema_statements(cluster: str, database: str) -> list[str]:
    """Every cluster DDL statement, rendered, in order (one statement per file)."""
    return [render(text, cluster, database) for _, text in cluster_sql_files()]


def local_declaration(statement: str) -> tuple[str, list[tuple[str, str]]] | None:
    """(table, columns) of a rendered CREATE TABLE with a column list; None for Distributed."""
    return declared_columns(_ON_CLUSTER.sub("", statement, count=1))


def distributed_over(statement: str) -> tuple[str, str] | None:
    """(distributed table, local table) of a rendered ``CREATE ... AS local ENGINE =
    Distributed`` statement, else None."""
    found = _DISTRIBUTED_OVER.search(statement)
    return (found.group("table"), found.group("local")) if found else None


def cluster_upgrade_statements(
    cluster: str,
    statements: Iterable[str],
    existing_columns: Callable[[str], Iterable[str]],
) -> list[str]:
    """``ALTER ... ON CLUSTER ADD COLUMN IF NOT EXISTS`` for each declared column a live table
    lacks: the local table first, then every Distributed table over it."""
    statements = list(statements)
    declared: dict[str, list[tuple[str, str]]] = {}
    for statement in statements:
        found = local_declaration(statement)
        if found is not None:
            declared[found[0]] = found[1]
    on_cluster = f"ON CLUSTER {sql_literal(validate_cluster_name(cluster))}"
    alters: list[str] = []

    def add(table: str, columns: list[tuple[str, str]]) -> None:
        have = set(existing_columns(table))
        alters.extend(
            f"ALTER TABLE `{table}` {on_cluster} ADD COLUMN IF NOT EXISTS `{name}` {definition}"
            for name, definition in columns
            if name not in have
        )

    for table, columns in declared.items():
        add(table, columns)
    for statement in statements:
        pair = distributed_over(statement)
        if pair is not None and pair[1] in declared:
            add(pair[0], declared[pair[1]])
    return alters
