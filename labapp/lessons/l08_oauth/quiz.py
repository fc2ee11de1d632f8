"""Lesson 08's quiz ``choose-scheme``: choose the scheme that fits the trust model.

Each scenario names who holds the user's account, who calls, and whether a user is in the
loop; the scheme follows from that (RFC 9700 §2; OWASP REST Security and OAuth 2.0 cheat
sheets). The answer maps each scenario id to one of :data:`SCHEMES`.
"""

from __future__ import annotations

from typing import Any

from labapp.engine.grading import Row

SCHEMES = ("api-key", "jwt-session", "oauth-code-pkce", "oauth-client-credentials", "mtls")

# scenario id -> (the system, the scheme that fits, why)
SCENARIOS: dict[str, tuple[str, str, str]] = {
    "first-party-spa": (
        "PrintShop's own single-page app calling PrintShop's own API; PrintShop holds the "
        "accounts and logs its users in itself",
        "jwt-session",
        "one party holds the accounts and serves the API: a short-lived session token it "
        "issues and checks itself (lesson 04) is enough; OAuth adds a party that is not there",
    ),
    "partner-server": (
        "a partner company's nightly job calling your API from its servers, no user present",
        "oauth-client-credentials",
        "a machine acting for itself across organisations: a registered client gets short-"
        "lived, scoped, revocable tokens (RFC 6749 §4.4) instead of a long-lived shared secret",
    ),
    "third-party-app": (
        "a third-party app that prints your users' photos, acting for them with their consent",
        "oauth-code-pkce",
        "another party acts for your users: they consent at your authorization server and "
        "the app never sees their password; code + PKCE S256 (RFC 9700 §2.1.1)",
    ),
    "in-cluster-services": (
        "two of your own services calling each other inside one cluster you operate",
        "mtls",
        "both ends are yours and have certificates from your CA: mutual TLS authenticates "
        "each workload on every connection (lesson 07), no bearer secret to leak",
    ),
    "public-read-api": (
        "a public read-only open-data API where you only need to know and rate-limit callers",
        "api-key",
        "no user data and nothing to act on: an API key identifies the caller for quotas "
        "(lesson 02); anything heavier buys nothing here",
    ),
}


def grade_choice(lab: Any, answer: Any) -> list[Row]:
    """One row per scenario: the learner's scheme against the one that fits."""
    if not isinstance(answer, dict):
        return [
            Row(
                "answer",
                "format",
                "the answer's shape",
                "a dict",
                f"a {type(answer).__name__}",
                False,
                "map each scenario id to a scheme: " + ", ".join(SCHEMES),
            )
        ]
    rows = []
    for scenario, (system, scheme, why) in SCENARIOS.items():
        given = answer.get(scenario)
        right = given == scheme
        if right:
            hint = ""
        elif given not in SCHEMES:
            hint = f"choose one of {', '.join(SCHEMES)}"
        else:
            hint = "who holds the account, who calls, and is a user in the loop?"
        rows.append(
            Row(
                "answer",
                scenario,
                system,
                "the scheme that fits the trust model",
                f"{given!r}" + (f": right, {why}" if right else ""),
                right,
                hint,
            )
        )
    for extra in sorted(set(answer) - set(SCENARIOS), key=str):
        rows.append(
            Row(
                "answer",
                str(extra),
                "not a scenario of this quiz",
                "absent",
                "present",
                False,
                "the scenario ids are " + ", ".join(SCENARIOS),
            )
        )
    return rows


HINTS: tuple[str, ...] = (
    "For each scenario ask three questions: who holds the user's account, who is calling, "
    "and is a user in the loop at all? A party that is not there needs no protocol.",
    "Match the trust model (RFC 9700 §2, OAuth 2.0 Security Best Current Practice; OWASP "
    "REST Security Cheat Sheet and OAuth 2.0 Protocol Cheat Sheet): a third party acting for "
    "your users needs delegation with consent, the authorization code grant with PKCE S256; "
    "a machine of another organisation acting for itself, client credentials; your own "
    "workloads on a network you run, mutual TLS (RFC 8705 binds tokens to it too); one "
    "party that holds the accounts and the API, its own short-lived tokens; a caller you "
    "only meter, an API key.",
    "```python\n"
    "choice = {\n"
    '    "first-party-spa": "jwt-session",  # one party: its own short-lived tokens\n'
    '    "partner-server": "oauth-client-credentials",  # a machine, no user\n'
    '    "third-party-app": "oauth-code-pkce",  # delegation with consent\n'
    '    "in-cluster-services": "mtls",  # your workloads, your CA\n'
    '    "public-read-api": "api-key",  # identify and meter, nothing more\n'
    "}\n"
    'lab.check_answer("choose-scheme", choice)\n'
    "```",
)
