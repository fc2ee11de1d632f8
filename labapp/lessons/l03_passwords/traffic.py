"""The requests lesson 03's grader sends: logins, fresh accounts, "new clients", bursts.

Attack rows work on accounts the grader makes for itself (fresh names every run), so a
grade locks nobody a learner or a later grade needs.
"""

from __future__ import annotations

import secrets
import threading
import unicodedata
from typing import Any

import httpx

# Headers a client writes and a throttle might (wrongly) count under: addresses proxies
# would add, and whatever identifies "a client" (OWASP Authentication Cheat Sheet: count
# failures per account, not per anything the client controls).
CLIENT_HEADERS = (
    "X-Forwarded-For", "X-Real-IP", "True-Client-IP", "Forwarded", "X-Client-IP",
    "X-Cluster-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP", "X-Originating-IP",
    "Client-IP", "X-Forwarded-Host", "Host", "Via", "User-Agent", "Cookie", "Origin",
    "Referer", "Accept-Language", "X-Request-ID", "X-Device-ID",
)  # fmt: skip
# Headers that describe the message, not the client: forging them breaks the request.
FRAMING = {"content-length", "transfer-encoding", "connection", "expect", "te", "upgrade"}


def user_agent(tag: str) -> str:
    """What a real browser or the shop's app sends, its versions drawn from ``tag``.

    Each "new client" looks like one (Chrome, Firefox, Safari on an iPhone, the Android
    app), and they mostly differ, so a throttle keyed on User-Agent splits its count.
    """
    a, b = int(tag[:4], 16), int(tag[4:], 16)
    systems = (
        "Windows NT 10.0; Win64; x64",
        "Macintosh; Intel Mac OS X 10.15",
        "X11; Linux x86_64",
    )
    firefox = 115 + a % 26
    return (
        f"Mozilla/5.0 ({systems[a % 3]}) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{120 + a % 20}.0.{6000 + a % 900}.{b % 200} Safari/537.36",
        f"Mozilla/5.0 ({systems[b % 3]}; rv:{firefox}.0) Gecko/20100101 Firefox/{firefox}.0",
        f"Mozilla/5.0 (iPhone; CPU iPhone OS {16 + a % 3}_{b % 7} like Mac OS X) "
        f"AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{16 + a % 3}.{b % 7} "
        "Mobile/15E148 Safari/604.1",
        f"ShopApp/4.{a % 40}.{b % 30} (Android {12 + a % 3}; Pixel {6 + b % 4}) okhttp/4.12.0",
    )[b % 4]


def new_client(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Every header a client can write, with values no earlier request used."""
    ip = f"203.0.113.{secrets.randbelow(254) + 1}"
    tag = secrets.token_hex(4)
    values = {
        "x-forwarded-for": f"{ip}, 10.{secrets.randbelow(256)}.0.7",
        "forwarded": f"for={ip}",
        "host": f"shop-{tag}.example",
        "via": f"1.1 proxy-{tag}",
        "user-agent": user_agent(tag),
        "cookie": f"device={tag}",
        "origin": f"https://{tag}.example",
        "referer": f"https://{tag}.example/login",
        "accept-language": secrets.choice(("en-GB", "fr-FR", "de-DE", "pt-BR")),
        "content-type": f"application/json; client={tag}",
    }
    names = [*CLIENT_HEADERS, *(n for n in extra if n.lower() not in FRAMING)]
    return {name: values.get(name.lower(), ip if "ip" in name.lower() else tag) for name in names}


def login(
    http: httpx.Client,
    username: str,
    password: str,
    route: str = "/login",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return http.post(route, json={"username": username, "password": password}, headers=headers)


def accepted(response: httpx.Response) -> bool:
    return response.status_code == 200 and "token" in response.json()


def register(http: httpx.Client, password: str = "") -> tuple[str, str]:
    """A fresh account of the grader's own, registered through the API (hash_password)."""
    username, password = f"grader-{secrets.token_hex(5)}", password or secrets.token_urlsafe(12)
    response = http.post("/register", json={"username": username, "password": password})
    if response.status_code != 201:
        raise RuntimeError(f"POST /register answered {response.status_code}: {response.text}")
    return username, password


def insert(lab: Any, stored_for: Any, prefix: str, password: str = "") -> tuple[str, str]:
    """An account from before the defense, with a hash made by ``stored_for(password)``."""
    username, password = f"{prefix}-{secrets.token_hex(5)}", password or secrets.token_urlsafe(12)
    lab.store.add_secret(password)
    lab.store.execute(
        "INSERT INTO accounts VALUES (?, ?, 'customer', '2016-01-01')",
        (username, stored_for(password)),
    )
    return username, password


def stored(lab: Any, username: str) -> str:
    row = lab.store.one("SELECT password_hash FROM accounts WHERE username = ?", (username,))
    return row["password_hash"] if row else ""


def burst(http: httpx.Client, requests: list[dict[str, Any]]) -> list[httpx.Response]:
    """Send the logins all at once, one thread and one connection each; answers in order."""
    answers: list[Any] = [None] * len(requests)
    gate = threading.Barrier(len(requests))

    def send(i: int) -> None:
        try:
            gate.wait(timeout=10)
            answers[i] = login(http, **requests[i])
        except Exception as exc:  # noqa: BLE001 - handed to the row below
            answers[i] = exc

    threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for answer in answers:
        if not isinstance(answer, httpx.Response):
            raise answer if isinstance(answer, Exception) else TimeoutError("a request hung")
    return answers


def passphrase() -> str:
    """A password any normaliser would change: cases, spaces, accents, a fullwidth letter.

    About 340 characters, so a truncation at 64, 72 (bcrypt's bytes), 128 or 256 shows. It
    starts and ends with a space, so trimming it when hashing, when verifying, or both, shows.
    """
    words = [secrets.token_urlsafe(9) for _ in range(24)]
    return " Correct Horse  " + " ".join(words) + " café Ｋey-Ü "


def first_letter_flipped(password: str) -> str:
    """``password`` with the case of its first letter (not its first character) changed."""
    i = next((i for i, c in enumerate(password) if c.swapcase() != c), 0)
    return password[:i] + password[i : i + 1].swapcase() + password[i + 1 :]


def variants(password: str) -> list[tuple[str, str]]:
    """(how it differs, a password that is not ``password``) for a non-exact comparison."""
    return [
        ("in swapped case", password.swapcase()),
        ("with its first letter's case changed", first_letter_flipped(password)),
        ("without its leading and trailing spaces", password.strip()),
        ("with a space before and after", f" {password} "),
        ("with a newline after", password + "\n"),
        ("one character short", password[:-1]),
        ("one character longer", password + "!"),
        ("with a NUL and more after it", password + "\x00more"),
        ("in Unicode's decomposed form (NFD)", unicodedata.normalize("NFD", password)),
        ("with its fullwidth Ｋ as K (NFKC)", password.replace("Ｋ", "K")),
        ("with its double space made single", password.replace("  ", " ")),
        ("without its non-ASCII letters", password.encode("ascii", "ignore").decode()),
        ("without its spaces", password.replace(" ", "")),
    ]
