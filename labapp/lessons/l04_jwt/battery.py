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
    return Observed(response.is_success, response.status_code, "a token 5 s past exp")


def check_multi_audience(lab: Any, http: httpx.Client) -> Observed:
    """RFC 7519 §4.1.3 and RFC 9068 §4: aud may be a list; this API must find itself in it."""
    m = load_material(lab.store)
    for aud in (["billing", AUDIENCE], [AUDIENCE]):
        token = m.mint(m.claims("alice", "customer", aud=aud))
        seen = everywhere(lab, http, token, admin=False)
        if not seen.succeeded:
            return Observed(False, seen.status, f"a token with aud {aud}: {seen.detail}")
    return Observed(True, 200, f"aud lists that include {AUDIENCE!r} work on every service")


ATTACKS = (
    Attack(
        "unverified-signature",
        "alice's token with role admin, signature kept (profile)",
        (
            "Log in as alice, split the token at the dots, base64url-decode the middle part.",
            "Set role to admin, re-encode the middle part, keep header and signature as they are.",
        ),
        attack("profile", forge_unverified),
        fix="always verify the signature: jwt.decode with a key and algorithms=['RS256'], "
        "never verify_signature=False.",
    ),
    Attack(
        "alg-none",
        "alg none, None, NONE and nOnE with an empty signature (widgets)",
        (
            "The header is JSON too. What if it said the token is not signed at all?",
            "Header {'alg': 'none'}, your admin claims, and nothing after the last dot.",
        ),
        attack("widgets", forge_alg_none),
        fix="pin algorithms=['RS256']; never take the algorithm from the token.",
    ),
    Attack(
        "weak-secret",
        "an admin token signed HS256 with the legacy service's dictionary word (legacy)",
        (
            "The token log holds an HS256 token of the legacy service. Its key is a word.",
            "For each word of load_wordlist(): hs256(header.payload, word) == signature?",
        ),
        attack("legacy", forge_weak_secret),
        fix="accept no HS256 at all here: RS256 only, keys from your own key map.",
    ),
    Attack(
        "jwk-injection",
        "a token signed with the attacker's key, that key in the jwk header (partners)",
        ("Make your own RSA key; put its public JWK in the header as 'jwk'.",),
        attack("partners", forge_jwk),
        fix="keys come from your configured map by kid, never from the token (RFC 8725 §3.8).",
    ),
    Attack(
        "jku-injection",
        "a token whose jku points at the attacker's JWKS (integrations)",
        (
            "lab.attacker_server({'/jwks.json': {'keys': [your_jwk]}}) serves your JWKS.",
            "Header: alg RS256, kid of your JWK, jku = that URL + '/jwks.json'.",
        ),
        attack("integrations", forge_jku),
        fix="never fetch keys from a URL the token names; use your own pinned JWKS.",
    ),
    Attack(
        "kid-traversal",
        "kid ../static/robots.txt (and its absolute path), HS256 keyed with that file (files)",
        (
            "The files service reads the key from keys/<kid>. Which file's content do you know?",
            "GET /robots.txt; kid '../static/robots.txt'; sign HS256 with the file's bytes.",
        ),
        attack("files", forge_kid_traversal),
        fix="look kid up in a dict of known keys; a kid is never a path.",
    ),
    Attack(
        "kid-sqli",
        "kid with a UNION SELECT of a secret the attacker chose (inventory)",
        (
            "The key is found with SELECT secret FROM jwt_keys WHERE kid = '<kid>'.",
            "kid = \"x' UNION SELECT 'my-secret' --\", then sign HS256 with my-secret.",
        ),
        attack("inventory", forge_kid_sqli),
        fix="look kid up in a dict of known keys (or bind it as a SQL parameter).",
    ),
    Attack(
        "alg-confusion",
        "HS256 keyed with the server's RSA public key PEM, kid of the RSA key; and genuine "
        "PS256 and RS512 tokens from the RS256 key (reports)",
        (
            "The JWKS is public. jwt.PyJWK(jwk).key.public_bytes(...) gives its PEM.",
            "Sign header {'alg': 'HS256', 'kid': <RSA kid>} and admin claims with hmac, "
            "using those PEM bytes as the secret.",
        ),
        attack("reports", forge_confusion),
        fix="one key, one algorithm (RFC 8725 §3.1): algorithms=['RS256'] only, and catch "
        "jwt.PyJWTError (InvalidKeyError is not an InvalidTokenError).",
    ),
    Attack(
        "expired",
        "the captured expired token, a batch token without exp, tokens 10 min and 90 s past "
        "exp, nbf and iat in the future (archive)",
        ("The token log was kept. Are old tokens still good anywhere?",),
        attack("archive", forge_expired, admin=False),
        fix="require exp (options={'require': [...]}), keep exp, nbf and iat checks on, and "
        "the leeway small (30 s).",
    ),
    Attack(
        "audience",
        "a billing token, a sandbox issuer's token, aud orders-api-staging, "
        "iss .../issuer-staging (search)",
        (
            "POST /billing/login gives a token for another API, signed by the same key.",
            "The token log has a token from another issuer, too.",
        ),
        attack("search", forge_audience, admin=False),
        fix="pass audience='orders-api' and issuer='https://lab.example/issuer'.",
    ),
    Attack(
        "malformed",
        "empty, two or four segments, not base64, an 8 KB header, a header that is a JSON list "
        "or nested 3000 deep, a non-JSON payload...",
        (),
        attack("reports", combined(forge_malformed, forge_hostile_header), admin=False),
        fix="catch jwt.PyJWTError around everything you parse, and return None; let PyJWT "
        "parse the header (jwt.get_unverified_header): a header may be a JSON list, a number "
        "or nested thousands deep, and your own json.loads and .get() raise on those.",
        flag=False,
    ),
    Attack(
        "wrong-typ",
        "genuine tokens with typ JWT, no typ, typ 7, typ a list, or typ at+jwt then JWT "
        "(not an access token)",
        (),
        attack("reports", forge_wrong_typ, admin=False),
        fix="accept only typ 'at+jwt' (or 'application/at+jwt'), RFC 9068 §4.",
        flag=False,
    ),
    Attack(
        "missing-claims",
        "genuine tokens without jti, iat, sub, iss or aud",
        (),
        attack("reports", forge_missing, admin=False),
        fix="options={'require': ['exp', 'iat', 'iss', 'aud', 'sub', 'jti']}.",
        flag=False,
    ),
    Attack(
        "claim-types",
        "genuine tokens whose exp, iat or nbf is a numeric string, a boolean, null, a list, "
        "NaN or Infinity",
        (),
        attack("reports", forge_claim_types, admin=False),
        fix="PyJWT compares int(exp), so exp '1999999999' (a string) or nbf true pass its "
        "checks: after decoding, refuse a token whose exp, iat or nbf is not an int or a float "
        "(type(value) in (int, float): a bool is not a NumericDate, RFC 7519 §2).",
        flag=False,
    ),
    Attack(
        "lifetime",
        "genuine tokens that live 20 minutes or ten years, exp 2**70 or 1e308, iat before 1970",
        (),
        attack("reports", forge_lifetime, admin=False),
        fix="PyJWT accepts any future exp: refuse a token whose exp is more than LIFETIME "
        "(15 minutes) after its iat, comparing exp > iat + LIFETIME (subtracting a float from "
        "a 400-digit int raises OverflowError).",
        flag=False,
    ),
    Attack(
        "issuer-exact",
        "genuine tokens whose iss is ours with a trailing slash, in capitals, padded with "
        "spaces, with a port, a fragment, a look-alike letter, or inside another URL (search)",
        (),
        attack("search", forge_issuer_variants, admin=False),
        fix="compare iss exactly (issuer=ISSUER): no strip(), lower(), rstrip('/'), URL "
        "parsing, 'in' or startswith; RFC 9068 §4 says the issuer MUST exactly match.",
        flag=False,
    ),
    Attack(
        "audience-list",
        "genuine tokens whose aud is a list without orders-api, an empty list, a nested list, "
        "a dict, or a string that only contains the name (search)",
        (),
        attack("search", forge_audience_list, admin=False),
        fix="let PyJWT check aud (audience=AUDIENCE): a list must contain 'orders-api' as "
        "one of its strings, exactly; 'in' on a string or a dict is a substring or key test.",
        flag=False,
    ),
    Attack(
        "kid-unknown",
        "tokens signed with the issuer's key under no kid, an unknown or empty kid, the kid with a "
        "space or in capitals, null, 7 or a list",
        (),
        attack("reports", forge_kid_unknown, admin=False),
        fix="pick the key with KEYS.get(kid) and refuse when it is None: no fallback to the "
        "only key, no trying every key, no normalising the kid (and no header['kid'], which "
        "raises when there is none).",
        flag=False,
    ),
    Attack(
        "cached-verdict",
        "after alice's real token: her token with a flipped signature bit, her payload under "
        "alg none, her signature on role admin, her kid/sub/jti signed by the attacker; and a "
        "token accepted, then sent again once expired (profile)",
        (),
        cached_verdict,
        fix="validate the whole token on every request: a verdict cached by kid, payload, "
        "signature, sub or jti accepts forgeries that share that part with a token you once "
        "accepted, and one cached by the whole token (lru_cache) accepts it after it expires. "
        "Cache keys (KEYS), not verdicts.",
        flag=False,
    ),
    Attack(
        "jwks-refetch",
        "four tokens with made-up kids: the JWKS must not be fetched again for each one "
        "(integrations)",
        (),
        jwks_flood,
        expected="refused, with at most one JWKS fetch",
        fix="build KEYS once, outside validate_token; if you refetch for rotation, at most "
        "once in a while (PyJWKClient does, with its cooldown): a made-up kid must not make "
        "every service call the issuer.",
        flag=False,
    ),
)

CHECKS = (
    Check("fresh-login", "alice logs in: her token works on all 10 services", check_login),
    Check("admin-token", "a genuine admin token opens every admin report", check_admin),
    Check("within-leeway", "a token 5 s past exp is still accepted (clock skew)", check_leeway),
    Check(
        "multi-audience",
        "tokens whose aud is a list including orders-api work on all 10 services",
        check_multi_audience,
        hint="aud may be a list (RFC 7519 §4.1.3): accept a token whose list contains "
        "'orders-api'. PyJWT's audience=AUDIENCE does; strict_aud=True or aud == AUDIENCE "
        "does not.",
    ),
)
