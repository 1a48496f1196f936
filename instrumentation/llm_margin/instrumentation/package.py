"""What each instrumentor instruments (checked by ``opentelemetry-instrument`` before loading)."""

_instruments_openai = ("openai >= 3.0",)
_instruments_anthropic = ("anthropic >= 2.0",)
_instruments_google_genai = ("google-genai >= 3.0",)
