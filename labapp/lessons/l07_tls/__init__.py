"""Lesson 07: TLS and mutual TLS (a messaging API whose transport is weak in six places).

The lab's app is in ``app.py``, what the grader replays in ``battery.py``.
"""

from labapp.engine.spec import Lesson
from labapp.lessons.l07_tls.app import HOOKS, create_app, network, seed, server_context
from labapp.lessons.l07_tls.battery import ATTACKS, CHECKS

LESSON = Lesson(
    id="07-tls",
    title="Lesson 07 — TLS and mutual TLS",
    notebook="07-tls-and-mtls.ipynb",
    minutes=75,
    create_app=create_app,
    seed=seed,
    hooks=HOOKS,
    attacks=ATTACKS,
    checks=CHECKS,
    tls=True,
    server_context=server_context,
    network=network,
    hints={
        "defend": (
            "on_plain_http: revoke the token if there is one, then return False (no redirect), "
            "for every request.",
            "security_headers: return {'Strict-Transport-Security': "
            "'max-age=31536000; includeSubDomains'} for every request.",
            "server_tls: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), minimum_version TLSv1_2, "
            "load_cert_chain(files.cert, files.key); no set_ciphers, no maximum_version.",
            "service_tls: the same, plus verify_mode = ssl.CERT_REQUIRED and "
            "load_verify_locations(files.ca), and no other CA.",
            "identify_service: return req.client_cert_cn; never take a name from a header.",
            "make_client: httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file))), "
            "a new one each time.",
        )
    },
    try_this="Try <code>help(lab.net)</code>: the network around the API, and what "
    "each part of it does.",
)
