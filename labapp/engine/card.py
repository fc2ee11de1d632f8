"""The card a notebook shows for a lab: its URL, users, endpoints, hooks and exercises."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labapp.engine.lab import Lab


def card_html(lab: Lab) -> str:
    e = html.escape
    if lab.stopped:
        return f"<p><b>{e(lab.lesson.title)}</b>: stopped.</p>"
    routes = sorted(
        (",".join(sorted(getattr(r, "methods", []) - {"HEAD"})), r.path)
        for r in lab.server.app.routes
        if getattr(r, "include_in_schema", False)
    )
    route_items = "".join(f"<li><code>{e(m)} {e(p)}</code></li>" for m, p in routes)
    columns = list(dict.fromkeys(key for user in lab.users for key in user))
    user_head = "".join(f"<th>{e(c)}</th>" for c in columns)
    user_rows = "".join(
        "<tr>"
        + "".join(f"<td><code>{e(str(user.get(c, '')))}</code></td>" for c in columns)
        + "</tr>"
        for user in lab.users
    )
    exercises = ", ".join(
        [f"flag <code>{e(n)}</code>" for n in lab.lesson.flag_names]
        + [f"quiz <code>{e(q.id)}</code>" for q in lab.lesson.quizzes]
        + [f"hook <code>{e(h.name)}</code>" for h in lab.lesson.hooks]
    )
    hooks = "".join(
        f"<li><code>{e(h.name)}({e(', '.join(h.params))})</code>: "
        f"{e((h.doc or '').strip().splitlines()[0] if h.doc else '')}</li>"
        for h in lab.lesson.hooks
    )
    hook_list = (
        f"<details><summary>Hooks you can replace ({len(lab.lesson.hooks)})</summary>"
        f"<ul>{hooks}</ul></details>"
        if hooks
        else ""
    )
    tls_note = f"; HTTPS, CA in lab.ca_file = {lab.ca_file}" if lab.ca_file else ""
    return (
        f"<div style='border:1px solid #888;border-radius:6px;padding:8px 12px'>"
        f"<b>🧪 {e(lab.lesson.title)}</b> — running at <code>{e(lab.url)}</code> "
        f"(loopback only{e(tls_note)})<br>"
        f"API docs: <a href='{e(lab.docs_url)}' target='_blank'>{e(lab.docs_url)}</a><br>"
        f"<details><summary>Seeded users</summary><table><tr>{user_head}</tr>{user_rows}"
        f"</table></details>"
        f"<details><summary>Endpoints ({len(routes)})</summary><ul>{route_items}</ul></details>"
        f"{hook_list}"
        f"<p>Exercises: {exercises}</p>"
        f"<p>{lab.lesson.try_this}</p></div>"
    )
