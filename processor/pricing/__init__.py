"""The price book: genai-prices data (offline, shipped with the package) plus your YAML overlay.

``price_book.py`` prices a call; ``genai.py`` makes genai-prices fast (memoised, exact);
``overlay.py`` reads the overlay file (custom models, discounts, tier, speed and
inference-geography multipliers, off-peak, dates).
"""

from __future__ import annotations

from functools import lru_cache

from llm_margin.processor.pricing.overlay import Overlay, OverlayError, load_overlay
from llm_margin.processor.pricing.price_book import COST_QUANTUM, Price, PriceBook

__all__ = [
    "COST_QUANTUM",
    "Overlay",
    "OverlayError",
    "Price",
    "PriceBook",
    "default_price_book",
    "load_overlay",
]


@lru_cache(maxsize=1)
def default_price_book() -> PriceBook:
    """genai-prices alone (no overlay), shared: its memo is warm across pipelines."""
    return PriceBook()
