"""The roll-up format (llm_rollup_hours.rollup_format) is written in one SQL file and checked in
three: raising it in only some of them would leave every hour stale, or none."""

import re

from llm_margin.clickhouse import read_sql

FILES = {
    "queries/rollup_record_hours.sql": r"\{refreshed_at:DateTime64\(6\)\},\s*(\d+)\s*$",
    "queries/rollup_stale_hours.sql": r"r\.rolled_format != (\d+)",
    "schema/039_llm_rollup_fresh.sql": r"HAVING rolled_format = (\d+)",
    "cluster/039_llm_rollup_fresh.sql": r"HAVING rolled_format = (\d+)",
}


def test_every_file_names_the_same_rollup_format():
    found = {}
    for name, pattern in FILES.items():
        matches = re.findall(pattern, read_sql(name), re.MULTILINE)
        assert len(matches) == 1, name
        found[name] = int(matches[0])
    assert len(set(found.values())) == 1, found
    assert min(found.values()) >= 1  # 0 is "before the column existed"
