"""The errors that end a command with a one-line message and an exit code (:mod:`.exit_codes`)."""

from __future__ import annotations

from appliance.model.exit_codes import ExitCode


class ApplianceError(Exception):
    """Base class: an error with a one-line message and an exit code (default: a runtime failure)."""

    exit_code: int = ExitCode.FAILURE


class ConfigError(ApplianceError):
    """A missing or malformed setting or flag; the message names it."""

    exit_code = ExitCode.CONFIG


class AwsPermissionError(ApplianceError):
    """AWS refused a call (AccessDenied); the message names the API call."""

    exit_code = ExitCode.CONFIG


class StatusPortError(ApplianceError):
    """The agent's status endpoint cannot be bound (e.g. the port is taken)."""

    exit_code = ExitCode.CONFIG


class MetadataUnavailable(ApplianceError):
    """The instance metadata service did not answer after its retries."""

    exit_code = ExitCode.CONFIG
