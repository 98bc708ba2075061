"""Signed JWTs as the fake checks and makes them: client assertions and federated tokens.

Entra's client-credentials grant takes a JWT instead of a secret in two cases (RFC 7523):
signed with the private key of a certificate registered on the application (issuer and
subject are the client ID, the audience is the token endpoint, the header names the
certificate by thumbprint: `x5t#S256` with PS256, as msal signs, or `x5t` with RS256), or
issued by another identity provider the application trusts (workload identity federation:
Kubernetes' service-account issuer, GitHub Actions). The fake verifies signatures for real,
with `cryptography`, so a client that signs wrongly is refused as Entra would refuse it.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID

PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey]


class BadJwt(ValueError):
    """Not a JWT, or not one this module can read."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Jwt:
    header: dict[str, object]
    claims: dict[str, object]
    signed: bytes  # header.payload, as signed
    signature: bytes


def decode(token: str) -> Jwt:
    """Split and decode a compact JWS without checking anything."""
    parts = token.split(".")
    if len(parts) != 3:
        raise BadJwt("not three dot-separated parts")
    try:
        header, claims = (json.loads(unb64url(p)) for p in parts[:2])
        signature = unb64url(parts[2])
    except (ValueError, UnicodeDecodeError) as error:
        raise BadJwt(str(error)) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise BadJwt("header or claims are not JSON objects")
    return Jwt(header, claims, f"{parts[0]}.{parts[1]}".encode(), signature)


def verify(jwt: Jwt, key: PublicKey) -> bool:
    """Whether `key` made the signature, with the algorithm the header names."""
    alg = jwt.header.get("alg")
    try:
        if isinstance(key, rsa.RSAPublicKey) and alg == "RS256":
            key.verify(jwt.signature, jwt.signed, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, rsa.RSAPublicKey) and alg == "PS256":
            key.verify(jwt.signature, jwt.signed,
                       padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO),
                       hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey) and alg == "ES256":
            if len(jwt.signature) != 64:
                return False
            der = utils.encode_dss_signature(int.from_bytes(jwt.signature[:32], "big"),
                                             int.from_bytes(jwt.signature[32:], "big"))
            key.verify(der, jwt.signed, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def sign(claims: dict[str, object], key: ec.EllipticCurvePrivateKey, kid: str) -> str:
    """An ES256 JWT, as an OIDC issuer (a cluster, a CI service) signs its tokens."""
    header = {"alg": "ES256", "typ": "JWT", "kid": kid}
    signed = ".".join(b64url(json.dumps(part, separators=(",", ":")).encode())
                      for part in (header, claims))
    der = key.sign(signed.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    return f"{signed}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def thumbprints(der: bytes) -> tuple[str, str]:
    """(x5t#S256, x5t) of a certificate: base64url of its SHA-256 and SHA-1 digests."""
    return (b64url(hashlib.sha256(der).digest()),
            b64url(hashlib.sha1(der).digest()))  # x5t is SHA-1 by definition


def certificate_key(der: bytes) -> PublicKey:
    key = x509.load_der_x509_certificate(der).public_key()
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise BadJwt("unsupported key type")
    return key


class Issuer:
    """An OpenID Connect issuer whose tokens Entra trusts for federation: an AKS cluster's
    service-account issuer, or GitHub Actions'. Its key is registered with the fake, so the
    fake needs no network to check the tokens it signs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kid = secrets.token_hex(8)
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def token(self, subject: str, now: float, *, audience: str, lifetime: float = 3600,
              extra: dict[str, object] | None = None) -> str:
        """A token for `subject`, valid from a minute ago for `lifetime` seconds (negative: it
        expired that long ago)."""
        claims: dict[str, object] = {
            "iss": self.url, "sub": subject, "aud": audience, "iat": int(now) - 60,
            "nbf": int(now) - 60, "exp": int(now + lifetime), "jti": secrets.token_hex(8),
            **(extra or {})}
        return sign(claims, self._key, self.kid)


@dataclass(frozen=True)
class ClientCertificate:
    """A self-signed certificate for an app registration: `pem` holds the private key and
    the certificate, as AZURE_CLIENT_CERTIFICATE_PATH expects; `der` is what the portal
    keeps when the certificate is uploaded."""

    pem: Path
    der: bytes


def make_client_certificate(path: Path, passphrase: str = "") -> ClientCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fakeazure client")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=400))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    protection: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
        else serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          protection)
        + cert.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o600)
    return ClientCertificate(path, cert.public_bytes(serialization.Encoding.DER))
