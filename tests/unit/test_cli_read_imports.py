"""Read commands forwarded to a running processor stay quick to start: they do not import the
OTLP receiver, its pipeline and the price book (about half a second of imports per call)."""

from __future__ import annotations

import subprocess
import sys


def test_remote_reader_does_not_import_the_receiver():
    code = (
        "import sys, llm_margin.processor.remote; "
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'llm_margin.processor.receiver', 'llm_margin.processor.pricing', 'genai_prices'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
