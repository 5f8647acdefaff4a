"""Errors in storage-api's and the API gateway's shapes, and the handlers that render every refusal
that way, never as a traceback."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class StorageError(Exception):
    """An error storage-api renders as ``{statusCode, code, error, message}``.

    ``status_code`` is storage-api's internal status, which only goes into the body; the HTTP
    status is 400 unless the internal status is 500, or ``http_status`` overrides it.
    """

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        error: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.error = error or code
        self.http_status = http_status or (500 if status_code == 500 else 400)

    def response(self) -> JSONResponse:
        body = {
            "statusCode": str(self.status_code),
            "code": self.code,
            "error": self.error,
            "message": self.message,
        }
        return JSONResponse(body, status_code=self.http_status)


class GatewayAuthError(Exception):
    """The API gateway's refusal of a missing or unknown ``apikey`` (plain 401, not storage-api's shape)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", error="not_found")


def no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", error="Bucket not found")


def key_already_exists() -> StorageError:
    return StorageError(409, "KeyAlreadyExists", "The resource already exists", error="Duplicate")


def bucket_already_exists() -> StorageError:
    return StorageError(409, "BucketAlreadyExists", "The resource already exists", error="Duplicate")


def invalid_key(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: {key}")


def invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message)


def access_denied(message: str) -> StorageError:
    return StorageError(403, "AccessDenied", message, error="Unauthorized", http_status=403)


def invalid_jwt(message: str) -> StorageError:
    return StorageError(400, "InvalidJWT", message)


def install_error_handlers(app: FastAPI) -> None:
    """Render every refusal in the shape the real stack uses."""

    @app.exception_handler(StorageError)
    async def storage_error(_: Request, exc: StorageError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(GatewayAuthError)
    async def gateway_error(_: Request, exc: GatewayAuthError) -> JSONResponse:
        hint = "Double check your Supabase `anon` or `service_role` API key."
        return JSONResponse({"message": exc.message, "hint": hint}, status_code=401)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return StorageError(400, "InvalidRequest", problems or "invalid request", error="Bad Request").response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (404, 405):  # no such route: Fastify's own shape
            body = {
                "statusCode": exc.status_code,
                "error": str(exc.detail),
                "message": f"Route {request.method}:{request.url.path} not found",
            }
            return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
        return invalid_request(str(exc.detail)).response()  # e.g. a malformed multipart body
