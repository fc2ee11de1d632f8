"""Running solutions/ on its own (``pytest solutions/...``): progress goes to a temp file.

tests/conftest.py does the same when ``tests`` is collected too (as ``make test`` does); the
kernels nbval starts inherit the variable. Without it, a solution run would record its flags
in the repository's own progress file.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

if not os.environ.get("LABAPP_PROGRESS"):
    _folder = tempfile.mkdtemp(prefix="labapp-solutions-progress-")
    os.environ["LABAPP_PROGRESS"] = str(Path(_folder) / ".labapp-progress.json")
    atexit.register(shutil.rmtree, _folder, ignore_errors=True)
