"""Exit codes and the exceptions that map to them.

Every command exits with one of these codes; the README lists them.
"""

EXIT_OK = 0
EXIT_FAILURE = 1  # a runtime failure after start-up (logged with its reason)
EXIT_CONFIG = 2  # bad input, detected before anything is started or deleted


class ApplianceError(Exception):
    """Base class: an error with a one-line message and an exit code."""

    exit_code = EXIT_FAILURE


class ConfigError(ApplianceError):
    """A missing or malformed setting; the message names the variable or flag."""

    exit_code = EXIT_CONFIG


class AwsPermissionError(ApplianceError):
    """AWS refused a call (AccessDenied); the message names the API call."""

    exit_code = EXIT_CONFIG


class StatusPortError(ApplianceError):
    """The agent's status endpoint cannot be bound (e.g. the port is taken)."""

    exit_code = EXIT_CONFIG


class MetadataUnavailable(ApplianceError):
    """The instance metadata service did not answer after its retries."""

    exit_code = EXIT_CONFIG
