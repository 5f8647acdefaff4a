"""The stack: every process a chaos run needs (PostgreSQL, the emulators, the Toxiproxy-compatible
server, the service), started on 127.0.0.1 and stopped in reverse, with the TLS CA and tokens."""
