"""Instance identity from the EC2 instance metadata service, IMDSv2 only.

IMDSv2 (AWS EC2 user guide, "Use IMDSv2"): PUT ``/latest/api/token`` with the
header ``X-aws-ec2-metadata-token-ttl-seconds`` returns a session token; every GET
then carries it in ``X-aws-ec2-metadata-token``. The endpoint is taken from
``AWS_EC2_METADATA_SERVICE_ENDPOINT`` (the SDKs' variable) when set.

Every answer is checked where it enters (docs/design.md, "Bad input stops before anything starts"): a
value that is not in its format (:mod:`appliance.model.formats`), an answer larger than
:data:`MAX_ANSWER_BYTES`, one that is not UTF-8 text, or not HTTP 200, counts as no answer: it is retried,
then reported as :class:`MetadataUnavailable`. A captive proxy's HTML page must never become a region
that botocore chokes on later, nor an instance id the agent acts on.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import requests
import tenacity
import urllib3

from appliance.model.errors import MetadataUnavailable
from appliance.model.formats import (
    is_availability_zone,
    is_imds_token,
    is_instance_id,
    is_instance_ipv4,
    is_region,
    is_target_lifecycle_state,
)

DEFAULT_ENDPOINT = "http://169.254.169.254/"
TOKEN_TTL_SECONDS = 21600
TOKEN_PATH = "latest/api/token"
LIFECYCLE_PATH = "autoscaling/target-lifecycle-state"
# Every value the agent reads is tens of bytes; anything much larger is some other server's page.
MAX_ANSWER_BYTES = 4096
QUOTE_CHARS = 60  # how much of a bad value a message quotes: enough to recognise it, short enough for one line
# The backoff between attempts (tenacity's jittered exponential): up to 0.2 s, 0.4 s, … and never above 2 s.
BACKOFF_MULTIPLIER = 0.2
BACKOFF_MAX = 2.0

# IMDS never compresses; asking for plain bytes means a body is checked (and its size capped) as it arrives.
_PLAIN = {"Accept-Encoding": "identity"}

log = logging.getLogger("metadata")


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who this instance is: ids, its private IPv4 address (dotted quad) and, when asked for, its
    public one (None: it has none). Every field was checked against its format."""

    instance_id: str
    region: str
    availability_zone: str
    private_ip: str
    public_ip: str | None = None


class _BadAnswer(Exception):
    """An answer arrived but is not what the path holds; its message is one line, starting "answered …"."""


def _quote(value: str | bytes) -> str:
    """``value`` shortened to :data:`QUOTE_CHARS` and quoted with ``repr`` (so one line, control bytes escaped)."""
    return repr(value[:QUOTE_CHARS]) + ("..." if len(value) > QUOTE_CHARS else "")


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


def backoff_bound(attempts: int) -> float:
    """The longest total backoff (seconds) between ``attempts`` tries: 3.0 s for 5 attempts."""
    return sum(min(BACKOFF_MAX, BACKOFF_MULTIPLIER * 2 ** n) for n in range(max(attempts - 1, 0)))


class MetadataClient:
    """A small IMDSv2 client that checks every answer.

    Time bound (seconds): each HTTP request waits at most ``timeout`` to connect and ``timeout`` for each
    socket read, and its body must be complete ``timeout`` after its headers (checked after each read). So a
    request that gets no answer ends after about ``timeout`` (2 × ``timeout`` if connecting was slow too), one
    whose body trickles in after about 3 × ``timeout``. A call of :meth:`get` makes ``attempts`` tries of at
    most two requests (the token, the value) with :func:`backoff_bound` between them: a service that hangs
    costs at most about ``attempts`` × 2 × ``timeout`` + ``backoff_bound(attempts)``, i.e. 33 s with the
    agent's ``REQUEST_TIMEOUT`` of 3 s and 5 attempts, 8 s with 0.5 s. Not bounded by this: a server that
    trickles its response *headers* a byte per read (http.client caps their size, not their time).

    Args:
        endpoint: base URL, e.g. ``http://169.254.169.254/``.
        timeout: seconds per HTTP request, as above (> 0).
        attempts: tries per path (a bad answer counts like no answer) before :class:`MetadataUnavailable`.
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, timeout: float = 2.0, attempts: int = 5):
        self.endpoint = endpoint.rstrip("/") + "/"
        # The endpoint comes from the environment: shown quoted if it could break a message's single line.
        self._where = self.endpoint if self.endpoint.isprintable() else _quote(self.endpoint)
        self.timeout = timeout
        self.attempts = attempts
        self._token: str | None = None
        self._token_expiry = 0.0
        self._http = requests.Session()

    def _retrying(self):
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_random_exponential(multiplier=BACKOFF_MULTIPLIER, max=BACKOFF_MAX),
            # A bad answer is retried too: a captive proxy or a restarting agent may answer garbage briefly.
            retry=tenacity.retry_if_exception_type((requests.RequestException, _BadAnswer)),
            reraise=True,
        )

    def _body(self, response: requests.Response, path: str) -> str:
        """The answer's body as stripped text, read in bounded pieces; closes ``response``.

        Raises:
            _BadAnswer: larger than MAX_ANSWER_BYTES, slower than the timeout, or not UTF-8.
            requests.RequestException: the connection failed while reading.
        """
        deadline = time.monotonic() + self.timeout
        data = bytearray()
        with response:
            if response.status_code != 200:
                # Redirects are not followed (a captive portal's), and no other success code is IMDS's.
                raise _BadAnswer(f"answered {path} with HTTP {response.status_code}, not 200")
            # read1 returns after one socket read, so the deadline is checked while an answer trickles in;
            # read(n) would wait for all n bytes (urllib3 1.x has no read1: small reads bound that wait).
            read1 = getattr(response.raw, "read1", None)
            read, size = (read1, 1024) if read1 is not None else (response.raw.read, 64)
            try:
                while chunk := read(size, decode_content=False):
                    data += chunk
                    if len(data) > MAX_ANSWER_BYTES:
                        raise _BadAnswer(f"answered {path} with more than {MAX_ANSWER_BYTES} bytes "
                                         f"({_quote(bytes(data))}), not a metadata value")
                    if time.monotonic() > deadline:
                        raise _BadAnswer(f"answered {path} too slowly (not complete within {self.timeout:g} s)")
            except urllib3.exceptions.HTTPError as exc:  # requests wraps these only in its own reads
                raise requests.ConnectionError(exc) from exc
        try:
            return data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise _BadAnswer(f"answered {path} {_quote(bytes(data))}, not UTF-8 text") from None

    def _fresh_token(self) -> str:
        if self._token is None or time.monotonic() > self._token_expiry:
            response = self._http.put(
                self.endpoint + TOKEN_PATH,
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS), **_PLAIN},
                timeout=self.timeout, stream=True, allow_redirects=False,
            )
            if response.status_code >= 400:
                with response:
                    response.raise_for_status()
            token = self._body(response, TOKEN_PATH)
            if not is_imds_token(token):
                raise _BadAnswer(f"answered {TOKEN_PATH} {_quote(token)}, not an IMDSv2 session token "
                                 f"(1 to 1024 visible ASCII characters)")
            self._token = token
            self._token_expiry = time.monotonic() + TOKEN_TTL_SECONDS - 60
        return self._token

    def _get_once(self, path: str) -> str | None:
        response = self._http.get(
            self.endpoint + "latest/meta-data/" + path,
            headers={"X-aws-ec2-metadata-token": self._fresh_token(), **_PLAIN},
            timeout=self.timeout, stream=True, allow_redirects=False,
        )
        if response.status_code == 401:  # token expired early: fetch a new one next try
            self._token = None
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code >= 400:
            with response:
                response.raise_for_status()
        return self._body(response, path)

    def get(self, path: str, valid: Callable[[str], bool] | None = None, expected: str = "") -> str | None:
        """GET one metadata path (e.g. ``instance-id``); None when the path is absent (404).

        Args:
            path: below ``latest/meta-data/``.
            valid: the value's format; an answer it refuses counts as no answer (retried).
            expected: what ``valid`` accepts, for the message, e.g. ``an AWS region such as eu-central-1``.

        Returns:
            The value, stripped, and accepted by ``valid``; or None.

        Raises:
            MetadataUnavailable: no acceptable answer after ``attempts`` tries (the time bound is the class's);
                its message is one line naming the endpoint and ``path``.
        """

        def once() -> str | None:
            value = self._get_once(path)
            if value is not None and valid is not None and not valid(value):
                raise _BadAnswer(f"answered {path} {_quote(value)}, not {expected or 'in its format'}")
            return value

        try:
            return self._retrying()(once)
        except _BadAnswer as exc:
            raise MetadataUnavailable(f"instance metadata at {self._where} {exc} "
                                      f"(after {self.attempts} attempts)") from None
        except requests.RequestException as exc:
            raise MetadataUnavailable(
                f"instance metadata service at {self._where} unreachable after "
                f"{self.attempts} attempts to read {path}: {type(exc).__name__}: {_one_line(exc)}"
            ) from None

    def _required(self, path: str, valid: Callable[[str], bool], expected: str) -> str:
        value = self.get(path, valid, expected)
        if not value:
            raise MetadataUnavailable(f"instance metadata at {self._where} has no {path}")
        return value

    def identity(self, public: bool = False) -> Identity:
        """Read instance id, region, availability zone and private IPv4 (with ``public``, also
        ``public-ipv4``, absent when the instance has no public address), each checked against its format
        (:mod:`appliance.model.formats`). Each path is read as :meth:`get` does, one after the other, so
        this ends within 4 (5 with ``public``) times :meth:`get`'s bound; the first bad path ends it.

        Raises:
            MetadataUnavailable: the service did not answer, lacks one of these paths, or answered a value
                out of its format (or an oversized, non-UTF-8 or non-200 answer) on every attempt.
        """
        instance_id = self._required("instance-id", is_instance_id, "an EC2 instance id such as i-0123456789abcdef0")
        region = self._required("placement/region", is_region, "an AWS region such as eu-central-1")
        zone = self._required("placement/availability-zone", lambda text: is_availability_zone(text, region),
                              f"an availability zone of {region} such as {region}a")
        private_ip = self._required("local-ipv4", is_instance_ipv4, "an instance's IPv4 address such as 10.0.1.23")
        public_ip = None
        if public:
            public_ip = self.get("public-ipv4", is_instance_ipv4, "an instance's IPv4 address such as 3.120.1.23")
        return Identity(instance_id, region, zone, private_ip, public_ip or None)

    def target_lifecycle_state(self) -> str | None:
        """The ASG's target lifecycle state of this instance (``InService``, ``Terminated``, …).

        Path ``autoscaling/target-lifecycle-state`` (EC2 Auto Scaling user guide,
        "Retrieve the target lifecycle state through instance metadata"). One quick try only, since it is
        polled every cycle: at most two requests (the token, the value), each bounded as the class says.

        Returns:
            One of :data:`appliance.model.formats.TARGET_LIFECYCLE_STATES`, or None: the path is absent, or
            the answer is not such a state (garbage is unknown, never a reason to leave the cluster).

        Raises:
            requests.RequestException: the service did not answer this time.
        """
        try:
            state = self._get_once(LIFECYCLE_PATH)
        except _BadAnswer as exc:
            log.debug("instance metadata at %s %s; the target lifecycle state is unknown", self._where, exc)
            return None
        if state is not None and not is_target_lifecycle_state(state):
            log.debug("instance metadata at %s answered %s %s, not a target lifecycle state; unknown",
                      self._where, LIFECYCLE_PATH, _quote(state))
            return None
        return state
