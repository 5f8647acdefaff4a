"""`genchaos toxiproxy`: the embedded Toxiproxy-compatible server alone, like `toxiproxy-server`."""

from __future__ import annotations

import argparse

import chaos.toxiproxy


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("toxiproxy", help="run the Toxiproxy-compatible server alone",
                                   description="Run the embedded Toxiproxy-2.x-compatible server in the foreground.")
    parser.add_argument("--host", default="localhost", help="address the API listens on (default: localhost)")
    parser.add_argument("--port", default="8474", help="port the API listens on (default: 8474)")
    parser.add_argument("--config", help="JSON file of proxies to create at start, like toxiproxy-server -config")
    parser.add_argument("--proxy-metrics", action="store_true", help="serve Prometheus metrics at /metrics")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    argv = ["--host", args.host, "--port", str(args.port)]
    if args.config:
        argv += ["--config", args.config]
    if args.proxy_metrics:
        argv.append("--proxy-metrics")
    return chaos.toxiproxy.main(argv)
