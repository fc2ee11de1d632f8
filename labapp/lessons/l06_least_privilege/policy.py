"""Lesson 06's ground truth: who the users are, what each role may do, which fields are whose.

The server uses this table only to decide when a request was a *real* exploit (flags) and
the grader to know what every cell of the permission matrix should be. The learner writes
the policy the server enforces (OWASP Authorization Cheat Sheet: deny by default).
"""

from __future__ import annotations

PERMISSIONS = "permissions"  # the service `who.role()` asks; lab.outage("permissions")

# (id, username, display name, role, email); the learner plays vera and eddie.
USERS = (
    (1, "vera", "Vera Viewer", "viewer", "vera@example.test"),
    (2, "eddie", "Eddie Editor", "editor", "eddie@example.test"),
    (3, "sam", "Sam Support", "support", "sam@example.test"),
    (4, "ada", "Ada Admin", "admin", "ada@example.test"),
    (5, "svc-billing", "Billing export (service account)", "service", "billing@example.test"),
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
# What a client may write: everything else in a body is refused (422).
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
