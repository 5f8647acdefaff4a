"""The API's errors: a message and an HTTP status, with Toxiproxy's exact texts."""


class ApiError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def bad_request_body(reason: str) -> ApiError:
    return ApiError(f"bad request body: {reason}", 400)


def missing_field(field: str) -> ApiError:
    return ApiError(f"missing required field: {field}", 400)


PROXY_NOT_FOUND = ("proxy not found", 404)
PROXY_EXISTS = ("proxy already exists", 409)
INVALID_STREAM = ("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ("invalid toxic type", 400)
TOXIC_EXISTS = ("toxic already exists", 409)
TOXIC_NOT_FOUND = ("toxic not found", 404)


def error(kind: tuple[str, int]) -> ApiError:
    return ApiError(*kind)


def listen_failure(message: str) -> ApiError:
    """Go's own network error text, reported as a 500."""
    return ApiError(message, 500)
