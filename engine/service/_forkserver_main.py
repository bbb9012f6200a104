"""Preloaded by the fingerprinting forkserver (`engine.service.sandbox`): makes its children skip re-running the
parent's main script.

multiprocessing re-imports the parent's `__main__` file in every child it starts, unless the child's `__main__`
already has that `__file__`. The children need nothing from it, and for `fpscreen` it means importing the whole
CLI again for every job; pointing the server's `__main__.__file__` at the same path makes each fork skip it.
(`set_forkserver_preload(["__main__"])` is meant to do this, but CPython 3.11 never passes the main path on.)
"""

from __future__ import annotations

import os
import sys

MAIN_PATH_ENV = "FPSCREEN_FORKSERVER_MAIN_PATH"

_main_path = os.environ.get(MAIN_PATH_ENV)
if _main_path:
    sys.modules["__main__"].__file__ = _main_path
