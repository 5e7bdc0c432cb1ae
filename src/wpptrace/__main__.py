"""``python -m wpptrace``: the ``wpptrace`` command."""
from wpptrace.cli import command

command()
