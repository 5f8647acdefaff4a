"""A Locust plugin `genchaos soak` loads beside locustfile.py: it appends the id of every generation
the service accepted (202) to the JSON-lines file named by GENCHAOS_SOAK_ACCEPTED_FILE the moment
the answer arrives, so the soak accounts for each one even if its user never saw it finish.

    locust -f loadtests/locustfile.py,loadtests/accepted_log.py ...
"""

from __future__ import annotations

import json
import os
import time

from locust import events

from loadtests.options import generation_protocol

ACCEPTED_FILE_ENV = "GENCHAOS_SOAK_ACCEPTED_FILE"
_sink = open(os.environ[ACCEPTED_FILE_ENV], "a", buffering=1) if os.environ.get(ACCEPTED_FILE_ENV) else None  # noqa: SIM115 - open for the whole run


@events.request.add_listener
def _record_accepted(request_type, name, response=None, **_kwargs) -> None:
    if _sink is None or request_type != "POST" or response is None:
        return
    api = generation_protocol(os.environ.get("GENCHAOS_SERVICE", ""))
    if name != api.submit_path or response.status_code not in api.api.submit.accepted:
        return
    try:
        generation_id = api.generation_id(response.json())
    except (ValueError, TypeError):
        return
    if generation_id is None:
        return  # an accepted POST without an id is the service's bug; the SLO gate's records show it
    _sink.write(json.dumps({"id": generation_id, "t": time.time()}) + "\n")
