"""CLI subcommands. Each module has ``register(subparsers)``; cli.py lists them in order."""
