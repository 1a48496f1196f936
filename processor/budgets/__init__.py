"""Budgets: soft alerts on AI allowance use, hard caps on abnormal use, and the budget
decisions the app side asks for. Evaluated continuously from stored data by the processor.

- ``config.py``: the ``budgets:`` section of the billing YAML, validated once.
- ``thresholds.py``: pure functions from usage rows to alerts and decisions.
- ``sinks.py``: where alerts go (log, Slack-compatible webhook, the ``llm_alerts`` table).
- ``evaluator.py``: the background thread that queries, fires each alert once, and keeps the
  latest decisions for ``GET /api/budget/decision``.
"""
