"""``python -m wpptrace``: the ``wpptrace`` command."""
import sys

from wpptrace.cli import entry

sys.exit(entry())
