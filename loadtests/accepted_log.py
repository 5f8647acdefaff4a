"""A Locust plugin `genchaos soak` loads beside locustfile.py: it appends every generation the service
accepted to the JSON-lines file named by GENCHAOS_SOAK_ACCEPTED_FILE the moment the answer arrives, so
the soak accounts for each one even if its user never saw it finish: its id, the trace its prompt was
marked with (FAL's log shows it) and its owner (whose token reads it back through the API).

    locust -f loadtests/locustfile.py,loadtests/accepted_log.py ...
"""

from __future__ import annotations

import json
import os
import time

from locust import events

from loadtests.users import SUBMITTED_BY, SUBMITTED_RECORD

ACCEPTED_FILE_ENV = "GENCHAOS_SOAK_ACCEPTED_FILE"
_sink = open(os.environ[ACCEPTED_FILE_ENV], "a", buffering=1) if os.environ.get(ACCEPTED_FILE_ENV) else None  # noqa: SIM115 - open for the whole run


@events.request.add_listener
def _record_accepted(context=None, **_kwargs) -> None:
    record = (context or {}).get(SUBMITTED_RECORD)
    if _sink is None or record is None or not record.accepted:
        return  # not a generation's POST, or not accepted (an accepted POST without an id is the service's bug)
    _sink.write(json.dumps({"id": record.generation_id, "trace_id": record.trace_id,
                            "user_id": context[SUBMITTED_BY], "t": time.time()}) + "\n")
