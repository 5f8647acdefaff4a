"""One module per `genchaos` subcommand, each with `register(subparsers)` and `run(args) -> int`."""
