"""Lesson 08's quiz ``choose-scheme``: choose the scheme that fits the trust model, and say why.

Each scenario names who holds the user's account, who calls, and whether a user is in the
loop; the scheme follows from that (OWASP REST Security, OAuth 2.0 Protocol and Microservices
Security cheat sheets; RFC 9700 for the OAuth grants, which it secures but never weighs against
API keys or mTLS). The answer maps each scenario id to
``{"scheme": one of SCHEMES, "reason": "a sentence or two"}``. The scheme is graded exactly;
the reason against the scenario's rubric: a few ideas, each covered when the reason uses any
one of its phrases (case-insensitive, whole words, plurals and hyphens tolerated, ``*`` ends
a prefix). A reason that covers the whole rubric of two other schemes as well is a list of
keywords, not a reason, and fails.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from labapp.engine.grading import Row

SCHEMES = {
    "api-key": "an API key (lesson 02)",
    "jwt-session": "a short-lived token the API's own service issues and checks (lesson 04)",
    "oauth-code-pkce": "OAuth 2.0 + OpenID Connect, authorization code grant with PKCE",
    "oauth-client-credentials": "OAuth 2.0, client credentials grant",
    "mtls": "mutual TLS, a certificate for each end (lesson 07)",
}
OTHER_SCHEMES_ALLOWED = 1  # a reason may argue for one other scheme too (a contrast), not two


@dataclass(frozen=True)
class Idea:
    """One idea of a rubric: covered by any one of its phrases; missed, it asks ``question``."""

    question: str
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class Scenario:
    system: str
    scheme: str
    why: str  # shown once the scheme is right
    rubric: tuple[Idea, ...]


_OTHER_PARTY_LOGIN = (  # the account is held by someone else, and OIDC says who logged in
    "id token", "oidc", "openid", "federat*", "sso", "single sign on", "idp*",
    "identity provider*", "login provider*", "password*", "never see*", "never handle*",
    "google", "apple", "microsoft", "hold* the account*", "hold* their account*",
    "accounts live", "who logged in", "who they are", "tell* us who", "tell* our app",
)  # fmt: skip

SCENARIOS: dict[str, Scenario] = {
    "partner-integration": Scenario(
        "a partner company's nightly job, on the partner's own servers, copies the day's "
        "orders from your API; no user is present, and your API already accepts access "
        "tokens from your authorization server",
        "oauth-client-credentials",
        "a machine of another organisation acting for itself: registered as a client, it "
        "trades its credential for short-lived, scoped tokens you can revoke (RFC 6749 §4.4; "
        "RFC 9700 §2.3; RFC 7009) instead of holding a long-lived shared secret that "
        "opens everything",
        (
            Idea(
                "Is anyone there to log in or to consent, and on whose behalf does the job act?",
                ("no user", "without a user", "without user", "no end user", "no human",
                 "no person", "no one", "nobody", "no resource owner", "no consent",
                 "unattended", "machine*", "own behalf", "for itself", "non interactive",
                 "server to server", "headless", "automated", "batch"),
            ),
            Idea(
                "If the partner's credential leaked, what would the thief hold, for how long "
                "and for what, and how would you cut the partner off?",
                ("short lived", "expir*", "scop*", "revo*", "least privilege", "minutes",
                 "lifetime", "time limited", "narrow*"),
            ),
        ),
    ),
    "mobile-app": Scenario(
        "your own mobile app (iOS and Android), whose users sign in with their existing "
        "Google or Apple account, then see their data from your API",
        "oauth-code-pkce",
        "another party holds the account: the app signs users in with OpenID Connect (an ID "
        "token says who logged in; the app never sees a password), by the authorization code "
        "grant with PKCE S256 (RFC 8252 §6, §8.1; RFC 9700 §2.1.1), because an app on "
        "millions of phones is a public client: a secret shipped in it is no secret (RFC 8252 "
        "§8.4, §8.5)",
        (
            Idea(
                "Who holds these users' accounts, and what tells your app who has logged in?",
                _OTHER_PARTY_LOGIN,
            ),
            Idea(
                "Can an app installed on millions of phones keep a client secret, and what "
                "then proves that a code is redeemed by the app that asked for it?",
                ("pkce", "code verifier", "code challenge", "verifier", "proof key",
                 "public client", "no secret", "no client secret", "can t keep", "cannot keep",
                 "can t hold", "cannot hold", "can t store", "cannot store", "decompil*",
                 "extract*", "reverse engineer*", "intercept*", "unpack*"),
            ),
        ),
    ),
    "service-to-service": Scenario(
        "two of your own back-end services calling each other inside the network you "
        "operate, where your platform gives every workload its own certificate from your "
        "internal CA; no user is involved",
        "mtls",
        "both ends are yours and hold certificates from a CA you run: mutual TLS authenticates "
        "each workload on every connection (lesson 07), and the private key never travels, so "
        "there is no bearer secret to steal and replay (RFC 8705 can bind tokens to the "
        "certificate, RFC 9700 §2.2.1)",
        (
            Idea(
                "What does every service already hold that proves who it is, and who vouches "
                "for it?",
                ("certificate*", "cert", "certs", "ca", "both ends", "both sides", "each side",
                 "each end", "mutual*", "workload identit*", "each workload", "every workload",
                 "both services", "each service", "spiffe", "mesh"),
            ),
            Idea(
                "If someone recorded the traffic between them, what could they use again, and "
                "where does each service's proof of identity live?",
                ("no bearer", "not a bearer", "replay*", "never leave*", "never sent",
                 "reuse*", "re use", "stays", "stay on", "copy", "copied", "sniff*",
                 "eavesdrop*", "handshake",
                 "never travel*", "never cross*", "private key*", "no shared secret",
                 "no secret to", "nothing to leak", "nothing to steal", "stolen",
                 "possession", "sender constrain*", "bound to", "8705"),
            ),
        ),
    ),
    "public-read-api": Scenario(
        "a public, read-only open-data API (bus timetables): no user accounts and nothing to "
        "change; you only want to know which app calls, to set quotas and rate limits",
        "api-key",
        "public data, nothing to act on and no user: an API key identifies the calling app for "
        "quotas, rate limits and blocking abuse (lesson 02); tokens, consent or certificates "
        "would protect nothing more here",
        (
            Idea(
                "What is there to protect here, and is there any user to act for?",
                ("is public", "are public", "public data", "publicly", "public anyway",
                 "open data", "read only", "no user data", "no personal", "no private",
                 "nothing private", "nothing secret", "nothing sensitive", "not sensitive",
                 "nothing to protect", "nothing to change", "nothing to act", "no write*",
                 "no account*", "no user account*"),
            ),
            Idea(
                "What do you actually need to know about a caller, and what for?",
                ("rate limit*", "quota*", "meter*", "throttl*", "usage", "billing", "identif*",
                 "which app", "who calls", "who is calling", "abuse", "track*"),
            ),
        ),
    ),
    "admin-tool": Scenario(
        "an internal admin tool: one small web app and the API behind it, built and run by "
        "one team; the company has no single sign-on, the tool keeps its own dozen staff "
        "accounts (password and a second factor), and no other app or party calls the API",
        "jwt-session",
        "one party holds the accounts and serves the API: after its own login it issues a "
        "short-lived signed token and checks it itself (lesson 04); OAuth would add an "
        "authorization server for a third party that is not there",
        (
            Idea(
                "How many parties are there: whose accounts are these, who calls the API, and "
                "who serves it?",
                ("one party", "single party", "same party", "one team", "same team",
                 "first party", "own account*", "holds the accounts", "own user*", "own login",
                 "no external",
                 "no third party", "no other party", "no other app", "nobody else",
                 "no one else", "no delegat*", "nothing to delegate", "no authorization server",
                 "no sso", "no single sign on", "no idp", "no identity provider"),
            ),
            Idea(
                "What does the API check on every request, who made it, and how long should "
                "it stay valid?",
                ("short lived", "expir*", "signed", "signs", "signature*", "own key",
                 "secret key", "hmac", "verif*", "checks it itself", "checks itself",
                 "validat*", "minutes"),
            ),
        ),
    ),
    "b2b-platform": Scenario(
        "a B2B SaaS platform: the employees of each customer company sign in to your web app "
        "with their own company's identity provider (one customer uses Entra ID, another "
        "Okta), and your web app's server calls your API for them",
        "oauth-code-pkce",
        "each customer's identity provider holds the accounts: your web app signs their "
        "employees in with OpenID Connect (authorization code + PKCE, RECOMMENDED for a "
        "confidential client too: RFC 9700 §2.1.1) and "
        "gets an ID token saying who logged in; the customer keeps control: its MFA policy, "
        "and a leaver switched off once at its IdP is out of your platform too",
        (
            Idea(
                "Who holds these employees' accounts, and what does your platform receive that "
                "names the person signing in?",
                _OTHER_PARTY_LOGIN,
            ),
            Idea(
                "When someone stops working at a customer company, where is their access "
                "ended, and who decides how they must log in?",
                ("leaver*", "leav* the company", "leav* their company", "left the company",
                 "quit*", "leaves", "remov*", "delet*", "two factor", "in charge",
                 "left their company", "offboard*", "deprovision*", "disabl*", "switch* off",
                 "turn* off", "one place", "central*", "mfa", "multi factor", "2fa",
                 "second factor", "conditional access", "polic*", "control*", "lifecycle"),
            ),
        ),
    ),
}  # fmt: skip


def _normal(text: str) -> str:
    """Lower case, every run of non-alphanumerics one space: "Short-Lived" -> "short lived"."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


@functools.cache
def _pattern(phrase: str) -> re.Pattern[str]:
    """A phrase's words in order, each maybe plural (or a prefix, with *), hyphens optional."""
    words = []
    for word in re.findall(r"[a-z0-9]+\*?", phrase.lower()):
        if word.endswith("*"):
            words.append(re.escape(word[:-1]) + r"[a-z0-9]*")
        elif word.endswith("y") and len(word) > 2:
            words.append(re.escape(word[:-1]) + r"(?:ys?|ies)")
        else:
            words.append(re.escape(word) + r"(?:s|es)?")
    return re.compile(r"(?<![a-z0-9])" + " ?".join(words) + r"(?![a-z0-9])")


def covers(reason: str, idea: Idea) -> bool:
    """Whether the reason uses one of the idea's phrases."""
    text = _normal(reason)
    return any(_pattern(phrase).search(text) for phrase in idea.phrases)


def argues_for(reason: str) -> set[str]:
    """The schemes whose scenario's whole rubric the reason covers."""
    return {
        scenario.scheme
        for scenario in SCENARIOS.values()
        if all(covers(reason, idea) for idea in scenario.rubric)
    }


def _shape_error(answer: Any) -> str | None:
    """What is wrong with the answer's shape, or None."""
    if not isinstance(answer, dict):
        return f"a {type(answer).__name__}"
    for key, value in answer.items():
        if not isinstance(value, dict):
            return f"answer[{key!r}] is a {type(value).__name__}"
        if set(value) != {"scheme", "reason"}:
            return f"answer[{key!r}] has the keys {sorted(map(str, value))}"
        for part in ("scheme", "reason"):
            if not isinstance(value[part], str):
                return f"answer[{key!r}][{part!r}] is a {type(value[part]).__name__}"
    return None


def _scheme_row(scenario_id: str, scenario: Scenario, given: str) -> Row:
    right = given == scenario.scheme
    if right:
        hint = ""
    elif given not in SCHEMES:
        hint = f"choose one of {', '.join(SCHEMES)}"
    else:
        hint = "who holds the account, who calls, and is a user in the loop?"
    observed = f"{given!r}" + (f": right, {scenario.why}" if right else "")
    return Row(
        "answer",
        f"{scenario_id}:scheme",
        scenario.system,
        "the scheme that fits the trust model",
        observed,
        right,
        hint,
    )


def _reason_row(scenario_id: str, scenario: Scenario, reason: str) -> Row:
    missed = [idea for idea in scenario.rubric if not covers(reason, idea)]
    others = sorted(argues_for(reason) - {scenario.scheme})
    n = len(scenario.rubric)
    expected = f"a reason that covers the {n} ideas deciding it, and argues for its scheme only"
    if missed:
        observed = f"covers {n - len(missed)} of {n} ideas" if reason.strip() else "empty"
        hint, cause = " ".join(idea.question for idea in missed), "the reason misses an idea"
    elif len(others) > OTHER_SCHEMES_ALLOWED:
        observed = f"covers its {n} ideas, and the whole rubric of {', '.join(others)} too"
        hint = "say why this system needs its scheme, in a sentence or two, not every keyword"
        cause = "a list of keywords, not a reason"
    else:
        observed, hint, cause = f"covers the {n} ideas", "", ""
    return Row(
        "answer",
        f"{scenario_id}:reason",
        "why this scheme, in your own words",
        expected,
        observed,
        not missed and len(others) <= OTHER_SCHEMES_ALLOWED,
        hint,
        cause,
    )


def grade_choice(lab: Any, answer: Any) -> list[Row]:
    """Two rows per scenario: the scheme against the one that fits, the reason against the
    rubric. A wrong shape is one ``format`` row: nothing else can be read from it."""
    wrong = _shape_error(answer)
    if wrong:
        return [
            Row(
                "answer",
                "format",
                "the answer's shape",
                "a dict: scenario id -> {'scheme': ..., 'reason': '...'}",
                wrong,
                False,
                "map each scenario id to {'scheme': one of " + ", ".join(SCHEMES) + ", "
                "'reason': 'why, in a sentence or two'}",
            )
        ]
    rows = []
    for scenario_id, scenario in SCENARIOS.items():
        if scenario_id not in answer:
            missing = f"add answer[{scenario_id!r}] = {{'scheme': ..., 'reason': ...}}"
            for part in ("scheme", "reason"):
                rows.append(
                    Row("answer", f"{scenario_id}:{part}", scenario.system,
                        f"a {part}", "missing", False, missing)
                )  # fmt: skip
            continue
        rows.append(_scheme_row(scenario_id, scenario, answer[scenario_id]["scheme"]))
        rows.append(_reason_row(scenario_id, scenario, answer[scenario_id]["reason"]))
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


_STEPS_CODE = """\
choice = {
    "partner-integration": {
        "scheme": "oauth-client-credentials",
        "reason": "A machine acting for itself with no user in the loop; it gets "
        "short-lived, scoped tokens instead of a long-lived shared secret.",
    },
    "mobile-app": {
        "scheme": "oauth-code-pkce",
        "reason": "Google or Apple holds the password and the ID token says who "
        "logged in; the app is a public client, so PKCE binds each code to it.",
    },
    "service-to-service": {
        "scheme": "mtls",
        "reason": "Both ends hold certificates from our own CA; the private key never "
        "leaves the workload, so there is no bearer token to replay.",
    },
    "public-read-api": {
        "scheme": "api-key",
        "reason": "The data is public and read-only; a key only identifies the app "
        "for quotas and rate limits.",
    },
    "admin-tool": {
        "scheme": "jwt-session",
        "reason": "One party holds the accounts and serves the API; it issues a "
        "short-lived signed token and verifies it itself.",
    },
    "b2b-platform": {
        "scheme": "oauth-code-pkce",
        "reason": "Each customer's IdP holds the accounts (OIDC ID token); the "
        "customer keeps control of MFA and offboarding in one place.",
    },
}
lab.check_answer("choose-scheme", choice)
"""

HINTS: tuple[str, ...] = (
    "For each system ask: who holds the user's account, who is calling, is a user in the "
    "loop at all, and what would a leaked credential give away? The scheme follows from the "
    "answers, and those answers, in your own words, are the reason the grader reads.",
    "Match the trust model (OWASP REST Security, OAuth 2.0 Protocol and Microservices "
    "Security cheat sheets; RFC 9700, Best Current Practice for OAuth 2.0 Security, for the "
    "grants). A user who signs in at another party (a login provider, a customer's company "
    "IdP): OpenID Connect, the authorization code grant with PKCE S256 (RFC 9700 §2.1.1: a "
    "MUST for public clients, RECOMMENDED for the others), above all for a mobile app, a "
    "public client whose shipped secret is no secret (RFC 8252 §8.4, §8.5, and §6: PKCE); "
    "the ID token says who logged in, the other party keeps the password, the MFA and the "
    "leavers. A machine of another organisation acting for itself, no user: the client "
    "credentials grant (RFC 6749 §4.4), short-lived, scoped, revocable tokens instead of a "
    "long-lived shared secret (RFC 9700 §2.3; RFC 7009). Your own workloads with "
    "certificates from a CA you run: mutual TLS, whose private key never travels, so nothing "
    "can be replayed (lesson 07; RFC 8705 binds tokens to it, RFC 9700 §2.2.1). One party "
    "that holds the accounts and serves the API: its own short-lived signed tokens (lesson "
    "04). Public data you only meter: an API key to identify the caller for quotas and rate "
    "limits (lesson 02). A reason states the facts that decide; a list of every keyword "
    "fails.",
    "1. For each scenario, write down who holds the account, who calls, and whether a user "
    "is in the loop.\n"
    "2. Pick the scheme those facts call for (the rules of the technique hint).\n"
    "3. Write the reason as those facts, a sentence or two for this scenario only.\n"
    "4. Run the grader:\n\n```python\n" + _STEPS_CODE + "```",
)
