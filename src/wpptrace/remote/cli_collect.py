"""``wpptrace collect``: accept relays, write one .etl per source and/or decode them live.

    wpptrace collect --listen [HOST:]PORT [-o DIR] [--rt -p TMFDIR]
                     [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM [--allow NAME]]]
                     [--insecure-listen] [--max-file-mb MB] [--max-total-mb MB]
                     [--max-queued-per-source-mb MB] [--max-queued-mb MB]
                     [--write-timeout SECONDS]

A port alone listens on this host only (127.0.0.1). An address other hosts reach takes TLS
(--tls-cert), or --insecure-listen to accept relays nobody authenticates, unencrypted.

Files are named HOST_SESSION_ID.etl (never over an existing file); the live view prints
each message as ``[SESSION@HOST] <tracefmt line>``. Runs until interrupted, or until
``--sources N`` streams have ended. Exit status: 0, 1 could not listen or read the TMF/TLS
files (or, at exit, could not close every connection and file in time, or a second
interrupt cut that wait short), 2 bad usage.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from wpptrace._cliutil import RawDescriptionHelpFormatter, complain, reason
from wpptrace.remote.cli_options import (add_quiet, log_to_stderr, mebibytes, pem_problem,
                                         seconds)

PROG = "collect"
#: seconds the collector has at exit to close every connection and file (then exit status 1)
STOP_WAIT = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from wpptrace.remote.collector import QUEUED_PER_SOURCE    # (the library's one value)

    parser.formatter_class = RawDescriptionHelpFormatter
    parser.description = __doc__.split("\n\n", 1)[1]
    parser.add_argument("--listen", required=True, metavar="[HOST:]PORT",
                        help="where relays connect (no HOST: 127.0.0.1, this host only)")
    parser.add_argument("--insecure-listen", action="store_true",
                        help="allow --listen on an address other hosts reach without TLS: "
                             "anyone who reaches it can send traces (one warning line)")
    parser.add_argument("-o", "--output-dir", metavar="DIR",
                        help="write one .etl per source here (made private if missing; its "
                             "parent must exist)")
    parser.add_argument("--rt", action="store_true", help="print every source's messages live")
    parser.add_argument("-p", "--tmf-path", action="append", default=[], metavar="DIR",
                        help="TMF directory for --rt (repeatable)")
    parser.add_argument("--tmf", action="append", default=[], metavar="FILE",
                        help="TMF file for --rt (repeatable)")
    parser.add_argument("--utc", action="store_true", help="--rt times in UTC")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate")
    parser.add_argument("--tls-key", metavar="PEM", help="its private key (default: in --tls-cert)")
    parser.add_argument("--tls-client-ca", metavar="PEM",
                        help="require relay certificates signed by this CA")
    parser.add_argument("--allow", action="append", metavar="NAME",
                        help="admit only relay certificates with this CN or DNS name (repeatable)")
    parser.add_argument("--max-connections", type=int, default=64, metavar="N",
                        help="relays connected at once (default: 64)")
    parser.add_argument("--max-per-address", type=int, default=16, metavar="N",
                        help="of which from one host (default: 16)")
    parser.add_argument("--max-per-network", type=int, metavar="N",
                        help="of which from one IPv6 /64 network (default: half of "
                             "--max-connections, at least --max-per-address)")
    parser.add_argument("--max-buffer-kb", type=int, default=1024, metavar="KB",
                        help="largest buffer size accepted (default: 1024)")
    parser.add_argument("--resume-window", type=float, default=300.0, metavar="SECONDS",
                        help="how long a lost relay may come back and resume (default: 300)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="close a connection silent (or not reading) this long "
                             "(default: 60)")
    parser.add_argument("--max-file-mb", default="16384", metavar="MB",
                        help="MiB written to one source's file at most; past it the source is "
                             "refused (ERROR_DISK_FULL) and its file kept, readable "
                             "(default: 16384, 16 GiB)")
    parser.add_argument("--max-total-mb", default="65536", metavar="MB",
                        help="MiB written to all the files together at most; past it new "
                             "sources, and buffers, are refused (ERROR_DISK_FULL) "
                             "(default: 65536, 64 GiB)")
    parser.add_argument("--max-queued-per-source-mb", metavar="MB",
                        help="MiB of one source's buffers received and not yet written; past "
                             "it its connection is not read until its disk catches up "
                             f"(default: {QUEUED_PER_SOURCE / (1 << 20):g}, or "
                             f"--max-queued-mb if less)")
    parser.add_argument("--max-queued-mb", default="64", metavar="MB",
                        help="the same for all sources together (default: 64)")
    parser.add_argument("--write-timeout", default="60", metavar="SECONDS",
                        help="fail a source whose disk finishes no write for this long "
                             "while it has buffers to write: its relay keeps them and "
                             "retries, and the other sources go on (at least 1; "
                             "default: 60)")
    parser.add_argument("--sources", type=int, metavar="N",
                        help="exit once N streams have ended")
    add_quiet(parser)


def run(args: argparse.Namespace) -> int:
    from wpptrace.remote.collector import Collector, check_allow, is_loopback
    from wpptrace.remote.relay import parse_address
    from wpptrace.remote.tls import server_context

    log_to_stderr(PROG, args.quiet)
    try:
        listen = parse_address(args.listen, default_host="127.0.0.1")
    except ValueError as exc:
        complain(PROG, exc)
        return 2
    if (args.max_connections < 1 or args.max_per_address < 1
            or (args.max_per_network is not None and args.max_per_network < 1)):
        complain(PROG, "--max-connections, --max-per-address and --max-per-network must be "
                       "at least 1")
        return 2
    try:
        in_all = mebibytes(args.max_queued_mb, "--max-queued-mb")
        per_source = (None if args.max_queued_per_source_mb is None else   # (the library's)
                      mebibytes(args.max_queued_per_source_mb, "--max-queued-per-source-mb"))
        write_timeout = seconds(args.write_timeout, "--write-timeout", least=1.0)
        max_file = mebibytes(args.max_file_mb, "--max-file-mb")
        max_total = mebibytes(args.max_total_mb, "--max-total-mb")
    except ValueError as exc:
        complain(PROG, exc)
        return 2
    if per_source is not None and per_source > in_all:
        complain(PROG, f"--max-queued-per-source-mb {per_source} is more than --max-queued-mb "
                       f"{in_all}, the bound of all sources together")
        return 2
    if args.output_dir is None and not args.rt:
        complain(PROG, "give -o DIR (files), --rt (live view) or both")
        return 2
    if args.sources is not None and args.sources < 1:   # (0 or less: it would never exit)
        complain(PROG, f"--sources {args.sources}: expected a number of streams, at least 1")
        return 2
    if args.tls_client_ca and not args.tls_cert:
        complain(PROG, "--tls-client-ca needs --tls-cert PEM: relay certificates are checked "
                       "only over TLS")
        return 2
    insecure = not args.tls_cert and not is_loopback(listen[0])
    if insecure and not args.insecure_listen:
        complain(PROG, f"--listen {args.listen}: other hosts could send traces without TLS and "
                       f"unauthenticated; give --tls-cert PEM (with --tls-client-ca PEM to "
                       f"admit only relays with a certificate), or --insecure-listen to listen "
                       f"so anyway")
        return 2
    allow = set(args.allow) if args.allow else None
    tls = None
    if args.tls_cert:
        try:
            tls = server_context(args.tls_cert, args.tls_key, args.tls_client_ca, key_option="--tls-key PEM")
        except (OSError, ValueError) as exc:
            complain(PROG, pem_problem(exc))
            return 1
    try:
        check_allow(allow, tls)
    except ValueError:
        complain(PROG, "--allow needs --tls-cert with --tls-client-ca, the CA that signs the "
                       "relays' certificates: without it no relay is asked for a certificate, "
                       "so no name could be allowed")
        return 2
    live = None
    if args.rt:
        from wpptrace.remote.liveview import LiveView

        tmfset = _load_tmfs(args)
        if tmfset is None:
            return 1
        # (the views of open sources are bounded by the collector's bound on its sources;
        # of closed ones whose output lags, each keeps a thread and a header buffer)
        live = LiveView(tmfset, sys.stdout, utc=args.utc, max_views=args.max_connections)
    if insecure:
        complain(PROG, f"listening on {args.listen} without TLS: anyone who reaches it can "
                       f"send traces")
    ended = 0       # a count, not the list: a collector may run for weeks
    # the signal handler and on_end only ask for the stop: the one bounded stop() below runs
    # in this thread (a handler that waited in stop() would hold up the main loop, and on_end
    # runs in the collector's own thread, which stop() cannot wait for)
    stopping = threading.Event()

    def on_end(stats):
        nonlocal ended
        ended += 1
        if args.sources and ended >= args.sources:
            stopping.set()

    try:
        collector = Collector(listen, output_dir=args.output_dir, live=live, tls=tls,
                              allow=allow,
                              max_connections=args.max_connections,
                              max_per_address=args.max_per_address,
                              max_per_network=args.max_per_network,
                              max_buffer_size=args.max_buffer_kb * 1024, timeout=args.timeout,
                              resume_window=args.resume_window,
                              max_queued_per_source=None if per_source is None else per_source << 20,
                              max_queued=in_all << 20,
                              max_file_size=max_file << 20,
                              max_total_size=max_total << 20,
                              write_timeout=write_timeout, on_source_end=on_end)
    except OSError as exc:          # the output directory (the collector's only file so far)
        complain(PROG, f"{args.output_dir}: {reason(exc, args.output_dir)}")
        return 1
    try:
        collector.start()
    except OSError as exc:
        complain(PROG, f"cannot listen on {args.listen}: {exc}")
        return 1
    # a signal sets a plain flag: Event.set takes a lock, which a second signal arriving
    # inside the first handler's set() would wait for forever (handlers nest in one thread)
    signalled: list[int] = []
    ask_stop = lambda signum, frame: signalled.append(signum)  # noqa: E731
    previous = {sig: signal.signal(sig, ask_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    abandoned = None
    try:
        while not (collector.wait(0.5) or signalled or stopping.is_set()):
            pass
    finally:
        try:
            abandoned = _stop(collector, signalled)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 1 if abandoned else 0


def _load_tmfs(args: argparse.Namespace):
    """The live view's TMFs, read and reported as fmt reads and reports them; None (said on
    stderr) when a TMF path cannot be used: nothing is listened on."""
    from wpptrace.decoder.cli_fmt import FmtOptions, load_tmfs, report_tmf_issues

    opts = FmtOptions(tmf_files=args.tmf, tmf_dirs=args.tmf_path, prog=f"wpptrace {PROG}")
    tmfset, problems, _usable = load_tmfs(opts, sys.stderr, options="-p DIR, --tmf FILE")
    # the files read now (a directory's are read as met)
    report_tmf_issues(tmfset.issues, sum(tmfset.issues_dropped.values()), opts.prog, sys.stderr)
    return None if problems else tmfset


def _stop(collector, signalled: list[int]):
    """The collector's bounded stop (what it left, or None); a signal while it waits cuts
    the wait short: the user asked again. The stop waits in a thread of its own: a join
    that a signal handler interrupted would take a live thread for finished."""
    asked = len(signalled)
    outcome: list = []
    stopper = threading.Thread(target=lambda: outcome.append(collector.stop(STOP_WAIT)),
                               name="collect-stop", daemon=True)
    stopper.start()
    while stopper.is_alive() and len(signalled) == asked:
        stopper.join(0.1)
    if outcome:
        return outcome[0]               # (what it left is logged by the collector)
    abandoned = collector.stop(0)       # (a snapshot, logged by the collector)
    if abandoned:
        complain(PROG, f"interrupted again: stopped without waiting: {abandoned}")
    return abandoned
