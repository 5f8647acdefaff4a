"""fal's wire shapes: queue URLs, status and result bodies, and the error responses clients see.

Responses "from the app" carry ``x-fal-request-id``; ingress errors do not and say "nginx",
which is exactly what makes fal-client retry them (protocol reference A.9).
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse

from chaos.emulators.fal.jobs import COMPLETED, IN_QUEUE, Job

REQUEST_ID_HEADER = "x-fal-request-id"
ERROR_TYPE_HEADER = "X-Fal-Error-Type"
IMAGE_SIZE = 64  # pixels, both sides

# Documented fal infrastructure errors for the statuses that have one; others fall back to the phrase.
_APP_ERRORS = {
    500: ("Internal server error", "internal_server_error"),
    503: ("No runner available", "runner_scheduling_failure"),
    504: ("Request timed out", "request_timeout"),
}


def queue_urls(base_url: str, app_id: str, request_id: str) -> dict[str, str]:
    """The absolute URLs of one request, on the host and scheme the client connected to."""
    response_url = f"{base_url}{app_id}/requests/{request_id}"
    return {
        "response_url": response_url,
        "status_url": f"{response_url}/status",
        "cancel_url": f"{response_url}/cancel",
    }


def image_url(base_url: str, request_id: str) -> str:
    return f"{base_url}files/{request_id}.png"


def _log_line(message: str, level: str, at: float) -> dict[str, str]:
    return {
        "message": message,
        "level": level,
        "source": "user",
        "timestamp": datetime.fromtimestamp(at, UTC).isoformat(),
    }


def job_logs(job: Job, now: float) -> list[dict[str, str]]:
    """The runner's log lines so far: one when processing starts, one when the job ends."""
    lines = []
    finished_at = job.finished_at
    if now >= job.started_at and (finished_at is None or finished_at > job.started_at):
        lines.append(_log_line("Generating image", "INFO", job.started_at))
    if job.phase(now) == COMPLETED:
        error = job.error()
        if error is None:
            lines.append(_log_line("Image generated", "INFO", finished_at))
        else:
            lines.append(_log_line(error.detail, "ERROR", finished_at))
    return lines


def status_body(job: Job, now: float, base_url: str, with_logs: bool, queue_position: int | None) -> dict[str, Any]:
    """A status answer; ``queue_position`` is required while the job is IN_QUEUE."""
    phase = job.phase(now)
    body: dict[str, Any] = {
        "status": phase,
        "request_id": job.request_id,
        **queue_urls(base_url, job.app_id, job.request_id),
        "logs": job_logs(job, now) if with_logs else None,
    }
    if phase == IN_QUEUE:
        body["queue_position"] = queue_position
    if phase == COMPLETED:
        body["metrics"] = {"inference_time": max(0.0, job.finished_at - job.started_at)}
        error = job.error()
        if error is not None:
            body["error"] = error.detail
            body["error_type"] = error.error_type
    return body


def result_body(job: Job, base_url: str) -> dict[str, Any]:
    """The output of a successful job, shaped like fal-ai/flux/dev's."""
    return {
        "images": [
            {
                "url": image_url(base_url, job.request_id),
                "width": IMAGE_SIZE,
                "height": IMAGE_SIZE,
                "content_type": "image/png",
            }
        ],
        "timings": {"inference": job.processing_time_s},
        "seed": job.seed,
        "has_nsfw_concepts": [False],
        "prompt": job.prompt,
    }


def fal_json(body: Any, request_id: str, status_code: int = 200) -> JSONResponse:
    """A JSON answer from "the app"."""
    return JSONResponse(body, status_code=status_code, headers={REQUEST_ID_HEADER: request_id})


def fal_error(status_code: int, detail: Any, request_id: str, error_type: str | None = None) -> JSONResponse:
    """An error from "the app" in fal's shape: ``{"detail", "error_type"}`` plus ``X-Fal-Error-Type``."""
    body: dict[str, Any] = {"detail": detail}
    headers = {REQUEST_ID_HEADER: request_id}
    if error_type is not None:
        body["error_type"] = error_type
        headers[ERROR_TYPE_HEADER] = error_type
    return JSONResponse(body, status_code=status_code, headers=headers)


def app_error(status_code: int, request_id: str) -> JSONResponse:
    """An injected application error: fal-client raises it at once, without retrying."""
    if status_code in _APP_ERRORS:
        detail, error_type = _APP_ERRORS[status_code]
    else:
        try:
            detail = HTTPStatus(status_code).phrase
        except ValueError:
            detail = "Request failed"
        error_type = detail.lower().replace(" ", "_").replace("-", "_")
    return fal_error(status_code, detail, request_id, error_type)


def ingress_error(status_code: int) -> HTMLResponse:
    """The nginx page fal's ingress answers with when no runner is reachable (no request id)."""
    title = f"{status_code} {HTTPStatus(status_code).phrase}"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return HTMLResponse(page, status_code=status_code)
