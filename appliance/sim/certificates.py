"""The simulator's certificate authority (``sim up --tls``): a CA, a certificate per instance and one for the
operator, as an operator's PKI (e.g. AWS Private CA) would issue them on AWS.

Keys are ECDSA P-256 (quick to make, accepted by etcd's Go TLS). Instance certificates carry
``serverAuth`` and ``clientAuth``: the agent presents its instance's certificate to the members, and
etcd's JSON gateway dials etcd with it under ``--client-cert-auth``. They also carry 127.0.0.1: on
loopback the kernel gives connections between the simulated instances that source address, and etcd
checks a peer certificate's IP SANs against the connection's remote address (etcd docs, "Transport
security model", notes on TLS authentication).

The certificates have an empty subject; names and addresses are in the subject alternative name
(RFC 5280: then critical). etcd 3.5 answers HTTP 400 ("CommonName of client sending a request against
gateway will be ignored") to a JSON-gateway request whose client certificate has a CommonName once
authentication is on, because the gateway could not pass that name on as the user.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.model.tls import TlsFiles

VALID_FOR = datetime.timedelta(days=30)


def _write(path: str, data: bytes, private: bool = False) -> None:
    # Keys are created 0600 from the start, never readable by others even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Authority:
    """A CA whose files live in ``directory`` (``ca.pem``, ``ca-key.pem``), made there if missing.

    Args:
        directory: created if missing. name: the CA's common name.
    """

    def __init__(self, directory: str, name: str = "etcd-appliance simulator CA"):
        self.directory = directory
        self.ca_file = os.path.join(directory, "ca.pem")
        key_file = os.path.join(directory, "ca-key.pem")
        os.makedirs(directory, exist_ok=True)
        if os.path.exists(self.ca_file) and os.path.exists(key_file):
            with open(key_file, "rb") as f:
                self.key = serialization.load_pem_private_key(f.read(), None)
            with open(self.ca_file, "rb") as f:
                self.certificate = x509.load_pem_x509_certificate(f.read())
            return
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(self.key, hashes.SHA256()))
        _write(key_file, _key_pem(self.key), private=True)
        _write(self.ca_file, self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, addresses: Iterable[str] = (), server: bool = True) -> TlsFiles:
        """A certificate and key for ``name`` (``<name>.pem``, ``<name>-key.pem`` in the CA's directory).

        Args:
            name: the files' name (an instance id, or "operator"); without ``addresses``, also the
                certificate's DNS SAN (a client's name only, never dialled).
            addresses: IPv4 addresses for the IP SANs (a server's, as clients dial it).
            server: ``serverAuth`` as well as ``clientAuth`` (an instance); False for a client only.

        Returns:
            :class:`TlsFiles` with this CA.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
        builder = (
            x509.CertificateBuilder().subject_name(x509.Name([]))
            .issuer_name(self.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
        ips = sorted(set(addresses))
        # No DNS name beside addresses: etcd would resolve a peer certificate's DNS names when checking it.
        alternative = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips] if ips else [x509.DNSName(name)]
        builder = builder.add_extension(x509.SubjectAlternativeName(alternative), critical=True)
        certificate = builder.sign(self.key, hashes.SHA256())
        cert_file = os.path.join(self.directory, f"{name}.pem")
        key_file = os.path.join(self.directory, f"{name}-key.pem")
        _write(key_file, _key_pem(key), private=True)
        _write(cert_file, certificate.public_bytes(serialization.Encoding.PEM))
        return TlsFiles(self.ca_file, cert_file, key_file)

    def issue_instance(self, instance_id: str, addresses: Iterable[str]) -> TlsFiles:
        """An instance's certificate: its addresses and 127.0.0.1 (see the module's note) as IP SANs."""
        return self.issue(instance_id, [*addresses, "127.0.0.1"], server=True)
