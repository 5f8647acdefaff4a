"""noop: passes data through unchanged."""

from dataclasses import dataclass

from .base import Toxic


@dataclass
class NoopToxic(Toxic):
    type_name = "noop"
    go_name = "NoopToxic"
