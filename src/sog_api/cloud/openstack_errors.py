"""Map openstacksdk and keystoneauth exceptions to the cloud errors of ``base.py``.

Status mapping: 404/410 -> CloudNotFound, 409 -> CloudConflict, 413 and a 403 that mentions a
quota -> CloudQuotaExceeded, 400/422 -> CloudBadRequest, 401 (after our one retry), 408, 429, 5xx,
connect failures, timeouts and failed discovery -> CloudUnavailable (with ``retry_after`` from a
``Retry-After`` header), anything else -> CloudError (permanent).
"""

from __future__ import annotations

import email.utils
import time

import requests
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc

from sog_api.cloud.base import (
    CloudBadRequest,
    CloudConflict,
    CloudError,
    CloudNotFound,
    CloudQuotaExceeded,
    CloudUnavailable,
)

_TRANSIENT_STATUS = frozenset({401, 408, 429})
_MAX_MESSAGE = 500


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK or keystoneauth exception carries, if any."""
    if isinstance(exc, sdk_exc.HttpException):
        return exc.status_code
    if isinstance(exc, ks_exc.HttpError):
        return exc.http_status
    return None


def is_unauthorized(exc: BaseException) -> bool:
    """Whether the call failed with 401 (a token revoked or expired under us)."""
    return status_of(exc) == 401


def retry_after(response: requests.Response | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), if present."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _message(exc: BaseException, status: int | None) -> str:
    if isinstance(exc, sdk_exc.HttpException):
        text = exc.details or exc.message or str(exc)
    else:
        text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = " ".join(str(text).split())[:_MAX_MESSAGE]
    return f"{status}: {text}" if status else text


def _from_status(exc: BaseException, status: int) -> CloudError:
    response = getattr(exc, "response", None)
    message = _message(exc, status)
    wait = retry_after(response)
    if status in (404, 410):
        return CloudNotFound(message)
    if status == 409:
        return CloudConflict(message)
    if status == 413 and wait is not None:  # old Nova rate limiting answered 413 + Retry-After
        return CloudUnavailable(message, retry_after=wait)
    if status == 413 or (status == 403 and "quota" in message.lower()):
        return CloudQuotaExceeded(message)
    if status in (400, 422):
        return CloudBadRequest(message)
    if status in _TRANSIENT_STATUS or status >= 500:
        return CloudUnavailable(message, retry_after=wait)
    return CloudError(message)


def map_exception(exc: BaseException) -> BaseException:
    """Translate an SDK/keystoneauth/requests exception; return anything else unchanged."""
    if isinstance(exc, CloudError):
        return exc
    status = status_of(exc)
    if status is not None:
        return _from_status(exc, status)
    if isinstance(
        exc, ks_exc.ConnectionError | ks_exc.DiscoveryFailure | requests.RequestException
    ):
        return CloudUnavailable(_message(exc, None))
    if isinstance(exc, ks_exc.AuthorizationFailure):
        return CloudUnavailable(f"authentication failed: {_message(exc, None)}")
    if isinstance(exc, sdk_exc.SDKException | ks_exc.ClientException):
        return CloudError(_message(exc, None))
    return exc
