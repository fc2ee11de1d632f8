"""Lesson 06's rows about the policy's decisions: each lock alone, defaults, outages, change.

Two locks guard an invoice: ``permitted()`` (may this role do this, to its own object or
any?) and ``invoice_filter`` (which rows the query may return). Over HTTP the filter hides
a policy that ignores ``owns``, so one row asks the policy directly, as the server would,
with the questions the server's routes ask (OWASP Authorization Cheat Sheet: validate
permissions on every request; each layer must hold on its own).
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from labapp.engine.grading import Observed
from labapp.lessons.l06_least_privilege.hooks import Who
from labapp.lessons.l06_least_privilege.matrix import (
    as_user,
    cells,
    cells_of,
    probe,
    reset,
    token_for,
)
from labapp.lessons.l06_least_privilege.policy import (
    INVOICES,
    PERMISSIONS,
    POLICY,
    QUESTIONS,
    ROLE_OF,
    ROLE_SCOPES,
    SPARE_HASH,
    USERS,
)


def with_article(word: str) -> str:
    """The word after its indefinite article: 'a viewer', 'an editor', 'an int'."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def ask(lab: Any, hook: str, *args: Any) -> Any:
    """Put a question to the learner's hook as the server does: deadline, type check.

    A wrong type (``permitted`` returning "own" or None) is the hook's failure, named in the
    row, exactly as the server's own call (``LabState.call``) would make it.
    """
    result = lab.guard.call_blocking(hook, lab.state.hooks[hook], *args)
    wanted = lab.state.returns.get(hook)
    if wanted is not None and type(result) is not wanted:
        shown = repr(result)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        expected = "True or False" if wanted is bool else with_article(wanted.__name__)
        problem = f"{hook}() returned {type(result).__name__} {shown}; it must return {expected}"
        raise lab.guard.bad_result(hook, problem)
    return result


def quietly(lab: Any, hook: str, *args: Any) -> Any:
    """:func:`ask`, but a hook that fails answers None: a crash there leaks nothing."""
    seen = len(lab.guard.incidents)
    try:
        return ask(lab, hook, *args)
    except Exception:  # noqa: BLE001 - whatever the learner's code raised
        del lab.guard.incidents[seen:]  # not this row's failure: it probes a corner
        return None


def live_who(lab: Any, username: str) -> Who:
    """The caller as the server builds it: ``who.role()`` reads the role as it is now."""

    def role() -> str:
        lab.state.require_up(PERMISSIONS)
        row = lab.state.store.one("SELECT role FROM users WHERE username = ?", (username,))
        return row["role"] if row else ""

    return Who(username, role)


def filter_rows(lab: Any, user: dict[str, Any]) -> set[int] | None:
    """The invoice ids the learner's filter lets ``user`` see (None: the filter broke)."""
    result = quietly(lab, "invoice_filter", {"scopes": set(), "session": True, **user})
    try:
        where, params = result
        rows = lab.state.store.query(f"SELECT id FROM invoices WHERE ({where})", tuple(params))
    except Exception:  # noqa: BLE001 - a filter that cannot run leaks nothing here
        return None
    return {row["id"] for row in rows}


# -- each lock alone ------------------------------------------------------------------------


def cell(method: str, route: str, obj: str) -> str:
    """One matrix cell in words: 'PATCH /invoices/{id} (other)'."""
    return f"{method} {route}" + (f" ({obj})" if obj else "")


def attack_owns_ignored(lab: Any, http: httpx.Client) -> Observed:
    """Asked directly, the policy denies an 'own' action on someone else's object."""
    reset(lab)
    for _, username, _, role, _ in USERS:
        for action, owns in QUESTIONS:
            if owns or POLICY[role].get(action) != "own":
                continue
            if ask(lab, "permitted", live_who(lab, username), action, False):
                return Observed(
                    True,
                    None,
                    f"permitted(who={username}, {action!r}, owns=False) returned True; "
                    f"{username} is {with_article(role)}, whose rule for {action} is 'own': only "
                    "invoice_filter hid the invoice",
                )
    return Observed(False, None, "the policy alone denies every object that is not the caller's")


# -- deny by default ------------------------------------------------------------------------

NEWCOMER = "nora"  # an account whose role ("contractor") nobody wrote a rule for
NEW_ROLE = "contractor"


def attack_deny_by_default(lab: Any, http: httpx.Client) -> Observed:
    """A role the table does not know gets nothing: no endpoint, no invoice from the filter."""
    reset(lab)
    store = lab.state.store
    user_id = store.execute(
        "INSERT INTO users (username, display_name, role, email, password_hash) "
        "VALUES (?, 'Nora Quist', ?, 'nora.quist@fernhill.example', ?)",
        (NEWCOMER, NEW_ROLE, SPARE_HASH),
    )
    own_invoice = len(INVOICES) + 1
    store.execute(
        "INSERT INTO invoices VALUES (?, ?, 700, 'open', 'Onboarding', 'new supplier')",
        (own_invoice, NEWCOMER),
    )
    token = secrets.token_urlsafe(24)
    store.add_secret(token)
    store.execute("INSERT INTO sessions VALUES (?, ?)", (token, NEWCOMER))
    try:
        for _, _, method, route, obj, _ in cells_of(NEWCOMER, NEW_ROLE):
            observed = probe(lab, http, NEWCOMER, method, route, obj)
            if observed.startswith("allow"):
                return Observed(
                    True,
                    None,
                    f"{cell(method, route, obj)} as {NEWCOMER}, whose role {NEW_ROLE!r} has "
                    f"no rule: {observed}",
                )
        user = {"id": user_id, "username": NEWCOMER, "role": NEW_ROLE}
        seen = filter_rows(lab, user) or set()
        if seen - {own_invoice}:
            return Observed(
                True,
                None,
                f"invoice_filter for {with_article(NEW_ROLE)} (a role with no rule) matches "
                f"invoices {sorted(seen - {own_invoice})}: only roles whose rule reads any "
                "invoice see them",
            )
    finally:
        reset(lab)
    return Observed(False, None, f"{NEWCOMER} ({NEW_ROLE}, no rule) was refused everything")


# -- fail closed ------------------------------------------------------------------------------


def attack_fail_open(lab: Any, http: httpx.Client) -> Observed:
    """During the permissions outage nothing the policy guards is allowed: no answer, no."""
    reset(lab)
    last = None
    with lab.outage(PERMISSIONS):
        for username, role, method, route, obj, expected in cells(lab):
            observed = last = probe(lab, http, username, method, route, obj)
            if observed.startswith("HTTP 5"):
                reset(lab)
                return crashed_in_outage(f"{cell(method, route, obj)} as {username}", observed)
            if observed.startswith("allow"):
                reset(lab)
                even = ": the table allows it, but the role could not be asked" * (
                    expected != "deny"
                )
                what = f"{cell(method, route, obj)} as {username} ({role}) was allowed{even}"
                return Observed(True, None, what)
    reset(lab)
    return Observed(False, None, f"every request was denied during the outage (last: {last})")


def crashed_in_outage(what: str, observed: str) -> Observed:
    """A 5xx during the outage: not a denial. Say what the lesson teaches instead."""
    return Observed(
        False,
        int(observed.split()[1]),
        f"{what} during the outage answered {observed}, not a denial: permitted() let "
        "DependencyDown escape. Catch it around who.role() and return False (fail closed)",
    )


# -- change: a demotion, an invoice changing hands -------------------------------------------

DEMOTED = ("eddie", "sam")  # an editor and a support agent, both made viewers mid-run
MOVED = (2, "eddie")  # vera's invoice 2 becomes eddie's


def attack_stale_role(lab: Any, http: httpx.Client) -> Observed:
    """Roles and owners change; the very next decision follows.

    First vera, eddie and sam use every endpoint (whatever a cache would keep); then eddie
    and sam are demoted to viewer and invoice 2 moves from vera to eddie. A policy, filter
    or scope grant that remembered an earlier answer lets one of them through.
    """
    reset(lab)
    for username in ("vera", *DEMOTED):
        for _, _, method, route, obj, _ in cells_of(username, ROLE_OF[username]):
            probe(lab, http, username, method, route, obj)
    token_for(lab, http, "eddie", "invoices:read invoices:write")
    store = lab.state.store
    try:
        store.execute("UPDATE users SET role = 'viewer' WHERE username IN (?, ?)", DEMOTED)
        store.execute("UPDATE invoices SET owner = ? WHERE id = ?", (MOVED[1], MOVED[0]))
        seen = _after_the_change(lab, http)
        if seen is None and lab.state.is_weak("permitted"):
            # The shipped policy remembers nothing because it never looks at a role: vera
            # gets what eddie gets, so the comparison above is silent. The harm is the same.
            after = probe(lab, http, "eddie", "PATCH", "/invoices/{id}", "own")
            if after.startswith("allow"):
                seen = Observed(
                    True, None, f"eddie, demoted to viewer, edits his invoice again: {after}"
                )
    finally:
        reset(lab)  # eddie and sam have their roles back for the rows that follow
    return seen or Observed(
        False,
        None,
        "after eddie and sam became viewers and invoice 2 became eddie's, every answer followed",
    )


def _after_the_change(lab: Any, http: httpx.Client) -> Observed | None:
    """Does a demoted user get more than vera, a viewer all along? Then something remembered.

    Comparing with vera (not with the table) keeps this row about memory: a policy that is
    simply wrong for viewers answers both alike, and the matrix row names that.
    """

    def more_than_vera(username: str, method: str, route: str, obj: str) -> str | None:
        theirs = probe(lab, http, username, method, route, obj)
        hers = probe(lab, http, "vera", method, route, obj)
        crashed = next((x for x in (theirs, hers) if x.startswith("HTTP 5")), None)
        if crashed:
            return crashed
        return theirs if theirs.startswith("allow") and theirs != hers else None

    with lab.outage(PERMISSIONS):  # a role remembered "for outages" is a remembered role
        for username, method, route, obj in [
            ("eddie", "PATCH", "/invoices/{id}", "own"),
            ("sam", "GET", "/admin/users", ""),
        ]:
            seen = more_than_vera(username, method, route, obj)
            if seen and seen.startswith("HTTP 5"):
                return crashed_in_outage(f"{cell(method, route, obj)} as {username}", seen)
            if seen:
                return Observed(
                    True,
                    None,
                    f"during an outage, {username} (now a viewer) was allowed "
                    f"{cell(method, route, obj)}, which vera (a viewer all along) was not",
                )
    for username in DEMOTED:
        for _, _, method, route, obj, _ in cells_of(username, "viewer"):
            seen = more_than_vera(username, method, route, obj)
            if seen and seen.startswith("HTTP 5"):
                what = f"{cell(method, route, obj)} as {username} or vera"
                return Observed(False, int(seen.split()[1]), f"{what} answered {seen}")
            if seen:
                return Observed(
                    True,
                    None,
                    f"{username}, now a viewer, {cell(method, route, obj)}: {seen}, "
                    "more than vera (a viewer all along) gets",
                )
    moved = http.get(f"/invoices/{MOVED[0]}", headers=as_user(lab, "vera"))
    never_hers = http.get("/invoices/3", headers=as_user(lab, "vera"))
    if moved.is_success and not never_hers.is_success:
        return Observed(
            True, moved.status_code, f"vera still reads invoice {MOVED[0]}, now eddie's"
        )
    for username in DEMOTED:
        for action, owns in QUESTIONS:
            theirs = ask(lab, "permitted", live_who(lab, username), action, owns)
            if theirs and not ask(lab, "permitted", live_who(lab, "vera"), action, owns):
                return Observed(
                    True,
                    None,
                    f"asked directly, permitted() still lets {username} (now a viewer) "
                    f"{action} (owns={owns}); vera, a viewer all along, it does not",
                )
    return _scopes_after_the_change(lab, http)


def _scopes_after_the_change(lab: Any, http: httpx.Client) -> Observed | None:
    response = token_for(lab, http, "eddie", "invoices:read invoices:write")
    granted = set(str(response.json().get("scope", "")).split()) if response.is_success else set()
    if "invoices:write" not in granted:
        return None
    # A question never asked before: if it is answered right, eddie's answer was remembered.
    fresh = quietly(lab, "grant_scopes", {"invoices:write", "profile"}, set(ROLE_SCOPES["viewer"]))
    if isinstance(fresh, (set, frozenset, list, tuple)) and "invoices:write" not in fresh:
        return Observed(
            True,
            response.status_code,
            "eddie, now a viewer, was granted invoices:write: an answer from before his demotion",
        )
    return None
