"""Looking inside the learner's TLS objects, for the rules no handshake can show.

A server whose minimum_version says TLS 1.0 may still refuse a TLS 1.0 client today,
because OpenSSL 3's default security level rejects the old handshake's signatures; the
setting is wrong all the same, and the next OpenSSL build or configuration lets it through.
A client that trusts every public CA as well as the course CA refuses the lab's impostors
(the lab cannot get a certificate from a public CA), yet would hand its token to anyone who
can. So these rows read the objects themselves: the context's version floor, its cipher
list, the CA certificates in its trust store.
"""

from __future__ import annotations

import datetime
import functools
import os
import re
import ssl
import tempfile
import warnings
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from labapp.engine.loopback import LAB_HOST

_NO_OPTION = (  # an OP_NO_* option raises the floor of a context that allows that version
    (ssl.TLSVersion.SSLv3, ssl.OP_NO_SSLv3, ssl.TLSVersion.TLSv1),
    (ssl.TLSVersion.TLSv1, ssl.OP_NO_TLSv1, ssl.TLSVersion.TLSv1_1),
    (ssl.TLSVersion.TLSv1_1, ssl.OP_NO_TLSv1_1, ssl.TLSVersion.TLSv1_2),
)


def version_floor(context: ssl.SSLContext) -> ssl.TLSVersion:
    """The oldest version ``context`` would negotiate, as configured (not as OpenSSL's
    security level happens to allow today)."""
    floor = context.minimum_version
    if floor == ssl.TLSVersion.MINIMUM_SUPPORTED:
        floor = ssl.TLSVersion.SSLv3
    for version, option, following in _NO_OPTION:
        if floor == version and context.options & option:
            floor = following
    return floor


def weak_suites(context: ssl.SSLContext) -> list[str]:
    """TLS 1.2 suites in the context's list with NULL encryption, no authentication (anon)
    or a SHA-1 MAC (RFC 9325 §4.1; OWASP TLS Cheat Sheet, "Only Support Strong Ciphers")."""
    weak = []
    for suite in context.get_ciphers():
        name = suite["name"]
        if suite.get("protocol") == "TLSv1.3":
            continue  # TLS 1.3 has no weak suites to offer
        anonymous = suite.get("auth") == "auth-null" or name.startswith(("ADH-", "AECDH-"))
        if "NULL" in name.split("-") or anonymous or suite.get("digest") == "sha1":
            weak.append(name)
    return weak


def client_contexts(client: Any) -> list[ssl.SSLContext] | None:
    """The SSL contexts an httpx 0.28 Client uses: each transport's pool's ``_ssl_context``.

    None when a transport keeps no context where httpx's own HTTPTransport does (a custom
    transport): the grader cannot look, and says so.
    """
    transports = [client._transport, *(t for t in client._mounts.values() if t is not None)]
    found = []
    for transport in transports:
        context = getattr(getattr(transport, "_pool", None), "_ssl_context", None)
        if not isinstance(context, ssl.SSLContext):
            return None
        found.append(context)
    return found


def extra_trust(context: ssl.SSLContext, ca_file: Path, *, server_side: bool) -> list[str]:
    """The certificates ``context`` trusts besides those in ``ca_file``, by name.

    A store read from a directory (``capath``, as Debian's default store is) loads each
    certificate only when a handshake asks for its subject, so ``get_ca_certs()`` shows
    nothing yet: one throwaway handshake in memory asks for a subject that directory holds.
    """
    _ask_the_directory(context, server_side)
    ours = {ssl.PEM_cert_to_DER_cert(pem) for pem in _PEM.findall(ca_file.read_text())}
    names = []
    # The same store, read twice in the same order: DER to compare, OpenSSL's parse to name
    # (cryptography warns about some system CAs' encodings; OpenSSL does not).
    for der, info in zip(context.get_ca_certs(True), context.get_ca_certs(), strict=True):
        if der not in ours:
            names.append(_name(info))
    stats = context.cert_store_stats()
    loose = stats.get("x509", 0) - stats.get("x509_ca", 0)  # get_ca_certs() skips non-CAs
    if loose > 0:
        names.append(f"{loose} non-CA certificate(s)")
    return names


_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def _name(info: dict[str, Any]) -> str:
    fields = dict(pair for rdn in info.get("subject", ()) for pair in rdn)
    return str(fields.get("commonName") or fields.get("organizationName") or "a CA")


@functools.cache
def _lookalike() -> tuple[ssl.SSLContext, ssl.SSLContext] | None:
    """A server and a client context presenting a certificate that names a CA of the system
    store as its issuer (and is signed by a key of ours): verifying it makes OpenSSL look that
    subject up in the store's directory. None when the system store has no directory."""
    folder = ssl.get_default_verify_paths().capath
    issuer = None
    if folder:
        for entry in sorted(os.listdir(folder)):
            if re.fullmatch(r"[0-9a-f]{8}\.\d+", entry):
                with warnings.catch_warnings():  # some system CAs' encodings draw a warning
                    warnings.simplefilter("ignore")
                    pem = Path(folder, entry).read_bytes()
                    issuer = x509.load_pem_x509_certificate(pem).subject
                break
    if issuer is None:
        return None
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lookalike")]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(LAB_HOST)]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    with tempfile.TemporaryDirectory() as folder_:
        path = Path(folder_, "lookalike.pem")
        path.write_bytes(pem)
        server.load_cert_chain(path)
        client.load_cert_chain(path)
    return server, client


def _ask_the_directory(context: ssl.SSLContext, server_side: bool) -> None:
    lookalike = _lookalike()
    if lookalike is None:
        return
    ours, theirs = lookalike
    if server_side:  # the learner's server verifies our client certificate
        client, server = theirs, context
    else:  # the learner's client verifies our server certificate
        client, server = context, ours
    _handshake_in_memory(client, server)


def _handshake_in_memory(client: ssl.SSLContext, server: ssl.SSLContext) -> None:
    """Run a handshake between two contexts through memory buffers; its outcome is ignored."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    sides = [
        client.wrap_bio(c_in, c_out, server_hostname=LAB_HOST),
        server.wrap_bio(s_in, s_out, server_side=True),
    ]
    done = [False, False]
    for _ in range(10):
        for i, side in enumerate(sides):
            if done[i]:
                continue
            try:
                side.do_handshake()
                done[i] = True
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLError, ValueError):
                return  # refused, as expected: the lookup has happened by now
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done):
            return
