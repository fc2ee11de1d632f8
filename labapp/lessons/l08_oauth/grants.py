"""Authlib's grants, endpoints and extensions, filled in for the lab's authorization server.

Each subclass supplies the storage Authlib asks for (:mod:`records`) and routes every
security decision through ``AuthServer.decide`` (the lab's hooks).
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import OpenIDCode, UserInfo
from joserfc.jwk import KeySet

from labapp.lessons.l08_oauth.records import CODE_SECONDS, AuthCode, Token

if TYPE_CHECKING:
    from labapp.lessons.l08_oauth.authserver import AuthServer

# Authlib's defaults leave out "none", so public clients would get invalid_client; each
# client's check_endpoint_auth_method still allows only its own registered method.
ALL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


def _auth(grant: Any) -> AuthServer:
    return grant.server.lab


class Challenge(CodeChallenge):
    """PKCE (RFC 7636); whether it is required, and which method, is ``check_pkce``'s call.

    Authlib's own rules stay in force below the hook: a verifier is checked whenever the
    code was bound to a challenge, and a verifier without a challenge (the downgrade of
    RFC 9700 §4.8) is refused. Register it with ``required=False``: Authlib's ``required``
    only forces a verifier at the token endpoint, and only for public clients.
    """

    SUPPORTED_CODE_CHALLENGE_METHOD = ["plain", "S256"]  # the hook refuses plain, or not
    DEFAULT_CODE_CHALLENGE_METHOD = "plain"  # RFC 7636 §4.3: no method given means plain

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        refused = _auth(grant).decide(
            "check_pkce",
            grant.request.client.public,
            data.get("code_challenge"),
            data.get("code_challenge_method"),
        )
        if refused:
            raise InvalidRequestError(refused)
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> None:
        # Consent is applied here: Authlib validates the request twice and resets
        # request.scope in between, but an attribute set by the route survives.
        client = request.client
        consented = getattr(request, "consented_scope", None)
        auth = _auth(self)
        scope = auth.decide("allowed_scope", client.scope, request.scope or "", consented)
        data = request.payload.data
        with auth.records.lock:
            auth.records.codes[code] = AuthCode(
                code=code,
                client_id=client.client_id,
                redirect_uri=request.payload.redirect_uri,
                scope=scope,
                user_id=request.user.id,
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                auth_time=getattr(request, "auth_time", int(time.time())),
                expires_at=time.time() + CODE_SECONDS,
            )
            if data.get("nonce"):
                auth.records.nonces.add((client.client_id, data["nonce"]))

    def query_authorization_code(self, code: str, client: Any) -> AuthCode | None:
        return _auth(self).records.claim_code(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        pass  # kept, marked used by claim_code: a second use must be recognised

    def authenticate_user(self, authorization_code: AuthCode) -> Any:
        return _auth(self).records.users.get(authorization_code.user_id)


class OIDCCode(OpenIDCode):
    def __init__(self, auth: AuthServer) -> None:
        super().__init__(require_nonce=True)
        self.auth = auth

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return (request.payload.client_id, nonce) in self.auth.records.nonces

    def resolve_client_private_key(self, client: Any) -> Any:
        return self.auth.key

    def get_encode_header(self, client: Any) -> dict[str, str]:
        return {"alg": "RS256", "kid": self.auth.key.kid or "", "typ": "JWT"}

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        # Authlib's default has no iss at all (OIDC Core §2 requires it).
        return {"iss": self.auth.issuer, "aud": [client.get_client_id()], "azp": client.client_id}

    def generate_user_info(self, user: Any, scope: str) -> UserInfo:
        return self.auth.user_info(user, scope)


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation (RFC 9700 §4.14.2)

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        return _auth(self).records.take_refresh_token(refresh_token)

    def authenticate_user(self, refresh_token: Token) -> Any:
        return _auth(self).records.users.get(refresh_token.user_id or "")

    def revoke_old_credential(self, refresh_token: Token) -> None:
        with _auth(self).records.lock:
            refresh_token.refresh_used = True
            refresh_token.revoked = True


class Implicit(grants.ImplicitGrant):
    """``response_type=token``: registered so that ``check_response_type`` decides whether it
    is reachable (RFC 9700 §2.1.2 says it should not be)."""


class Password(grants.ResourceOwnerPasswordCredentialsGrant):
    """``grant_type=password``: registered so that ``check_grant_type`` decides whether it is
    reachable (RFC 9700 §2.4: it MUST NOT be used). Public clients may try it too: a
    password grant is exactly what an app that cannot keep a secret should never get."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]

    def authenticate_user(self, username: str, password: str) -> Any:
        user = _auth(self).records.users.get(username)
        if user is None or not secrets.compare_digest(user.password.encode(), password.encode()):
            return None
        return user


class ClientCredentials(grants.ClientCredentialsGrant):
    pass  # scope filtered by Client.get_allowed_scope, as for every grant


class AccessTokens(JWTBearerTokenGenerator):
    """RFC 9068 access tokens (``typ: at+jwt``) for the photos API, not for the client."""

    def __init__(self, auth: AuthServer, expires_in: int) -> None:
        super().__init__(
            issuer=auth.issuer,
            refresh_token_generator=lambda client, grant_type, user, scope: secrets.token_urlsafe(
                32
            ),
            expires_generator=lambda client, grant_type: expires_in,
        )
        self.auth = auth

    def get_jwks(self) -> KeySet:
        return KeySet([self.auth.key])

    def get_audiences(self, client: Any, user: Any, scope: str) -> str:
        return self.auth.audience  # Authlib's default is the client_id: wrong for an API


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS  # public clients revoke their own tokens too

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return self.server.lab.records.find_token(token_string)

    def revoke_token(self, token: Token, request: Any) -> None:
        with self.server.lab.records.lock:
            token.revoked = True


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return self.server.lab.records.find_token(token_string)

    def check_permission(self, token: Token, client: Any, request: Any) -> bool:
        # A resource server (RFC 7662 §4: only callers the AS knows), or the client the
        # token was issued to (the lab's choice: a client may ask about its own tokens).
        return client.may_introspect or token.check_client(client)

    def introspect_token(self, token: Token) -> dict[str, Any]:
        auth = self.server.lab
        return {
            "active": True,
            "client_id": token.client_id,
            "scope": token.scope,
            "sub": token.user_id or token.client_id,
            "aud": auth.audience,
            "iss": auth.issuer,
            "exp": token.expires_at(),
            "iat": token.issued_at,
            "token_type": "Bearer",
        }


class Issuer(IssuerParameter):
    """RFC 9207: ``iss`` in the authorization response, against mix-up attacks."""

    def __init__(self, auth: AuthServer) -> None:
        self.auth = auth

    def get_issuer(self) -> str:
        return self.auth.issuer


def new_family() -> str:
    return uuid.uuid4().hex
