"""Reports: each view runs one SQL file from clickhouse/queries and shapes its rows."""
