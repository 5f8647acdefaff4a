"""The toxic types, by the `type` name the API accepts."""

from .bandwidth import BandwidthToxic
from .base import Toxic
from .latency import LatencyToxic
from .limit_data import LimitDataToxic
from .noop import NoopToxic
from .reset_peer import ResetPeerToxic
from .slicer import SlicerToxic
from .slow_close import SlowCloseToxic
from .timeout import TimeoutToxic

TOXIC_TYPES: dict[str, type[Toxic]] = {
    cls.type_name: cls
    for cls in (LatencyToxic, BandwidthToxic, SlowCloseToxic, TimeoutToxic, ResetPeerToxic,
                SlicerToxic, LimitDataToxic, NoopToxic)
}

__all__ = ["TOXIC_TYPES", "Toxic", "NoopToxic", "ResetPeerToxic", "TimeoutToxic"]
