"""Lesson 04's key material and token plumbing, shared by the lab server and its battery.

One :class:`Material` per lab start: an RSA key pair (RS256, published at the JWKS endpoint),
the legacy service's HS256 secret (a dictionary word, on purpose), and the constants every
token of the lab carries. :func:`classify` names the attack a token is, so that the server
reveals a flag only to the exploit the called service is weak to.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

from labapp.engine.store import Store

ISSUER = "https://lab.example/issuer"
SANDBOX_ISSUER = "https://sandbox.lab.example/issuer"
AUDIENCE = "orders-api"
TYP = "at+jwt"  # RFC 9068 §2.1
LIFETIME = 15 * 60
LEEWAY = 30  # seconds of clock skew the lab's own baseline tolerates, and a defense should too
LEGACY_KID = "legacy-hs256"
# service -> (the attack its flaw invites, its story)
SERVICES = {
    "profile": ("unverified-signature", "shows who you are; 'only reads' the token"),
    "widgets": ("alg-none", "dashboard widgets; accepts 'internal' unsigned tokens"),
    "legacy": ("weak-secret", "the 2019 API; still verifies its own HS256 tokens"),
    "partners": ("jwk-injection", "partners may bring their own key, in the header"),
    "integrations": ("jku-injection", "fetches keys from the URL a token names"),
    "files": ("kid-traversal", "reads HS256 keys from the file keys/<kid>"),
    "inventory": ("kid-sqli", "looks HS256 keys up in its jwt_keys table"),
    "reports": ("alg-confusion", "lets the token say which algorithm to check"),
    "archive": ("expired", "old reports must stay readable: expiry not checked"),
    "search": ("audience", "any token our key signed will do"),
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    """One base64url JSON segment of a compact JWS (RFC 7515 §7.1)."""
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hs256(signing_input: str, key: bytes) -> str:
    """HMAC-SHA-256 by hand: PyJWT refuses PEM keys here, and warns on short ones."""
    return b64url(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def hs256_token(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    signing_input = f"{segment(header)}.{segment(claims)}"
    return f"{signing_input}.{hs256(signing_input, key)}"


def hs256_valid(token: str, key: bytes) -> bool:
    signing_input, _, signature = token.rpartition(".")
    return hmac.compare_digest(hs256(signing_input, key), signature)


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims, unverified; None for anything that is not a compact JWS of objects."""
    try:
        head, body, _ = token.split(".")
        header, claims = json.loads(unb64url(head)), json.loads(unb64url(body))
    except (ValueError, TypeError, RecursionError):  # RecursionError: JSON nested too deep
        return None
    return (header, claims) if isinstance(header, dict) and isinstance(claims, dict) else None


@dataclass
class Material:
    """The lab's keys: what its issuer signs with, and what its services verify with."""

    kid: str
    private_key: rsa.RSAPrivateKey
    legacy_secret: bytes

    @classmethod
    def generate(cls, legacy_secret: str) -> Material:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(f"rsa-{secrets.token_hex(4)}", key, legacy_secret.encode())

    @classmethod
    def from_pem(cls, kid: str, private_pem: bytes, legacy_secret: bytes) -> Material:
        key = serialization.load_pem_private_key(private_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("the lab's signing key is not an RSA key")
        return cls(kid, key, legacy_secret)

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    @property
    def public_pem(self) -> bytes:
        """The public key as PEM (SubjectPublicKeyInfo): what the alg-confusion attack uses."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.public_key))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def claims(self, sub: str, role: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "role": role,
            "client_id": "orders-web",
            "iat": now,
            "exp": now + LIFETIME,
            "jti": secrets.token_hex(8),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}  # None drops a claim

    def mint(self, claims: dict[str, Any], algorithm: str = "RS256", **header: Any) -> str:
        """A genuine token of the lab's issuer, RS256 unless told (header overrides: typ...).

        ``typ=None`` leaves ``typ`` out altogether (PyJWT drops a falsy typ rather than
        writing its default "JWT"); other None values drop their field.
        """
        fields = {"typ": TYP, "kid": self.kid, **header}
        return jwt.encode(
            claims,
            self.private_key,
            algorithm=algorithm,
            headers={k: v for k, v in fields.items() if v is not None or k == "typ"},
        )

    def sign_raw(self, header: str, payload: str) -> str:
        """A token the issuer's key really signed (RS256) over JSON text exactly as given.

        For shapes ``jwt.encode`` will not write (a non-string kid, duplicate keys, a string
        ``exp``...): the grader asks whether a validator refuses them even when genuine.
        """
        signing_input = f"{b64url(header.encode())}.{b64url(payload.encode())}"
        signature = self.private_key.sign(signing_input.encode(), PKCS1v15(), SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def genuine(self, token: str) -> bool:
        """Does the token carry a valid RS256 signature of the lab's own key?"""
        signing_input, _, signature = token.rpartition(".")
        try:
            return jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).verify(
                signing_input.encode(), self.public_key, unb64url(signature)
            )
        except (ValueError, TypeError):
            return False


def load_material(store: Store) -> Material:
    """The lab's keys, as its seed stored them in the ``signing_keys`` table."""
    rsa_row = store.one("SELECT kid, private_pem FROM signing_keys WHERE alg = 'RS256'")
    legacy = store.one("SELECT secret FROM signing_keys WHERE kid = ?", (LEGACY_KID,))
    if rsa_row is None or legacy is None:
        raise LookupError("the lab's signing keys are missing from its store")
    return _material(rsa_row["kid"], rsa_row["private_pem"], legacy["secret"])


@functools.lru_cache(maxsize=8)
def _material(kid: str, private_pem: str, legacy_secret: str) -> Material:
    # Loading an RSA private key checks it (~60 ms on 2 cores): once per lab, not per row.
    return Material.from_pem(kid, private_pem.encode(), legacy_secret.encode())


def classify(token: str, material: Material) -> str | None:
    """Name the attack a token is (the id of its flag), or None for a legitimate token."""
    found = parts(token)
    if found is None:
        return None
    header, claims = found
    alg, kid = str(header.get("alg", "")), str(header.get("kid", ""))
    if alg.lower() == "none":
        return "alg-none"
    if "jwk" in header:
        return "jwk-injection"
    if "jku" in header:
        return "jku-injection"
    if any(mark in kid.lower() for mark in ("'", '"', "--", "union", ";")):
        return "kid-sqli"
    if any(mark in kid for mark in ("..", "/", "\\")):
        return "kid-traversal"
    if alg == "HS256" and hs256_valid(token, material.legacy_secret):
        return "weak-secret"
    if alg == "HS256" and hs256_valid(token, material.public_pem):
        return "alg-confusion"
    if not material.genuine(token):
        return "unverified-signature"
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp < time.time() - LEEWAY:
        return "expired"
    if claims.get("iss") != ISSUER or AUDIENCE not in _audiences(claims.get("aud")):
        return "audience"
    return None


def _audiences(aud: Any) -> list[Any]:
    return aud if isinstance(aud, list) else [aud]
