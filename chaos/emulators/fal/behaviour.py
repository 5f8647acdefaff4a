"""The emulator's tunable behaviour (timings and fault rates), as set through ``/_emulator/behaviour``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Rate = Annotated[float, Field(ge=0, le=1)]
Seconds = Annotated[float, Field(ge=0, le=3600)]


class BehaviourError(ValueError):
    """A behaviour update that was rejected; the message names every offending field."""


class Behaviour(BaseModel):
    """Timings and fault probabilities; see docs/architecture.md, "Emulator admin API"."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    queue_time_s: Seconds = 0.05
    processing_time_s: Seconds = 0.1
    latency_s: Seconds = 0.0
    submit_error_rate: Rate = 0.0
    submit_error_status: Annotated[int, Field(ge=400, le=599)] = 500
    # "even": exactly that share of submits fails, spread so failures come in the shortest runs the rate
    # allows (0.75 fails 3 in every 4, never 4 in a row): a failure rate a consecutive count never sees.
    submit_error_spacing: Literal["random", "even"] = "random"
    rate_limit_rate: Rate = 0.0
    ingress_error_rate: Rate = 0.0
    ingress_error_status: Literal[502, 503, 504] = 503
    stuck_rate: Rate = 0.0
    job_failure_rate: Rate = 0.0
    key_revoked: bool = False  # every queue call answers 401, as fal does for a revoked key
    seed: int | None = None

    def updated(self, changes: Any) -> Behaviour:
        """A copy with ``changes`` (a JSON object of some fields) applied and validated."""
        if not isinstance(changes, dict):
            raise BehaviourError("the behaviour must be a JSON object of fields to change")
        try:
            return Behaviour.model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
            )
            raise BehaviourError(problems) from None
