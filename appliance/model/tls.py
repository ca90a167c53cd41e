"""The TLS files of etcd's client and peer ports, and how each tool is given them (pure).

etcd's transport security (etcd docs, "Transport security model"): ``--cert-file``,
``--key-file`` and ``--trusted-ca-file`` serve the client port over HTTPS, and
``--client-cert-auth`` refuses any client without a certificate signed by that CA;
the ``--peer-*`` flags do the same between members. Checking the files is
:mod:`appliance.adapters.etcd.tls`'s job.
"""

from __future__ import annotations

import dataclasses

FLAG_NAMES = ("--cacert", "--cert", "--key")  # etcdctl's flags, which etcd.py's commands take too


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """PEM files: ``ca_file`` (the CA bundle that signs every certificate of the cluster),
    ``cert_file`` (this party's certificate) and ``key_file`` (its private key). Absolute paths."""

    ca_file: str
    cert_file: str
    key_file: str

    def requests_options(self) -> dict:
        """``verify`` and ``cert`` for a :mod:`requests` call: the server is verified against
        ``ca_file`` (host name included), and this certificate is presented."""
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


def scheme(tls: TlsFiles | None) -> str:
    """``https`` with TLS, ``http`` without: the scheme of etcd's URLs."""
    return "https" if tls is not None else "http"
