"""Normalise + price throughput (issue 4): spans/s through Pipeline.extract, and the price book
against genai-prices' own calc_price per call (the ratio is what the memo buys).

Run: .venv/bin/python bench/bench_pricing.py
"""

from __future__ import annotations

import time

import genai_prices
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.pipeline import Pipeline
from llm_margin.processor.pricing import PriceBook
from llm_margin.processor.receiver.synthetic import make_request
from llm_margin.processor.records import CallRecord

SPANS = 20_000


def rate(fn, count: int) -> float:
    started = time.perf_counter()
    fn()
    return count / (time.perf_counter() - started)


def main() -> None:
    book = PriceBook()
    request = make_request(0, SPANS)
    pipeline = Pipeline(book, Metrics())
    pipeline.extract(request)  # warm the memo
    extract = rate(lambda: pipeline.extract(request), SPANS)
    calls = pipeline.extract(request).calls
    calls = [CallRecord(**{f: getattr(c, f) for f in c.__slots__}) for c in calls]
    book_rate = rate(lambda: [book.price(c) for c in calls], len(calls))
    sample = calls[:2000]

    def reference() -> None:
        for c in sample:
            genai_prices.calc_price(
                genai_prices.Usage(input_tokens=c.input_tokens, output_tokens=c.output_tokens),
                c.response_model or c.request_model,
                provider_id=c.provider,
                genai_request_timestamp=c.ts,
            )

    reference_rate = rate(reference, len(sample))
    print(f"normalise+price+nest (Pipeline.extract): {extract:,.0f} spans/s")
    print(f"price book alone:                         {book_rate:,.0f} calls/s")
    print(f"genai_prices.calc_price per call:         {reference_rate:,.0f} calls/s")
    print(f"ratio price book / calc_price:            {book_rate / reference_rate:.1f}x")


if __name__ == "__main__":
    main()
