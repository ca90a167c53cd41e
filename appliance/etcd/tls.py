"""TLS for etcd's client and peer ports: which files, checked once, and how each tool is given them.

etcd's transport security (etcd docs, "Transport security model"): ``--cert-file``,
``--key-file`` and ``--trusted-ca-file`` serve the client port over HTTPS, and
``--client-cert-auth`` refuses any client without a certificate signed by that CA;
the ``--peer-*`` flags do the same between members. The agent reaches its own and
other members' client ports with the instance's certificate, which therefore needs
both the ``serverAuth`` and the ``clientAuth`` extended key usage (etcd's JSON
gateway also dials etcd's gRPC server with the server certificate under
``--client-cert-auth``).
"""

from __future__ import annotations

import dataclasses
import os
import ssl

from appliance.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """PEM files: ``ca_file`` (the CA bundle that signs every certificate of the cluster),
    ``cert_file`` (this party's certificate) and ``key_file`` (its private key). Absolute paths."""

    ca_file: str
    cert_file: str
    key_file: str

    def requests_options(self) -> dict:
        """``verify`` and ``cert`` for a :mod:`requests` session or call: the server is verified
        against ``ca_file`` (host name included), and this certificate is presented."""
        return {"verify": self.ca_file, "cert": (self.cert_file, self.key_file)}

    def etcd_client_flags(self) -> list[str]:
        """etcd's flags for HTTPS on the client port, with client certificates required."""
        return ["--cert-file", self.cert_file, "--key-file", self.key_file, "--trusted-ca-file", self.ca_file,
                "--client-cert-auth"]

    def etcd_peer_flags(self) -> list[str]:
        """etcd's flags for TLS between members, with peer certificates required."""
        return ["--peer-cert-file", self.cert_file, "--peer-key-file", self.key_file,
                "--peer-trusted-ca-file", self.ca_file, "--peer-client-cert-auth"]

    def flags(self) -> list[str]:
        """etcdctl's flags for these files (``--cacert``, ``--cert``, ``--key``), which etcd.py's commands take too."""
        return [FLAG_NAMES[0], self.ca_file, FLAG_NAMES[1], self.cert_file, FLAG_NAMES[2], self.key_file]

    def etcdctl_environment(self) -> dict[str, str]:
        """etcdctl's environment variables for these files (``ETCDCTL_CACERT`` and so on)."""
        return {"ETCDCTL_CACERT": self.ca_file, "ETCDCTL_CERT": self.cert_file, "ETCDCTL_KEY": self.key_file}

    def server_context(self, require_client_certificate: bool = False) -> ssl.SSLContext:
        """An SSL context that serves ``cert_file`` (TLS 1.2 or later).

        Raises:
            ssl.SSLError, OSError: a file cannot be read or the key does not match the certificate.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        if require_client_certificate:
            context.load_verify_locations(self.ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


def scheme(tls: TlsFiles | None) -> str:
    """``https`` with TLS, ``http`` without: the scheme of etcd's URLs."""
    return "https" if tls is not None else "http"


def files_from(ca_file: str | None, cert_file: str | None, key_file: str | None,
               names: tuple[str, str, str]) -> TlsFiles | None:
    """The three files as :class:`TlsFiles`, None if none is given; checked with :func:`check`.

    Args:
        names: how the user gave each (a setting or a flag), for the error message.

    Raises:
        ConfigError: only some of the three are given, or :func:`check` fails.
    """
    given = [bool(v) for v in (ca_file, cert_file, key_file)]
    if not any(given):
        return None
    if not all(given):
        missing = [name for name, value in zip(names, given, strict=True) if not value]
        raise ConfigError(f"{', '.join(names)} go together: {', '.join(missing)} missing")
    files = TlsFiles(ca_file, cert_file, key_file)
    check(files, names)
    return files


def check(files: TlsFiles, names: tuple[str, str, str] = ("CA file", "certificate", "key")) -> None:
    """Check that the files are readable PEM, the CA file holds a CA certificate, the key matches the
    certificate and the CA signed it, so that a bad setting stops the program before anything starts
    rather than etcd, or every handshake, after.

    Raises:
        ConfigError: naming the setting (from ``names``: CA, certificate, key) and the file.
    """
    for name, path in zip(names, (files.ca_file, files.cert_file, files.key_file), strict=True):
        if not os.path.isabs(path):
            raise ConfigError(f"{name}: must be an absolute path (got {path!r})")
        try:
            with open(path, "rb") as f:
                if b"-----BEGIN " not in f.read(1 << 20):
                    raise ConfigError(f"{name}: {path} is not a PEM file")
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None
    try:
        client = ssl.create_default_context(cafile=files.ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{names[0]}: {files.ca_file} holds no usable CA certificate ({exc})") from None
    if not client.get_ca_certs():  # OpenSSL lists only certificates that may sign others
        raise ConfigError(f"{names[0]}: {files.ca_file} holds no usable CA certificate (none may sign others)")
    try:
        # The certificate presented as a client's, which every certificate here is (an instance's has
        # clientAuth as well as serverAuth, the operator's only clientAuth), to a server that checks it.
        presenter = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        presenter.check_hostname, presenter.verify_mode = False, ssl.CERT_NONE
        presenter.load_cert_chain(files.cert_file, files.key_file)
        checker = files.server_context(require_client_certificate=True)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{names[1]}, {names[2]}: {files.cert_file} and {files.key_file} are not a certificate "
                          f"and its key ({exc})") from None
    problem = _handshake(checker, presenter)
    if problem:
        raise ConfigError(f"{names[1]}: {files.cert_file} is not signed by a CA in {files.ca_file} ({problem})")


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> str:
    """A TLS handshake in memory between the two contexts: "" if it succeeds, else why."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    s = server.wrap_bio(to_server, to_client, server_side=True)
    c = client.wrap_bio(to_client, to_server, server_side=False)
    for _ in range(10):  # TLS 1.3 completes in two round trips; the bound only guards against a loop
        done = True
        for side in (c, s):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                done = False
            except ssl.SSLError as exc:
                return getattr(exc, "verify_message", "") or exc.reason or str(exc)
        if done:
            return ""
    return "the handshake did not complete"


FLAG_NAMES = ("--cacert", "--cert", "--key")


def add_flags(parser) -> None:
    """Add etcdctl's TLS flags (``--cacert``, ``--cert``, ``--key``) to an argparse parser."""
    parser.add_argument("--cacert", help="CA bundle (PEM) that verifies the members' certificates (with --cert, "
                        "--key: speak HTTPS to the members)")
    parser.add_argument("--cert", help="client certificate (PEM) presented to the members")
    parser.add_argument("--key", help="the client certificate's private key (PEM)")


def from_flags(args) -> TlsFiles | None:
    """:class:`TlsFiles` from the flags of :func:`add_flags`, None if none is given.

    Raises:
        ConfigError: only some are given, or a file is unreadable or wrong (see :func:`check`).
    """
    return files_from(args.cacert, args.cert, args.key, FLAG_NAMES)
