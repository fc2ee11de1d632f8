"""Lesson 10's world: a geo table over documentation addresses, time zones, the seeded people.

Every address is from a range reserved for documentation (RFC 5737: 192.0.2.0/24,
198.51.100.0/24, 203.0.113.0/24), so nothing here names a real network. The "geo table"
splits them into twelve blocks of 64, one country each: a stand-in for a GeoIP database.
"""

from __future__ import annotations

import ipaddress

from argon2 import PasswordHasher

# Lesson 03 teaches the real parameters (OWASP: m=19 MiB, t=2, p=1, ~16 ms a verify here).
# This lab replays a whole day of logins in about a second, so it hashes at t=1, m=1 MiB
# (~0.4 ms a verify): fine for a replay on loopback, never for a real service.
HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

RANGES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
COUNTRIES = ("NL", "US", "JP", "BR", "DE", "CA", "AU", "IN", "FR", "SG", "ZA", "MX")

# Three regions, the countries in each, and their offset from UTC in hours (no daylight
# saving: the lab's day is in November and the offsets are fixed for the whole day).
REGIONS = {
    "europe": (("NL", "DE", "FR"), 1),
    "americas": (("US", "CA", "MX"), -5),
    "asia-pacific": (("JP", "SG", "AU"), 9),
}
ZONE_OF = {country: offset for countries, offset in REGIONS.values() for country in countries}


def _blocks() -> list[tuple[ipaddress.IPv4Network, str]]:
    nets = [
        sub
        for text in RANGES
        for sub in ipaddress.ip_network(text).subnets(new_prefix=26)  # 64 addresses each
    ]
    return list(zip(nets, COUNTRIES, strict=True))


BLOCKS = _blocks()


def country(address: str) -> str:
    """The country of ``address`` in the lab's geo table; "??" for any other address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "??"
    for net, name in BLOCKS:
        if ip in net:
            return name
    return "??"


def addresses(name: str) -> list[str]:
    """Every usable address of a country's block (network and broadcast left out)."""
    for net, country_name in BLOCKS:
        if country_name == name:
            return [str(host) for host in net.hosts()]
    raise KeyError(name)


# The people of the lab you explore: (username, role, password, country, totp required).
# carol is the admin: her password is not given to you, and her account always asks for a
# TOTP code. Sam (support) may read the service's recent log at /admin/logs.
PEOPLE = (
    ("alice", "customer", "correct horse battery staple", "NL", False),
    ("bob", "customer", "hunter2 but longer", "US", False),
    ("sam", "support", "support desk 2026", "DE", False),
    ("carol", "admin", "carol's own long passphrase", "JP", True),
)
