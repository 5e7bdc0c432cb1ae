"""Decoder engine tests: make the helper modules beside this file importable."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))   # dec_dissect, dec_damage, dec_etlgen helpers
