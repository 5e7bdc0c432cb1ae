"""A service-like application for the operator tests: a WPP provider registered at start,
tracing off until a session enables it, serving "requests" until its stdin closes.

    python service_app.py
Prints "ready" once registered, then handles a request every 20 ms.
"""
import sys
import threading
import time

from wpptrace.provider.tracing import Provider

trace = Provider("ShopService", guid="4f1d2c3b-5a69-4788-9aab-bccdde0f1021", flags=("REQUEST", "DB"))
REQUEST = trace.flags.REQUEST

done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
print("ready", flush=True)
number = 0
while not done.is_set():
    number += 1
    trace.info(REQUEST, "request %d served in %d ms", number, number % 7)
    time.sleep(0.02)
