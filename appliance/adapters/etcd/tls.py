"""TLS files checked once, before anything starts, and the server context of the status endpoint.

The agent reaches its own and other members' client ports with the instance's certificate,
which therefore needs both the ``serverAuth`` and the ``clientAuth`` extended key usage
(etcd's JSON gateway also dials etcd's gRPC server with the server certificate under
``--client-cert-auth``).
"""

from __future__ import annotations

import os
import ssl
import stat

from appliance.model.errors import ConfigError
from appliance.model.tls import TlsFiles


def server_context(files: TlsFiles, require_client_certificate: bool = False) -> ssl.SSLContext:
    """An SSL context that serves ``files.cert_file`` (TLS 1.2 or later).

    Raises:
        ssl.SSLError, OSError: a file cannot be read or the key does not match the certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert_file, files.key_file)
    if require_client_certificate:
        context.load_verify_locations(files.ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


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
            if not stat.S_ISREG(os.stat(path).st_mode):
                # A named pipe would block the open below for ever.
                raise ConfigError(f"{name}: {path} is not a regular file")
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
        checker = server_context(files, require_client_certificate=True)
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
