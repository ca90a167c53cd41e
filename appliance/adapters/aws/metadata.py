"""Instance identity from the EC2 instance metadata service, IMDSv2 only.

IMDSv2 (AWS EC2 user guide, "Use IMDSv2"): PUT ``/latest/api/token`` with the
header ``X-aws-ec2-metadata-token-ttl-seconds`` returns a session token; every GET
then carries it in ``X-aws-ec2-metadata-token``. The endpoint is taken from
``AWS_EC2_METADATA_SERVICE_ENDPOINT`` (the SDKs' variable) when set.
"""

from __future__ import annotations

import dataclasses
import time

import requests
import tenacity

from appliance.model.errors import MetadataUnavailable

DEFAULT_ENDPOINT = "http://169.254.169.254/"
TOKEN_TTL_SECONDS = 21600


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who this instance is: ids, its private IPv4 address (dotted quad) and, when asked for, its
    public one (None: it has none)."""

    instance_id: str
    region: str
    availability_zone: str
    private_ip: str
    public_ip: str | None = None


class MetadataClient:
    """A small IMDSv2 client.

    Args:
        endpoint: base URL, e.g. ``http://169.254.169.254/``.
        timeout: seconds per HTTP call.
        attempts: tries per call before :class:`MetadataUnavailable` is raised.
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, timeout: float = 2.0, attempts: int = 5):
        self.endpoint = endpoint.rstrip("/") + "/"
        self.timeout = timeout
        self.attempts = attempts
        self._token: str | None = None
        self._token_expiry = 0.0
        self._http = requests.Session()

    def _retrying(self):
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_random_exponential(multiplier=0.2, max=2.0),
            retry=tenacity.retry_if_exception_type(requests.RequestException),
            reraise=True,
        )

    def _fresh_token(self) -> str:
        if self._token is None or time.monotonic() > self._token_expiry:
            response = self._http.put(
                self.endpoint + "latest/api/token",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
                timeout=self.timeout,
            )
            response.raise_for_status()
            self._token = response.text
            self._token_expiry = time.monotonic() + TOKEN_TTL_SECONDS - 60
        return self._token

    def _get_once(self, path: str) -> str | None:
        response = self._http.get(
            self.endpoint + "latest/meta-data/" + path,
            headers={"X-aws-ec2-metadata-token": self._fresh_token()},
            timeout=self.timeout,
        )
        if response.status_code == 401:  # token expired early: fetch a new one next try
            self._token = None
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.text.strip()

    def get(self, path: str) -> str | None:
        """GET one metadata path (e.g. ``instance-id``); None when the path is absent (404).

        Raises:
            MetadataUnavailable: no answer after ``attempts`` tries.
        """
        try:
            return self._retrying()(self._get_once, path)
        except requests.RequestException as exc:
            raise MetadataUnavailable(
                f"instance metadata service at {self.endpoint} unreachable after "
                f"{self.attempts} attempts: {type(exc).__name__}: {exc}"
            ) from None

    def identity(self, public: bool = False) -> Identity:
        """Read instance id, region, availability zone and private IPv4 (with ``public``, also
        ``public-ipv4``, absent when the instance has no public address).

        Raises:
            MetadataUnavailable: the service did not answer, or lacks one of these paths.
        """
        values = {}
        for field, path in (
            ("instance_id", "instance-id"),
            ("region", "placement/region"),
            ("availability_zone", "placement/availability-zone"),
            ("private_ip", "local-ipv4"),
        ):
            value = self.get(path)
            if not value:
                raise MetadataUnavailable(f"instance metadata at {self.endpoint} has no {path}")
            values[field] = value
        if public:
            values["public_ip"] = self.get("public-ipv4")
        return Identity(**values)

    def target_lifecycle_state(self) -> str | None:
        """The ASG's target lifecycle state of this instance (``InService``, ``Terminated``, …).

        Path ``autoscaling/target-lifecycle-state`` (EC2 Auto Scaling user guide,
        "Retrieve the target lifecycle state through instance metadata"). None when
        the path is absent; one quick try only, since it is polled every cycle.

        Raises:
            requests.RequestException: the service did not answer this time.
        """
        return self._get_once("autoscaling/target-lifecycle-state")
