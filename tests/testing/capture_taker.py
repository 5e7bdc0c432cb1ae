"""Run as a script with a control GUID: starts a capture of that GUID (taking it over from any
session holding it), prints its session name, and stops it once a line comes on stdin."""
import sys
import uuid

from wpptrace.testing import capture

cap = capture(uuid.UUID(sys.argv[1]))
cap.start()
print(cap.session_name, flush=True)
sys.stdin.readline()
cap.stop()
