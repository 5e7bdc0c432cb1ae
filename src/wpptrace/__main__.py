"""``python -m wpptrace``: the ``wpptrace`` command."""
import sys

from wpptrace.cli import main

sys.exit(main())
