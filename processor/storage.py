"""The store: one clickhouse-connect client for embedded chDB and for a ClickHouse server.

Every statement goes through here, parameterised; SQL text comes from the ``clickhouse/``
package. chDB allows one process per data directory, so a running ``serve`` owns it and other
commands ask that process instead (see ``remote.py``).
"""

from __future__ import annotations

import fcntl
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.binding import bind_query
from clickhouse_connect.driver.exceptions import DatabaseError
from llm_margin.clickhouse import read_sql, schema_statements
from llm_margin.processor.cluster_schema import (  # cluster (issue 7)
    cluster_schema_statements,
    cluster_upgrade_statements,
    sql_literal,
    validate_cluster_name,
)
from llm_margin.processor.readonly_sql import (
    FORMAT_QUERY_SQL,
    READ_LIMITS,
    READONLY_CODE,
    ReadOnlyStatementError,
    ResultLimits,
    ResultTooLargeError,
    check_read_statement,
    is_result_limit_error,
)
from llm_margin.processor.records import (
    CALL_COLUMNS,
    TASK_SPAN_COLUMNS,
    CallRecord,
    TaskSpanRecord,
)
from llm_margin.processor.schema_upgrade import (
    add_column_statements,
    declared_columns,
    schema_gaps,
    view_name,
)

DEFAULT_DATABASE = "llm_margin"
# Server mode: a server that hangs must fail the write (so the batch is spooled) rather than
# hold the writer for clickhouse-connect's default 300 s.
SERVER_TIMEOUTS = {"connect_timeout": 5, "send_receive_timeout": 60}
# Read-only queries (reports, the HTTP query API) run on clients of their own, up to this many
# at once: a report's independent queries then overlap (chDB plans each query on one thread),
# and a long report never waits behind the writer.
READ_CLIENTS = 4


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class StoreLockedError(RuntimeError):
    """The embedded data directory is held by another process (normally `llm-margin serve`)."""


class StoreTimezoneError(RuntimeError):
    """chDB was loaded in another timezone than UTC before the store could load it in UTC."""


def load_chdb_in_utc() -> None:
    """Load chDB with the process's timezone set to UTC, then give the process its own back.

    chDB takes its timezone from the process's once, when it is loaded, and reads every naive
    datetime in it: all query parameters (periods, hours, months) are naive UTC. On a machine in
    Tokyo it would otherwise read `--since 2026-12-01` nine hours early, and in India the hours
    of the roll-ups would fall on the half hour."""
    if "chdb" in sys.modules:
        return  # loaded already; Store.open checks in which timezone
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        import chdb  # noqa: F401
    finally:
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()


def check_utc(client: Any) -> None:
    """Refuse a chDB whose timezone is not UTC under any name: Etc/UTC, Zulu, GMT are fine
    (zero offset in winter and in summer), Europe/London is not."""
    zone, winter, summer = client.query(
        "SELECT timezone(), timezoneOffset(toDateTime('2026-01-15 12:00:00')),"
        " timezoneOffset(toDateTime('2026-07-15 12:00:00'))"
    ).result_rows[0]
    if winter or summer:
        raise StoreTimezoneError(
            f"chDB was loaded in timezone {zone} before llm-margin could load it in UTC, so "
            "periods would be read in that timezone: open the store before anything else "
            "imports chdb, or run with TZ=UTC"
        )


class Store:
    """Thread-safe facade over one clickhouse-connect client."""

    def __init__(
        self,
        client: Any,
        *,
        description: str,
        embedded_path: str | None = None,
        open_reader: Callable[..., Any] | None = None,
        open_writer: Callable[[], Any] | None = None,
    ) -> None:
        self._client = client
        self._lock = threading.Lock()
        # A second writable client for background upkeep (roll-up refreshes), opened on first
        # use: on the main client, a refresh of a busy hour held the lock the inserts and link
        # passes need for seconds.
        self._background = _SideClient(open_writer, fallback=self)
        # Task linking gets a client of its own too: on the main client a link pass (0.15-0.3 s)
        # and the next batch's insert took turns; on two clients chDB runs them at once.
        self._linker = _SideClient(open_writer, fallback=self)
        self.description = description
        # The chDB data directory in embedded mode (the ClickHouse HTTP interface opens its
        # own engine handles on it); None in server mode.
        self.embedded_path = embedded_path
        # Clients for query_readonly; without a way to open more, reads share the main client.
        self._readers = _ClientPool(open_reader, READ_CLIENTS) if open_reader else None
        # query_readonly(limits=...): clients whose session also bounds each answer (an
        # embedded session is readonly=1, so its bounds are fixed when it opens), per bound.
        self._open_reader = open_reader
        self._limited_readers: dict[ResultLimits, _ClientPool] = {}
        self._pools_lock = threading.Lock()  # not _lock: the writer holds that for inserts
        # How many read-only queries may usefully run at once (reports use it).
        self.read_concurrency = READ_CLIENTS if open_reader else 1

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        *,
        data_dir: str | None = None,
        clickhouse_url: str | None = None,
        database: str = DEFAULT_DATABASE,
        create_schema: bool = True,
        cluster: str | None = None,
    ) -> Store:
        embedded_path = None
        # --- cluster (issue 7): `cluster` targets the clickhouse/cluster/ DDL ---
        if cluster and not clickhouse_url:
            raise ValueError("a ClickHouse cluster needs clickhouse_url (server mode)")
        on_cluster = f" ON CLUSTER {sql_literal(validate_cluster_name(cluster))}" if cluster else ""
        # Distributed inserts return once every shard has the rows, not when they are queued
        # on the receiving node: the processor acknowledges only durable batches.
        settings = {"insert_distributed_sync": 1} if cluster else {}
        # --- end cluster ---
        if clickhouse_url:
            bootstrap = clickhouse_connect.get_client(dsn=clickhouse_url, **SERVER_TIMEOUTS)
            if create_schema:
                bootstrap.command(
                    f"CREATE DATABASE IF NOT EXISTS {_identifier(database)}{on_cluster}"
                )
            client = clickhouse_connect.get_client(
                dsn=clickhouse_url, database=database, settings=settings or None, **SERVER_TIMEOUTS
            )
            description = f"ClickHouse server {_redact(clickhouse_url)} database {database}"

            def open_reader(extra_settings: Mapping[str, Any] | None = None) -> Any:
                # a server client's bounds go with each query (query_readonly)
                return clickhouse_connect.get_client(
                    dsn=clickhouse_url,
                    database=database,
                    settings=settings or None,
                    **SERVER_TIMEOUTS,
                )

            def open_writer() -> Any:  # a server client is read-only only per query
                return open_reader()

            if cluster:
                description += f" on cluster {cluster}"
        else:
            path = os.path.abspath(data_dir or "./llm-margin-data")
            os.makedirs(path, exist_ok=True)
            holder = locking_pid(path)
            if holder:  # say so before chDB prints its own "Cannot lock file" to stderr
                raise StoreLockedError(
                    f"the data directory {path} is in use by another process (pid {holder})"
                )
            load_chdb_in_utc()
            try:
                bootstrap = clickhouse_connect.get_client(interface="chdb", path=path)
                bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {_identifier(database)}")
                client = clickhouse_connect.get_client(
                    interface="chdb", path=path, database=database
                )
            except Exception as exc:  # chDB reports a held directory in several ways
                holder = _holding_pid(path)
                message = str(exc).lower()
                if holder or "lock" in message or "already" in message:
                    by = f" (pid {holder})" if holder else ""
                    raise StoreLockedError(
                        f"the data directory {path} is in use by another process{by}"
                    ) from exc
                raise
            check_utc(client)
            description = f"embedded chDB at {path}"
            embedded_path = path

            def open_reader(extra_settings: Mapping[str, Any] | None = None) -> Any:
                # chDB runs every statement of a multi-statement text and a per-query
                # `SETTINGS readonly=1` covers only the last one, so the session itself is
                # read-only (see query_readonly).
                reader = clickhouse_connect.get_client(
                    interface="chdb", path=path, database=database
                )
                for name, value in {**READ_LIMITS, **(extra_settings or {})}.items():
                    reader.command(f"SET {name} = {_setting_literal(value)}")
                reader.command("SET readonly = 1")
                return reader

            def open_writer() -> Any:
                return clickhouse_connect.get_client(interface="chdb", path=path, database=database)

        store = cls(
            client,
            description=description,
            embedded_path=embedded_path,
            open_reader=open_reader,
            open_writer=open_writer,
        )
        store.cluster = cluster  # cluster (issue 7)
        if create_schema:
            store.create_schema()
        return store

    def verify_schema(self) -> None:
        """Raise SchemaError naming every table, view and column of ``clickhouse/schema/``
        the store lacks: with ``create_schema`` off, a processor started on a schema nobody
        applied (or upgraded) would otherwise acknowledge every batch into the spool and
        never store one."""
        gaps = schema_gaps(schema_statements(), self._columns, self._table_exists)
        if gaps:
            raise SchemaError(
                f"database {self._database()} lacks what this release needs (create_schema is "
                "off: apply clickhouse/schema/*.sql, or run): " + "; ".join(gaps)
            )

    def create_schema(self) -> None:
        """Create missing tables, then add columns a newer release declares (see
        ``schema_upgrade.py``): safe to run on every start and after every upgrade."""
        # A store from before llm_calls_by_task: its calls are copied in once, after the view
        # that keeps the table in step exists (a call inserted meanwhile is copied twice; the
        # replacing key makes that one row).
        backfill = not self._table_exists("llm_calls_by_task") and self._table_exists("llm_calls")
        if self.cluster:  # cluster (issue 7): the ON CLUSTER variant, see cluster_schema.py
            statements = cluster_schema_statements(self.cluster, self._database())
            # Views last: an upgraded view may read a column the ALTERs add.
            views = [s for s in statements if view_name(s) is not None]
            for statement in statements:
                if statement not in views:
                    self.command(statement)
            for alter in cluster_upgrade_statements(self.cluster, statements, self._columns):
                self.command(alter)
            for statement in views:
                self.command(statement)
        else:
            self._create_single_server_schema()
        if backfill:
            self.command(read_sql("backfill_calls_by_task.sql"))
        self._backfill_tasks_by_start()

    # The comment llm_tasks_by_start gets once the back-fill of the tasks stored before it
    # existed has finished: a start interrupted before then (a crash, a stop) copies them again
    # on the next start (copies of a row already there are the same key and version: one row
    # under FINAL), so the table is never left half-filled.
    TASKS_BY_START_FILLED = "llm_tasks back-filled"

    def _tasks_by_start_marked(self) -> bool:
        comment = self.query(
            "SELECT comment FROM system.tables "
            "WHERE database = currentDatabase() AND name = 'llm_tasks_by_start'"
        ).rows
        return bool(comment) and comment[0][0] == self.TASKS_BY_START_FILLED

    def tasks_by_start_filled(self) -> bool:
        """Whether llm_tasks_by_start holds the tasks stored before it existed: its back-fill
        finished, or there are no tasks (a schema applied by hand, ``create_schema`` off)."""
        return (
            self._tasks_by_start_marked() or not self.query("SELECT 1 FROM llm_tasks LIMIT 1").rows
        )

    def _backfill_tasks_by_start(self) -> None:
        if self._tasks_by_start_marked():
            return
        self.command(read_sql("backfill_tasks_by_start.sql"))
        on_cluster = f" ON CLUSTER {sql_literal(self.cluster)}" if self.cluster else ""
        self.command(
            f"ALTER TABLE llm_tasks_by_start{on_cluster} "
            f"MODIFY COMMENT {sql_literal(self.TASKS_BY_START_FILLED)}"
        )

    def _table_exists(self, table: str) -> bool:
        return bool(
            self.query(
                "SELECT count() FROM system.tables "
                "WHERE database = currentDatabase() AND name = {table:String}",
                {"table": table},
            ).rows[0][0]
        )

    def _create_single_server_schema(self) -> None:
        for statement in schema_statements():
            self.command(statement)
            declared = declared_columns(statement)
            if declared is None:
                continue
            table, columns = declared
            existing = self.query(
                "SELECT name FROM system.columns "
                "WHERE database = currentDatabase() AND table = {table:String}",
                {"table": table},
            ).rows
            for alter in add_column_statements(table, columns, (r[0] for r in existing)):
                self.command(alter)

    # issue 4: how long a task without its root span waits before its llm_tasks row is
    # written (outcome unknown); see clickhouse/link_tasks.sql and linking.TaskFinalizer.
    task_finalize_seconds: float = 0.0

    # --- cluster (issue 7) ---
    cluster: str | None = None

    def _database(self) -> str:
        return str(self.query("SELECT currentDatabase()").rows[0][0])

    def _columns(self, table: str) -> list[str]:
        return [
            row[0]
            for row in self.query(
                "SELECT name FROM system.columns "
                "WHERE database = currentDatabase() AND table = {table:String}",
                {"table": table},
            ).rows
        ]

    # --- end cluster ---

    # -- writing -------------------------------------------------------------------------------
    def insert_calls(self, calls: Sequence[CallRecord]) -> None:
        if calls:
            self._insert_columns("llm_calls", [c.row() for c in calls], CALL_COLUMNS)

    def insert_task_spans(self, spans: Sequence[TaskSpanRecord]) -> None:
        if spans:
            self._insert_columns("llm_task_spans", [s.row() for s in spans], TASK_SPAN_COLUMNS)

    def _insert_columns(self, table: str, rows: list[tuple], columns: Sequence[str]) -> None:
        # Column-oriented: clickhouse-connect serialises each column in one pass, about 3x
        # faster than row-oriented input for wide batches (bench/bench_processor.py).
        data = [list(column) for column in zip(*rows, strict=True)]
        with self._lock:
            self._client.insert(table, data, column_names=list(columns), column_oriented=True)

    def insert_rows(
        self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]
    ) -> None:
        if rows:
            with self._lock:
                self._client.insert(table, list(rows), column_names=list(columns))

    def link_tasks(self, task_ids: Iterable[str]) -> None:
        """Recompute the llm_tasks rows of these tasks from everything stored for them."""
        ids = sorted(set(task_ids))
        if ids:
            # issue 4: attempt numbers and kinds across processes and instrumentations first
            changes = self._linker.query(read_sql("link_attempts.sql"), {"task_ids": ids}).rows
            if changes:
                customer_ids, span_ids, versions, attempts, kinds, starts = map(
                    list, zip(*changes, strict=True)
                )
                self._linker.command(
                    read_sql("link_attempts_rewrite.sql"),
                    {
                        "customer_ids": customer_ids,
                        "span_ids": span_ids,
                        "versions": versions,
                        "attempts": attempts,
                        "kinds": kinds,
                        # the partitions to read: those of the changed calls' months
                        "since": min(starts),
                        "until": max(starts),
                    },
                )
            self._linker.command(
                read_sql("link_tasks.sql"),
                {
                    "task_ids": ids,
                    "version": time.time_ns(),
                    "finalize_ms": int(self.task_finalize_seconds * 1000),  # issue 4
                },
            )

    # -- reading -------------------------------------------------------------------------------
    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        with self._lock:
            result = self._client.query(sql, parameters=dict(parameters or {}))
        return QueryResult(list(result.column_names), [tuple(r) for r in result.result_rows])

    def query_readonly(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        own_sql: bool = False,
        limits: ResultLimits | None = None,
    ) -> QueryResult:
        """A query that cannot change data or touch files (ClickHouse ``readonly=1``), on a
        client of the read pool: for reports and remote callers; safe to call from several
        threads at once (up to ``read_concurrency`` run in parallel).

        Embedded: chDB runs every statement of a multi-statement text, and a per-query
        ``SETTINGS readonly=1`` covers only the last one (``SELECT * FROM file(...); SELECT
        1`` would read any file). So these run on clients whose session is ``readonly=1``
        for every statement. A server's HTTP interface refuses multi-statements, so there the
        per-query setting suffices.

        ``readonly=1`` still lets ``INTO OUTFILE`` (chDB writes the file), ``SYSTEM STOP
        MERGES`` and ``KILL QUERY`` through, so only one reading statement runs
        (``readonly_sql.py``). ``own_sql``: the project's own report SQL
        (``clickhouse/queries/``), which skips that check (a ``formatQuery`` round trip,
        ~10 ms for a report query) and keeps the read-only session.

        ``limits``: the engine stops a query whose answer passes them, before it is all in
        memory, and this raises ResultTooLargeError (for remote callers' SQL; see
        readonly_sql.ResultLimits).
        """
        params = dict(parameters or {})
        settings = None
        if self.embedded_path is None:  # per query, the bounds before readonly freezes them
            settings = {**(limits.settings() if limits else {}), "readonly": 1}
        try:
            if self._readers is None:
                with self._lock:
                    return _read_statement(self._client, sql, params, settings, own_sql)
            with self._reader_pool(limits).client() as client:
                return _read_statement(client, sql, params, settings, own_sql)
        except DatabaseError as exc:
            if limits is not None and is_result_limit_error(str(exc)):
                raise ResultTooLargeError(limits, str(exc)) from exc
            raise

    def _reader_pool(self, limits: ResultLimits | None) -> _ClientPool:
        assert self._readers is not None and self._open_reader is not None
        if limits is None or self.embedded_path is None:
            return self._readers
        with self._pools_lock:
            pool = self._limited_readers.get(limits)
            if pool is None:
                open_reader = self._open_reader
                pool = _ClientPool(lambda: open_reader(limits.settings()), READ_CLIENTS)
                self._limited_readers[limits] = pool
            return pool

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        with self._lock:
            return self._client.command(sql, parameters=dict(parameters or {}))

    def background_query(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> QueryResult:
        """``query`` on the background client: never waits for the writer, nor it for this."""
        return self._background.query(sql, parameters)

    def background_command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """``command`` on the background client (see ``background_query``)."""
        return self._background.command(sql, parameters)

    def ping(self) -> bool:
        """True when the store answers a trivial query."""
        try:
            with self._lock:
                self._client.command("SELECT 1")
            return True
        except Exception:
            return False

    def close(self) -> None:
        if self._readers is not None:
            self._readers.close()
        for pool in self._limited_readers.values():
            pool.close()
        self._background.close()
        self._linker.close()
        with self._lock:
            try:
                self._client.close()
            except Exception:  # closing is best effort
                pass


class _SideClient:
    """One more writable client on the store, opened on first use, with its own lock, so its
    statements run beside the main client's. Without a way to open one (a Store built around
    a single client) or once closed, statements go to ``fallback`` (the store itself)."""

    def __init__(self, open_client: Callable[[], Any] | None, fallback: Store) -> None:
        self._open = open_client
        self._fallback = fallback
        self._client: Any = None
        self._lock = threading.Lock()

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        with self._lock:
            client = self._get()
            if client is not None:
                result = client.query(sql, parameters=dict(parameters or {}))
                return QueryResult(
                    list(result.column_names), [tuple(r) for r in result.result_rows]
                )
        return self._fallback.query(sql, parameters)

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        with self._lock:
            client = self._get()
            if client is not None:
                return client.command(sql, parameters=dict(parameters or {}))
        return self._fallback.command(sql, parameters)

    def _get(self) -> Any:
        if self._client is None and self._open is not None:
            self._client = self._open()
        return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                except Exception:  # closing is best effort
                    pass
                self._client = None
            self._open = None


def locking_pid(path: str) -> int | None:
    """The live other process holding chDB's lock on path's ``status`` file (an flock, as
    ClickHouse takes it), or None: free, stale, or held by this process."""
    holder = _holding_pid(path)
    if holder is None:
        return None
    try:
        fd = os.open(os.path.join(path, "status"), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return holder
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_statement(
    client: Any,
    sql: str,
    params: dict[str, Any],
    settings: dict[str, Any] | None,
    own_sql: bool = False,
) -> QueryResult:
    """``client.query`` of one reading statement; anything else raises a ClickHouse-style
    DatabaseError, as the engine's own refusals do (not checked for ``own_sql``)."""

    def format_query(statement: str) -> str:
        result = client.query(FORMAT_QUERY_SQL, parameters={"statement": statement})
        return str(result.result_rows[0][0])

    if not own_sql:
        # Only server-side {name:Type} parameters: clickhouse-connect substitutes %(name)s
        # ones into the text after the check, where a value could end a quoted placeholder
        # and add INTO OUTFILE or a second statement.
        if bind_query(sql, params)[0] != sql.rstrip(";"):
            raise DatabaseError(
                f"Code: {READONLY_CODE}. DB::Exception: Cannot execute query in readonly mode: "
                "only {name:Type} query parameters are accepted here. (READONLY)"
            )
        try:
            check_read_statement(sql, format_query)
        except ReadOnlyStatementError as exc:
            raise DatabaseError(str(exc)) from exc
    result = client.query(sql, parameters=params, settings=settings)
    columns = list(result.column_names)
    if not columns and not result.result_rows and not own_sql:  # reports need no header
        columns = _empty_result_columns(client, sql, params, settings)
    return QueryResult(columns, [tuple(r) for r in result.result_rows])


def _empty_result_columns(
    client: Any, sql: str, params: dict[str, Any], settings: dict[str, Any] | None
) -> list[str]:
    """The column names of a query that returned no rows: chDB then sends no block, so none
    come back, and `sql` would print an empty table with no header. Best effort: [] when the
    statement cannot be described (SHOW, EXPLAIN, ...). The newlines keep a trailing comment
    from swallowing the parenthesis."""
    try:
        described = client.query(
            f"DESCRIBE TABLE (\n{sql.strip().rstrip(';')}\n)", parameters=params, settings=settings
        )
    except Exception:  # noqa: BLE001 - only the header is at stake
        return []
    return [str(row[0]) for row in described.result_rows]


class SchemaError(RuntimeError):
    """The store lacks tables or columns this release writes (``create_schema`` off)."""


def _holding_pid(path: str) -> int | None:
    """The live process, other than this one, that has chDB open on path, from the ``status``
    file chDB writes there while open (and removes on close). Consulted only after opening
    failed: chDB then says just "Error initializing EmbeddedServer ... BAD_ARGUMENTS"."""
    try:
        with open(os.path.join(path, "status"), encoding="utf-8", errors="replace") as handle:
            pid = int(handle.readline().partition(":")[2])  # "PID: 12345"
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except PermissionError:  # alive, another user's
        return pid
    except OSError:
        return None
    return pid


class _ClientPool:
    """Up to ``size`` clients, opened on first need and reused; a caller waits when all are
    busy. (A clickhouse-connect client runs one query at a time: its session is locked.)"""

    def __init__(self, open_client: Callable[[], Any], size: int) -> None:
        self._open_client = open_client
        self._size = size
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()

    @contextmanager
    def client(self) -> Iterator[Any]:
        client = self._checkout()
        try:
            yield client
        finally:
            self._idle.put(client)

    def _checkout(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            may_open = self._opened < self._size
            if may_open:
                self._opened += 1
        if not may_open:
            return self._idle.get()
        try:
            return self._open_client()
        except BaseException:
            with self._lock:
                self._opened -= 1
            raise

    def close(self) -> None:
        while True:
            try:
                client = self._idle.get_nowait()
            except queue.Empty:
                return
            try:
                client.close()
            except Exception:  # closing is best effort
                pass


def _redact(url: str) -> str:
    """The URL without its password, for logs and the startup line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _setting_literal(value: int | str) -> str:
    return str(int(value)) if isinstance(value, int) else sql_literal(str(value))


def _identifier(name: str) -> str:
    """Backquoted ClickHouse identifier (database names cannot be bound as parameters)."""
    if not name or any(ch in name for ch in "`\\\0"):
        raise ValueError(f"invalid database name: {name!r}")
    return f"`{name}`"
