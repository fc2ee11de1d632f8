"""The regressions the grader serves, each described by what it broke (never by its code).

Each is a realistic change a team ships by accident: a route changes, middleware is
reordered, a helper bypasses a permission check, a new endpoint misses the rules the others
follow. ``api.py`` builds every one of them from the same factory as the sound API, so a
mutant differs from it in one place only.
"""

from __future__ import annotations

LAB = "lab"  # the sound API the learner explores (lab.url): the fixtures' default
SOUND = "sound"  # the grader's own sound build
STAGING = "staging-search"  # the build schemathesis is pointed at (lab.staging_url)

MUTANTS: dict[str, str] = {
    "unauth-route": "a new route (GET /export) shipped without the authentication dependency",
    "bola-read": "GET /notes/{id} lost its ownership check: any signed-in user reads any note",
    "list-filter": "GET /notes lists every user's notes (the owner filter fell out of the query)",
    "no-exp": "expired access tokens are accepted (expiry is no longer verified)",
    "no-aud": "tokens minted for another API are accepted (the audience is no longer checked)",
    "no-sig": "the token's signature is no longer verified ('the gateway does it')",
    "role-widened": "the admin area lets support staff in too (a role check widened)",
    "support-delete": "support staff may delete anyone's note (read-any taken for write-any)",
    "scope-patch": "PATCH /notes/{id} forgot the notes:write scope (POST still checks it)",
    "check-after-write": "PATCH on another user's note is refused only after the edit is saved",
    "token-crash": "some malformed tokens crash the API (500) instead of a 401",
    "login-enum": "a failed login says whether the username exists",
    "refresh-replay": "a used refresh token works again (rotation without single use)",
    "family-kept": "a replayed refresh token is refused, but its family is not revoked",
    "deleted-user": "a deleted user's unexpired token is still accepted",
    "cors-credentials": "CORS reflects any Origin and allows credentials",
    "me-leak": "GET /me returns the password hash along with the profile",
    STAGING: "GET /notes?q= crashes (500) on search text that is not a valid regular expression",
}

TARGETS = (SOUND, *MUTANTS)
