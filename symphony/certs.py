"""A small certificate authority for the conductor and its nodes (cryptography).

The conductor's folder (``conductor.tls.cert_path``) holds ``ca.pem``/``ca.key``,
``server.pem``/``server.key`` and, for the seed's setups, a shared client certificate
``node-client.pem``/``node-client.key``. Per-node client certificates name the node in
their subject CN: the conductor lets a node claim only that id. Keys are written 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from symphony.errors import UserError

SHARED_NODE_CN = "symphony-node-shared"
DEFAULT_SANS = ("localhost", "127.0.0.1", "::1")
VALID_DAYS = 3650


@dataclass(frozen=True)
class CertPaths:
    """File names inside a conductor's certificate folder."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    @property
    def shared_node_cert(self) -> Path:
        return self.root / "node-client.pem"

    @property
    def shared_node_key(self) -> Path:
        return self.root / "node-client.key"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load_ca(paths: CertPaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise UserError(f"{paths.root}: cannot read the CA (ca.pem, ca.key): {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UserError(f"{paths.ca_key}: expected an EC private key")
    return cert, key


def _builder(subject_cn: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
    )


def _san_entries(names: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def create_ca(paths: CertPaths, *, common_name: str = "symphony-ca") -> None:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(common_name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(paths.ca_key, key)
    _write_cert(paths.ca_cert, cert)


def _issue(
    paths: CertPaths, cn: str, *, server: bool, sans: tuple[str, ...] = ()
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = _load_ca(paths)
    key = _new_key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(cn, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san_entries(sans)), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def create_server_cert(paths: CertPaths, *, sans: tuple[str, ...] = DEFAULT_SANS) -> None:
    all_sans = tuple(dict.fromkeys((*DEFAULT_SANS, *sans)))
    cert, key = _issue(paths, "symphony-conductor", server=True, sans=all_sans)
    _write_key(paths.server_key, key)
    _write_cert(paths.server_cert, cert)


def issue_node_cert(paths: CertPaths, node_id: str, *, cert_file: Path, key_file: Path) -> None:
    """A client certificate whose subject CN is ``node_id``."""
    cert, key = _issue(paths, node_id, server=False)
    _write_key(key_file, key)
    _write_cert(cert_file, cert)


def ensure_conductor_certs(
    root: Path, *, sans: tuple[str, ...] = DEFAULT_SANS, shared_node_cert: bool = True
) -> list[Path]:
    """Create whatever is missing (CA, server, shared node cert); return what was written."""
    paths = CertPaths(root)
    written: list[Path] = []
    if not paths.ca_cert.exists() or not paths.ca_key.exists():
        if paths.server_cert.exists():
            raise UserError(f"{root}: server.pem exists but the CA (ca.pem, ca.key) is missing")
        create_ca(paths)
        written += [paths.ca_cert, paths.ca_key]
    if not paths.server_cert.exists() or not paths.server_key.exists():
        create_server_cert(paths, sans=sans)
        written += [paths.server_cert, paths.server_key]
    if shared_node_cert and not (paths.shared_node_cert.exists() and paths.shared_node_key.exists()):
        issue_node_cert(
            paths, SHARED_NODE_CN, cert_file=paths.shared_node_cert, key_file=paths.shared_node_key
        )
        written += [paths.shared_node_cert, paths.shared_node_key]
    return written


def issue_node(root: Path, node_id: str, out: Path) -> tuple[Path, Path, Path]:
    """``certs issue-node``: write OUT/NODE_ID.pem, OUT/NODE_ID.key and OUT/ca.pem."""
    paths = CertPaths(root)
    cert_file, key_file, ca_copy = out / f"{node_id}.pem", out / f"{node_id}.key", out / "ca.pem"
    issue_node_cert(paths, node_id, cert_file=cert_file, key_file=key_file)
    if ca_copy.resolve() != paths.ca_cert.resolve():
        ca_copy.write_bytes(paths.ca_cert.read_bytes())
    return cert_file, key_file, ca_copy


def common_name(cert_pem: bytes) -> str:
    """The subject CN of a PEM (or DER) certificate."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        cert = x509.load_der_x509_certificate(cert_pem)
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = attrs[0].value if attrs else ""
    return value if isinstance(value, str) else value.decode()
