"""What flows through a link: timestamped chunks of bytes, in one of two directions.

Like Toxiproxy's `stream` package, this is the vocabulary toxics and links share; it
depends on nothing else in the server.
"""

from __future__ import annotations

from enum import StrEnum


class Direction(StrEnum):
    """A toxic's `stream`; the values are Toxiproxy's names and the metrics' labels."""

    UPSTREAM = "upstream"
    """Client to server."""
    DOWNSTREAM = "downstream"
    """Server to client."""

    @classmethod
    def parse(cls, stream: str) -> Direction | None:
        """The direction a client's `stream` names (case-insensitively), or None."""
        try:
            return cls(stream.lower())
        except ValueError:
            return None


class Chunk:
    """Bytes read from the source, with the time they arrived (latency counts from it)."""

    __slots__ = ("data", "timestamp")

    def __init__(self, data: bytes, timestamp: float) -> None:
        self.data = data
        self.timestamp = timestamp
