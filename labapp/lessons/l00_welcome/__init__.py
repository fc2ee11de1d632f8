"""Lesson 00: welcome, and threat modeling (a bookshop API to explore and inventory).

The lab's app is in ``app.py``, what the grader replays in ``battery.py``.
"""

from labapp.engine.spec import Lesson, Quiz
from labapp.lessons.common import IDENTITY
from labapp.lessons.l00_welcome.app import create_app, seed
from labapp.lessons.l00_welcome.battery import grade_classification

LESSON = Lesson(
    id="00-welcome",
    title="Lesson 00 — Welcome and threat modeling",
    notebook="00-welcome-threat-modeling.ipynb",
    minutes=30,
    create_app=create_app,
    seed=seed,
    dependencies=(IDENTITY,),
    quizzes=(
        Quiz(
            "classify",
            "classify every route: asset, changes_state, who",
            (
                "Everything you need is in the route list printed above: each route's method, "
                "its path and its summary. Start with the routes you would use as a shopper, "
                "then look at what /admin and /metrics have in common.",
                "Threat modeling starts by modeling the system: what it holds and who can reach "
                "it (OWASP Threat Modeling Cheat Sheet, 'System Modeling'; an API without that "
                "inventory is OWASP API Security Top 10 2023 API9:2023 Improper Inventory "
                "Management). For changes_state, RFC 9110 §9.2.1 "
                "defines the safe methods: which of the four methods here is one? For who, ask "
                "whose work would stop if the route vanished: a visitor browsing, a signed-in "
                "customer, an admin, or the monitoring system.",
                "1. asset: from the path's first meaningful word (books: catalogue; cart and "
                "orders: orders; account and users: accounts; health and metrics: "
                "operations).\n"
                "2. changes_state: True for every method but GET.\n"
                "3. who: admin under /admin/, service for /metrics, anyone for /health and the "
                "books, customer for the rest.\n"
                "```python\n"
                'ASSET = {"books": "catalogue", "cart": "orders", "orders": "orders",\n'
                '         "account": "accounts", "users": "accounts",\n'
                '         "health": "operations", "metrics": "operations"}\n'
                'FOR_ANYONE = {"/health", "/books", "/books/{book_id}"}\n'
                "answer = {}\n"
                'for route, methods in lab.client.get("/openapi.json").json()["paths"].items():\n'
                '    words = [word for word in route.split("/") if word in ASSET]\n'
                "    for method in methods:\n"
                '        answer[f"{method.upper()} {route}"] = {\n'
                '            "asset": ASSET[words[0]],\n'
                '            "changes_state": method != "get",\n'
                '            "who": "admin" if route.startswith("/admin/")\n'
                '            else "service" if route == "/metrics"\n'
                '            else "anyone" if route in FOR_ANYONE else "customer",\n'
                "        }\n"
                'classification = answer\nlab.check_answer("classify", classification)\n'
                "```",
            ),
            grade_classification,
        ),
    ),
    try_this="Try <code>lab.client.get('/books')</code>, then "
    "<code>lab.client.get('/orders')</code> — and read <code>lab.audit()</code>.",
)
