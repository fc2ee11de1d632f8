"""What each row of lesson 02's battery does: the attacks, over real HTTP.

Keys the grader needs are minted through the lab's own admin route, so they come from the
learner's ``mint_key`` and ``store_key``: a legitimate partner's fresh key is the only kind
a defended server should accept. Rules that HTTP cannot show (where the randomness of a
key comes from, how the stored digest is compared, what a bad key costs) are checked by
watching the learner's functions at work: see ``entropy.py``, ``watch.py`` and the key
store's lookup count.
"""

from __future__ import annotations

import random
import re
import secrets
from typing import Any

import httpx

from labapp.engine.grading import Observed
from labapp.lessons.common import session_token
from labapp.lessons.l02_api_keys import atrest, entropy
from labapp.lessons.l02_api_keys.keyformat import (
    ID,
    KEY_FORMAT,
    SECRET,
    flip,
    forge,
    well_formed,
    with_checksum,
)
from labapp.lessons.l02_api_keys.keystore import KeyStore
from labapp.lessons.l02_api_keys.timing import measure
from labapp.lessons.l02_api_keys.watch import WatchedKeys, described

READ, WRITE = "shipments:read", "shipments:write"
GUESSED = 20  # keys minted to check format and uniqueness
MINTED = 50  # keys minted to look for structure (entropy.structure assumes 40 or more)


def admin_headers(lab: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(lab.state, 'carol')}"}


def post_mint(
    lab: Any, http: httpx.Client, scopes: list[str], partner: str = "acme"
) -> httpx.Response:
    """Ask the admin route for a key, minted by the learner's hooks.

    A 409 is a key id that already exists, and the lab says "mint again". Among n random
    32-bit ids (N = 2**32) two are equal with probability 1 - e**(-n(n-1)/2N), about n²/2N
    while small: 1.2 % at 10,000 keys, 39 % at 65,536, 50 % at 77,164. The grader mints
    again, once: with a few hundred keys a CSPRNG clashes twice in a row with probability
    below 1e-14; a clock or a counter clashes every time.
    """
    for _ in range(2):
        response = http.post(
            "/admin/keys", headers=admin_headers(lab), json={"partner": partner, "scopes": scopes}
        )
        if response.status_code != 409:
            break
    return response


def mint(
    lab: Any, http: httpx.Client, scopes: list[str], partner: str = "acme"
) -> tuple[str, str] | tuple[None, None]:
    """A key minted by the learner's hooks through the admin route, and its key id."""
    response = post_mint(lab, http, scopes, partner)
    if response.status_code != 201:
        return None, None
    return response.json()["key"], response.json()["key_id"]


def use(
    http: httpx.Client, key: str, method: str = "GET", url: str = "/shipments", **kw: Any
) -> httpx.Response:
    return http.request(method, url, headers={"X-API-Key": key}, **kw)


def _stolen(lab: Any, http: httpx.Client, keys: list[str], where: str) -> Observed:
    """An old-format key that still works is find_key's fault, whatever the row is about."""
    status = None
    for key in keys:
        response = use(http, key)
        status = response.status_code
        if response.is_success:
            return Observed(
                True,
                status,
                f"an old-format key from {where} still works: find_key must accept only keys "
                "of the course's format, so every legacy key stops working",
            )
    return Observed(False, status)


def _elsewhere(key: str) -> list[tuple[str, dict[str, Any]]]:
    """The same key everywhere but the X-API-Key header: each place a request can carry it."""
    names = ("api_key", "apikey", "key", "x-api-key", "token", "access_token")
    return [
        ("in ?api_key=", {"params": {"api_key": key}}),
        ("in a query parameter", {"params": {name: key for name in names}}),
        ("in a cookie", {"headers": {"Cookie": "; ".join(f"{n}={key}" for n in names)}}),
        ("as a bearer token", {"headers": {"Authorization": f"Bearer {key}"}}),
        ("in the Authorization header", {"headers": {"Authorization": key}}),
    ]


def attack_key_in_url(lab: Any, http: httpx.Client) -> Observed:
    # Only the partners' logged traffic: the grader's own probes land in the log too.
    log = [line for line in http.get("/ops/access-log").json() if not line.startswith("127.")]
    harvested = re.findall(r"api_key=([^&\s\"]+)", "\n".join(log))
    key, key_id = mint(lab, http, [READ])
    if key:
        try:
            for where, request in _elsewhere(key):
                response = http.get("/shipments", **request)
                if response.is_success:
                    return Observed(
                        True,
                        response.status_code,
                        f"extract_key took a fresh key {where}, not only from X-API-Key",
                    )
        finally:  # it is in a log now
            http.post(f"/admin/keys/{key_id}/revoke", headers=admin_headers(lab))
    return _stolen(lab, http, harvested, "the access log")


def attack_plaintext(lab: Any, http: httpx.Client) -> Observed:
    key, _ = mint(lab, http, [READ])
    if key:
        rows = lab.store.query("SELECT key_id, stored FROM api_keys")
        table = "\n".join(f"{row['key_id']} {row['stored']}" for row in rows)
        if found := atrest.plaintext_in(table, key):
            return Observed(
                True, 201, f"store_key keeps {found} of a freshly minted key at rest, readable"
            )
    backup = [row["key"] for row in http.get("/backup/keys.json").json()]
    return _stolen(lab, http, backup, "the leaked backup")


def attack_weak_hash(lab: Any, http: httpx.Client) -> Observed:
    key, key_id = mint(lab, http, [READ])
    if not key:
        return Observed(False, None, "no key could be minted (see the other rows)")
    row = lab.store.one("SELECT stored FROM api_keys WHERE key_id = ?", (key_id,))
    if well_formed(key) and key_id != key[ID]:
        return Observed(True, None, f"store_key keeps key_id {key_id[:16]!r}, not the 8-hex id")
    if row is None or not atrest.is_sha256_of(row["stored"], key):
        rests = atrest.what_rests(row["stored"], key) if row else "nothing"
        return Observed(True, None, f"what rests is {rests}")
    return Observed(False, None, "the SHA-256 hex digest of the whole key rests, and the id")


def attack_guessable(lab: Any, http: httpx.Client) -> Observed:
    minted: list[str] = []
    for _ in range(GUESSED):  # stop at the first bad one: a weak store slows with every key
        key, _ = mint(lab, http, [READ])
        if not well_formed(key):
            shown = repr(key[:24]) if isinstance(key, str) else "no key"
            return Observed(True, 201, f"minted {shown}, not of the form {KEY_FORMAT}")
        minted.append(key)  # type: ignore[arg-type]
    if len(set(minted)) < len(minted):
        return Observed(True, 201, f"two of {GUESSED} minted keys are the same")
    own = int(next(u for u in lab.users if "api_key" in u)["api_key"].removeprefix("pk_"))
    return _stolen(lab, http, [f"pk_{n}" for n in range(own - 5, own + 6)], "a sequential guess")


def _drawn_from_random(lab: Any) -> bool:
    """Seed `random` twice: a mint built on it repeats itself; one built on `secrets` cannot."""
    hook = lab.state.hooks["mint_key"]
    saved = random.getstate()
    try:
        random.seed(20240601)
        first = lab.guard.call_blocking("mint_key", hook)
        random.seed(20240601)
        return first == lab.guard.call_blocking("mint_key", hook)
    except Exception:  # the mint failed: other rows say why
        return False
    finally:
        random.setstate(saved)


def attack_predictable(lab: Any, http: httpx.Client) -> Observed:
    if _drawn_from_random(lab):
        return Observed(True, None, "mint_key draws from `random`: seeded twice, same key")
    hook = lab.state.hooks["mint_key"]
    keys: list[str] = []
    # The guard runs each hook in a thread named after it: only the mint's draws count.
    with entropy.os_random_drawn("lab-hook-mint_key", getattr(hook, "__globals__", {})) as drawn:
        for _ in range(MINTED):
            before = drawn.total
            response = post_mint(lab, http, [READ])
            if response.status_code == 409:
                return Observed(True, 409, "two mints in a row gave key ids that already exist")
            if response.status_code != 201:
                return Observed(False, response.status_code, "no key could be minted")
            key = response.json()["key"]
            if (took := drawn.total - before) < entropy.MIN_BYTES:  # stop at the first one
                return Observed(
                    True,
                    None,
                    f"a minted key drew {took} bytes from the OS CSPRNG, not the "
                    f"{entropy.MIN_BYTES} its id and secret need: the rest came from "
                    "something an attacker can replay or predict",
                )
            keys.append(key)
    if all(well_formed(key) for key in keys) and (problem := entropy.structure(keys)):
        return Observed(True, None, problem)
    return Observed(False, None, f"{MINTED} keys from the OS CSPRNG, without structure")


def attack_legacy(lab: Any, http: httpx.Client) -> Observed:
    status = None
    for row in lab.store.query("SELECT partner, key FROM legacy_keys"):
        response = use(http, row["key"])
        status = response.status_code
        if response.is_success:
            return Observed(True, status, f"{row['partner']}'s old-format key still works")
    return Observed(False, status, "every old-format key is refused")


def _bad_keys(key: str) -> list[tuple[str, str]]:
    """Keys that fail the format or the checksum, made from a well-formed one."""
    body, secret = key[:-9], key[SECRET]
    return [
        ("a wrong checksum", key[:-1] + flip(key[-1])),
        ("a mistyped secret", f"{key[:12]}{flip(secret[0])}{key[13:]}"),
        ("another prefix, checksum fitted", with_checksum("xk" + body[2:])),
        ("a 31-character secret, checksum fitted", with_checksum(body[:-1])),
        ("no secret, checksum fitted", with_checksum(body[:11])),
        ("a non-hex id, checksum fitted", with_checksum("ak_zzzzzzzz" + body[11:])),
        ("a character too many", key + "0"),
    ]


def attack_checksum_first(lab: Any, http: httpx.Client) -> Observed:
    key, _ = mint(lab, http, [READ])
    real = well_formed(key)
    if not real:  # still probe with keys of the course's format, their ids unknown
        raw = secrets.token_hex(20)
        key = with_checksum(f"ak_{raw[:8]}_{raw[8:]}")
    lookups = lab.server.app.state.keys.lookups
    status = None
    for name, probe in _bad_keys(key):  # type: ignore[arg-type]
        before = sum(lookups.values())
        response = use(http, probe)
        status = response.status_code
        if response.is_success:
            return Observed(True, status, f"a key with {name} was accepted")
        if looked := sum(lookups.values()) - before:
            return Observed(True, status, f"a key with {name} cost {looked} lookup(s)")
    if real:
        scans = lookups["all"]
        response = use(http, key)  # type: ignore[arg-type]
        if lookups["all"] > scans:
            return Observed(True, response.status_code, "a valid key made find_key scan keys.all()")
    return Observed(False, status, "bad keys cost no lookup; a good one, keys.by_id")


def attack_compare(lab: Any, http: httpx.Client) -> Observed:
    key, _ = mint(lab, http, [READ])
    if not key:
        return Observed(False, None, "no key could be minted (see the other rows)")
    probes = [key]
    if well_formed(key):
        probes.append(forge(key, flip(key[SECRET][0]) + key[SECRET][1:]))
    watched = WatchedKeys(KeyStore(lab.state))
    for probe in probes:
        lab.guard.call_blocking("find_key", lab.state.hooks["find_key"], probe, watched)
        if watched.uses:
            used = described(watched.uses)
            return Observed(True, None, f"find_key read the stored digest with {used}")
    return Observed(False, None, "the stored digest was only read by hmac.compare_digest")


def attack_timing(lab: Any, http: httpx.Client) -> Observed:
    device = lab.store.one("SELECT key FROM legacy_keys WHERE partner = 'wayne-iot'")
    if device and use(http, device["key"]).is_success:
        return Observed(True, 200, "the device's short legacy key still works")
    key, _ = mint(lab, http, [READ])
    if not well_formed(key):
        return Observed(False, None, "no well-formed key to time (see guessable-key)")
    secret = key[SECRET]  # type: ignore[index]
    first = forge(key, flip(secret[0]) + secret[1:])  # type: ignore[arg-type]
    last = forge(key, secret[:-1] + flip(secret[-1]))  # type: ignore[arg-type]
    timing = measure(lambda probe: use(http, probe), first, last)
    if timing.accepted is not None:
        return Observed(True, timing.accepted.status_code, "a forged secret was accepted")
    return Observed(timing.leaks, timing.status, timing.describe())


def attack_over_broad(lab: Any, http: httpx.Client) -> Observed:
    keys: dict[tuple[str, ...], str | None] = {}
    status = None
    for scopes, method, url, body in (
        ((READ,), "POST", "/shipments", {"destination": "Oslo"}),
        ((READ,), "DELETE", "/shipments/1", None),
        ((WRITE,), "GET", "/shipments", None),
        ((), "GET", "/shipments", None),
        ((), "POST", "/shipments", {"destination": "Oslo"}),
    ):
        if scopes not in keys:
            keys[scopes] = mint(lab, http, list(scopes))[0]
        if not (key := keys[scopes]):
            return Observed(False, None, "no key could be minted")
        response = use(http, key, method, url, json=body)
        status = response.status_code
        if response.is_success:
            named = " ".join(scopes) or "no scope"
            return Observed(
                True,
                status,
                f"allowed() let a key with {named} do {method} {url}",
            )
    return Observed(False, status)


def attack_revoked(lab: Any, http: httpx.Client) -> Observed:
    key, key_id = mint(lab, http, [READ])
    if not key:
        return Observed(False, None, "no key could be minted")
    use(http, key)  # in use before it is revoked, as a partner's key is (and a cache knows it)
    http.post(f"/admin/keys/{key_id}/revoke", headers=admin_headers(lab))
    response = use(http, key)
    if response.is_success:
        return Observed(True, response.status_code, "find_key accepted a key used, then revoked")
    return Observed(False, response.status_code, "a key used, then revoked")
