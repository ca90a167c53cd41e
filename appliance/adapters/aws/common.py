"""What every AWS client of the agent shares: timeouts, retries, and telling AccessDenied apart."""

from __future__ import annotations

import botocore.config
import botocore.exceptions

from appliance.model.errors import AwsPermissionError

# Error codes AWS returns when the caller's policy does not allow a call.
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def client_config(timeout: float) -> botocore.config.Config:
    """A botocore config with ``timeout`` seconds to connect and to read, and jittered retries."""
    return botocore.config.Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": 3, "mode": "standard"},  # jittered exponential backoff
    )


def error_code(exc: Exception) -> str:
    """The AWS error code of a ``ClientError`` (e.g. "Throttling"), "" for anything else."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""


def is_denied(exc: Exception) -> bool:
    """True if ``exc`` says the role may not make the call."""
    return error_code(exc) in DENIED


def call(service: str, client, operation: str, **kwargs):
    """``client.<operation>(**kwargs)`` (boto3's snake_case name), with a refused call as one error.

    Raises:
        AwsPermissionError: the role may not make the call.
        botocore.exceptions.BotoCoreError, ClientError: anything else AWS said or did not say.
    """
    try:
        return getattr(client, operation)(**kwargs)
    except botocore.exceptions.ClientError as exc:
        if is_denied(exc):
            raise permission_error(service, operation) from None
        raise


def permission_error(service: str, operation: str) -> AwsPermissionError:
    """The one-line error for a refused call; ``operation`` in boto3's snake_case or as the API name."""
    api = "".join(part[:1].upper() + part[1:] for part in operation.split("_"))
    return AwsPermissionError(f"AccessDenied: {service}:{api} is not allowed for this instance's role")
