"""Lesson 04's figure: a real token's three parts, coloured, with what each one says.

Drawn with matplotlib from a token the lab really issued; nothing is committed as an image.
"""

from __future__ import annotations

import base64
import json
import textwrap
from typing import Any

PARTS = (  # colour, name, what it is
    ("#c0392b", "header", "how it was signed, with which key (kid): readable by anyone"),
    ("#8e44ad", "payload", "the claims: who, for whom, until when; readable by anyone"),
    ("#2471a3", "signature", "RSA over header.payload: only the issuer's private key makes it"),
)
WIDTH = 96  # characters of token per row
FONT = 8.5  # points


def _decoded(part: str) -> str:
    data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    return json.dumps(json.loads(data), separators=(", ", ": "))


def plot_token_parts(token: str) -> Any:
    """Draw ``token`` (a compact JWS) in rows, each part in its colour, and what it holds.

    Returns the matplotlib Figure (a notebook shows it; tests close it).
    """
    import matplotlib.pyplot as plt  # imported here: the lab itself never needs matplotlib

    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a compact JWS has three parts separated by two dots")
    # (part index or None for a dot, character) for every character of the token
    tagged = []
    for index, part in enumerate(parts):
        tagged += [(index, char) for char in part]
        if index < 2:
            tagged.append((None, "."))
    rows = [tagged[i : i + WIDTH] for i in range(0, len(tagged), WIDTH)]
    notes = [
        textwrap.fill(_decoded(parts[0]), 110),
        textwrap.fill(_decoded(parts[1]), 110),
        f"{len(base64.urlsafe_b64decode(parts[2] + '==='))} bytes",
    ]
    note_lines = sum(note.count("\n") + 2 for note in notes)
    height = len(rows) + note_lines + 1
    fig = plt.figure(figsize=(9, 0.19 * height + 0.4))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    # x in characters: a monospaced glyph is 0.6 em wide (DejaVu Sans Mono: 1233/2048).
    ax.set_xlim(0, fig.get_figwidth() * 0.98 * 72 / (0.602 * FONT))
    ax.set_ylim(height, 0)
    ax.axis("off")
    style = {"family": "monospace", "size": FONT, "va": "center", "ha": "left"}
    for y, row in enumerate(rows, start=1):
        # One text per part per row, other characters blanked: every run starts exactly
        # where a monospaced font puts it, whatever the renderer rounds glyph widths to.
        for index in (0, 1, 2, None):
            text = "".join(char if part == index else " " for part, char in row)
            if text.strip():
                colour = "black" if index is None else PARTS[index][0]
                ax.text(1, y, text, color=colour, weight="bold", **style)
    y = len(rows) + 1.5
    for (colour, name, meaning), note in zip(PARTS, notes, strict=True):
        ax.text(1, y, f"{name}: {meaning}", color=colour, weight="bold", **style)
        ax.text(3, y + 0.6, note, color=colour, **{**style, "va": "top"})
        y += note.count("\n") + 2
    return fig
