"""``wpptrace relay``: send a live session's buffers to a collector.

    wpptrace relay SESSION --to HOST:PORT [--tls [--ca PEM] [--cert PEM --key PEM]]
                   [--max-queue N] [--max-queue-mb MB] [--linger SECONDS] [--linger-limit SECONDS]
                   [--stop-limit SECONDS]

Runs until the session stops (then the collector's file is complete) or until interrupted:
SIGINT or SIGTERM, even after the session stopped, leaves at most --stop-limit seconds to
send what is queued (30; a service manager's stop ends it promptly; what it could not
deliver is said; --stop-limit none waits as long as --linger and --linger-limit allow); a
second one gives up at once. Exit status: 0 delivered (END acknowledged, or the collector
said it has END: the source's file being closed, or the stream already ended); 1 the
session could not be opened or reading it failed (the stream ended there, the rest of the
session not read), the collector refused, or buffers were left undelivered when
the relay gave up (the collector could not be reached in time, or did not acknowledge
them); 2 bad usage; 3 every buffer delivered, but the end of the stream not confirmed when
the relay gave up (whichever of --linger, --linger-limit, --stop-limit, a second interrupt
or the collector's stop ended the wait), or the collector lost the stream before its end
(restarted: the rest went to a new file): the collector's file may lack the session's end
time and last loss counts.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import uuid
from typing import Optional

from wpptrace._cliutil import RawDescriptionHelpFormatter, complain
from wpptrace.remote.cli_options import (add_quiet, log_to_stderr, mebibytes, pem_problem,
                                         seconds)

PROG = "relay"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = RawDescriptionHelpFormatter
    parser.description = __doc__.split("\n\n", 1)[1]
    parser.add_argument("session", metavar="SESSION", help="a running real-time session")
    parser.add_argument("--to", required=True, metavar="HOST:PORT", help="the collector")
    parser.add_argument("--tls", action="store_true",
                        help="use TLS (the collector's certificate is checked)")
    parser.add_argument("--ca", metavar="PEM", help="CA certificates the collector's must chain "
                        "to (default: the system's); implies --tls")
    parser.add_argument("--cert", metavar="PEM", help="this relay's certificate (for collectors "
                        "that require one); implies --tls")
    parser.add_argument("--key", metavar="PEM", help="its private key (default: in --cert)")
    parser.add_argument("--server-name", metavar="NAME",
                        help="the name the collector's certificate must carry (default: HOST)")
    parser.add_argument("--max-queue", type=int, default=1024, metavar="N",
                        help="buffers held while the network is slow; more are dropped and "
                             "counted (default: 1024)")
    parser.add_argument("--max-queue-mb", default="64", metavar="MB",
                        help="... and MiB they take at most (one buffer at least; default: 64)")
    parser.add_argument("--linger", default="30", metavar="SECONDS",
                        help="once the session stopped (or the relay was interrupted), give "
                             "up delivering what is left after this long without progress "
                             "(default: 30)")
    parser.add_argument("--linger-limit", default="300", metavar="SECONDS",
                        help="... and at the latest this long after it (default: 300)")
    parser.add_argument("--stop-limit", default="30", metavar="SECONDS",
                        help="once interrupted (SIGINT, SIGTERM), even after the session "
                             "stopped, give up delivering what is left this long after the "
                             "interrupt, saying what was left (default: 30: within a "
                             "service manager's stop timeout; none: no limit of its own, "
                             "only --linger and --linger-limit)")
    parser.add_argument("--source-id", type=uuid.UUID, metavar="UUID",
                        help="this stream's id at the collector (default: a new one); an id "
                             "names one stream: a relay restarted during the session may reuse "
                             "it, the next session needs a new one (the collector refuses an "
                             "id whose stream ended)")
    parser.add_argument("--host-name", metavar="NAME",
                        help="the host name the collector shows: ASCII letters, digits, '.', '-' "
                             "and '_' (default: this host's, or one made from it if it "
                             "has other characters)")
    add_quiet(parser)


def _stop_limit(text: str) -> Optional[float]:
    """--stop-limit: seconds, or "none" (no limit of its own)."""
    if text.strip().lower() == "none":
        return None
    try:
        return seconds(text, "--stop-limit")
    except ValueError:
        raise ValueError(f"--stop-limit {text!r}: expected a number of seconds above 0, or "
                         f"none") from None


def run(args: argparse.Namespace) -> int:
    from wpptrace.remote.relay import Relay, parse_address
    from wpptrace.remote.tls import client_context

    log_to_stderr(PROG, args.quiet)
    try:
        address = parse_address(args.to)
    except ValueError as exc:
        complain(PROG, exc)
        return 2
    if not address[0]:
        complain(PROG, f"--to {args.to!r}: give the collector's host")
        return 2
    if args.max_queue < 1:
        complain(PROG, "--max-queue must be at least 1")
        return 2
    try:
        max_queue_mb = mebibytes(args.max_queue_mb, "--max-queue-mb")
        linger = seconds(args.linger, "--linger")
        linger_limit = seconds(args.linger_limit, "--linger-limit")
        stop_limit = _stop_limit(args.stop_limit)
    except ValueError as exc:
        complain(PROG, exc)
        return 2
    tls = None
    if args.tls or args.ca or args.cert:
        try:
            tls = client_context(args.ca, args.cert, args.key, key_option="--key PEM")
        except (OSError, ValueError) as exc:
            complain(PROG, pem_problem(exc))
            return 1
    try:
        relay = Relay(address, session=args.session, tls=tls, server_hostname=args.server_name,
                      max_queue=args.max_queue, max_queue_bytes=max_queue_mb << 20,
                      source_id=args.source_id, host=args.host_name,
                      linger=linger, linger_limit=linger_limit, stop_limit=stop_limit)
    except ValueError as exc:
        complain(PROG, f"{exc} (give another with --host-name NAME)")
        return 2
    try:
        relay.start()
    except OSError as exc:          # the session: as fmt --rt says it
        from wpptrace.provider.session_cli import live_problem

        complain(PROG, live_problem(args.session, exc))
        return 1

    def interrupted(signum, frame):
        relay.stop()

    previous = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    logging.getLogger("wpptrace.remote.relay").info(
        "%s: relaying to %s:%d (an interrupt stops reading and sends what is left, %s; a "
        "second one gives up at once)", args.session, *address,
        "within --linger-limit" if stop_limit is None else f"for at most {stop_limit:g} s")
    announced = False
    try:
        while not relay.wait(0.5):
            if relay.session_ended.is_set() and not announced:
                announced = True      # the link may still be slow: say the reading is over
                s = relay.stats
                print(f"wpptrace {PROG}: {args.session}: the session stopped; {s.buffers_read} "
                      f"buffers read, {s.relay_dropped} dropped (queue full); sending what is "
                      f"queued", file=sys.stderr, flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        relay.close()
    s = relay.stats
    final = (f" (its last buffer: {s.session_final})" if s.session_final is not None
             else "")
    print(f"wpptrace {PROG}: {args.session}: {s.buffers_read} buffers read, {s.buffers_sent} "
          f"sent, {s.relay_dropped} dropped (queue full), {s.session_lost} lost by the "
          f"session{final}, events lost {s.events_lost}; {relay.outcome}", file=sys.stderr)
    if s.session_final is None and s.session_rt_lost > s.session_lost:
        print(f"wpptrace {PROG}: the session counted {s.session_rt_lost} real-time buffers lost "
              f"(for all its consumers, as of its last query)", file=sys.stderr)
    if relay.read_failure is not None:      # what the session wrote after it is not sent
        print(f"wpptrace {PROG}: {args.session}: reading the session failed: "
              f"{relay.read_failure}; the stream was ended there, and what the session wrote "
              f"after that was not read", file=sys.stderr)
        return 1
    if relay.end_unconfirmed:
        return 3            # every buffer delivered, END's arrival not confirmed
    # ("ended: END not acknowledged ..." and "stopped: ..." left no buffer undelivered)
    delivered = (relay.outcome or "").split(":", 1)[0] in ("ended", "stopped")
    return 0 if delivered else 1
