"""A local, deterministic stand-in for the OpenAI, Anthropic and Gemini HTTP APIs.

Tests and the demo point the real SDKs at it to get exact, predictable usage numbers and
injectable failures (429/500 retries, slow answers, cut streams) without network access.
"""

from .server import RecordedRequest, Simulator, start_simulator

__all__ = ["RecordedRequest", "Simulator", "start_simulator"]
