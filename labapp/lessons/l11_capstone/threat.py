"""The capstone's first exercise: the threat model of the API, before any code.

For every route: the asset it touches, the credential that must come with it, and who may
call it. Graded against the API's contract, one row per route (as lesson 00's inventory).
"""

from __future__ import annotations

from typing import Any

from labapp.engine.grading import Row

ASSETS = ("documents", "accounts", "sessions", "partners", "operations")
CREDENTIALS = ("none", "password", "refresh token", "bearer token", "api key")
WHO = ("anyone", "any user", "owner or staff", "owner", "admin", "partner")
TRUTH: dict[str, tuple[str, str, str]] = {  # route -> asset, credential, who
    "GET /health": ("operations", "none", "anyone"),
    "POST /login": ("sessions", "password", "anyone"),
    "POST /refresh": ("sessions", "refresh token", "anyone"),
    "POST /logout": ("sessions", "bearer token", "any user"),
    "GET /me": ("accounts", "bearer token", "any user"),
    "GET /documents": ("documents", "bearer token", "any user"),
    "GET /documents/{document_id}": ("documents", "bearer token", "owner or staff"),
    "PUT /documents/{document_id}": ("documents", "bearer token", "owner"),
    "GET /admin/users": ("accounts", "bearer token", "admin"),
    "POST /partners/events": ("partners", "api key", "partner"),
}
FIELDS = (("asset", ASSETS), ("credential", CREDENTIALS), ("who", WHO))
STEPS = """Name each route's asset by its path, its credential by how the route identifies
its caller, and who by the contract (staff read any document; only the owner edits):

```python
rules = {
    "GET /health": ("operations", "none", "anyone"),
    "POST /login": ("sessions", "password", "anyone"),
    "POST /refresh": ("sessions", "refresh token", "anyone"),
    "POST /logout": ("sessions", "bearer token", "any user"),
    "GET /me": ("accounts", "bearer token", "any user"),
    "GET /documents": ("documents", "bearer token", "any user"),
    "GET /documents/{document_id}": ("documents", "bearer token", "owner or staff"),
    "PUT /documents/{document_id}": ("documents", "bearer token", "owner"),
    "GET /admin/users": ("accounts", "bearer token", "admin"),
    "POST /partners/events": ("partners", "api key", "partner"),
}
threat_model = {
    route: dict(zip(("asset", "credential", "who"), answer)) for route, answer in rules.items()
}
lab.check_answer("threat-model", threat_model)
```"""


def grade_threat_model(lab: Any, answer: Any) -> list[Row]:
    """One row per route: the learner's model against the contract."""
    if not isinstance(answer, dict):
        shape = "map 'METHOD /path' to {'asset': ..., 'credential': ..., 'who': ...}"
        return [
            Row(
                "answer",
                "format",
                "the answer's shape",
                "a dict",
                f"a {type(answer).__name__}",
                False,
                shape,
            )
        ]
    rows = []
    for route, truth in TRUTH.items():
        given = answer.get(route)
        if not isinstance(given, dict):
            rows.append(
                Row(
                    "answer",
                    route,
                    "model this route",
                    "asset, credential, who",
                    "missing",
                    False,
                    f"add answer[{route!r}] = {{...}}",
                )
            )
            continue
        wrong = [
            f"{name} {given.get(name)!r} (choose from {', '.join(choices)})"
            for (name, choices), right in zip(FIELDS, truth, strict=True)
            if given.get(name) != right
        ]
        rows.append(
            Row(
                "answer",
                route,
                "asset, credential, who",
                "all three right",
                "; ".join(wrong) or "right",
                not wrong,
                "look again at " + " and ".join(w.split(" ")[0] for w in wrong),
            )
        )
    for extra in sorted(set(answer) - set(TRUTH), key=str):
        rows.append(
            Row(
                "answer",
                str(extra),
                "not a route of this API",
                "absent",
                "present",
                False,
                "keys look like 'GET /documents/{document_id}'",
            )
        )
    return rows
