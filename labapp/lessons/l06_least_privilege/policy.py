"""Lesson 06's ground truth: who the users are, what each role may do, which fields are whose.

The server uses this table only to decide when a request was a *real* exploit (flags) and
the grader to know what every cell of the permission matrix should be. The learner writes
the policy the server enforces (OWASP Authorization Cheat Sheet: deny by default).
"""

from __future__ import annotations

PERMISSIONS = "permissions"  # the service `who.role()` asks; lab.outage("permissions")

# (id, username, display name, role, email); the learner plays vera and eddie. The domain is
# reserved for examples (RFC 2606 §2), so no mail can reach a real person.
USERS = (
    (1, "vera", "Vera Lindqvist", "viewer", "vera.lindqvist@fernhill.example"),
    (2, "eddie", "Eddie Mensah", "editor", "e.mensah@fernhill.example"),
    (3, "sam", "Samira Haddad", "support", "support-sam@fernhill.example"),
    (4, "ada", "Ada Brennan", "admin", "ada.brennan@fernhill.example"),
    (5, "svc-billing", "Billing export (service)", "service", "billing-bot@fernhill.example"),
)
# Each account's password hash: real argon2id PHC strings (of random passwords nobody kept),
# four at the OWASP Password Storage Cheat Sheet minimum (m=19 MiB, t=2, p=1), the service
# account's older, at argon2-cffi's default (m=64 MiB, t=3, p=4): what a leak would show.
PASSWORD_HASHES = {
    "vera": "$argon2id$v=19$m=19456,t=2,p=1$tC170VMTI/Z3t97OPvoUBQ$"
    "AfGG1EOxYMTE5sWj7Kgyi405SwlBM4Bq9rQpsPoukGc",
    "eddie": "$argon2id$v=19$m=19456,t=2,p=1$xvMUtnySd2SOpo9T0ev1hQ$"
    "haBE3Ax67mBhCzxrJW88+HG/UDUFcPEXJTu+g5Vu4oU",
    "sam": "$argon2id$v=19$m=19456,t=2,p=1$qaDKSS4m7Rdt14/LvqeiTA$"
    "KYMlGjKBZ6mJ+naoLbrlbR7OMchkR7ejxbeT7gBt4WY",
    "ada": "$argon2id$v=19$m=19456,t=2,p=1$0nA2sV8TEdnthuovustVkw$"
    "iGxjfi/RYeNj/BG/Mqpg1e52wHgv3ELidr3kYEJpg5Y",
    "svc-billing": "$argon2id$v=19$m=65536,t=3,p=4$TXfvIlkVDtOvzv1WxRmY8g$"
    "k68/g83IHabShG4tnv8Zy2d+PL4Jv3i6xwkA3k3aU6Y",
}
# A throwaway or newly signed-up account's hash (grader rows add and remove such accounts).
SPARE_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$+rqSNJ4I+TY0+61g1zGZoQ$"
    "gc0ZaZdYxT8wJEAqOOGcLd6nd11Yk3GsoktD3HqnUZ8"
)
LISTED = ("vera", "eddie")  # credentials in lab.users: the non-admin people you play
ROLE_OF = {username: role for _, username, _, role, _ in USERS}

# (id, owner, amount_cents, status, memo, internal_note)
INVOICES = (
    (1, "vera", 12000, "open", "March hosting", "paid late twice; watch this one"),
    (2, "vera", 4500, "paid", "Domain renewal", "discount approved by ada"),
    (3, "eddie", 99000, "open", "Consulting, Q1", "disputed; legal is involved"),
    (4, "eddie", 2300, "paid", "Support plan", "refund promised verbally"),
    (5, "sam", 800, "open", "Team lunch", "expense, not a real customer"),
    (6, "ada", 150000, "open", "Enterprise licence", "credit limit raised to 200k"),
)
OWNED = {owner: {row[0] for row in INVOICES if row[1] == owner} for owner in ROLE_OF}

USER_COLUMNS = ("id", "username", "display_name", "role", "email", "password_hash")
INVOICE_COLUMNS = ("id", "owner", "amount_cents", "status", "memo", "internal_note")
COLUMNS = {"user": USER_COLUMNS, "invoice": INVOICE_COLUMNS}

# What each kind may show, and to whom: password_hash never leaves the server.
SHOWN = {
    "user": {"id", "username", "display_name", "role", "email"},
    "invoice": {"id", "owner", "amount_cents", "status", "memo"},
}
SEES_INTERNAL_NOTES = {"support", "admin"}
# What a client may write: a PATCH body naming anything else is refused (422, the lab's own
# check in inputs.py: the routes take a plain dict, so no Pydantic model drops fields first).
WRITABLE = {"user": {"display_name", "email"}, "invoice": {"memo", "status"}}

# Per role, the actions it may take: on its "own" objects only, or on "any" object.
POLICY: dict[str, dict[str, str]] = {
    "viewer": {
        "invoice:list": "own",
        "invoice:read": "own",
        "user:read-self": "own",
        "user:update-self": "own",
    },
    "editor": {
        "invoice:list": "own",
        "invoice:read": "own",
        "invoice:update": "own",
        "user:read-self": "own",
        "user:update-self": "own",
    },
    "support": {
        "invoice:list": "any",
        "invoice:read": "any",
        "user:read-self": "own",
        "user:update-self": "own",
        "user:list": "any",
    },
    "admin": {
        "invoice:list": "any",
        "invoice:read": "any",
        "invoice:update": "any",
        "user:read-self": "own",
        "user:update-self": "own",
        "user:list": "any",
        "user:delete": "any",
    },
    "service": {"invoice:list": "any", "invoice:read": "any", "user:read-self": "own"},
}
SEES_ALL_INVOICES = {role for role, acts in POLICY.items() if acts.get("invoice:list") == "any"}

# Every (action, owns) question the server's routes can put to permitted(): a grader row
# that asks the policy directly asks only these.
QUESTIONS = (
    ("invoice:list", True),
    ("invoice:read", True),
    ("invoice:read", False),
    ("invoice:update", True),
    ("invoice:update", False),
    ("user:read-self", True),
    ("user:update-self", True),
    ("user:list", False),
    ("user:delete", True),  # deleting one's own account
    ("user:delete", False),
)

# OAuth-style scopes: what a token may do, whatever the role could.
SCOPE_OF = {
    "invoice:list": "invoices:read",
    "invoice:read": "invoices:read",
    "invoice:update": "invoices:write",
    "user:read-self": "profile",
    "user:update-self": "profile",
    "user:list": "users:read",
    "user:delete": "users:admin",
}
ALL_SCOPES = frozenset(SCOPE_OF.values())
ROLE_SCOPES = {role: frozenset(SCOPE_OF[action] for action in POLICY[role]) for role in POLICY}


def reference_allows(role: str | None, action: str, owns: bool) -> bool:
    """The course's answer: may ``role`` take ``action`` on an object it owns (or not)?"""
    reach = POLICY.get(role or "", {}).get(action)
    return reach == "any" or (reach == "own" and owns)


# The token endpoint is an OAuth 2.0 Token Exchange (RFC 8693 §2.1): a client trades the
# user's session (the subject token) for a narrower access token.
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a name
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a name
TOKEN_LIFETIME = 3600  # seconds: a delegated token expires; a session here does not
