"""Adversarial audit of task linking and report roll-ups over many seeds (not part of
`make test`; tests/integration/test_link_audit.py runs two seeds of the same checker).

    python bench/audit_linking.py --seeds 20 [--first 1] [--tasks 40]

Per seed: a fresh in-process processor (embedded store, demo billing), the scenario of
tests/linkaudit.py delivered over OTLP/gRPC with duplicates, late roots and roll-up refreshes
at random points, then llm_calls / llm_tasks against the ground truth and every report against
a naive computation from llm_calls FINAL, before and after a full refresh and after `reprice`
under a changed price overlay. Prints each problem; exit status 1 if any.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from linkaudit import check_reports, check_store, deliver, generate  # noqa: E402
from llm_margin.processor.config import ServeConfig  # noqa: E402
from llm_margin.processor.reports.rollup import refresh_usage_rollup  # noqa: E402
from llm_margin.processor.server import Processor  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_seed(seed: int, n_tasks: int, workdir: str) -> list[str]:
    config = ServeConfig(
        data_dir=os.path.join(workdir, f"seed-{seed}"),
        otlp_grpc_port=free_port(),
        otlp_http_port=free_port(),
        billing_file=os.path.join(ROOT, "demo", "billing.yaml"),
    ).validate()
    processor = Processor(config)
    processor.start()
    try:
        scenario = generate(seed, n_tasks)

        def refresh(rng):
            refresh_usage_rollup(processor.store, max_hours=rng.choice([None, 1, 3]))

        deliver(processor, scenario, seed, refresh)
        problems = check_store(processor.store, scenario)
        problems += check_reports(processor.store, seed, "partial")
        refresh_usage_rollup(processor.store)
        problems += check_reports(processor.store, seed, "current")
        problems += reprice_check(processor.store, seed)
        return problems
    finally:
        processor.stop()


def reprice_check(store, seed: int) -> list[str]:
    """Reprice under an overlay that changes every price: reports (as charged) do not move,
    and each call's restatement is what the overlay says."""
    from datetime import timedelta
    from decimal import Decimal

    from linkaudit import BASE
    from llm_margin.processor.pricing import PriceBook
    from llm_margin.processor.repricing import reprice

    overlay = os.path.join(os.path.dirname(store.embedded_path or "."), f"overlay-{seed}.yaml")
    with open(overlay, "w") as out:
        out.write(
            "models:\n"
            "  - model: my-private-finetune\n"
            '    input_per_mtok: "0.2"\n'
            '    output_per_mtok: "0.6"\n'
            "discounts:\n"
            '  - provider: openai\n    percent: "12.5"\n'
        )
    book = PriceBook.from_file(overlay)
    summary = reprice(store, book, BASE - timedelta(days=1), BASE + timedelta(days=1))
    problems = check_reports(store, seed, "repriced")
    restated = store.query(
        "SELECT count(), sum(restated_cost_usd), countIf(NOT restated_priced) "
        "FROM llm_call_restatements FINAL"
    ).rows[0]
    if (restated[0], Decimal(restated[1])) != (summary.calls, summary.restated_usd):
        problems.append(f"reprice: stored {restated} != summary {summary.row()}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=40)
    args = parser.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="linkaudit-") as workdir:
        for seed in range(args.first, args.first + args.seeds):
            started = time.monotonic()
            problems = run_seed(seed, args.tasks, workdir)
            failed += bool(problems)
            print(f"seed {seed}: {len(problems)} problems ({time.monotonic() - started:.1f} s)")
            for problem in problems:
                print("  " + problem)
    print(f"{failed} of {args.seeds} seeds failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
