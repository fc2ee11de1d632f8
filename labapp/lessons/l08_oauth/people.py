"""Who the authorization server knows: the lab's people and its registered clients.

Passwords and client secrets are drawn fresh for every server, so none can be written
into a notebook. Redirect URIs point at the client app's base URL (``client_url``).
"""

from __future__ import annotations

import secrets

from labapp.lessons.l08_oauth.records import Client, User

WEB_APP, SPA, SERVICE, RESOURCE_SERVER = "photo-shop", "photo-spa", "print-service", "photos-api"
QUIZ = "quiz-app"
QUIZ_CALLBACK = "https://quiz.example.test/callback"  # never fetched: the attacker reads the hop


def users() -> list[User]:
    return [
        User("alice", "Alice Martin", "alice@example.test", secrets.token_urlsafe(12)),
        User("bob", "Bob Okafor", "bob@example.test", secrets.token_urlsafe(12)),
    ]


def clients(client_url: str) -> list[Client]:
    base = client_url.rstrip("/")
    return [
        # A confidential web app: the shop logs users in and calls the API for them.
        Client(
            WEB_APP,
            secrets.token_urlsafe(24),
            [f"{base}/shop/callback"],
            "openid profile email photos:read",
            ["authorization_code", "refresh_token"],
            ["code"],
            "client_secret_basic",
        ),
        # A public single-page app: no secret it could keep, so PKCE carries the flow. Its
        # registration still lists what its first version used (the implicit flow, the
        # password grant): a registration is a record, not a policy.
        Client(
            SPA,
            None,
            [f"{base}/spa/callback"],
            "openid profile photos:read photos:write",
            ["authorization_code", "refresh_token", "password"],
            ["code", "token"],
            "none",
        ),
        # A service that calls the API as itself (client credentials, RFC 6749 §4.4).
        Client(
            SERVICE,
            secrets.token_urlsafe(24),
            [],
            "photos:read",
            ["client_credentials"],
            [],
            "client_secret_basic",
        ),
        # Someone else's app, registered at the same AS like any other: its users' ID
        # tokens name it (aud), never PrintShop.
        Client(
            QUIZ,
            None,
            [QUIZ_CALLBACK],
            "openid profile",
            ["authorization_code"],
            ["code"],
            "none",
        ),
        # The photos API itself, registered only to introspect tokens (RFC 7662 §2.1).
        Client(
            RESOURCE_SERVER,
            secrets.token_urlsafe(24),
            [],
            "",
            [],
            [],
            "client_secret_basic",
            may_introspect=True,
        ),
    ]
