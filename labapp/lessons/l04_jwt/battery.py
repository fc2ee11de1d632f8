"""Lesson 04's battery: replay every forged token against the service it breaks.

Each attack sends its tokens to the service whose weak default it breaches (the learner's
validator is the same for every service, so that route stands for all of them). A forged
token must get a 4xx; the legitimate checks log in for real, or use tokens the lab's own
issuer mints, and must get a 2xx on every service.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.l04_jwt.forge import (
    forge_alg_none,
    forge_audience,
    forge_confusion,
    forge_expired,
    forge_jku,
    forge_jwk,
    forge_kid_sqli,
    forge_kid_traversal,
    forge_malformed,
    forge_missing,
    forge_unverified,
    forge_weak_secret,
    forge_wrong_typ,
    login_as_alice,
)
from labapp.lessons.l04_jwt.jose import AUDIENCE, load_material
from labapp.lessons.l04_jwt.ladders import HINTS
from labapp.lessons.l04_jwt.replay import (
    attack,
    cached_verdict,
    combined,
    everywhere,
    jwks_flood,
    route,
    send,
)
from labapp.lessons.l04_jwt.variants import (
    forge_audience_list,
    forge_claim_types,
    forge_hostile_header,
    forge_issuer_variants,
    forge_kid_unknown,
    forge_lifetime,
)


def check_login(lab: Any, http: httpx.Client) -> Observed:
    return everywhere(lab, http, login_as_alice(http, lab), admin=False)


def check_admin(lab: Any, http: httpx.Client) -> Observed:
    m = load_material(lab.store)
    return everywhere(lab, http, m.mint(m.claims("carol", "admin")), admin=True)


def check_leeway(lab: Any, http: httpx.Client) -> Observed:
    m, now = load_material(lab.store), int(time.time())
    token = m.mint(m.claims("alice", "customer", iat=now - 905, exp=now - 5))
    response = send(http, route("reports", False), token)
    verdict = "accepted" if response.is_success else "refused"
    detail = f"validate_token {verdict} a token 5 s past exp (reports)"
    return Observed(response.is_success, response.status_code, detail)


def check_multi_audience(lab: Any, http: httpx.Client) -> Observed:
    """RFC 7519 §4.1.3 and RFC 9068 §4: aud may be a list; this API must find itself in it."""
    m = load_material(lab.store)
    for aud in (["billing", AUDIENCE], [AUDIENCE]):
        token = m.mint(m.claims("alice", "customer", aud=aud))
        seen = everywhere(lab, http, token, admin=False)
        if not seen.succeeded:
            return Observed(False, seen.status, f"aud {aud}: {seen.detail}")
    return Observed(True, 200, f"aud lists that include {AUDIENCE!r} work on every service")


# Every row's advice names the hook and what it did (the engine adds the direction: granted
# or denied too much, or crashed), then the fix the notebook teaches for that row.
PIN = "pin algorithms=['RS256'] (one key, one algorithm: RFC 8725 §3.1)"
CATCH = "catch jwt.PyJWTError around it all and return None"

ATTACKS = (
    Attack(
        "unverified-signature",
        "alice's token with role admin, signature kept (profile)",
        HINTS["unverified-signature"],
        attack("profile", forge_unverified),
        fix="validate_token accepted claims whose signature it never checked. Verify every "
        "token: jwt.decode(token, KEYS.get(kid), algorithms=['RS256'], ...) (None: refuse), "
        "never options={'verify_signature': False}.",
    ),
    Attack(
        "alg-none",
        "alg none, None, NONE and nOnE with an empty signature (widgets)",
        HINTS["alg-none"],
        attack("widgets", forge_alg_none),
        fix=f"validate_token accepted an unsigned token. {PIN}; never take the algorithm from "
        "the header, and never block 'none' by one spelling.",
    ),
    Attack(
        "weak-secret",
        "an admin token signed HS256 with the legacy service's dictionary word (legacy)",
        HINTS["weak-secret"],
        attack("legacy", forge_weak_secret),
        fix=f"validate_token accepted an HS256 token. This API's tokens are RS256 only: {PIN} "
        "whatever the kid, with keys only from KEYS.",
    ),
    Attack(
        "jwk-injection",
        "a token signed with the attacker's key, that key in the jwk header (partners)",
        HINTS["jwk-injection"],
        attack("partners", forge_jwk),
        fix="validate_token trusted the key the token carried in 'jwk'. Keys come only from "
        "KEYS, built from the issuer's JWKS (RFC 8725 §3.8).",
    ),
    Attack(
        "jku-injection",
        "a token whose jku points at the attacker's JWKS (integrations)",
        HINTS["jku-injection"],
        attack("integrations", forge_jku),
        fix="validate_token fetched keys from the URL in the token's 'jku'. Fetch only the "
        "issuer's JWKS URL written in your code, once, into KEYS.",
    ),
    Attack(
        "kid-traversal",
        "kid ../static/robots.txt (and its absolute path), HS256 keyed with that file (files)",
        HINTS["kid-traversal"],
        attack("files", forge_kid_traversal),
        fix="validate_token used the kid as a file path. A kid is only a name to look up: "
        f"KEYS.get(kid); and {PIN}.",
    ),
    Attack(
        "kid-sqli",
        "kid with a UNION SELECT of a secret the attacker chose (inventory)",
        HINTS["kid-sqli"],
        attack("inventory", forge_kid_sqli),
        fix="validate_token let the kid choose its key through SQL. KEYS.get(kid), never a "
        f"query built from it; and {PIN}.",
    ),
    Attack(
        "alg-confusion",
        "HS256 keyed with the server's RSA public key PEM, kid of the RSA key; and genuine "
        "PS256 and RS512 tokens from the RS256 key (reports)",
        HINTS["alg-confusion"],
        attack("reports", forge_confusion),
        fix="validate_token must use the issuer's RSA key with RS256 only: "
        f"{PIN}; and {CATCH} (InvalidKeyError is not an InvalidTokenError).",
    ),
    Attack(
        "expired",
        "the captured expired token, a batch token without exp, tokens 10 min and 90 s past "
        "exp, nbf and iat in the future (archive)",
        HINTS["expired"],
        attack("archive", forge_expired, admin=False),
        fix="validate_token accepted a token outside its time window. Require exp "
        "(options={'require': REQUIRED}), keep PyJWT's exp, nbf and iat checks on, leeway=30.",
    ),
    Attack(
        "audience",
        "a billing token, a sandbox issuer's token, aud orders-api-staging, "
        "iss .../issuer-staging (search)",
        HINTS["audience"],
        attack("search", forge_audience, admin=False),
        fix="validate_token accepted a token meant for another API or from another issuer. "
        "Pass audience=AUDIENCE and issuer=ISSUER to jwt.decode.",
    ),
    Attack(
        "malformed",
        "empty, two or four segments, not base64, an 8 KB header, a header that is a JSON list "
        "or nested 3000 deep, a non-JSON payload...",
        (),
        attack("reports", combined(forge_malformed, forge_hostile_header), admin=False),
        fix=f"validate_token must refuse garbage, not crash: {CATCH}; let PyJWT parse the "
        "header (jwt.get_unverified_header): a header may be a JSON list, a number or nested "
        "thousands deep, and your own json.loads and .get() raise on those.",
        flag=False,
    ),
    Attack(
        "wrong-typ",
        "genuine tokens with typ JWT, no typ, typ 7, typ a list, or typ at+jwt then JWT "
        "(not an access token)",
        (),
        attack("reports", forge_wrong_typ, admin=False),
        fix="validate_token accepted a token that is not an access token. Require the header's "
        "typ to be 'at+jwt' or 'application/at+jwt' (RFC 9068 §4); jwt.decode_complete "
        "returns the verified header.",
        flag=False,
    ),
    Attack(
        "missing-claims",
        "genuine tokens without jti, iat, sub, iss or aud",
        (),
        attack("reports", forge_missing, admin=False),
        fix="validate_token accepted a token missing a claim this API requires. "
        "options={'require': ['exp', 'iat', 'iss', 'aud', 'sub', 'jti']}.",
        flag=False,
    ),
    Attack(
        "claim-types",
        "genuine tokens whose exp, iat or nbf is a numeric string, a boolean, null, a list, "
        "NaN or Infinity",
        (),
        attack("reports", forge_claim_types, admin=False),
        fix="validate_token must refuse a time claim that is not a number: PyJWT compares "
        "int(exp), so exp '1999999999' (a string) or nbf true pass its checks. After decoding, "
        "refuse a token whose exp, iat or nbf is not an int or a float (type(value) in (int, "
        "float): a bool is not a NumericDate, RFC 7519 §2).",
        flag=False,
    ),
    Attack(
        "lifetime",
        "genuine tokens that live 20 minutes or ten years, exp 2**70 or 1e308, iat before 1970",
        (),
        attack("reports", forge_lifetime, admin=False),
        fix="validate_token must refuse a lifetime this issuer never grants: PyJWT accepts any "
        "future exp. Refuse a token whose exp is more than LIFETIME (15 minutes) after its iat, "
        "comparing exp > iat + LIFETIME (subtracting a float from a 400-digit int raises "
        "OverflowError).",
        flag=False,
    ),
    Attack(
        "issuer-exact",
        "genuine tokens whose iss is ours with a trailing slash, in capitals, padded with "
        "spaces, with a port, a fragment, a look-alike letter, or inside another URL (search)",
        (),
        attack("search", forge_issuer_variants, admin=False),
        fix="validate_token matched iss loosely. Compare it exactly (issuer=ISSUER): no strip(), "
        "lower(), rstrip('/'), URL parsing, 'in' or startswith; RFC 9068 §4 says the issuer "
        "MUST exactly match.",
        flag=False,
    ),
    Attack(
        "audience-list",
        "genuine tokens whose aud is a list without orders-api, an empty list, a nested list, "
        "a dict, or a string that only contains the name (search)",
        (),
        attack("search", forge_audience_list, admin=False),
        fix="validate_token matched aud loosely. Let PyJWT check it (audience=AUDIENCE): a list "
        "must contain 'orders-api' as one of its strings, exactly; 'in' on a string or a dict "
        "is a substring or key test.",
        flag=False,
    ),
    Attack(
        "kid-unknown",
        "tokens signed with the issuer's key under no kid, an unknown or empty kid, the kid with a "
        "space or in capitals, null, 7 or a list",
        (),
        attack("reports", forge_kid_unknown, admin=False),
        fix="validate_token must refuse a kid the issuer never published. Pick the key with "
        "KEYS.get(kid) and refuse when it is None: no fallback to the only key, no trying every "
        "key, no normalising the kid (and no header['kid'], which raises when there is none).",
        flag=False,
    ),
    Attack(
        "cached-verdict",
        "after alice's real token: her token with a flipped signature bit, her payload under "
        "alg none, her signature on role admin, her kid/sub/jti signed by the attacker; and a "
        "token accepted, then sent again once expired (profile)",
        (),
        cached_verdict,
        fix="validate_token reused an earlier verdict. Validate the whole token on every "
        "request: a verdict cached by kid, payload, signature, sub or jti accepts forgeries "
        "that share that part with a token you once accepted, and one cached by the whole "
        "token (lru_cache) accepts it after it expires. Cache keys (KEYS), not verdicts.",
        flag=False,
    ),
    Attack(
        "jwks-refetch",
        "four tokens with made-up kids: the JWKS must not be fetched again for each one "
        "(integrations)",
        (),
        jwks_flood,
        expected="refused, with at most one JWKS fetch",
        fix="validate_token fetched the issuer's JWKS again for made-up kids, so anyone can "
        "make every service call the issuer. Build KEYS once, outside validate_token; to follow "
        "rotation, refetch at most once in a while (PyJWT's PyJWKClient does since 2.14: "
        "cooldown_duration, 30 s by default; before 2.14 it refetched for every unknown kid).",
        flag=False,
    ),
)

CHECKS = (
    Check(
        "fresh-login",
        "alice logs in: her token works on all 10 services",
        check_login,
        hint="validate_token refused alice's fresh token. Pass audience=AUDIENCE (PyJWT refuses "
        "a token with an aud claim when no audience is given); return the claims dict (with "
        "its 'sub') for a valid token; KEYS must hold the issuer's key under its kid, and typ "
        "'at+jwt' is the access-token type.",
    ),
    Check(
        "admin-token",
        "a genuine admin token opens every admin report",
        check_admin,
        hint="validate_token refused a genuine admin token. Return the claims of every valid "
        "token; the route itself checks the role.",
    ),
    Check(
        "within-leeway",
        "a token 5 s past exp is still accepted (clock skew)",
        check_leeway,
        hint="validate_token refused a token 5 s past exp. Clocks drift: leeway=30 (RFC 7519 "
        "§4.1.4 allows a small leeway).",
    ),
    Check(
        "multi-audience",
        "tokens whose aud is a list including orders-api work on all 10 services",
        check_multi_audience,
        hint="validate_token refused a token whose aud list includes 'orders-api'. aud may be a "
        "list (RFC 7519 §4.1.3): PyJWT's audience=AUDIENCE accepts it; strict_aud=True or "
        "aud == AUDIENCE does not.",
    ),
)
