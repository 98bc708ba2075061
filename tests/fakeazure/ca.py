"""A throwaway certificate authority and one server certificate for every fake Microsoft host.

The fake answers on the real host names (`dev.azure.com`, `login.microsoftonline.com`, ...) over
real TLS, so git, curl, requests and msal run their ordinary certificate checks; they only need
to be told to trust this CA. One certificate covers every host, so the single fake server can
route on the Host header after the handshake.

The validity window is wide (two years back, ten ahead) because tests run the helper under
libfaketime up to about a year in the future, and a certificate that "expired" would turn a
clock test into a TLS failure.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES: tuple[str, ...] = (
    "dev.azure.com",
    "vssps.dev.azure.com",
    "*.visualstudio.com",
    "*.vssps.visualstudio.com",
    "app.vssps.visualstudio.com",
    "login.microsoftonline.com",
    "*.actions.githubusercontent.com",
    "localhost",
)
SERVER_IPS: tuple[str, ...] = ("127.0.0.1",)


@dataclass(frozen=True)
class CertFiles:
    """Where the PEM files are: the CA to trust, and the server's certificate and key."""

    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fakeazure test CA (not Microsoft)"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def make_certificates(directory: Path | str) -> CertFiles:
    """Create a fresh CA and a server certificate in `directory` (ca.pem, server.pem, server.key).

    EC P-256 keys keep generation in the low milliseconds; the extensions (key usage, SKI/AKI,
    serverAuth) are the ones strict verifiers such as OpenSSL 3 and Python's
    VERIFY_X509_STRICT expect, so no client needs a relaxed setting.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(days=2 * 365)
    not_after = now + datetime.timedelta(days=10 * 365)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("fakeazure root")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_NAMES]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("dev.azure.com"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    files = CertFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    files.key.chmod(0o600)
    return files
