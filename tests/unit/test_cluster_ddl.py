"""clickhouse/cluster/*.sql against clickhouse/schema/*.sql: same tables, same columns (name,
order, type, default), same ORDER BY and PARTITION BY, the replicated variant of the same engine,
a Distributed table per sharded table whose sharding key keeps replacing rows together; every
statement runs ON CLUSTER and parses with ClickHouse's own parser (chDB `formatQuery`).

Another engineer adding a column or a table to the base schema makes this test fail until the
cluster DDL follows."""

from __future__ import annotations

import re

import chdb
import pytest
from llm_margin.clickhouse import schema_statements
from llm_margin.processor.cluster_schema import (
    cluster_schema_statements,
    cluster_sql_files,
    cluster_upgrade_statements,
    distributed_over,
    local_declaration,
    render,
    sql_literal,
)
from llm_margin.processor.config import ConfigError, ServeConfig
from llm_margin.processor.schema_upgrade import declared_columns

_ENGINE = re.compile(r"^ENGINE\s*=\s*(?P<engine>\w+)\((?P<args>.*)\)\s*$", re.MULTILINE)
_PLAIN_VIEW = re.compile(
    r"^CREATE OR REPLACE VIEW (?P<view>\w+)(?P<on> ON CLUSTER '__CLUSTER__')? AS\n(?P<body>.*)\Z",
    re.MULTILINE | re.DOTALL,
)
_CLAUSE = {
    "order_by": re.compile(r"^ORDER BY (.+?)\s*$", re.MULTILINE),
    "partition_by": re.compile(r"^PARTITION BY (.+?)\s*$", re.MULTILINE),
}


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0].rstrip() for line in sql.splitlines())


def table_shape(sql: str) -> dict:
    """Engine, its last argument (the version column), ORDER BY and PARTITION BY of a CREATE."""
    text = _strip_comments(sql)
    engine = _ENGINE.search(text)
    shape = {"engine": engine.group("engine") if engine else None}
    args = [a.strip() for a in engine.group("args").split(",")] if engine else []
    shape["version"] = args[-1] if args and not args[-1].startswith("'") else None
    for name, pattern in _CLAUSE.items():
        found = pattern.search(text)
        shape[name] = found.group(1) if found else None
    return shape


_VIEW = re.compile(
    r"CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+(?P<name>\w+)"
    r"(?:\s+ON\s+CLUSTER\s+'[^']*')?\s+TO\s+(?P<target>\w+)\s+AS\s+SELECT\s+(?P<select>.+?)"
    r"\s+FROM\s+(?P<source>\w+)\s*$",
    re.DOTALL,
)


def materialized_view(sql: str) -> tuple[str, str, str, str] | None:
    """(name, target table, source table, selected columns) of a CREATE MATERIALIZED VIEW."""
    found = _VIEW.search(_strip_comments(sql).strip())
    if found is None:
        return None
    select = " ".join(found.group("select").split())
    return found.group("name"), found.group("target"), found.group("source"), select


def schema_drift(base: list[str], cluster: list[str]) -> list[str]:
    """Differences between the single-server and the cluster DDL (empty when in step)."""
    problems: list[str] = []
    local: dict[str, tuple[list, str]] = {}
    distributed: dict[str, str] = {}
    for statement in cluster:
        found = local_declaration(statement)
        if found is not None:
            local[found[0]] = (found[1], statement)
        pair = distributed_over(statement)
        if pair is not None:
            distributed[pair[0]] = pair[1]
        if "ON CLUSTER '__CLUSTER__'" not in statement:
            problems.append(f"cluster statement without ON CLUSTER: {statement[:80]!r}")
    views = {}
    for statement in cluster:
        view = _PLAIN_VIEW.search(_strip_comments(statement))
        if view is not None:
            views[view.group("view")] = view.group("body")
    cluster_views = {
        view[0]: view for view in (materialized_view(s) for s in cluster) if view is not None
    }
    for statement in base:
        view = _PLAIN_VIEW.search(_strip_comments(statement))
        if view is not None:  # a (parameterised) view: the same query ON CLUSTER
            if views.get(view.group("view")) != view.group("body"):
                problems.append(f"{view.group('view')}: no cluster view with the same query")
            continue
        view = materialized_view(statement)
        if view is not None:
            name, target, source, select = view
            twin = cluster_views.get(name)
            if twin is None:
                problems.append(f"{name}: no cluster materialized view")
            elif twin[1:] != (f"{target}_local", f"{source}_local", select):
                problems.append(f"{name}: cluster view differs: {twin[1:]} for {view[1:]}")
            continue
        found = declared_columns(statement)
        if found is None:
            problems.append(
                f"base statement is not a CREATE TABLE (give it a cluster variant and teach "
                f"this test): {_strip_comments(statement).strip()[:80]!r}"
            )
            continue
        table, columns = found
        target = distributed.get(table, table)
        if target not in local:
            problems.append(f"{table}: no cluster table ({table} or {table}_local)")
            continue
        cluster_columns, cluster_sql = local[target]
        if cluster_columns != columns:
            problems.append(
                f"{table}: columns differ from {target}: "
                f"base-only {[c for c in columns if c not in cluster_columns]}, "
                f"cluster-only {[c for c in cluster_columns if c not in columns]}"
                + (" (order differs)" if sorted(columns) == sorted(cluster_columns) else "")
            )
        base_shape, cluster_shape = table_shape(statement), table_shape(cluster_sql)
        if cluster_shape["engine"] != "Replicated" + (base_shape["engine"] or ""):
            problems.append(
                f"{target}: engine {cluster_shape['engine']}, want Replicated{base_shape['engine']}"
            )
        for key in ("version", "order_by", "partition_by"):
            if base_shape[key] != cluster_shape[key]:
                problems.append(f"{target}: {key} {cluster_shape[key]!r} != {base_shape[key]!r}")
    return problems


def test_cluster_ddl_matches_base_schema():
    cluster = [text for _, text in cluster_sql_files()]
    assert schema_drift(schema_statements(), cluster) == []


def _mutated(old: str, new: str) -> list[str]:
    base = schema_statements()
    changed = [s.replace(old, new, 1) for s in base]
    assert changed != base, f"{old!r} not in the base schema any more; update this test"
    return changed


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda: _mutated(
                "    version               UInt64,\n", "    version UInt64,\n    added_col UInt8,\n"
            ),
            "base-only [('added_col'",
        ),
        (
            lambda: _mutated("cost_usd              Decimal(38, 18)", "cost_usd Decimal(38, 9)"),
            "llm_calls: columns differ",
        ),
        (lambda: _mutated("ORDER BY (customer_id, span_id)", "ORDER BY (span_id)"), "order_by"),
        (
            lambda: [
                *schema_statements(),
                "CREATE TABLE IF NOT EXISTS new_table\n(\n    a UInt8\n)\nENGINE = MergeTree\nORDER BY a",
            ],
            "new_table: no cluster table",
        ),
        (
            lambda: [*schema_statements(), "CREATE VIEW IF NOT EXISTS v AS SELECT 1"],
            "not a CREATE TABLE",
        ),
        (
            lambda: [
                *schema_statements(),
                "CREATE MATERIALIZED VIEW IF NOT EXISTS mv TO llm_calls_by_task AS SELECT 1 FROM t",
            ],
            "mv: no cluster materialized view",
        ),
        (
            lambda: _mutated("latency_ms, attempt, attempt_kind,", "latency_ms, attempt,"),
            "llm_calls_by_task_mv: cluster view differs",
        ),
        (
            lambda: _mutated("AS latest_refresh", "AS newest_refresh"),
            "llm_rollup_fresh: no cluster view",
        ),
    ],
)
def test_drift_is_detected(mutate, expected):
    cluster = [text for _, text in cluster_sql_files()]
    problems = schema_drift(mutate(), cluster)
    assert any(expected in p for p in problems), problems


def _sharding_key_columns(statement: str) -> set[str]:
    engine = _ENGINE.search(_strip_comments(statement))
    key = engine.group("args").split(",", 3)[3]
    return set(re.findall(r"\(([\w, ]+)\)", key)[0].replace(" ", "").split(","))


def test_distributed_tables_shard_on_their_replacing_key():
    """Rows that replace each other (same ORDER BY key) must land on one shard, or FINAL cannot
    deduplicate them: the sharding key may use only ORDER BY columns."""
    locals_ = {}
    seen = 0
    for _, text in cluster_sql_files():
        found = local_declaration(text)
        if found is not None:
            locals_[found[0]] = table_shape(text)
        pair = distributed_over(text)
        if pair is None:
            continue
        seen += 1
        table, local = pair
        assert local == f"{table}_local"
        assert f"'{local}'" in text and "Distributed('__CLUSTER__', '__DATABASE__'" in text
        order_by = set(re.findall(r"\w+", locals_[local]["order_by"]))
        assert _sharding_key_columns(text) <= order_by, (table, order_by)
        assert "Replicated" not in text  # the Distributed table holds no data itself
    assert seen >= 3
    # Shard-local tables replicate per shard; whole-cluster copies share one path.
    for _, text in cluster_sql_files():
        if local_declaration(text) is not None:
            name = local_declaration(text)[0]
            path = (
                "/clickhouse/tables/{shard}/"
                if name.endswith("_local")
                else "/clickhouse/tables/all/"
            )
            assert f"'{path}{{database}}/{{table}}', '{{replica}}'" in text, name


def _tsv_escape(text: str) -> str:
    """Query parameters travel in ClickHouse's escaped (TSV) text format."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def test_rendered_statements_parse_with_clickhouse(tmp_path):
    statements = cluster_schema_statements("prod_cluster", "llm_margin")
    assert len(statements) == len(cluster_sql_files())
    session = chdb.session.Session(str(tmp_path / "parse"))
    try:
        for statement in statements:
            assert "__CLUSTER__" not in statement and "__DATABASE__" not in statement
            formatted = (
                session.query(
                    "SELECT formatQuery({q:String})",
                    "TabSeparatedRaw",
                    params={"q": _tsv_escape(statement)},
                )
                .bytes()
                .decode()
            )
            assert "ON CLUSTER prod_cluster" in formatted, formatted
    finally:
        session.close()


@pytest.mark.parametrize("name", ["", "a'b", "x y", "a`b", "-lead", "é"])
def test_bad_cluster_names_are_refused(name):
    with pytest.raises(ValueError, match="cluster_name"):
        render("ON CLUSTER '__CLUSTER__'", name, "db")


def test_database_is_escaped_as_a_literal():
    sql = render("Distributed('__CLUSTER__', '__DATABASE__', 't', rand())", "c1", "we'ird\\db")
    assert sql == "Distributed('c1', 'we\\'ird\\\\db', 't', rand())"
    assert sql_literal("a'b") == "'a\\'b'"


def test_upgrade_adds_missing_columns_to_local_then_distributed_tables():
    statements = cluster_schema_statements("c1", "db")
    calls = local_declaration(next(s for s in statements if "llm_calls_local ON" in s))[1]
    have = {name for name, _ in calls if name not in ("service_tier", "inserted_at")}

    def existing(table: str) -> list[str]:
        if table in ("llm_calls_local", "llm_calls"):
            return sorted(have)
        found = [local_declaration(s) for s in statements if local_declaration(s)]
        for name, cols in found:
            if table in (name, name.removesuffix("_local")):
                return [c for c, _ in cols]
        raise AssertionError(table)

    alters = cluster_upgrade_statements("c1", statements, existing)
    assert alters == [
        "ALTER TABLE `llm_calls_local` ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS "
        "`service_tier` LowCardinality(String)",
        "ALTER TABLE `llm_calls_local` ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS "
        "`inserted_at` DateTime64(3, 'UTC') DEFAULT now64(3)",
        "ALTER TABLE `llm_calls` ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS "
        "`service_tier` LowCardinality(String)",
        "ALTER TABLE `llm_calls` ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS "
        "`inserted_at` DateTime64(3, 'UTC') DEFAULT now64(3)",
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cluster_name": "main"}, "needs clickhouse_url"),
        ({"cluster_name": "bad'name", "clickhouse_url": "http://h:8123"}, "cluster_name must be"),
    ],
)
def test_serve_config_validates_cluster_name(values, message):
    with pytest.raises(ConfigError, match=message):
        ServeConfig(**values).validate()


def test_serve_config_accepts_a_cluster_in_server_mode():
    config = ServeConfig(cluster_name="main", clickhouse_url="http://h:8123").validate()
    assert config.cluster_name == "main"


def _single_node(statement: str) -> str:
    """A rendered cluster statement as one server without Keeper can run it: no ON CLUSTER, the
    non-replicated engine (same arguments after the replication path), Distributed skipped."""
    sql = re.sub(r"\s+ON CLUSTER '[^']*'", "", statement)
    return re.sub(r"ENGINE = Replicated(\w+)\('[^']*', '[^']*'(?:, )?", r"ENGINE = \1(", sql)


def test_local_tables_are_valid_ddl_and_take_the_processors_rows(tmp_path):
    """Beyond syntax: each table's types, keys, partitioning and version column are accepted by
    ClickHouse (chDB), and the processor's own insert path writes a call row into the local
    llm_calls table (the Distributed one forwards exactly these columns)."""
    from datetime import datetime, timezone
    from decimal import Decimal

    from llm_margin.processor.records import CALL_COLUMNS
    from llm_margin.processor.storage import Store

    store = Store.open(
        data_dir=str(tmp_path / "chdb"), database="cluster_check", create_schema=False
    )
    try:
        created = []
        for statement in cluster_schema_statements("c1", "cluster_check"):
            if distributed_over(statement) is not None:
                continue
            store.command(_single_node(statement))
            if local_declaration(statement) is not None:  # views have no engine
                created.append(local_declaration(statement)[0])
        assert "llm_calls_local" in created and "plans" in created
        engines = dict(
            store.query(
                "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"
            ).rows
        )
        assert {engines[name] for name in created} == {"ReplacingMergeTree"}
        # Every column the processor writes exists in the cluster's llm_calls, same order too.
        cluster_columns = [
            r[0]
            for r in store.query(
                "SELECT name FROM system.columns WHERE database = currentDatabase() "
                "AND table = 'llm_calls_local' ORDER BY position"
            ).rows
        ]
        assert [c for c in cluster_columns if c in CALL_COLUMNS] == list(CALL_COLUMNS)
        row = {c: "" for c in CALL_COLUMNS}
        types = dict(
            store.query(
                "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                "AND table = 'llm_calls_local'"
            ).rows
        )
        for name in CALL_COLUMNS:
            kind = types[name]
            if kind.startswith("DateTime64"):
                row[name] = datetime(2026, 11, 22, tzinfo=timezone.utc)
            elif kind.startswith(("UInt", "Int", "Float")):
                row[name] = 1
            elif kind.startswith("Decimal"):
                row[name] = Decimal("0.000123")
            elif kind == "Bool":
                row[name] = True
        row["span_id"], row["customer_id"] = "s1", "acme"
        store.insert_rows("llm_calls_local", [[row[c] for c in CALL_COLUMNS]], CALL_COLUMNS)
        got = store.query("SELECT customer_id, cost_usd FROM llm_calls_local FINAL").rows
        assert got == [("acme", Decimal("0.000123"))]
        # The shard-local view copies the row into the shard-local by-task table.
        got = store.query("SELECT span_id, cost_usd FROM llm_calls_by_task_local FINAL").rows
        assert got == [("s1", Decimal("0.000123"))]
    finally:
        store.close()


class _RecordingClient:
    """Answers the few reads Store.create_schema makes; records its DDL."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def query(self, sql, parameters=None, settings=None):
        from types import SimpleNamespace

        if "currentDatabase()" in sql and "system" not in sql:
            return SimpleNamespace(column_names=["db"], result_rows=[("llm_margin",)])
        if sql.lstrip().startswith("SELECT count()"):
            return SimpleNamespace(column_names=["n"], result_rows=[(0,)])
        return SimpleNamespace(column_names=["name"], result_rows=[])

    def command(self, sql, parameters=None):
        self.commands.append(sql)


def test_store_creates_the_cluster_schema():
    """Store.create_schema with a cluster ran `self._database()`, shadowed by a string
    attribute of the same name: TypeError before any ON CLUSTER statement."""
    from llm_margin.processor.storage import Store

    client = _RecordingClient()
    store = Store(client, description="test")
    store.cluster = "llm_margin_cluster"
    store.create_schema()
    assert client.commands and all("ON CLUSTER" in c for c in client.commands[:3])
    assert any("llm_calls_local" in c for c in client.commands)
