"""The names a run is organised by: resilience profiles and timing presets.

A profile says which of the report's two designs a service configuration follows (``as_written``: the
report's code as it stands; ``hardened``: what it should have been), so scenarios can say which checks
apply to which. A timing preset says whether the service runs the report's real numbers or short ones
for CI. A service's contract says which profiles it offers and how to select each preset.
"""

from __future__ import annotations

PROFILES: tuple[str, ...] = ("as_written", "hardened")
TIMINGS: tuple[str, ...] = ("real", "fast")

# Earlier names, still accepted wherever a profile or timing is read (CLI, scenario files, stack files,
# old report.json): both used to be called "report", after the incident report the designs come from.
PROFILE_ALIASES = {"report": "as_written"}
TIMING_ALIASES = {"report": "real"}


def canonical_profile(name: str) -> str:
    """The profile's current name for `name`, which may be an alias; unknown names pass through unchanged."""
    return PROFILE_ALIASES.get(name, name)


def canonical_timing(name: str) -> str:
    """The timing preset's current name for `name`, which may be an alias; unknown names pass through."""
    return TIMING_ALIASES.get(name, name)
