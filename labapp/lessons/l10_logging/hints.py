"""Lesson 10's hints: the attack's ladder, the defense's rules, the two quizzes' ladders."""

from __future__ import annotations

FIELDS_HINT = (
    "Return json.dumps({...}) of a dict with time, kind, who, outcome, reason, client and "
    "request_id, each copied from fields (who is fields['username']; kind is the hook's first "
    "argument). Do not return None for a security event."
)

LEAK = (
    "sam is support staff: which route of the API lets support read something other users "
    "wrote? Who else was here this morning?",
    "Logs are a place secrets leak to (CWE-532; OWASP Logging Cheat Sheet, 'Data to "
    "exclude'): a bearer token found there works for whoever reads it (RFC 6750 §1.2, 'any "
    "party in possession of the token'). MFA protected carol's login, not the token it made.",
    """Log in as sam, read the log, and try every JWT in it on the admin's report:

```python
import re

sam = lab.client.post("/login", json={"username": "sam", "password": "support desk 2026"})
auth = {"Authorization": f"Bearer {sam.json()['access_token']}"}
lines = lab.client.get("/admin/logs", headers=auth).json()["lines"]
found = set(re.findall(r"eyJ[\\w-]+\\.[\\w-]+\\.[\\w-]+", "\\n".join(lines)))
for token in found:
    report = lab.client.get("/admin/report", headers={"Authorization": f"Bearer {token}"})
    if report.status_code == 200:
        flag = report.json()["flag"]
print(flag)
lab.check_flag("log-leak", flag)
```""",
)
LEAK_FIX = "Log a token's id (fields['token_id']), never the token; never the headers or body."
SECRETS_FIX = (
    "Build the event from named fields only (an allow-list), never from fields['headers'], "
    "fields['body'] or fields['url']: a deny-list of header names misses the next one."
)
INJECTION_FIX = (
    "json.dumps(event) with its default ensure_ascii=True escapes CR, LF, U+2028, NEL, ESC and "
    "every other control character; ensure_ascii=False writes some of them as they are."
)
LOST_FIX = (
    "Return a line for every event: no de-duplication, sampling or 'seen recently' state. "
    "The repeated failures are the attack."
)

DEFEND = (
    "Start from the rules above the exercise: which fields does each event need, and which "
    "fields did the service hand you that must never be written down?",
    "One event, one dict, one json.dumps: keep time, kind, who (fields['username']), outcome, "
    "reason, client, request_id; add country, user_agent, path, token_id and family if you like.",
    "Leave out password, totp, access_token, refresh_token, headers, body and url: an "
    "allow-list, so a new secret field cannot slip in.",
    "Keep json.dumps's ensure_ascii default: it escapes line separators and control "
    "characters, so a username cannot start a line of its own.",
    "Return the line every time, from a function with no state: the grader sends forty logins "
    "at once and counts the lines.",
)

DETECT = (
    "Plot a day (lab.replay_day()) and group the failures: by address, by username, by "
    "(username, address), by refresh-token family. Each attack looks different from the "
    "others in one of these groupings.",
    "Stuffing: many addresses at once, each trying one or two accounts (OWASP Credential "
    "Stuffing Prevention Cheat Sheet); spraying: one address, one password, many real accounts; "
    "a slow brute force: one account from one address, many wrong passwords over hours: "
    "consider short (burst) and long periods (the same cheat sheet, 'IP Mitigation and "
    "Intelligence'); token replay: a refresh.reuse, which signals a breach (RFC 9700 §4.14.2), "
    "whose family was used from two networks; impossible travel: two countries closer in "
    "time than a flight allows.",
    """Rules that pass on any day of this lab:

```python
from collections import defaultdict
from datetime import datetime


def detect(events):
    def when(event):
        return datetime.fromisoformat(event["time"]).timestamp()

    alerts = []
    failures = [e for e in events if e["kind"] == "login.failure"]
    by_client = defaultdict(list)
    for e in failures:
        by_client[e["client"]].append(e)
    succeeded = {e["client"] for e in events if e["kind"] == "login.success"}
    moments = [(when(e), e["client"]) for e in failures]
    for client, tries in by_client.items():
        if len(tries) > 3 or client in succeeded:
            continue
        start = when(tries[0])
        crowd = {c for at, c in moments if abs(at - start) <= 600}
        if len(crowd) >= 10:
            alerts.append({"kind": "stuffing", "subject": client, "at": tries[0]["time"]})
    for client, tries in by_client.items():
        if len({e["who"] for e in tries if e["reason"] == "bad_password"}) >= 5:
            alerts.append({"kind": "spraying", "subject": client, "at": tries[-1]["time"]})
    guesses = defaultdict(list)
    for e in failures:
        if e["reason"] == "bad_password":
            guesses[e["who"], e["client"]].append(e)
    for (user, _), tries in guesses.items():
        if len(tries) >= 10:
            alerts.append({"kind": "brute_force", "subject": user, "at": tries[9]["time"]})
    networks = defaultdict(set)
    for e in events:
        if e.get("family"):
            networks[e["family"]].add(e["client"])
    for e in events:
        if e["kind"] == "refresh.reuse" and len(networks[e.get("family")]) > 1:
            alerts.append({"kind": "token_replay", "subject": e["who"], "at": e["time"]})
    last = {}
    for e in sorted((e for e in events if e["kind"] == "login.success"), key=when):
        before = last.get(e["who"])
        moved = before and lab.country(before["client"]) != lab.country(e["client"])
        if moved and when(e) - when(before) < 3 * 3600:
            alerts.append({"kind": "impossible_travel", "subject": e["who"], "at": e["time"]})
        last[e["who"]] = e
    return alerts


lab.check_answer("detect", detect)
```""",
)

ADAPT = (
    "Replay a few logins in your head: what does an owner on a new phone look like, and an "
    "attacker with the same password? Count the signals each one shows, not one signal alone.",
    "Risk-based step-up: the OWASP Multifactor Authentication Cheat Sheet ('Risk Based "
    "Authentication') and Credential Stuffing Prevention Cheat Sheet list signals (a new "
    "device, an unusual location or time, failures) as reasons to ask for the second factor "
    "(TOTP, RFC 6238), which a stolen password cannot pass. Here, add them into a score and "
    "step up above a threshold: asking on any one signal spends the friction budget.",
    """Score the signals; step up at three:

```python
def assess_risk(context):
    score = 0
    score += not context["device_known"]
    score += context["new_address"]
    score += context["country"] != context["home_country"]
    score += context["local_hour"] < 6
    score += 2 * (context["failures_client"] >= 3)
    return "step_up" if score >= 3 else "allow"


lab.check_answer("adapt", assess_risk)
```""",
)

KIND_HINTS = {
    "stuffing": "Stuffing hides under any per-address threshold: each address tries once or "
    "twice. Look for many addresses failing within minutes, each with few tries and no success.",
    "spraying": "One address, one password, many real accounts: count distinct usernames with "
    "bad_password per address.",
    "brute_force": "One account, one address, a guess every few minutes for hours: count the "
    "day per (username, address), not the minute.",
    "token_replay": "Not every refresh.reuse is theft (an app retries from the same place): "
    "alert when the family was used from more than one address.",
    "impossible_travel": "Two successful logins of one user, two countries (lab.country), less "
    "than three hours apart. A real trip takes longer.",
}
ADAPT_ATTACK = (
    "Print a few contexts of logins your decision let in: an attacker with the right "
    "password differs from the owner in more than one way at once."
)
ADAPT_FRICTION = (
    "Every single signal has innocent owners (new phones, trips, late nights): which "
    "combination do owners rarely show?"
)
ADAPT_LOCKOUT = "Deny only what no owner does; when unsure, step up: the owner has the TOTP app."
