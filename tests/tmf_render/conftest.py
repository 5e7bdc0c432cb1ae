"""The rendering tests' helpers (golden_traces) are imported as plain modules from this folder."""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
