"""``python -m llm_margin.simulator``: run the simulator as a process until SIGTERM/SIGINT.

Prints exactly one flushed line with the URL so a parent process can read the port it got.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .server import is_loopback, start_simulator


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, serve, and return the exit status (0 on a signal-requested stop)."""
    parser = argparse.ArgumentParser(prog="python -m llm_margin.simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --host (no auth!)"
    )
    args = parser.parse_args(argv)
    if not args.allow_remote and not is_loopback(args.host):
        print(
            f"refusing to listen on non-loopback host {args.host!r}; pass --allow-remote",
            file=sys.stderr,
        )
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sim = start_simulator(host=args.host, port=args.port, allow_remote=args.allow_remote)
    print(f"llm-margin simulator listening on {sim.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
