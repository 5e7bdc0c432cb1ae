/* control_races.c: this process's endpoint thread held at an exact step while the main thread
 * uses the control plane (tests/provider/test_control_races.py builds it with WPT_TEST_POINTS
 * and runs it with a runtime directory of its own, so that sessions take slot 1 in turn).
 *
 *     control_races MODE OUT_DIR
 * MODE: join-reuse  the endpoint thread is held with its poll set made, the watch connection
 *                   of session A (slot 1) in it; A stops and B starts in slot 1, so starting B
 *                   replaces (closes) A's watch connection; then this process opens sockets,
 *                   each with a byte waiting to be read, and lets the endpoint thread go on
 *                   for one round. A descriptor number it polled may now be one of them: it
 *                   must leave them alone (a byte taken from a control connection broke a
 *                   ControlTrace reply; from any other descriptor, the application's data).
 *       gone-reuse  session A's host is killed; STOP of A finds it gone and cleans up after it,
 *                   held once A's registry entry is freed, while another process starts B,
 *                   which takes slot 1 and binds s-1.sock; then the cleanup goes on. B must
 *                   stay reachable (the cleanup removed its socket: B could not be controlled,
 *                   and its host stopped itself).
 *       stop-reuse  session A's host, stopping, is held once it has freed its registry entry,
 *                   while another process starts B (slot 1, s-1.sock); then A's host goes on.
 *                   B must stay reachable.
 *       host-reuse  another process starts A; A's host is held before it registers, while that
 *                   process is killed and this one starts B, which takes slot 1 (its caller
 *                   gone, A's entry counts as free); then A's host goes on. B must stay
 *                   reachable and registered.
 *       listen-reuse  as host-reuse, A's host held before it binds its socket path: binding it
 *                   after B's host, it must not remove B's socket.
 *       run-reuse   as host-reuse, A's host held once it bound its socket path, before it runs
 *                   its session, which then fails (no thread can be made): it must not remove
 *                   the socket B's host bound at the path meanwhile.
 *       log-reuse   as host-reuse, A's host held as it begins, before it opens its log, while
 *                   B's host logs that it runs (s-1.log); then A's host goes on. It must not
 *                   empty B's log.
 *       control-reuse  STOP of session A (started here) is held once it found A's slot, while
 *                   another process stops A and starts B, which takes slot 1 and binds
 *                   s-1.sock; then the STOP goes on. It must not stop B (A is gone: not found).
 *       subscribe-reuse  as control-reuse, A and B real-time sessions, with a real-time
 *                   subscription to A held instead of the STOP: it must not subscribe to B.
 *       info-reuse  as control-reuse, with wpptrace_session_info for A's handle held instead of
 *                   the STOP: A is gone (not found), not a session whose host died.
 *       wrap-reuse  as control-reuse, with 255 more sessions started and stopped in slot 1
 *                   meanwhile (the slot's registry generation moved on by 255), so that B has
 *                   A's handle: the STOP must still not stop B.
 *       join-wrap   another process starts A; this one registers a provider and enables it
 *                   for A, and the join that maps A here is held once it chose A's slot and
 *                   generation, while another process stops A, moves the slot's registry
 *                   generation on by 255 and starts B, which has A's handle; then the join goes
 *                   on. It must not map B: the provider is not left enabled, and logging with
 *                   A's handle fails (it wrote into B).
 *       handle-wrap  A starts here and stops; the slot's registry generation moves on by 255 and
 *                   another process starts B, which has A's handle. A's handle, used here, must
 *                   not reach B (ControlTrace QUERY and STOP, EnableTrace, session info): A is
 *                   gone. Once QueryAllTraces gave this process B's handle, the same value names
 *                   B.
 *       old-requests  A starts in slot 1 with a registry generation past 255; QUERY requests
 *                   as this build and older ones send them (the whole generation, its low 8
 *                   bits, none) reach A when they name A, not when they name an older session.
 *       judged-reuse  A's host runs but looks gone from here (its entry's process start time
 *                   altered, as a host in another PID namespace looks): another process starts
 *                   B, which cleans up A's entry and takes slot 1, its host binding s-1.sock
 *                   over A's; then A's host stops (SIGTERM) and ends. It must leave B's entry
 *                   and socket alone.
 *       late-host   StartTrace of A gives up waiting for its host's answer (the wait shortened
 *                   to nothing), held there until the host registered A (RUNNING); then it
 *                   goes on. A must be started and reachable, not left running with its entry
 *                   freed (nobody could find or stop it).
 *       slow-host   A's host is stopped (SIGSTOP) and the wait for its replies shortened:
 *                   wpptrace_session_info for A must say the host is busy (as ControlTrace
 *                   QUERY does), not gone, and QueryAllTraces list A from what the registry
 *                   says; once it goes on (SIGCONT), that it runs.
 *       full-host   as slow-host, the connection of each request filled up before the request
 *                   is sent (as a host stopped long enough leaves it): the request cannot even
 *                   be written in time, and the host is busy all the same, not gone.
 *       start-given-up  StartTrace of A gives up waiting for its host's answer (the wait
 *                   shortened to 300 ms) while the host, held, has bound its socket and runs
 *                   the session but has not registered it; then the host goes on. It must
 *                   never register A, and must end leaving nothing behind (no socket).
 *       join-busy   another process starts A and A's host is stopped (SIGSTOP), the wait for
 *                   its replies shortened: joining A (mapping its memory), directly and for an
 *                   enable of this process's provider, must say the host is busy, not that A
 *                   is gone; once it goes on (SIGCONT), enabling again joins A.
 *       locked-registry  A runs; another process holds the registry locked and is stopped
 *                   (SIGSTOP: a debugger's breakpoint does the same), the wait for the lock
 *                   shortened: ControlTrace, EnableTrace, StartTrace and QueryAllTraces must
 *                   fail with ERROR_BUSY instead of waiting forever; once that process is gone,
 *                   A stops.
 *       stale-peer  a broadcast finds the socket of a provider process whose process is gone
 *                   and removes it; held before the removal while a new process with the same
 *                   pid (played here) binds its socket at the path: the broadcast must leave
 *                   that alone. A socket nobody listens at any more still goes.
 *       peer-no-proc  a broadcast finds the socket of a provider process refused (the process
 *                   runs on) while this process has no descriptor left to read /proc: the
 *                   socket must stay ("looked_up 0|1 left 0|1").
 *       silent-peer  another process has a provider; this one connects to that process's
 *                   endpoint and sends nothing, then enables the provider for A (started
 *                   here): the provider must be enabled while the silent connection is still
 *                   open (it waited until that connection was given up, 2 s).
 *       made-up-disable  this process has a provider, which another process enables for B,
 *                   started 256 generations on in slot 1 (the handle of the slot's first
 *                   session); then a DISABLE of that provider arrives naming the first session
 *                   (its whole generation and handle), with a version newer than B's enable. It
 *                   is made up (the registry has B holding the provider): it must change nothing.
 *       busy-both   A's host is stopped (SIGSTOP); wpptrace_session_info for A is held once it
 *                   found A while another process locks the registry and is stopped in turn
 *                   (the waits for both shortened): the host did not answer, and whether A is
 *                   still registered cannot be told, so A is busy, not gone.
 *       gone-wrap   this process has a provider; A's host is killed, and STOP of A cleans up
 *                   after it, held once A's registry entry is freed, while another process
 *                   moves the slot's registry generation on by 255, starts B (which has A's
 *                   handle) and enables the provider for B (here too); then the cleanup goes
 *                   on. It must leave the provider enabled for B: only A is gone.
 *       accept-emfile  this process has a provider; it uses up its descriptors (the limit
 *                   lowered) and connects to its own endpoint: the endpoint thread cannot take
 *                   the connection (EMFILE) and must not poll again at once, round after round
 *                   (a thread of the application at 100% CPU); once descriptors are free it
 *                   serves the connection.
 *       host-emfile  A's host has its descriptor limit lowered to about what it has open, and
 *                   this process connects to it 16 times: it cannot accept them all (EMFILE)
 *                   and must not poll its listening socket again at once (a host process at
 *                   full CPU); once the connections are gone it answers a QUERY.
 *       busy-enable  another process has a provider (its registry wait shortened) and is
 *                   stopped while this one enables it for A; it goes on while a third process
 *                   holds the registry lock, stopped, so it cannot check the ENABLE against the
 *                   registry; then the holder is killed. The provider must be enabled in the
 *                   end: the check is tried again (it was skipped, the ENABLE lost). The same
 *                   ENABLE sent again while the registry is locked must be answered ERROR_BUSY.
 *       busy-disable  another process has a provider (its registry wait shortened) enabled for
 *                   A; the registry drops the enable (as a disabling EnableTrace does), then a
 *                   third process holds the registry lock, stopped, while this one sends that
 *                   provider many ENABLEs nobody made and then the DISABLE; then the holder is
 *                   killed. The provider must be disabled in the end: every request it could
 *                   not check is checked again (past a few, the DISABLE was lost and the
 *                   provider stayed enabled).
 *       broadcast-join-busy  another process has a provider; session A's host is stopped while
 *                   this process enables it for A, then goes on. The provider process cannot
 *                   join A in time: the EnableTrace must say ERROR_BUSY (the broadcast gave up
 *                   on it before its JOIN did, and it reported success), and the provider must
 *                   be enabled once the host answers (it was recorded, its callbacks never run).
 *       request-deadline  a request to a socket that listens and never answers, given 20 s: as
 *                   it connects, this program's monotonic clock jumps 100 s ahead. It must
 *                   fail at once, ERROR_BUSY (sending and awaiting the reply each had 20 s).
 *       dir-while-locked  a thread of this process holds the registry lock; another asks for a
 *                   socket path in the runtime directory (resolved already): it must have it at
 *                   once (it waited for the registry lock's holder, unbounded).
 *       fork-sessions  a child forked by this process without a session, one forked while it
 *                   runs private session A and one after A stopped count the sessions they
 *                   read as they begin: only A's (every child read all 64, some 65 pages).
 *                   The first child must still have descriptor 0 (a child of a process whose
 *                   endpoint never ran closed descriptor 0, its stdin, taking it for the JOIN
 *                   connections it had none of). Nor must it reset any provider registration
 *                   (it reset all 1024, some 12 pages written in every child).
 *       list-slow-host  session A's host is stopped while a thread of this process lists the
 *                   sessions (its QUERY of A waits); meanwhile another thread queries private
 *                   session B of this process. That query must end while the listing still
 *                   waits (the listing held the control lock across its requests).
 *       info-slow-host  the same with the session info of A asked for instead of the listing.
 *       flush-slow-host  the same with A flushed (ControlTrace FLUSH) instead.
 *       stop-slow-host  the same with A stopped (ControlTrace STOP) instead.
 *       release-locked  this process runs private session A; another process holds the
 *                   registry lock, stopped, longer than a request waits for it (shortened),
 *                   while A stops here, then is killed. A's registry entry must be freed all
 *                   the same (it stayed RUNNING under this live process: the name taken and
 *                   the slot with it until the process ended).
 *       wall-stepped  a thread of this process holds the registry lock; another asks for it
 *                   (the wait shortened) while the wall clock reads far ahead of what the
 *                   kernel counts (a clock step, played by this program's clock_gettime): the
 *                   wait must end as counted on the monotonic clock, ERROR_BUSY.
 *       fork-copying  a thread of this process copies the registry's enables, held once it
 *                   holds the copy's lock, while the main thread forks: the child, which
 *                   copies the registry as its endpoint starts, must return from fork.
 *       other-session-disable  this process disables its provider for its private session X,
 *                   which never held it; then public session B's ENABLE of the provider, made
 *                   before that disable, arrives: it must be applied (the disable is X's).
 *       memfd-reused  StartTrace of A here retires the view it made once A's host has the
 *                   memory; as the view's memfd is closed, this process opens 64 descriptors,
 *                   one of which gets that number: all must still be open once StartTrace
 *                   returns.
 *       stop-sync-cancel  the STOP of private session X is held as X's file is to be flushed
 *                   to the disk, and its thread cancelled: the file must still be closed.
 *       unsealed-view  a session's memory mapped as a JOIN maps it: the file its host made,
 *                   then a copy of it not sealed, then one sealed against shrinking only.
 *       commit-retire  a writer about to commit a new buffer of A's memory finds the view
 *                   retired and its memfd number given to a file of this process; from kernel
 *                   5.14 on also the number given to the file while the view holds it (as one
 *                   that read the number before a retire closed it finds it): the writer must
 *                   not allocate space in the file.
 *       host-stop-syncing  A's host is held as A's file is to be flushed to the disk while
 *                   another thread stops A: a QUERY of A and a listing must be answered
 *                   meanwhile, the STOP once the flush is let go.
 *       stop-sync   the STOP of private session X is held as X's file is to be flushed to the
 *                   disk, while another thread lists the sessions: the listing must return.
 *       reconcile-busy-once  this process reconciles with the registry, which holds enables of
 *                   two of its providers for A, A's host stopped: one JOIN of A must be tried
 *                   (each waits for the host), the other enable kept undelivered all the same.
 *       owed-once   registration R1's ENABLE for A is owed (A's host stopped); R2 registers once
 *                   the host answers and gets it at once; then the endpoint thread, held as it
 *                   began to reconcile, delivers the owed one: each must see one ENABLE.
 *       disable-owed  R1's ENABLE for A is owed (A's host stopped), then A disables the
 *                   provider: R1 must see no DISABLE (it never saw the ENABLE).
 *       close-joining-in-callback  the endpoint thread runs an ENABLE callback (held) while
 *                   another thread's close tells it to end and is to join it; the callback then
 *                   closes the endpoint too: the endpoint must be undone once, by the joining
 *                   close (the thread undid it as well, detached from the join).
 *       cancel-overtaken  a thread's ENABLE of the provider for A (A's host stopped) is held once
 *                   queued (LIST must not say it is enabled: its ENABLE has not reached it)
 *                   while another thread's newer ENABLE for a session nobody runs is
 *                   queued; the first JOIN fails, then the second: the provider must be owed
 *                   A's enable and get it once A's host answers (it was left waiting for a call
 *                   dropped long before).
 *       cancel-taken-over  the provider enabled for A (here) is taken over by B, whose host is
 *                   stopped (its JOIN fails): the provider must be disabled for A at once (it
 *                   was left enabled for A, deaf to A's disable and stop), and enabled for B
 *                   once B's host answers.
 *       enable-overtaken  a thread's EnableTrace of the provider for A is held after the
 *                   registry has the enable, before it applies it here, while the main thread
 *                   disables the provider for A: the provider must end disabled.
 *       close-starting  the first RegisterTraceGuids is held while its new endpoint copies
 *                   the registry, before the endpoint thread is made, while another thread
 *                   closes the endpoint: the close must wait (it joined a thread never made)
 *                   and the endpoint be undone; a later registration starts a new one.
 *       close-in-callback  the endpoint thread reconciles; the first enable's callback closes
 *                   the endpoint: the copy must go on (the second enable's JOIN started a new
 *                   endpoint inside it, whose copy waited for its own lock forever), and the
 *                   endpoint thread end once it is done, no other taking its place.
 *       unregister-sibling  two providers here enabled for A; A stops, and the first DISABLE
 *                   callback unregisters the other registration (its call queued in the same
 *                   thread): the STOP must return, the other's DISABLE not run.
 *       callback-order  a thread registers a provider A enabled; its ENABLE call, confirmed,
 *                   is held before it runs while the main thread's DISABLE runs: the ENABLE
 *                   must not run after it (the provider ended on with a disabled handle).
 *       fork-in-copy  this process reconciles; the first enable's callback forks: the child's
 *                   endpoint must not copy the registry inside fork() (it overwrote the copy
 *                   its thread was still reading, and ran callbacks before fork returned); its
 *                   endpoint thread does, later. Another thread of the child copying while
 *                   the forking thread's copy goes on must wait for it (it rewrote the
 *                   buffers that copy still read).
 *       fork-nested  a provider's ENABLE callback (private session X) enables it for private
 *                   session Y, whose ENABLE runs the same callback nested in it, which forks:
 *                   the child unwinds both and unregisters it (its count of running callbacks
 *                   was 1, not 2, and went below zero: the unregister waited forever).
 *       fork-deep  ENABLE callbacks of a provider nested 12 deep, the innermost forks: in the
 *                   child, with only the outermost still running, an unregister from another
 *                   thread must wait for it.
 *       cancel-starting  a thread's registration starts the endpoint, held before its copy,
 *                   and is cancelled meanwhile: the start must finish (left unfinished, every
 *                   later close waited for it forever); then the endpoint closes.
 *       close-in-stop-joining  the endpoint thread runs an ENABLE callback (held) that then
 *                   calls EnableTrace; private session P's DISABLE callback (control lock held)
 *                   closes the endpoint meanwhile: the close must not join the thread (each
 *                   waited for the other forever); the thread undoes the endpoint as it ends.
 *       close-in-stop  a thread's registration starts a new endpoint, held before its copy;
 *                   private session P stops meanwhile, and its DISABLE callback (control lock
 *                   held) closes the endpoint; the copy's ENABLE callback calls EnableTrace:
 *                   the close must not wait for the start (each waited for the other forever).
 *       close-twice  one thread's wpptrace_endpoint_close is held before it joins the endpoint
 *                   thread while another thread closes the endpoint: the second must wait for
 *                   the first (it joined the same thread again and undid the endpoint under it).
 *       full-table  private session X enables 1024 providers here, then this process
 *                   reconciles with a registry holding one more enable (for A): no room; the
 *                   reconciliation must be done all the same, reporting it once.
 *       generation-atomic  whether a session's registry generation is an atomic object.
 *       copy-after-disable  as resurrect, this process never having held G's enable for A (the
 *                   registry has it, nobody told this process): G must stay disabled.
 *       fork-on-endpoint  the endpoint thread reconciles; the enable's callback forks, and in
 *                   the child starts a thread, then returns into the copy of the endpoint
 *                   thread's loop: that copy must leave the loop (it served the child's endpoint
 *                   beside the child's own endpoint thread, with no lock in common), the child's
 *                   endpoint serving its inherited provider while that thread runs, and closed
 *                   once the thread returned (the child ends with status 0).
 *       fork-on-endpoint-returns  as fork-on-endpoint, the child left to itself once its
 *                   callback returned: it must end with status 0, its endpoint socket gone
 *                   (its own endpoint thread, every signal blocked, kept it alive forever).
 *       cancel-joining  a thread's close is cancelled as it joins the endpoint thread: it must
 *                   finish the close (it left the close marked as joining, and every later
 *                   close waited forever); a later close returns, a fork returns.
 *       cancel-close-waiting  a second close, waiting for a first that joins the endpoint
 *                   thread, is cancelled: a fork must return (it left the endpoint's lock held).
 *       cancel-join  a registration's JOIN of A is cancelled once it chose A: a fork must return
 *                   (the JOIN left the attach lock held).
 *       cancel-unregister  a thread's UnregisterTraceGuids is cancelled as it waits for a
 *                   callback another thread runs: a fork must return (the thread kept the
 *                   registrations' lock), whether the cancel acted in the wait or after it.
 *       cancel-query-all, cancel-list-sessions, cancel-session-info  a thread's
 *                   QueryAllTraces, wpptrace_list_sessions or wpptrace_session_info is
 *                   cancelled once it connected to A's host: no descriptor may be left open,
 *                   and a QUERY of A must return.
 *       cancel-runtime-directory, cancel-host-log-path, cancel-enumerate, cancel-subscribe
 *                   a thread's wpptrace_runtime_directory, wpptrace_host_log_path,
 *                   EnumerateTraceGuids (a provider registered elsewhere) or wpptrace_rt_subscribe
 *                   (of A) is cancelled as it checks the runtime directory: the same call must
 *                   answer as before, and no descriptor may be left open.
 *       cancel-in-callback  a thread's EnableTrace runs a ControlCallback of this process that
 *                   blocks, and is cancelled there: the thread must end, leaving nothing locked
 *                   or open (the callback ran with cancellation held off: never cancelled).
 *       cancel-unregister-waiting  an UnregisterTraceGuids waiting for that callback, run by
 *                   another thread, is cancelled: it must end, leaving nothing locked or open.
 *       refused-view-fork  a refused session memory is counted, then this process forks: the
 *                   child's count starts at 0 (it reported its parent's refusals again at its
 *                   exit), and that session stays counted there.
 *       cancel-join-busy  as cancel-join, A's host stopped so the JOIN ends with ERROR_BUSY:
 *                   a fork and a close must return (the thread was cancelled as it woke the
 *                   endpoint thread, the endpoint's lock held).
 *       close-then-register  a callback closes the endpoint (returns at once), then registers
 *                   another provider: the endpoint must stay (the endpoint thread undid it, and
 *                   no session of another process could reach the new provider).
 *       fork-while-retiring  a view replaced by a newer one is held where it is retired while
 *                   another thread forks: the child must not keep its memory mapped.
 *       fork-in-copy-stays  this process reconciles; the enable's callback forks and the child
 *                   never returns into it: the child's endpoint must still serve (its thread
 *                   waited for the copy lock only that copy would release, deaf for good).
 *       fork-in-copy-withheld  as fork-in-copy, the child never returning into the copy: the
 *                   second enable, which only that copy would bring, must be counted as
 *                   withheld in the child (once), and delivered in the parent.
 *       freed-stop  A (slot 2) looks gone from here (its entry's process start time altered,
 *                   as a host in another PID namespace looks): starting B frees A's entry and
 *                   takes slot 1, which session X held until then; then A's host stops
 *                   (SIGTERM, if it has not stopped itself). No socket must be left at A's path.
 * join-reuse prints "slot_a N slot_b N untouched N of M", gone-reuse "slot_a N start_b RC
 * query_b RC stop_b RC", stop-reuse "slot_a N query_b RC stop_b RC", host-reuse, listen-reuse
 * and run-reuse "slot_b N a_took_entry 0|1 query_b RC stop_b RC" (log-reuse the same and
 * "b_logged 0|1": B's log still says it ran), judged-reuse "slot_a N
 * slot_b N a_ended 0|1 query_b RC stop_b RC", control-reuse "slot_a N replaced 0|1 stop_a RC
 * query_b RC stop_b RC", subscribe-reuse "slot_a N replaced 0|1 subscribe_a RC query_b RC
 * stop_b RC", info-reuse "slot_a N replaced 0|1 info_a RC flags F host_pid 0|1 query_b RC
 * stop_b RC", wrap-reuse "slot_a N replaced 0|1 same_handle 0|1 stop_a RC query_b RC stop_b RC",
 * join-wrap "replaced 0|1 same_handle 0|1 enable RC enabled 0|1 trace RC stop_b RC",
 * handle-wrap "replaced 0|1 same_handle 0|1 query_a RC enable_a RC info_a RC stop_a RC
 * listed N query_listed RC query_b RC stop_b RC",
 * old-requests "whole RC whole_older RC low8 RC low8_other RC unsaid RC stop_a RC",
 * late-host "start_a RC registered 0|1 query_a RC stop_a RC", slow-host "info_a RC
 * flags F query_a RC list RC listed N named 0|1 info_later RC flags_later F host_pid 0|1 stop_a RC", full-host "info_a RC flags F query_a RC
 * info_later RC flags_later F host_pid 0|1 stop_a RC", start-given-up
 * "start_a RC host_ended 0|1 slot_free 0|1 socket_left 0|1", freed-stop "slot_a N slot_b N
 * a_ended 0|1 socket_left 0|1 query_b RC stop_b RC", gone-wrap "stop_a RC replaced 0|1
 * same_handle 0|1 enabled 0|1 trace RC stop_b RC", join-busy "attach RC enable RC enabled 0|1
 * enable_later RC enabled_later 0|1 stop_a RC", locked-registry "query RC enable RC start RC
 * list RC stop_a RC", accept-emfile "emfile 0|1 polls N served 0|1", release-locked "stop_a RC entry_left 0|1",
 * busy-enable "enable RC at_first 0|1 later 0|1 answer RC stop_a RC", busy-disable "enabled 0|1
 * busy N of N answer RC later 0|1 stop_a RC", broadcast-join-busy "enable RC at_first 0|1
 * later 0|1 stop_a RC", request-deadline "returned 0|1 request RC", dir-while-locked
 * "returned 0|1 path RC", fork-sessions "stdin_kept 0|1 registrations N without N with_private N
 * after_stop N stop_a RC",
 * list-slow-host "query_first 0|1 query RC list RC listed N stop_b RC stop_a RC" (info-slow-host
 * the same: list RC is the session info's, listed 1 if it named a LoggerId; flush-slow-host the
 * same: list RC is the FLUSH's, listed 1 if it named the session; stop-slow-host the same for
 * the STOP), host-emfile "ticks N
 * per_second N query RC stop_a RC", fork-copying "held 0|1 child_returned 0|1",
 * other-session-disable "disable RC enable RC enabled 0|1 stop_x RC stop_b RC",
 * memfd-reused "start_a RC opened N kept N stop_a RC", unsealed-view "sealed RC unsealed RC
 * shrink_only RC", commit-retire "fallback 0|1 file_size N stop_a RC held_file_size N stop_held RC",
 * host-stop-syncing "held 0|1 query RC list RC stopped_early 0|1 stop_a RC host_ended 0|1",
 * stop-sync "listed_while_syncing 0|1 list RC stop_x RC", stop-sync-cancel "open_before 0|1
 * open_after 0|1 stop_x RC",
 * reconcile-busy-once "reconcile RC joins N stop_a RC",
 * owed-once "enable RC held 0|1 register RC r2_at_once N r1 N r2 N r1_off N r2_off N stop_a RC",
 * disable-owed "enable RC disable RC enables N disables N enables_after N disables_after N
 * stop_a RC", enable-overtaken "enable RC disable RC enables N disables N listed 0|1 stop_a RC",
 * close-joining-in-callback "in_callback 0|1 joined 0|1 teardowns N stop_a RC",
 * cancel-overtaken "listed_queued 0|1 first RC second RC enables N enables_after N disables_after N listed 0|1 stop_a RC",
 * cancel-taken-over "enable_a RC enable_b RC disables_at_once N disable_a RC stop_a RC disables N
 * enables N stop_b RC disables_end N",
 * close-starting "register RC close_waited 0|1 close_returned 0|1 socket_left 0|1 again RC
 * restarted 0|1 closed 0|1",
 * close-in-callback "closed 0|1 last 0|1 ended 0|1 socket_left 0|1 stop_a RC stop_b RC",
 * unregister-sibling "returned 0|1 stop_a RC disables N",
 * callback-order "register RC disable RC disables_first N enables N disables N last_disable 0|1
 * stop_a RC",
 * fork-in-copy "reconcile RC child_second_at_fork 0|1 child_copied_inside 0|1 child_copied 0|1 second 0|1
 * stop_a RC",
 * close-twice "second_waited 0|1 returned_early 0|1 closed 0|1",
 * fork-nested "enable RC child_unregistered 0|1 stop_x RC stop_y RC", fork-deep "enable RC
 * depth N child 0|1|2 stopped 0|1",
 * cancel-starting "registered RC cancelled 0|1 closed 0|1 socket_left 0|1",
 * close-in-stop-joining "joined 0|1 stop_returned 0|1 stop_p RC enabled 0|1 socket_left 0|1 stop_a RC",
 * close-in-stop "close_waited 0|1 stop_returned 0|1 stop_p RC registered 0|1 enabled 0|1 socket_left 0|1
 * stop_a RC",
 * fork-on-endpoint "two_loops 0|1 copy_ended 0|1 child_socket 0|1 enable RC child_served 0|1 child_status N
 * child_socket_left 0|1 stop_b RC stop_a RC",
 * fork-on-endpoint-returns "child_ended 0|1 child_status N child_socket_left 0|1 stop_a RC",
 * cancel-joining "cancelled 0|1 closed 0|1 socket_left 0|1 forked 0|1", cancel-close-waiting "cancelled
 * 0|1 forked 0|1 socket_left 0|1", cancel-join "registered RC cancelled 0|1 forked 0|1 stop_a RC",
 * cancel-join-busy "registered RC cancelled 0|1 forked 0|1 closed 0|1 stop_a RC",
 * refused-view-fork "refused N child_refused N stop_a RC",
 * cancel-in-callback "ended_in_callback 0|1 cancelled 0|1 unregistered RC registered RC unregistered_other RC
 * fds_kept 0|1 stop_a RC", cancel-unregister-waiting "ended_waiting 0|1 cancelled 0|1 enable RC registered RC
 * unregistered RC fds_kept 0|1 stop_a RC",
 * cancel-unregister "unregistered RC cancelled 0|1 forked 0|1 stop_x RC",
 * cancel-query-all, cancel-list-sessions, cancel-session-info "listed RC cancelled 0|1 fds_left N
 * queried 0|1 query_a RC stop_a RC",
 * cancel-runtime-directory, cancel-host-log-path, cancel-enumerate, cancel-subscribe "first RC called RC
 * cancelled 0|1 fds_left N again RC found N" (cancel-subscribe and "stop_a RC"),
 * close-then-register "enable RC socket_kept 0|1 start_c N enables N stop_x RC stop_c RC",
 * fork-in-copy-stays "reconcile RC served_before 0|1 enable RC child_enabled 0|1 stop_b RC stop_a RC",
 * fork-while-retiring "forked 0|1 child_kept_mapping 0|1 replaced 0|1 released 0|1",
 * fork-in-copy-withheld "reconcile RC child_withheld N child_withheld_again N child_second 0|1 second N
 * withheld N stop_a RC",
 * full-table "filled N first RC second RC dropped N stop_x RC stop_a RC", generation-atomic "atomic 0|1",
 * copy-after-disable "disable RC last 0|1 enabled_after 0|1 listed_after 0|1 stop_a RC stop_b RC",
 * wall-stepped "returned 0|1 lock RC", made-up-disable "enabled 0|1 answer RC still_enabled 0|1 stop_b RC", silent-peer "enable RC silent_open 0|1 child_enabled 0|1 stop_a RC", stale-peer "new_left 0|1 new_reachable 0|1 stale_left 0|1"; all exit 0. (start-held[-unbound|-bound] OUT_DIR starts A with its
 * host held, for host-reuse, listen-reuse and run-reuse; start-only OUT_DIR starts B (start-a-only
 * A) and
 * exits; start-held-forked is the same for log-reuse; replace-a[-rt|-wrap] OUT_DIR stops A, then starts B, and exits;
 * replace-gone-wrap OUT_DIR moves slot 1's generation on by 255, starts B, enables the gone-wrap
 * provider for it, and exits.)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

/* A properties block with nothing in it but its size, as calls that fill one in take it. */
static void blank(props_block *b) {
    memset(b, 0, sizeof *b);
    b->p.Wnode.BufferSize = sizeof *b;
}

/* `n` blank blocks, and the array of their properties QueryAllTraces fills in. */
static void blank_array(props_block *blocks, EVENT_TRACE_PROPERTIES **array, int n) {
    for (int i = 0; i < n; i++) {
        blank(&blocks[i]);
        array[i] = &blocks[i].p;
    }
}

/* Ends this process at once, what it printed written out: a thread still held or hung in the
 * core must not hold up its exit. */
_Noreturn static void exit_at_once(void) {
    fflush(stdout);
    _exit(0);
}

/* Waits for `child` (what fork returned): its exit code, `none` if it was not forked or did not
 * exit. */
static int exit_code_of(pid_t child, int none) {
    int status = 0;
    if (child <= 0) return none;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(status) ? WEXITSTATUS(status) : none;
}

/* Kills child `pid` and waits for it: its exit status. */
static int kill_and_reap(pid_t pid) {
    int status = 0;
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return status;
}

/* A /proc stat file ("pid (comm) S ppid ...") read into `text`: its fields from the state
 * letter on (comm may hold spaces and parentheses: they start after the last ')'), NULL if
 * it cannot be read. The test's own reading, not the core's. */
static const char *stat_fields(const char *path, char *text, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    ssize_t n = read(fd, text, size - 1);
    close(fd);
    if (n <= 0) return NULL;
    text[n] = 0;
    const char *p = strrchr(text, ')');
    return p && p[1] == ' ' ? p + 2 : NULL;
}

/* The message GUID every provider here registers with. */
static const GUID g_message = {0x6a3c2f1b, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};

/* RegisterTraceGuids for `control` with g_message, `callback` called with `context`. */
static ULONG register_provider(WMIDPREQUEST callback, PVOID context, const GUID *control, TRACEHANDLE *h) {
    TRACE_GUID_REGISTRATION reg = {&g_message, NULL};
    return RegisterTraceGuids(callback, context, control, 1, &reg, NULL, NULL, h);
}

#define PAIRS 32

static sem_t g_arrived, g_go;
static _Atomic int g_armed, g_rounds;

/* The endpoint thread passes here once a round. Armed with 2, it holds in the round after the
 * next one: the first round that made its poll set after the arming. Counted after that. */
static void at_point(int point) {
    if (point != WPT_POINT_ENDPOINT_POLL) return;
    int armed = atomic_load(&g_armed);
    if (armed) {
        atomic_store(&g_armed, armed - 1);
        if (armed == 1) {
            sem_post(&g_arrived);
            sem_wait(&g_go);
        }
    } else {
        atomic_fetch_add(&g_rounds, 1);
    }
}

static int wait_sem(sem_t *sem, int seconds) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += seconds;
    while (sem_timedwait(sem, &ts) != 0)
        if (errno != EINTR) return -1;
    return 0;
}

extern char **environ;          /* B's process uses this run's runtime directory */
/* B's answers once A's race is over: "query_b N stop_b N" (queried before it is stopped). */
typedef struct { char text[48]; } b_answers;

static b_answers answers_of_b(void) {
    b_answers out;
    ULONG queried = query_by_name("control-races-b");
    ULONG stopped = stop_by_name("control-races-b");
    snprintf(out.text, sizeof out.text, "query_b %u stop_b %u", (unsigned)queried,
             (unsigned)stopped);
    return out;
}

static const char *g_dir;
static int g_start_b = -1;

/* This program run again at test point `point` with `dir`: its exit status (127: it could not
 * be run, 128: it did not exit). */
static int run_point(const char *point, const char *dir) {
    char *args[] = {"control_races", (char *)point, (char *)dir, NULL};
    pid_t pid;
    if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ) != 0) return 127;
    return exit_code_of(pid, 128);
}

/* Another process starts B; its exit status. */
static int start_b_elsewhere(void) {
    return run_point("start-only", g_dir);
}

/* Session A started by another process (start-a-only: it exits, A's host goes on): A's slot,
 * generation and handle. 0, or the step that failed (3: not started, 4: not found). */
static int host_a_elsewhere(const char *dir, uint32_t *slot, uint32_t *generation, TRACEHANDLE *a) {
    if (run_point("start-a-only", dir) != 0) return 3;
    if (wpt_registry_find("control-races-a", slot, generation) != ERROR_SUCCESS) return 4;
    *a = wpt_handle_of((uint16_t)*slot, (uint8_t)*generation, 0, 0);
    return 0;
}

/* Session B started by another process (start-only): nonzero if it was not, else its slot
 * and generation. */
static int b_elsewhere(const char *dir, uint32_t *slot, uint32_t *generation) {
    return run_point("start-only", dir) != 0
        || wpt_registry_find("control-races-b", slot, generation) != ERROR_SUCCESS;
}

/* Sessions A and B started by another process: A's slot and handle, B's slot; 0, or the
 * step that failed (5: B's). */
static int a_and_b_elsewhere(const char *dir, uint32_t *slot_a, TRACEHANDLE *a, uint32_t *slot_b) {
    uint32_t gen_a, gen_b;
    int failed = host_a_elsewhere(dir, slot_a, &gen_a, a);
    if (failed) return failed;
    return b_elsewhere(dir, slot_b, &gen_b) ? 5 : 0;
}

/* Held in ControlTrace once it found A: another process stops A and starts B meanwhile. */
static const char *g_replace = "replace-a";

static void at_target_found(int point) {
    if (point != WPT_POINT_TARGET_FOUND || !atomic_exchange(&g_armed, 0)) return;
    g_start_b = run_point(g_replace, g_dir);
}

/* The next request that finds its target is held there while B takes A's slot. */
static void hold_at_target(void) {
    wpt_test_point = at_target_found;
    atomic_store(&g_armed, 1);
}

/* A started, then stopped with the stop held where it found A's entry while B takes A's slot:
 * the stop's answer (A's handle in *a), or -1 when A does not start. */
static int64_t held_stop_of_a(const char *dir, TRACEHANDLE *a) {
    g_dir = dir;
    if (start(dir, "control-races-a", a)) return -1;
    hold_at_target();
    ULONG stopped = stop(*a);
    wpt_test_point = NULL;
    return stopped;
}

static int control_reuse(const char *dir) {
    TRACEHANDLE a;
    int64_t stopped_a = held_stop_of_a(dir, &a);
    if (stopped_a < 0) return 3;
    b_answers answers = answers_of_b();
    printf("slot_a %u replaced %d stop_a %u %s\n", (unsigned)(a & 0xFFFF), g_start_b == 0,
           (unsigned)stopped_a, answers.text);
    return 0;
}

static int wrap_reuse(const char *dir) {
    g_replace = "replace-a-wrap";
    TRACEHANDLE a;
    int64_t stopped_a = held_stop_of_a(dir, &a);
    if (stopped_a < 0) return 3;
    b_answers answers = answers_of_b();
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return 4;
    /* B's handle is A's: the generation in handles wrapped around */
    int same_handle = wpt_handle_of(1, (uint8_t)reg->loggers[1].generation, 0, 0) == a;
    wpt_registry_unlock();
    printf("slot_a %u replaced %d same_handle %d stop_a %u %s\n", (unsigned)(a & 0xFFFF),
           g_start_b == 0, same_handle, (unsigned)stopped_a, answers.text);
    return 0;
}

/* join-wrap: held where the join chose its session, while B takes A's slot. */
static void at_join_chosen(int point) {
    if (point != WPT_POINT_JOIN_CHOSEN || !atomic_exchange(&g_armed, 0)) return;
    atomic_store(&g_armed, 1);                      /* armed again just for it */
    at_target_found(WPT_POINT_TARGET_FOUND);
}

static void hold_at_join(void) {
    wpt_test_point = at_join_chosen;
    atomic_store(&g_armed, 1);
}

static int join_wrap(const char *dir) {
    g_dir = dir;
    g_replace = "replace-a-wrap";
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    static const GUID control = {0x6a3c2f10, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
    static const GUID message = {0x6a3c2f11, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
    TRACE_GUID_REGISTRATION reg = {&message, NULL};
    TRACEHANDLE registration;
    if (RegisterTraceGuids(track_control, NULL, &control, 1, &reg, NULL, NULL, &registration)) return 5;
    hold_at_join();
    ULONG enabled = EnableTrace(1, 0x5, 4, &control, a);
    wpt_test_point = NULL;
    uint32_t value = 7;
    ULONG traced = TraceMessage(wpt_handle_of((uint16_t)slot, (uint8_t)generation, 0x5, 4), 0x2B,
                                &message, 10, &value, sizeof value, NULL);
    ULONG rc;
    wpt_registry *r = wpt_registry_lock(0, &rc);
    if (!r) return 6;
    int same_handle = (uint8_t)r->loggers[slot].generation == (uint8_t)generation
                   && r->loggers[slot].generation != generation;
    wpt_registry_unlock();
    ULONG stopped = stop_by_name("control-races-b");
    UnregisterTraceGuids(registration);
    printf("replaced %d same_handle %d enable %u enabled %d trace %u stop_b %u\n", g_start_b == 0,
           same_handle, (unsigned)enabled, atomic_load(&g_enabled), (unsigned)traced,
           (unsigned)stopped);
    return 0;
}

static int handle_wrap(const char *dir) {
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    int replaced = run_point("replace-a-wrap", dir) == 0;
    uint32_t slot, generation;
    if (wpt_registry_find("control-races-b", &slot, &generation) != ERROR_SUCCESS) return 5;
    int same_handle = wpt_handle_of((uint16_t)slot, (uint8_t)generation, 0, 0) == a;
    static const GUID control = {0x6a3c2f12, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
    props_block b;
    blank(&b);
    ULONG queried = ControlTrace(a, NULL, &b.p, EVENT_TRACE_CONTROL_QUERY);
    ULONG enabled = EnableTrace(1, 0x5, 4, &control, a);
    WPPTRACE_SESSION_INFO info;
    ULONG info_a = wpptrace_session_info(a, NULL, &info);
    ULONG stopped = stop(a);
    props_block listed[4];
    EVENT_TRACE_PROPERTIES *array[4];
    blank_array(listed, array, 4);
    ULONG count = 0;
    if (QueryAllTracesA(array, 4, &count) != ERROR_SUCCESS) return 6;
    blank(&b);
    ULONG query_listed = ControlTrace(listed[0].p.Wnode.HistoricalContext == a ? a : 0, NULL, &b.p,
                                      EVENT_TRACE_CONTROL_QUERY);
    b_answers answers = answers_of_b();
    printf("replaced %d same_handle %d query_a %u enable_a %u info_a %u stop_a %u listed %u "
           "query_listed %u %s\n", replaced, same_handle, (unsigned)queried, (unsigned)enabled,
           (unsigned)info_a, (unsigned)stopped, (unsigned)count, (unsigned)query_listed, answers.text);
    return 0;
}

/* Requests as each build sends them, to a host whose generation is past 255. */
static int old_requests(const char *dir) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(1, &rc);
    if (!reg || reg->loggers[1].state != WPT_FREE) return 3;
    reg->loggers[1].generation += 256;      /* what 256 sessions started and stopped leave */
    wpt_registry_unlock();
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 4;
    uint32_t slot = (uint32_t)(a & 0xFFFF), generation = 0;
    if (wpt_registry_find("control-races-a", &slot, &generation) || generation < 256) return 5;
    wpt_wire_props w;
#define ASK(status) (unsigned)wpt_host_call(slot, (status), WPT_REQ_QUERY, NULL, 0, &w, sizeof w, NULL)
    printf("whole %u whole_older %u low8 %u low8_other %u unsaid %u",
           ASK(wpt_for_session(generation)), ASK(wpt_for_session(generation - 256)),
           ASK(WPT_FOR_GENERATION | wpt_handle_generation(a)), ASK(WPT_FOR_GENERATION | (uint8_t)(generation + 1)), ASK(0));
#undef ASK
    printf(" stop_a %u\n", (unsigned)stop(a));
    return 0;
}

static int subscribe_reuse(const char *dir) {
    g_dir = dir;
    g_replace = "replace-a-rt";
    TRACEHANDLE a;
    if (start_rt("control-races-a", &a)) return 3;
    hold_at_target();
    wpptrace_rt_subscription *sub = NULL;
    ULONG subscribed = wpptrace_rt_subscribe("control-races-a", &sub, NULL);
    wpt_test_point = NULL;
    if (sub) wpptrace_rt_close(sub);
    b_answers answers = answers_of_b();
    printf("slot_a %u replaced %d subscribe_a %u %s\n", (unsigned)(a & 0xFFFF), g_start_b == 0,
           (unsigned)subscribed, answers.text);
    return 0;
}

static int info_reuse(const char *dir) {
    g_dir = dir;
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    hold_at_target();
    WPPTRACE_SESSION_INFO info;
    ULONG info_a = wpptrace_session_info(a, NULL, &info);
    wpt_test_point = NULL;
    b_answers answers = answers_of_b();
    printf("slot_a %u replaced %d info_a %u flags %u host_pid %d %s\n", (unsigned)(a & 0xFFFF),
           g_start_b == 0, (unsigned)info_a, (unsigned)info.Flags, info.HostProcessId != 0,
           answers.text);
    return 0;
}

/* Held in the cleanup after a gone host: another process starts B meanwhile. */
static void at_gone_freed(int point) {
    if (point != WPT_POINT_GONE_FREED || !atomic_exchange(&g_armed, 0)) return;
    g_start_b = start_b_elsewhere();
}

/* In A's host (a fork of this program, armed before it was made): held in its stopper once
 * A's registry entry is freed, while another process starts B. */
static void at_stopper_freed(int point) {
    if (point != WPT_POINT_STOPPER_FREED || !atomic_exchange(&g_armed, 0)) return;
    start_b_elsewhere();
}

/* In A's host: held at g_hold_point, says so (its pid in OUT_DIR/held), waits for OUT_DIR/go. */
static int g_hold_point = WPT_POINT_HOST_RUNNING;

static void at_host_running(int point) {
    if (point != g_hold_point || !atomic_exchange(&g_armed, 0)) return;
    char tmp[600], held[600], go[600];
    snprintf(tmp, sizeof tmp, "%s/held.tmp", g_dir);
    snprintf(held, sizeof held, "%s/held", g_dir);
    snprintf(go, sizeof go, "%s/go", g_dir);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%u\n", (unsigned)getpid());
    fclose(f);
    rename(tmp, held);
    int64_t deadline = wpt_mono_ms() + 30000;
    while (access(go, F_OK) != 0 && wpt_mono_ms() < deadline) usleep(1000);
    if (point == WPT_POINT_HOST_BOUND) {
        /* no thread can be made now (no stack that large fits): running the session fails */
        pthread_attr_t huge;
        pthread_attr_init(&huge);
        pthread_attr_setstacksize(&huge, (size_t)1 << 60);
        pthread_setattr_default_np(&huge);
        pthread_attr_destroy(&huge);
    }
}

/* B's host log (slot `slot`) says that it runs. */
static int b_logged(uint32_t slot) {
    char path[600], text[4096];
    const char *runtime;
    if (wpt_runtime_dir(&runtime) != ERROR_SUCCESS) return 0;
    snprintf(path, sizeof path, "%s/s-%u.log", runtime, (unsigned)slot);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    return strstr(text, "\"control-races-b\"") && strstr(text, "running");
}

static int host_reuse(const char *dir, const char *held_mode) {
    g_dir = dir;
    char *args[] = {"control_races", (char *)held_mode, (char *)dir, NULL};
    pid_t caller;
    if (posix_spawn(&caller, "/proc/self/exe", NULL, NULL, args, environ) != 0) return 3;
    char held[600], go[600];
    snprintf(held, sizeof held, "%s/held", dir);
    snprintf(go, sizeof go, "%s/go", dir);
    unsigned host = 0;
    int64_t deadline = wpt_mono_ms() + 10000;
    for (FILE *f = NULL; !f && wpt_mono_ms() < deadline;) {
        if (!(f = fopen(held, "r"))) usleep(1000);
        else if (fscanf(f, "%u", &host) != 1) host = 0;
        if (f) fclose(f);
    }
    if (!host) return 4;
    kill(caller, SIGKILL);                  /* the caller dies while its host starts */
    while (waitpid(caller, NULL, 0) < 0 && errno == EINTR) {}
    TRACEHANDLE b;
    if (start(dir, "control-races-b", &b)) return 5;
    int check_log = strcmp(held_mode, "start-held-forked") == 0;
    deadline = wpt_mono_ms() + 10000;          /* B's host logs once it answered */
    while (check_log && !b_logged((uint32_t)(b & 0xFFFF)) && wpt_mono_ms() < deadline) usleep(1000);
    if (check_log && !b_logged((uint32_t)(b & 0xFFFF))) return 9;
    FILE *f = fopen(go, "w");
    if (!f) return 6;
    fclose(f);
    uint32_t slot = (uint32_t)(b & 0xFFFF);
    int taken = 0;                          /* A's host registered in B's entry, or ended */
    deadline = wpt_mono_ms() + 20000;
    for (;;) {
        ULONG rc;
        wpt_registry *reg = wpt_registry_lock(0, &rc);
        if (!reg) return 7;
        taken = reg->loggers[slot].host_pid == host;
        wpt_registry_unlock();
        if (taken || !wpt_process_start(host)) break;
        if (wpt_mono_ms() >= deadline) return 8;
        usleep(1000);
    }
    int logged = b_logged(slot);               /* before B stops (and logs again) */
    b_answers answers = answers_of_b();
    if (wpt_process_start(host)) kill((pid_t)host, SIGKILL);   /* left running, unreachable */
    printf("slot_b %u a_took_entry %d %s", (unsigned)slot, taken, answers.text);
    if (check_log) printf(" b_logged %d", logged);
    printf("\n");
    return 0;
}

static int stop_reuse(const char *dir) {
    g_dir = dir;
    wpt_test_point = at_stopper_freed;
    atomic_store(&g_armed, 1);              /* A's host inherits it armed */
    TRACEHANDLE a;
    ULONG started = start(dir, "control-races-a", &a);
    atomic_store(&g_armed, 0);
    wpt_test_point = NULL;
    if (started) return 3;
    if (stop(a)) return 4;
    b_answers answers = answers_of_b();
    printf("slot_a %u %s\n", (unsigned)(a & 0xFFFF), answers.text);
    return 0;
}

/* The slot and host pid of the registry entry of the session named `name` (slot 0 if none). */
static uint32_t entry_of(const char *name, uint32_t *host) {
    ULONG rc;
    uint32_t slot = 0;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return 0;
    for (uint32_t i = 1; i < WPPTRACE_MAX_SESSIONS && !slot; i++)
        if (reg->loggers[i].state != WPT_FREE && strcmp(reg->loggers[i].name, name) == 0) {
            slot = i;
            *host = reg->loggers[i].host_pid;
        }
    wpt_registry_unlock();
    return slot;
}

/* Make the host of the session in `slot` look gone from here (its entry's start time is
 * what a host in another PID namespace shows): its pid and real start time in *host and
 * *host_start; 0, or the mode's exit code 4 / 5 when the registry or the host is not there. */
static int looks_gone(uint32_t slot, uint32_t *host, uint64_t *host_start) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(1, &rc);
    if (!reg) return 4;
    *host = reg->loggers[slot].host_pid;
    reg->loggers[slot].host_start ^= 1;
    wpt_registry_unlock();
    *host_start = wpt_process_start(*host);
    return *host && *host_start ? 0 : 5;
}

static int judged_reuse(const char *dir) {
    g_dir = dir;
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    uint32_t slot = (uint32_t)(a & 0xFFFF), host = 0;
    uint64_t host_start = 0;
    int looks = looks_gone(slot, &host, &host_start);
    if (looks) return looks;
    if (start_b_elsewhere() != 0) return 6;
    uint32_t host_b = 0, slot_b = entry_of("control-races-b", &host_b);
    if (wpt_process_start(host) == host_start) kill((pid_t)host, SIGTERM);
    int64_t deadline = wpt_mono_ms() + 20000;
    while (wpt_process_start(host) == host_start && wpt_mono_ms() < deadline) usleep(1000);
    int ended = wpt_process_start(host) != host_start;
    b_answers answers = answers_of_b();
    if (host_b && wpt_process_start(host_b)) kill((pid_t)host_b, SIGKILL);   /* unreachable */
    printf("slot_a %u slot_b %u a_ended %d %s\n", (unsigned)slot, (unsigned)slot_b, ended,
           answers.text);
    return 0;
}

/* In StartTrace, its caller timed out: held until A's host registered A. */
static uint32_t g_late_host;

static void at_host_unanswered(int point) {
    if (point != WPT_POINT_HOST_UNANSWERED || !atomic_exchange(&g_armed, 0)) return;
    int64_t deadline = wpt_mono_ms() + 10000;
    for (;;) {
        ULONG rc;
        wpt_registry *reg = wpt_registry_lock(0, &rc);
        if (!reg) return;
        for (uint32_t i = 1; i < WPPTRACE_MAX_SESSIONS; i++)
            if (reg->loggers[i].state == WPT_RUNNING && strcmp(reg->loggers[i].name, "control-races-a") == 0)
                g_late_host = reg->loggers[i].host_pid;
        wpt_registry_unlock();
        if (g_late_host || wpt_mono_ms() >= deadline) return;
        usleep(1000);
    }
}

static int late_host(const char *dir) {
    wpt_host_answer_ms = 0;
    wpt_test_point = at_host_unanswered;
    atomic_store(&g_armed, 1);
    TRACEHANDLE a;
    ULONG started = start(dir, "control-races-a", &a);
    wpt_test_point = NULL;
    ULONG queried = query_by_name("control-races-a");
    ULONG stopped = stop_by_name("control-races-a");
    if (stopped && g_late_host && wpt_process_start(g_late_host))
        kill((pid_t)g_late_host, SIGKILL);  /* left running, unreachable */
    printf("start_a %u registered %d query_a %u stop_a %u\n", (unsigned)started, g_late_host != 0,
           (unsigned)queried, (unsigned)stopped);
    return 0;
}

/* The registry entry of slot `slot`: its host pid (0 if the slot is free). */
static uint32_t host_of(uint32_t slot) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return 0;
    uint32_t host = reg->loggers[slot].state != WPT_FREE ? reg->loggers[slot].host_pid : 0;
    wpt_registry_unlock();
    return host;
}

static int socket_exists(uint32_t slot) {
    char path[600];
    return wpt_socket_path(path, sizeof path, 's', slot) == 0 && access(path, F_OK) == 0;
}

/* Whether process `pid` is gone (no start time to be read) within `ms`. */
static int gone_within(uint32_t pid, int64_t ms) {
    int64_t deadline = wpt_mono_ms() + ms;
    while (wpt_process_start(pid) && wpt_mono_ms() < deadline) usleep(1000);
    return !wpt_process_start(pid);
}

static int wait_ended(uint32_t pid, uint64_t start) {
    int64_t deadline = wpt_mono_ms() + 20000;
    while (wpt_process_start(pid) == start && wpt_mono_ms() < deadline) usleep(1000);
    return wpt_process_start(pid) != start;
}

static int slow_host(const char *dir) {
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    uint32_t slot = (uint32_t)(a & 0xFFFF), host = host_of(slot);
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 4;
    wpt_host_reply_ms = 300;                /* a stopped host never answers: do not wait long */
    WPPTRACE_SESSION_INFO info;
    ULONG info_a = wpptrace_session_info(a, NULL, &info);
    ULONG flags = info.Flags;
    ULONG queried = query_by_name("control-races-a");
    props_block listed;
    blank(&listed);
    listed.p.LoggerNameOffset = sizeof listed.p;
    EVENT_TRACE_PROPERTIES *one[1] = {&listed.p};
    ULONG count = 0;
    ULONG list_rc = QueryAllTracesA(one, 1, &count);
    int named = strcmp(listed.names, "control-races-a") == 0 && listed.p.Wnode.HistoricalContext == a
             && listed.p.LogFileMode == EVENT_TRACE_FILE_MODE_SEQUENTIAL;
    kill((pid_t)host, SIGCONT);
    wpt_host_reply_ms = 10000;
    WPPTRACE_SESSION_INFO later;
    ULONG info_later = wpptrace_session_info(a, NULL, &later);
    ULONG stopped = stop(a);
    printf("info_a %u flags %u query_a %u list %u listed %u named %d info_later %u flags_later %u "
           "host_pid %d stop_a %u\n", (unsigned)info_a, (unsigned)flags, (unsigned)queried,
           (unsigned)list_rc, (unsigned)count, named, (unsigned)info_later, (unsigned)later.Flags,
           later.HostProcessId == host, (unsigned)stopped);
    return 0;
}

/* A control request's connection to a host that does not read it: filled up before the
 * request is sent (a host stopped for long enough, its connection's queue full). */
static void at_request_connected(int point) {
    if (point != WPT_POINT_REQUEST_CONNECTED || !atomic_load(&g_armed)) return;
    static const char junk[4096];
    while (send(wpt_test_request_fd, junk, sizeof junk, MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {}
}

static int full_host(const char *dir) {
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    uint32_t slot = (uint32_t)(a & 0xFFFF), host = host_of(slot);
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 4;
    wpt_host_reply_ms = 300;                /* a stopped host never reads: do not wait long */
    wpt_test_point = at_request_connected;
    atomic_store(&g_armed, 1);
    WPPTRACE_SESSION_INFO info;
    ULONG info_a = wpptrace_session_info(a, NULL, &info);
    ULONG flags = info.Flags;
    ULONG queried = query_by_name("control-races-a");
    atomic_store(&g_armed, 0);
    wpt_test_point = NULL;
    kill((pid_t)host, SIGCONT);
    wpt_host_reply_ms = 10000;
    WPPTRACE_SESSION_INFO later;
    ULONG info_later = wpptrace_session_info(a, NULL, &later);
    ULONG stopped = stop(a);
    printf("info_a %u flags %u query_a %u info_later %u flags_later %u host_pid %d stop_a %u\n",
           (unsigned)info_a, (unsigned)flags, (unsigned)queried, (unsigned)info_later,
           (unsigned)later.Flags, later.HostProcessId == host, (unsigned)stopped);
    return 0;
}

/* In StartTrace, its caller timed out: held until its host, held in turn once it runs the
 * session and before it registers it, says so. */
static void at_start_given_up(int point) {
    if (point == WPT_POINT_HOST_UNANSWERED) {
        char held[600];
        snprintf(held, sizeof held, "%s/held", g_dir);
        int64_t deadline = wpt_mono_ms() + 10000;
        while (access(held, F_OK) != 0 && wpt_mono_ms() < deadline) usleep(1000);
    } else {
        at_host_running(point);
    }
}

static int start_given_up(const char *dir) {
    g_dir = dir;
    wpt_host_answer_ms = 300;               /* the host is held until StartTrace returns */
    wpt_test_point = at_start_given_up;
    atomic_store(&g_armed, 1);              /* the host inherits it armed */
    TRACEHANDLE a;
    ULONG started = start(dir, "control-races-a", &a);
    wpt_test_point = NULL;
    char held[600], go[600];
    snprintf(held, sizeof held, "%s/held", dir);
    snprintf(go, sizeof go, "%s/go", dir);
    unsigned host = 0;
    FILE *f = fopen(held, "r");
    if (!f || fscanf(f, "%u", &host) != 1) return 4;
    fclose(f);
    uint64_t host_start = wpt_process_start(host);
    if (!(f = fopen(go, "w"))) return 5;
    fclose(f);
    int ended = wait_ended(host, host_start);
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return 6;
    int slot_free = reg->loggers[1].state == WPT_FREE;
    wpt_registry_unlock();
    printf("start_a %u host_ended %d slot_free %d socket_left %d\n", (unsigned)started, ended,
           slot_free, socket_exists(1));
    return 0;
}

/* A (slot 2) looks gone from here; starting B frees its entry (and takes slot 1, which X
 * held until then); then A's host stops. */
static int freed_stop(const char *dir) {
    TRACEHANDLE x, a, b;
    if (start(dir, "control-races-x", &x)) return 3;
    if (start(dir, "control-races-a", &a)) return 3;
    uint32_t slot = (uint32_t)(a & 0xFFFF), host = 0;
    uint64_t host_start = 0;
    int looks = looks_gone(slot, &host, &host_start);
    if (looks) return looks;
    if (stop(x)) return 6;
    if (start(dir, "control-races-b", &b)) return 7;
    if (wpt_process_start(host) == host_start) kill((pid_t)host, SIGTERM);
    int ended = wait_ended(host, host_start);
    b_answers answers = answers_of_b();
    printf("slot_a %u slot_b %u a_ended %d socket_left %d %s\n", (unsigned)slot,
           (unsigned)(b & 0xFFFF), ended, socket_exists(slot), answers.text);
    return 0;
}

static int gone_reuse(const char *dir) {
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    uint32_t slot = (uint32_t)(a & 0xFFFF), host = 0;
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return 4;
    host = reg->loggers[slot].host_pid;
    wpt_registry_unlock();
    if (!host || kill((pid_t)host, SIGKILL) != 0) return 5;
    if (!gone_within(host, 10000)) return 6;
    g_dir = dir;
    wpt_test_point = at_gone_freed;
    atomic_store(&g_armed, 1);
    if (stop(a) != ERROR_WMI_INSTANCE_NOT_FOUND) return 7;     /* A's host is gone */
    wpt_test_point = NULL;
    b_answers answers = answers_of_b();
    printf("slot_a %u start_b %d %s\n", (unsigned)slot, g_start_b, answers.text);
    return 0;
}

/* gone-wrap: the provider this process registers, which another process enables for B. */
static const GUID g_wrap_control = {0x6a3c2f14, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
static const GUID g_wrap_message = {0x6a3c2f15, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};

/* Held in the cleanup after A's gone host: another process starts B in A's slot with A's
 * handle and enables this process's provider for it. */
static void at_gone_freed_wrap(int point) {
    if (point != WPT_POINT_GONE_FREED || !atomic_exchange(&g_armed, 0)) return;
    g_start_b = run_point("replace-gone-wrap", g_dir);
}

/* Whether the provider is enabled once another process enabled it: that process's EnableTrace
 * waits 3 s for this one's endpoint, which may take longer on a loaded machine. */
static int enabled_within(int64_t ms) {
    wait_for(&g_enabled, ms);
    return atomic_load(&g_enabled);
}

static int gone_wrap(const char *dir) {
    TRACE_GUID_REGISTRATION reg = {&g_wrap_message, NULL};
    TRACEHANDLE registration, a;
    if (RegisterTraceGuids(track_control, NULL, &g_wrap_control, 1, &reg, NULL, NULL, &registration))
        return 3;
    if (start(dir, "control-races-a", &a)) return 4;
    uint32_t slot = (uint32_t)(a & 0xFFFF), host = host_of(slot);
    if (!host || kill((pid_t)host, SIGKILL) != 0) return 5;
    if (!gone_within(host, 10000)) return 6;
    g_dir = dir;
    wpt_test_point = at_gone_freed_wrap;
    atomic_store(&g_armed, 1);
    ULONG stopped_a = stop(a);                                  /* A's host is gone */
    wpt_test_point = NULL;
    enabled_within(20000);
    TRACEHANDLE logger = atomic_load(&g_logger);
    int same_handle = (logger & 0xFF00FFFF) == (a & 0xFF00FFFF);     /* LoggerId, generation */
    uint32_t value = 7;
    ULONG traced = TraceMessage(logger, 0x2B, &g_wrap_message, 10, &value, sizeof value, NULL);
    int enabled = atomic_load(&g_enabled);
    ULONG stopped_b = stop_by_name("control-races-b");
    UnregisterTraceGuids(registration);
    printf("stop_a %u replaced %d same_handle %d enabled %d trace %u stop_b %u\n", (unsigned)stopped_a,
           g_start_b == 0, same_handle, enabled, (unsigned)traced, (unsigned)stopped_b);
    return 0;
}

static int join_busy(const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    static const GUID control = {0x6a3c2f16, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
    static const GUID message = {0x6a3c2f17, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
    TRACE_GUID_REGISTRATION reg = {&message, NULL};
    TRACEHANDLE registration;
    if (RegisterTraceGuids(track_control, NULL, &control, 1, &reg, NULL, NULL, &registration)) return 5;
    uint32_t host = host_of(slot);
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 6;
    wpt_host_reply_ms = 300;                /* a stopped host never answers: do not wait long */
    uint32_t incarnation = 0;
    if (wpt_registry_find_in("control-races-a", &slot, &generation, &incarnation) != ERROR_SUCCESS) return 7;
    ULONG attached = wpt_attach(slot, generation, incarnation);
    ULONG enabled = EnableTrace(1, 0x5, 4, &control, a);
    int was_enabled = atomic_load(&g_enabled);
    kill((pid_t)host, SIGCONT);
    wpt_host_reply_ms = 10000;
    ULONG enabled_later = EnableTrace(1, 0x5, 4, &control, a);
    int later = atomic_load(&g_enabled);
    ULONG stopped = stop_by_name("control-races-a");
    UnregisterTraceGuids(registration);
    printf("attach %u enable %u enabled %d enable_later %u enabled_later %d stop_a %u\n",
           (unsigned)attached, (unsigned)enabled, was_enabled, (unsigned)enabled_later, later,
           (unsigned)stopped);
    return 0;
}

/* A process that holds the registry locked and is stopped (-1 until made). */
static pid_t g_holder = -1;

static pid_t stopped_holder(void) {
    pid_t holder = fork_tied();
    if (holder == 0) {
        ULONG rc;
        if (!wpt_registry_lock(1, &rc)) _exit(1);
        raise(SIGSTOP);                        /* stopped with the lock held */
        _exit(0);
    }
    int status = 0;
    if (holder < 0 || waitpid(holder, &status, WUNTRACED) != holder || !WIFSTOPPED(status)) return -1;
    return holder;
}

static int locked_registry(const char *dir) {
    TRACEHANDLE a, b;
    if (start(dir, "control-races-a", &a)) return 3;
    static const GUID control = {0x6a3c2f18, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
    pid_t holder = stopped_holder();
    if (holder < 0) return 4;
    wpt_registry_wait_ms = 300;               /* the holder never lets go: do not wait long */
    ULONG queried = query_by_name("control-races-a");
    ULONG enabled = EnableTrace(1, 0x5, 4, &control, a);
    ULONG started = start(dir, "control-races-b", &b);
    props_block listed;
    blank(&listed);
    EVENT_TRACE_PROPERTIES *one[1] = {&listed.p};
    ULONG count = 0;
    ULONG list_rc = QueryAllTracesA(one, 1, &count);
    kill_and_reap(holder);
    wpt_registry_wait_ms = 10000;
    printf("query %u enable %u start %u list %u stop_a %u\n", (unsigned)queried, (unsigned)enabled,
           (unsigned)started, (unsigned)list_rc, (unsigned)stop(a));
    return 0;
}

/* stale-peer: the socket a new process with a gone one's pid binds (-1 until bound). */
static const char *g_peer_path;
static int g_new_peer = -1;

static int bind_at(const char *path, int listening) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || (listening && listen(fd, 8) != 0)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* Held before the stale socket is removed: the pid's new process binds its own there. */
static void at_peer_refused(int point) {
    if (point != WPT_POINT_PEER_REFUSED || !atomic_exchange(&g_armed, 0)) return;
    unlink(g_peer_path);
    g_new_peer = bind_at(g_peer_path, 1);
}

static int stale_peer(void) {
    char held[600], stale[600];
    /* pids above the kernel's limit: no process ever has them */
    if (wpt_socket_path(held, sizeof held, 'p', 999999998) != 0
        || wpt_socket_path(stale, sizeof stale, 'p', 999999999) != 0) return 3;
    int fd = bind_at(held, 0);                 /* the socket of a process that is gone */
    if (fd < 0) return 4;
    close(fd);
    g_peer_path = held;
    wpt_test_point = at_peer_refused;
    atomic_store(&g_armed, 1);
    wpt_wire_enable msg;
    memset(&msg, 0, sizeof msg);
    wpt_broadcast(WPT_REQ_DISABLE, 0, &msg);
    wpt_test_point = NULL;
    if (g_new_peer < 0) return 5;
    if ((fd = bind_at(stale, 0)) < 0) return 6;    /* another one, nobody binds again */
    close(fd);
    wpt_broadcast(WPT_REQ_DISABLE, 0, &msg);
    ULONG rc;
    int reached = wpt_ipc_connect(held, 1000, &rc);
    printf("new_left %d new_reachable %d stale_left %d\n", access(held, F_OK) == 0, reached >= 0,
           access(stale, F_OK) == 0);
    if (reached >= 0) close(reached);
    close(g_new_peer);
    unlink(held);
    return 0;
}

/* peer-no-proc: the descriptors this process has left, taken while a broadcast looks up
 * whether a refusing socket's process is gone, given back if it goes on to remove it. */
static int g_no_proc_fillers[4096];
static int g_no_proc_filled;

static void give_back_descriptors(void) {
    while (g_no_proc_filled > 0) close(g_no_proc_fillers[--g_no_proc_filled]);
}

static void at_peer_unanswered(int point) {
    if (point == WPT_POINT_PEER_REFUSED) give_back_descriptors();
    if (point != WPT_POINT_PEER_UNANSWERED || !atomic_exchange(&g_armed, 0)) return;
    int f;
    while (g_no_proc_filled < 4096 && (f = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        g_no_proc_fillers[g_no_proc_filled++] = f;
}

static int peer_no_proc(void) {
    char path[600];
    /* the parent runs on: its socket refuses (bound, not listening), /proc cannot be read */
    if (wpt_socket_path(path, sizeof path, 'p', (uint32_t)getppid()) != 0) return 3;
    int fd = bind_at(path, 0);
    if (fd < 0) return 4;
    struct rlimit old, low;
    if (getrlimit(RLIMIT_NOFILE, &old) != 0) return 5;
    low = old;
    low.rlim_cur = 256;
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) return 6;
    wpt_test_point = at_peer_unanswered;
    atomic_store(&g_armed, 1);
    wpt_wire_enable msg;
    memset(&msg, 0, sizeof msg);
    wpt_broadcast(WPT_REQ_DISABLE, 0, &msg);
    wpt_test_point = NULL;
    int armed = atomic_load(&g_armed);
    give_back_descriptors();
    if (setrlimit(RLIMIT_NOFILE, &old) != 0) return 7;
    printf("looked_up %d left %d\n", !armed, access(path, F_OK) == 0);
    close(fd);
    unlink(path);
    return 0;
}

/* A provider process started at test point `point` (it runs on; its pid in *child), once it
 * says it is registered. 0, or the step that failed (3: not started, 4: not ready in 20 s). */
static int provider_elsewhere(const char *point, const char *dir, pid_t *child) {
    char ready[600];
    snprintf(ready, sizeof ready, "%s/provider-ready", dir);
    char *args[] = {"control_races", (char *)point, (char *)dir, NULL};
    if (posix_spawn(child, "/proc/self/exe", NULL, NULL, args, environ) != 0) return 3;
    int64_t deadline = wpt_mono_ms() + 20000;
    while (access(ready, F_OK) != 0 && wpt_mono_ms() < deadline) usleep(1000);
    return access(ready, F_OK) != 0 ? 4 : 0;
}

static const GUID g_silent_control = {0x6a3c2f1a, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};

/* A provider process (provider_elsewhere at `point`) and session A started here: 0 and the
 * path of the provider's socket, or the step that failed (5: A not started, 6: no path). */
static int provider_and_a(const char *point, const char *dir, pid_t *child, TRACEHANDLE *a, char *path,
                          size_t size) {
    int failed = provider_elsewhere(point, dir, child);
    if (failed) return failed;
    if (start(dir, "control-races-a", a)) return 5;
    return wpt_socket_path(path, size, 'p', (uint32_t)*child) != 0 ? 6 : 0;
}

/* The registry's enable of g_silent_control as the ENABLE that tells it (`msg`), and its
 * session's generation (`whole`, left as it is if there is none). With `drop` the enable is
 * taken out of the registry (locked for writing) as a disabling EnableTrace does, and `msg` is
 * its DISABLE (the registry's next version). `older`,
 * if given, gets an ENABLE (flags 0x7, level 5) at the version after the enable's: one made
 * between the enable and that DISABLE. Nonzero if the registry could not be locked. */
static int silent_enable(int drop, wpt_wire_enable *msg, wpt_wire_enable *older, uint32_t *whole) {
    memset(msg, 0, sizeof *msg);
    if (older) memset(older, 0, sizeof *older);
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(drop, &rc);
    if (!reg) return 1;
    for (int i = 0; i < WPT_MAX_ENABLES; i++) {
        wpt_reg_enable *en = &reg->enables[i];
        if (!en->used || memcmp(&en->guid, &g_silent_control, sizeof(GUID)) != 0) continue;
        if (drop) en->used = 0;
        msg->guid = en->guid;
        msg->version = en->version;
        msg->clock_type = en->clock_type;
        msg->logger_handle = wpt_handle_of(en->logger_id, en->generation, en->flags, en->level);
        if (older) {
            *older = *msg;
            older->logger_handle = wpt_handle_of(en->logger_id, en->generation, 0x7, 5);
            older->version = en->version + 1;
        }
        *whole = wpt_reg_logger_of(reg, en->logger_id)->generation;
    }
    if (drop) msg->version = wpt_next_version(reg);
    wpt_registry_unlock();
    return 0;
}

static int silent_peer(const char *dir) {
    pid_t child;
    TRACEHANDLE a;
    char path[600];
    ULONG rc;
    int failed = provider_and_a("provider-only", dir, &child, &a, path, sizeof path);
    if (failed) return failed;
    int silent = wpt_ipc_connect(path, 1000, &rc);      /* connects, never sends */
    if (silent < 0) return 7;
    ULONG enabled = EnableTrace(1, 0x5, 4, &g_silent_control, a);
    char c;
    int open = recv(silent, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
    /* what the other process says it has enabled */
    wpt_wire_registered regs[16];
    wpt_frame f;
    void *payload = regs;
    int child_enabled = 0, asked = wpt_ipc_connect(path, 1000, &rc);
    if (asked >= 0 && wpt_ipc_send(asked, WPT_REQ_LIST, 0, NULL, 0, -1, 1000) == 0
        && wpt_ipc_recv(asked, &f, &payload, sizeof regs, NULL, 20000) == 0)
        for (uint32_t i = 0; i < f.length / sizeof regs[0]; i++)
            child_enabled |= memcmp(&regs[i].guid, &g_silent_control, sizeof(GUID)) == 0
                          && (regs[i].logger_handle & 0xFF00FFFF) == (a & 0xFF00FFFF);
    if (asked >= 0) close(asked);
    close(silent);
    kill_and_reap(child);
    printf("enable %u silent_open %d child_enabled %d stop_a %u\n", (unsigned)enabled, open, child_enabled,
           (unsigned)stop(a));
    return 0;
}

/* Whether the provider process with endpoint `path` says the silent-peer GUID is enabled for
 * the session of `logger` (-1: no answer). */
static int peer_enabled(const char *path, TRACEHANDLE logger) {
    ULONG rc;
    wpt_wire_registered regs[16];
    wpt_frame f;
    void *payload = regs;
    int enabled = -1, asked = wpt_ipc_connect(path, 1000, &rc);
    if (asked >= 0 && wpt_ipc_send(asked, WPT_REQ_LIST, 0, NULL, 0, -1, 1000) == 0
        && wpt_ipc_recv(asked, &f, &payload, sizeof regs, NULL, 20000) == 0) {
        enabled = 0;
        for (uint32_t i = 0; i < f.length / sizeof regs[0]; i++)
            enabled |= memcmp(&regs[i].guid, &g_silent_control, sizeof(GUID)) == 0
                    && (regs[i].logger_handle & 0xFF00FFFF) == (logger & 0xFF00FFFF);
    }
    if (asked >= 0) close(asked);
    return enabled;
}

/* What peer_enabled says once it says `want`, or after `ms`. */
static int peer_enabled_within(const char *path, TRACEHANDLE logger, int want, int64_t ms) {
    int64_t until = wpt_mono_ms() + ms;
    int got;
    while ((got = peer_enabled(path, logger)) != want && wpt_mono_ms() < until) usleep(10000);
    return got;
}

static int busy_enable(const char *dir) {
    pid_t child;
    TRACEHANDLE a;
    char path[600];
    int failed = provider_and_a("provider-impatient", dir, &child, &a, path, sizeof path);
    if (failed) return failed;
    int status;
    /* the ENABLE waits in the stopped process's socket until the registry is locked */
    if (kill(child, SIGSTOP) != 0 || waitpid(child, &status, WUNTRACED) != child) return 7;
    ULONG enabled = EnableTrace(1, 0x5, 4, &g_silent_control, a);
    pid_t holder = stopped_holder();
    if (holder < 0) return 8;
    kill(child, SIGCONT);
    int at_first = peer_enabled(path, a);       /* answered after the ENABLE was handled */
    kill_and_reap(holder);
    int later = peer_enabled_within(path, a, 1, 20000);
    /* the same ENABLE again, sent from here while the registry is locked: the answer says busy */
    wpt_wire_enable msg;
    uint32_t whole = 0;
    ULONG rc;
    if (silent_enable(0, &msg, NULL, &whole)) return 9;
    if ((holder = stopped_holder()) < 0) return 10;
    int fd = wpt_ipc_connect(path, 1000, &rc);
    wpt_frame f;
    void *payload = NULL;
    if (fd < 0 || wpt_ipc_send(fd, WPT_REQ_ENABLE, wpt_for_session(whole), &msg, sizeof msg, -1, 1000) != 0
        || wpt_ipc_recv(fd, &f, &payload, 64, NULL, 20000) != 0) return 11;
    close(fd);
    kill_and_reap(holder);
    kill_and_reap(child);
    printf("enable %u at_first %d later %d answer %u stop_a %u\n", (unsigned)enabled, at_first, later,
           (unsigned)f.status, (unsigned)stop(a));
    return 0;
}

/* One ENABLE or DISABLE sent to the provider process with endpoint `path`: its answer (-1:
 * none). */
static long ask_peer(const char *path, uint32_t kind, uint32_t whole, const wpt_wire_enable *msg) {
    ULONG rc;
    wpt_frame f;
    void *payload = NULL;
    long answer = -1;
    int fd = wpt_ipc_connect(path, 1000, &rc);
    if (fd >= 0 && wpt_ipc_send(fd, kind, wpt_for_session(whole), msg, sizeof *msg, -1, 1000) == 0
        && wpt_ipc_recv(fd, &f, &payload, 64, NULL, 20000) == 0)
        answer = (long)f.status;
    free(payload);
    if (fd >= 0) close(fd);
    return answer;
}

#define BUSY_FILLERS 80

static int busy_disable(const char *dir) {
    pid_t child;
    TRACEHANDLE a;
    char path[600];
    int failed = provider_and_a("provider-hasty", dir, &child, &a, path, sizeof path);
    if (failed) return failed;
    if (EnableTrace(1, 0x5, 4, &g_silent_control, a) != ERROR_SUCCESS) return 7;
    int enabled = peer_enabled_within(path, a, 1, 20000);
    /* what a disabling EnableTrace does to the registry, its DISABLE told later */
    wpt_wire_enable disable;
    uint32_t whole = 0;
    if (silent_enable(1, &disable, NULL, &whole)) return 8;
    if (!whole) return 9;
    /* the registry locked elsewhere: many requests the provider cannot check, the DISABLE last */
    pid_t holder = stopped_holder();
    if (holder < 0) return 10;
    int busy = 0;
    for (int i = 0; i < BUSY_FILLERS; i++) {
        wpt_wire_enable filler = disable;
        filler.guid.Data1 = 0x7b000000u + (uint32_t)i;    /* enables nobody made */
        busy += ask_peer(path, WPT_REQ_ENABLE, whole, &filler) == ERROR_BUSY;
    }
    long answer = ask_peer(path, WPT_REQ_DISABLE, whole, &disable);
    kill_and_reap(holder);
    /* the endpoint thread checks again (waits doubling from 1 s) */
    int later = peer_enabled_within(path, a, 0, 30000);
    kill_and_reap(child);
    printf("enabled %d busy %d of %d answer %ld later %d stop_a %u\n", enabled, busy, BUSY_FILLERS, answer,
           later, (unsigned)stop(a));
    return 0;
}

static int broadcast_join_busy(const char *dir) {
    pid_t child;
    TRACEHANDLE a;
    char path[600];
    int failed = provider_and_a("provider-only", dir, &child, &a, path, sizeof path);
    if (failed) return failed;
    uint32_t host = host_of((uint32_t)(a & 0xFFFF));
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 7;
    /* the provider process must join A to enable its provider; A's host does not answer */
    ULONG enabled = EnableTrace(1, 0x5, 4, &g_silent_control, a);
    int at_first = peer_enabled(path, a);
    kill((pid_t)host, SIGCONT);
    int later = peer_enabled_within(path, a, 1, 30000);
    kill_and_reap(child);
    printf("enable %u at_first %d later %d stop_a %u\n", (unsigned)enabled, at_first, later, (unsigned)stop(a));
    return 0;
}

/* request-deadline: seconds this program's CLOCK_MONOTONIC reads are ahead of the kernel's. */
static _Atomic long g_mono_ahead;
static _Atomic int g_request_done;

/* Once the request is connected, the time it was given has passed (as its clock says). */
static void at_request_connected_late(int point) {
    if (point == WPT_POINT_REQUEST_CONNECTED && atomic_exchange(&g_armed, 0)) atomic_store(&g_mono_ahead, 100);
}

static void *ask_silent(void *arg) {
    ULONG *rc = arg;
    *rc = wpt_ipc_call((const char *)g_peer_path, WPT_REQ_QUERY, 0, NULL, 0, NULL, 0, NULL, 20000);
    atomic_store(&g_request_done, 1);
    return NULL;
}

static int request_deadline(void) {
    char path[600];
    if (wpt_socket_path(path, sizeof path, 's', 63) != 0) return 3;
    int fd = bind_at(path, 1);                 /* listens, never answers */
    if (fd < 0) return 4;
    g_peer_path = path;
    wpt_test_point = at_request_connected_late;
    atomic_store(&g_armed, 1);
    ULONG rc = 0;
    pthread_t asker;
    if (pthread_create(&asker, NULL, ask_silent, &rc) != 0) return 5;
    /* 20 s from the start of the request ran out as it connected: its answer is not awaited
     * 20 s more (counted in naps: this program's clock is ahead) */
    for (int i = 0; i < 1000 && !atomic_load(&g_request_done); i++) usleep(10000);
    int returned = atomic_load(&g_request_done);
    printf("returned %d request %u\n", returned, (unsigned)rc);
    fflush(stdout);
    if (!returned) _exit(0);
    pthread_join(asker, NULL);
    wpt_test_point = NULL;
    close(fd);
    unlink(path);
    return 0;
}

static int made_up_disable(const char *dir) {
    TRACE_GUID_REGISTRATION reg = {&g_wrap_message, NULL};
    TRACEHANDLE registration;
    if (RegisterTraceGuids(track_control, NULL, &g_wrap_control, 1, &reg, NULL, NULL, &registration))
        return 3;
    ULONG rc;
    wpt_registry *r = wpt_registry_lock(1, &rc);
    if (!r || r->loggers[1].state != WPT_FREE) return 4;
    r->loggers[1].generation += 1;          /* the slot's first session came and went */
    wpt_registry_unlock();
    if (run_point("replace-gone-wrap", dir) != 0) return 5;
    int enabled = enabled_within(20000);
    wpt_wire_enable msg;
    memset(&msg, 0, sizeof msg);
    msg.guid = g_wrap_control;
    msg.version = UINT64_MAX;
    msg.logger_handle = wpt_handle_of(1, 1, 0, 0);       /* the slot's first session's handle */
    char path[600];
    if (wpt_socket_path(path, sizeof path, 'p', (uint32_t)getpid()) != 0) return 6;
    int fd = wpt_ipc_connect(path, 1000, &rc);
    wpt_frame f;
    void *payload = NULL;
    if (fd < 0 || wpt_ipc_send(fd, WPT_REQ_DISABLE, wpt_for_session(1), &msg, sizeof msg, -1, 1000) != 0
        || wpt_ipc_recv(fd, &f, &payload, 64, NULL, 10000) != 0) return 7;
    close(fd);
    int still = atomic_load(&g_enabled);
    ULONG stopped = stop_by_name("control-races-b");
    UnregisterTraceGuids(registration);
    printf("enabled %d answer %u still_enabled %d stop_b %u\n", enabled, (unsigned)f.status, still,
           (unsigned)stopped);
    return 0;
}

static void at_target_found_lock(int point) {
    if (point != WPT_POINT_TARGET_FOUND || !atomic_exchange(&g_armed, 0)) return;
    g_holder = stopped_holder();
}

static int busy_both(const char *dir) {
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    uint32_t host = host_of((uint32_t)(a & 0xFFFF));
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 4;
    wpt_host_reply_ms = 300;                /* neither ever answers: do not wait long */
    wpt_registry_wait_ms = 300;
    wpt_test_point = at_target_found_lock;
    atomic_store(&g_armed, 1);
    WPPTRACE_SESSION_INFO info;
    ULONG info_a = wpptrace_session_info(a, NULL, &info);
    wpt_test_point = NULL;
    if (g_holder < 0) return 5;
    kill_and_reap(g_holder);
    kill((pid_t)host, SIGCONT);
    wpt_host_reply_ms = 10000;
    wpt_registry_wait_ms = 10000;
    printf("info_a %u stop_a %u\n", (unsigned)info_a, (unsigned)stop(a));
    return 0;
}

static atomic_int g_polls;

static void count_polls(int point) {
    if (point == WPT_POINT_ENDPOINT_POLL) atomic_fetch_add(&g_polls, 1);
}

static int accept_emfile(void) {
    static const GUID control = {0x6a3c2f1c, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
    static const GUID message = {0x6a3c2f1d, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
    TRACE_GUID_REGISTRATION reg = {&message, NULL};
    TRACEHANDLE registration;
    if (RegisterTraceGuids(track_control, NULL, &control, 1, &reg, NULL, NULL, &registration)) return 3;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (wpt_socket_path(a.sun_path, sizeof a.sun_path, 'p', (uint32_t)getpid()) != 0) return 4;
    int peer = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (peer < 0) return 5;
    struct rlimit old, low;
    if (getrlimit(RLIMIT_NOFILE, &old) != 0) return 6;
    int probe = dup(peer);
    if (probe < 0) return 7;
    close(probe);
    low = old;
    low.rlim_cur = (rlim_t)probe + 8;
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) return 8;
    static int fillers[4096];
    int n = 0, f;
    while (n < 4096 && (f = dup(peer)) >= 0) fillers[n++] = f;
    int emfile = errno == EMFILE;
    wpt_test_point = count_polls;
    int before = atomic_load(&g_polls);
    if (connect(peer, (struct sockaddr *)&a, sizeof a) != 0) return 9;   /* queued, not accepted */
    /* a spinning thread makes 50 rounds at once; one that waits makes a few in 2 s */
    int64_t until = wpt_mono_ms() + 2000;
    while (atomic_load(&g_polls) - before < 50 && wpt_mono_ms() < until) usleep(1000);
    int polls = atomic_load(&g_polls) - before;
    wpt_test_point = NULL;
    while (n > 0) close(fillers[--n]);
    if (setrlimit(RLIMIT_NOFILE, &old) != 0) return 10;
    wpt_wire_registered regs[16];
    wpt_frame fr;
    void *payload = regs;
    int served = wpt_ipc_send(peer, WPT_REQ_LIST, 0, NULL, 0, -1, 1000) == 0
              && wpt_ipc_recv(peer, &fr, &payload, sizeof regs, NULL, 20000) == 0 && fr.kind == WPT_REPLY;
    close(peer);
    printf("emfile %d polls %d served %d\n", emfile, polls, served);
    return 0;
}

static _Atomic int g_stop_done;
static TRACEHANDLE g_private;

static void *stop_private(void *arg) {
    *(ULONG *)arg = stop(g_private);
    atomic_store(&g_stop_done, 1);
    return NULL;
}

/* CPU time a process has had, in clock ticks (utime + stime of /proc/PID/stat), -1 if unknown. */
static long cpu_ticks(pid_t pid) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    const char *fields = stat_fields(path, text, sizeof text);
    unsigned long utime, stime;
    if (!fields || sscanf(fields, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (long)(utime + stime);
}

static int host_emfile(const char *dir) {
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    uint32_t slot = (uint32_t)(a & 0xFFFF);
    pid_t host = (pid_t)host_of(slot);
    if (!host) return 4;
    char fds[64];
    snprintf(fds, sizeof fds, "/proc/%d/fd", (int)host);
    DIR *d = opendir(fds);
    if (!d) return 5;
    int highest = 0;
    struct dirent *e;
    while ((e = readdir(d))) if (atoi(e->d_name) > highest) highest = atoi(e->d_name);
    closedir(d);
    struct rlimit low = {(rlim_t)highest + 3, (rlim_t)highest + 3}, old;
    if (prlimit(host, RLIMIT_NOFILE, NULL, &old) != 0) return 6;
    low.rlim_max = old.rlim_max;
    if (prlimit(host, RLIMIT_NOFILE, &low, NULL) != 0) return 7;
    char path[600];
    if (wpt_socket_path(path, sizeof path, 's', slot) != 0) return 8;
    int clients[16], n = 0;
    ULONG rc;
    while (n < 16 && (clients[n] = wpt_ipc_connect(path, 1000, &rc)) >= 0) n++;
    /* a host that polls its listening socket again at once spins a whole second */
    long before = cpu_ticks(host);
    int64_t until = wpt_mono_ms() + 1000;
    while (wpt_mono_ms() < until) usleep(10000);
    long ticks = cpu_ticks(host) - before;
    while (n > 0) close(clients[--n]);
    if (prlimit(host, RLIMIT_NOFILE, &old, NULL) != 0) return 9;
    ULONG queried = query_by_name("control-races-a");
    printf("ticks %ld per_second %ld query %u stop_a %u\n", before < 0 ? -1 : ticks, sysconf(_SC_CLK_TCK),
           (unsigned)queried, (unsigned)stop(a));
    return 0;
}

static int release_locked(const char *dir) {
    if (start_private_in_proc(dir, "control-races-a", &g_private)) return 3;
    pid_t holder = stopped_holder();
    if (holder < 0) return 4;
    wpt_registry_wait_ms = 300;
    ULONG stopped = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, stop_private, &stopped) != 0) return 5;
    /* a STOP that gives up is done long before this; one that waits is let through then */
    wait_for(&g_stop_done, 2000);
    kill_and_reap(holder);
    pthread_join(t, NULL);
    wpt_registry_wait_ms = 10000;
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return 6;
    int left = reg->loggers[wpt_handle_slot(g_private)].state != WPT_FREE;
    wpt_registry_unlock();
    printf("stop_a %u entry_left %d\n", (unsigned)stopped, left);
    return 0;
}

/* wall-stepped: seconds this program's CLOCK_REALTIME reads are ahead of the kernel's. */
static _Atomic long g_wall_ahead;

int clock_gettime(clockid_t id, struct timespec *ts) {
    int rc = (int)syscall(SYS_clock_gettime, id, ts);
    if (rc == 0 && id == CLOCK_REALTIME) ts->tv_sec += (time_t)atomic_load(&g_wall_ahead);
    if (rc == 0 && id == CLOCK_MONOTONIC) ts->tv_sec += (time_t)atomic_load(&g_mono_ahead);
    return rc;
}

static _Atomic int g_lock_held, g_lock_release, g_lock_done;

static void *hold_registry(void *arg) {
    (void)arg;
    ULONG rc;
    if (!wpt_registry_lock(1, &rc)) return NULL;
    atomic_store(&g_lock_held, 1);
    while (!atomic_load(&g_lock_release)) usleep(1000);
    wpt_registry_unlock();
    return NULL;
}

static void *ask_registry(void *arg) {
    ULONG *rc = arg;
    if (wpt_registry_lock(0, rc)) wpt_registry_unlock();
    atomic_store(&g_lock_done, 1);
    return NULL;
}

static int wall_stepped(void) {
    pthread_t holder, asker;
    if (pthread_create(&holder, NULL, hold_registry, NULL) != 0) return 3;
    wait_for(&g_lock_held, 20000);
    if (!atomic_load(&g_lock_held)) return 4;
    wpt_registry_wait_ms = 300;
    atomic_store(&g_wall_ahead, 100000);
    ULONG rc = 0;
    if (pthread_create(&asker, NULL, ask_registry, &rc) != 0) return 5;
    /* 300 ms as counted by the kernel; a wait by the wall clock lasts a day */
    wait_for(&g_lock_done, 20000);
    int returned = atomic_load(&g_lock_done);
    atomic_store(&g_wall_ahead, 0);
    atomic_store(&g_lock_release, 1);
    pthread_join(holder, NULL);
    pthread_join(asker, NULL);
    printf("returned %d lock %u\n", returned, (unsigned)rc);
    return 0;
}

static void *ask_directory(void *arg) {
    ULONG *rc = arg;
    *rc = wpt_socket_path((char[600]){0}, 600, 'p', 1);
    atomic_store(&g_lock_done, 1);
    return NULL;
}

/* dir-while-locked: a thread holds the registry lock; another asks for a socket path. */
static int dir_while_locked(void) {
    pthread_t holder, asker;
    if (pthread_create(&holder, NULL, hold_registry, NULL) != 0) return 3;
    wait_for(&g_lock_held, 20000);
    if (!atomic_load(&g_lock_held)) return 4;
    ULONG rc = 0;
    if (pthread_create(&asker, NULL, ask_directory, &rc) != 0) return 5;
    wait_for(&g_lock_done, 10000);
    int returned = atomic_load(&g_lock_done);
    atomic_store(&g_lock_release, 1);
    pthread_join(holder, NULL);
    pthread_join(asker, NULL);
    printf("returned %d path %u\n", returned, (unsigned)rc);
    return 0;
}

/* The sessions a child forked now reads as it begins (-1: it failed). */
static int sessions_read_by_child(void) {
    pid_t child = fork_tied();
    if (child == 0) {
        uint32_t n = atomic_load(&wpt_fork_sessions_read);
        _exit(n > 100 ? 100 : (int)n);
    }
    return exit_code_of(child, -1);
}

/* Whether a child forked now still has descriptor 0 (-1: it failed). */
static int child_keeps_stdin(void) {
    pid_t child = fork_tied();
    if (child == 0) _exit(fcntl(0, F_GETFD) != -1);
    return exit_code_of(child, -1);
}

/* The provider registrations a child forked now resets as it begins (-1: it failed). */
static int registrations_read_by_child(void) {
    pid_t child = fork_tied();
    if (child == 0) {
        uint32_t n = atomic_load(&wpt_fork_registrations_read);
        _exit(n > 100 ? 100 : (int)n);
    }
    return exit_code_of(child, -1);
}

/* fork-sessions: children forked without a session, and with a private one. */
static int fork_sessions(const char *dir) {
    if (fcntl(0, F_GETFD) == -1 && open("/dev/null", O_RDONLY) != 0) return 4;   /* a descriptor 0 */
    int stdin_kept = child_keeps_stdin();
    int without = sessions_read_by_child();
    int registrations = registrations_read_by_child();
    TRACEHANDLE a;
    if (start_private_in_proc(dir, "control-races-a", &a)) return 3;
    int with_private = sessions_read_by_child();
    ULONG stopped = stop(a);
    int after_stop = sessions_read_by_child();
    printf("stdin_kept %d registrations %d without %d with_private %d after_stop %d stop_a %u\n",
           stdin_kept, registrations, without, with_private, after_stop, (unsigned)stopped);
    return 0;
}

/* list-slow-host: the listing thread, and whether a control call of this process ended while
 * the listing waited for a stopped host. */
static _Atomic int g_listing_asked, g_listing_done, g_query_done;
static ULONG g_list_rc, g_query_rc;
static ULONG g_listed;
static TRACEHANDLE g_private_b;

static void at_listing_connected(int point) {
    if (point == WPT_POINT_REQUEST_CONNECTED && atomic_exchange(&g_armed, 0)) atomic_store(&g_listing_asked, 1);
}

static void *list_all(void *arg) {
    (void)arg;
    props_block blocks[4];
    EVENT_TRACE_PROPERTIES *array[4];
    blank_array(blocks, array, 4);
    g_list_rc = QueryAllTracesA(array, 4, &g_listed);
    atomic_store(&g_listing_done, 1);
    return NULL;
}

static void *info_of_a(void *arg) {
    WPPTRACE_SESSION_INFO info;
    g_list_rc = wpptrace_session_info(0, "control-races-a", &info);
    g_listed = info.LoggerId != 0;
    (void)arg;
    atomic_store(&g_listing_done, 1);
    return NULL;
}

/* ControlTrace `code` of session A by name, as the listing threads report it. */
static void control_a_by_name(ULONG code) {
    props_block b;
    blank(&b);
    g_list_rc = ControlTraceA(0, "control-races-a", &b.p, code);
    g_listed = b.p.Wnode.HistoricalContext != 0;
    atomic_store(&g_listing_done, 1);
}

static void *flush_a(void *arg) {
    (void)arg;
    control_a_by_name(EVENT_TRACE_CONTROL_FLUSH);
    return NULL;
}

static void *stop_a_by_name(void *arg) {
    (void)arg;
    control_a_by_name(EVENT_TRACE_CONTROL_STOP);
    return NULL;
}

static void *query_private(void *arg) {
    (void)arg;
    props_block b;
    blank(&b);
    g_query_rc = ControlTraceA(g_private_b, NULL, &b.p, EVENT_TRACE_CONTROL_QUERY);
    atomic_store(&g_query_done, 1);
    return NULL;
}

/* info: 0 lists, 1 asks for A's session info, 2 flushes A, 3 stops A */
static int list_slow_host(const char *dir, int info) {
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    if (start_private_in_proc(dir, "control-races-b", &g_private_b)) return 4;
    pid_t host = (pid_t)host_of((uint32_t)(a & 0xFFFF));
    if (!host || kill(host, SIGSTOP) != 0) return 5;
    wpt_host_reply_ms = 120000;             /* the listing waits for the stopped host */
    wpt_test_point = at_listing_connected;
    atomic_store(&g_armed, 1);
    pthread_t lister, querier;
    void *(*asks)(void *) = info == 3 ? stop_a_by_name : info == 2 ? flush_a : info ? info_of_a : list_all;
    if (pthread_create(&lister, NULL, asks, NULL) != 0) return 6;
    wait_for(&g_listing_asked, 20000);
    if (!atomic_load(&g_listing_asked)) return 7;
    if (pthread_create(&querier, NULL, query_private, NULL) != 0) return 8;
    wait_for(&g_query_done, 10000);
    int first = atomic_load(&g_query_done) && !atomic_load(&g_listing_done);
    kill(host, SIGCONT);                    /* the listing (and a query it held up) go on */
    pthread_join(lister, NULL);
    pthread_join(querier, NULL);
    wpt_test_point = NULL;
    wpt_host_reply_ms = 10000;
    printf("query_first %d query %u list %u listed %u stop_b %u stop_a %u\n", first, (unsigned)g_query_rc,
           (unsigned)g_list_rc, (unsigned)g_listed, (unsigned)stop(g_private_b), (unsigned)stop(a));
    return 0;
}

/* stale-replaces: an older ENABLE (another controller's, made before the DISABLE) arrives after
 * the DISABLE while the provider process cannot check either against the registry. */
static int stale_replaces(const char *dir) {
    pid_t child;
    TRACEHANDLE a;
    char path[600];
    int failed = provider_and_a("provider-hasty", dir, &child, &a, path, sizeof path);
    if (failed) return failed;
    if (EnableTrace(1, 0x5, 4, &g_silent_control, a) != ERROR_SUCCESS) return 7;
    int enabled = peer_enabled_within(path, a, 1, 20000);
    /* the registry drops the enable (a disabling EnableTrace); the older ENABLE names a version
     * between the enable and the disable */
    wpt_wire_enable disable, older;
    uint32_t whole = 0;
    if (silent_enable(1, &disable, &older, &whole)) return 8;
    if (!whole) return 9;
    pid_t holder = stopped_holder();
    if (holder < 0) return 10;
    long disable_answer = ask_peer(path, WPT_REQ_DISABLE, whole, &disable);
    long older_answer = ask_peer(path, WPT_REQ_ENABLE, whole, &older);
    kill_and_reap(holder);
    int later = peer_enabled_within(path, a, 0, 20000);
    kill_and_reap(child);
    printf("enabled %d disable_answer %ld older_answer %ld later %d stop_a %u\n", enabled, disable_answer,
           older_answer, later, (unsigned)stop(a));
    return 0;
}

/* An enable of `control` put into the registry for the session in `slot` (nobody told); its
 * index in the table, -1 if none is free. */
static int registry_enable(const GUID *control, uint32_t slot) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(1, &rc);
    if (!reg) return -1;
    int index = -1;
    for (int i = 0; i < WPT_MAX_ENABLES && index < 0; i++) {
        wpt_reg_enable *en = &reg->enables[i];
        if (en->used) continue;
        *en = (wpt_reg_enable){.used = 1, .logger_id = (uint16_t)slot,
                               .generation = (uint8_t)reg->loggers[slot].generation, .level = 4,
                               .guid = *control, .flags = 5, .clock_type = reg->loggers[slot].clock_type,
                               .version = wpt_next_version(reg)};
        index = i;
    }
    wpt_registry_unlock();
    return index;
}

static int registry_index_of(const GUID *control) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return -1;
    int index = -1;
    for (int i = 0; i < WPT_MAX_ENABLES && index < 0; i++)
        if (reg->enables[i].used && memcmp(&reg->enables[i].guid, control, sizeof(GUID)) == 0) index = i;
    wpt_registry_unlock();
    return index;
}

static const GUID g_first_control = {0x6a3c2f1c, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
static const GUID g_last_control = {0x6a3c2f1d, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};

/* The registry holds an enable of g_first_control for the session in `slot_first`, then one of
 * g_last_control for the one in `slot_last`: nonzero if they are not there in that order. */
static int first_then_last(uint32_t slot_first, uint32_t slot_last) {
    int first = registry_enable(&g_first_control, slot_first);
    int last = registry_enable(&g_last_control, slot_last);
    return first < 0 || first > last;
}

static _Atomic int g_first_enabled, g_last_enabled;

static ULONG track_first(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    atomic_store(&g_first_enabled, code == WMI_ENABLE_EVENTS);
    return ERROR_SUCCESS;
}

static ULONG track_last(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    atomic_store(&g_last_enabled, code == WMI_ENABLE_EVENTS);
    return ERROR_SUCCESS;
}

/* A JOIN the endpoint thread makes (not the main thread): counted; armed, held until the main
 * thread did its part; at the second, A's host goes on (resume_at_second). */
static pthread_t g_main_thread;
static _Atomic int g_endpoint_joins, g_part_done;
static pid_t g_resume_at_second;

static void at_endpoint_join(int point) {
    if (point != WPT_POINT_JOIN_CHOSEN || pthread_equal(pthread_self(), g_main_thread)) return;
    int n = atomic_fetch_add(&g_endpoint_joins, 1) + 1;
    if (n == 2 && g_resume_at_second > 0) kill(g_resume_at_second, SIGCONT);
    if (!atomic_exchange(&g_armed, 0)) return;
    wait_for(&g_part_done, 20000);
}

static int register_three(void) {
    TRACEHANDLE r;
    return register_provider(track_control, NULL, &g_silent_control, &r)
        || register_provider(track_first, NULL, &g_first_control, &r)
        || register_provider(track_last, NULL, &g_last_control, &r);
}

/* This process's reconciliation, owed, is held at its JOIN of B while G is disabled for A
 * here, then goes on through the enables of its copy: nonzero if it never joined. */
static int disable_while_joining(TRACEHANDLE a, ULONG *disabled) {
    g_main_thread = pthread_self();
    wpt_test_point = at_endpoint_join;
    atomic_store(&g_armed, 1);
    wpt_endpoint_redeliver();                  /* a reconciliation owed */
    wait_for(&g_endpoint_joins, 20000);
    if (atomic_load(&g_endpoint_joins) < 1) return 1;
    *disabled = EnableTrace(0, 0, 0, &g_silent_control, a);
    atomic_store(&g_part_done, 1);
    wait_for(&g_last_enabled, 20000);
    wpt_test_point = NULL;
    return 0;
}

/* resurrect: this process reconciles with the registry (its copy holds G enabled for A); it
 * joins B for an enable ahead of G's and is held there while the main thread disables G for
 * A; then it goes on through G's enable in the copy, and one for B after it. */
static int resurrect(const char *dir) {
    uint32_t slot_a, slot_b;
    TRACEHANDLE a;
    int failed = a_and_b_elsewhere(dir, &slot_a, &a, &slot_b);
    if (failed) return failed;
    if (register_three()) return 6;
    int first = registry_enable(&g_first_control, slot_b);
    if (EnableTrace(1, 0x5, 4, &g_silent_control, a) != ERROR_SUCCESS) return 7;
    int enabled = atomic_load(&g_enabled);
    int last = registry_enable(&g_last_control, slot_b);
    int held = registry_index_of(&g_silent_control);
    if (first < 0 || !(first < held && held < last)) return 8;
    ULONG disabled;
    if (disable_while_joining(a, &disabled)) return 9;
    int first_enabled = atomic_load(&g_first_enabled), last_enabled = atomic_load(&g_last_enabled);
    int enabled_after = atomic_load(&g_enabled), listed_after = listed_enabled(&g_silent_control);
    ULONG stopped_a = stop_by_name("control-races-a"), stopped_b = stop_by_name("control-races-b");
    printf("enabled %d disable %u first %d last %d enabled_after %d listed_after %d stop_a %u stop_b %u\n",
           enabled, (unsigned)disabled, first_enabled, last_enabled, enabled_after, listed_after,
           (unsigned)stopped_a, (unsigned)stopped_b);
    return 0;
}

/* copy-after-disable: as resurrect, but this process never held G's enable for A (the
 * registry has it, nobody told this process): its reconciliation is held at B's JOIN, ahead of
 * G's enable in its copy, while the main thread disables G for A. */
static int copy_after_disable(const char *dir) {
    uint32_t slot_a, slot_b;
    TRACEHANDLE a;
    int failed = a_and_b_elsewhere(dir, &slot_a, &a, &slot_b);
    if (failed) return failed;
    if (register_three()) return 6;
    int first = registry_enable(&g_first_control, slot_b);
    int held = registry_enable(&g_silent_control, slot_a);
    int last = registry_enable(&g_last_control, slot_b);
    if (first < 0 || !(first < held && held < last)) return 8;
    ULONG disabled;
    if (disable_while_joining(a, &disabled)) return 9;
    int last_enabled = atomic_load(&g_last_enabled);
    int enabled_after = atomic_load(&g_enabled), listed_after = listed_enabled(&g_silent_control);
    ULONG stopped_a = stop_by_name("control-races-a"), stopped_b = stop_by_name("control-races-b");
    printf("disable %u last %d enabled_after %d listed_after %d stop_a %u stop_b %u\n", (unsigned)disabled,
           last_enabled, enabled_after, listed_after, (unsigned)stopped_a, (unsigned)stopped_b);
    return 0;
}

/* reconcile-busy-join: this process reconciles with the registry, which holds an enable of its
 * provider for A that nobody told it of, while A's host is stopped: its JOIN of A times out. */
static int reconcile_busy_join(const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    if (register_three()) return 5;
    if (registry_enable(&g_silent_control, slot) < 0) return 6;
    uint32_t host = host_of(slot);
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 7;
    g_main_thread = pthread_self();
    g_resume_at_second = (pid_t)host;          /* the JOIN tried again finds it answering */
    wpt_test_point = at_endpoint_join;
    wpt_endpoint_redeliver();                  /* a reconciliation owed */
    wait_for(&g_endpoint_joins, 20000);
    int at_first = atomic_load(&g_enabled);
    wait_for(&g_enabled, 40000);
    kill((pid_t)host, SIGCONT);
    wpt_test_point = NULL;
    int tried = atomic_load(&g_endpoint_joins) >= 2, later = atomic_load(&g_enabled);
    int listed = listed_enabled(&g_silent_control);
    printf("joins_tried %d at_first %d later %d listed %d stop_a %u\n", tried, at_first, later, listed,
           (unsigned)stop_by_name("control-races-a"));
    return 0;
}

/* register-busy: A (another process's) has this process's provider enabled before it
 * registers; A's host is stopped as it registers, so the registration cannot join A. */
static int register_busy(const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    ULONG enabled = EnableTrace(1, 0x5, 4, &g_silent_control, a);   /* nothing registered yet */
    uint32_t host = host_of(slot);
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 5;
    wpt_host_reply_ms = 300;                /* a stopped host never answers: do not wait long */
    TRACEHANDLE r;
    ULONG registered = register_provider(track_control, NULL, &g_silent_control, &r);
    int listed = listed_enabled(&g_silent_control);
    int at_first = atomic_load(&g_enabled);
    kill((pid_t)host, SIGCONT);
    wpt_host_reply_ms = 10000;
    wait_for(&g_enabled, 30000);
    int later = atomic_load(&g_enabled), listed_later = listed_enabled(&g_silent_control);
    printf("enable %u register %u listed %d at_first %d later %d listed_later %d stop_a %u\n", (unsigned)enabled,
           (unsigned)registered, listed, at_first, later, listed_later, (unsigned)stop_by_name("control-races-a"));
    return 0;
}

/* retire-twice: the endpoint thread, A's host gone, retires A's view while this thread's STOP
 * of A cleans up after the host and retires the same view: both have it as they begin; the
 * endpoint thread is then held before it swaps the view's memory. */
static _Atomic int g_ep_at_entry, g_main_at_entry, g_ep_claimed, g_retire_go;

static void at_view_retire(int point) {
    int main_thread = pthread_equal(pthread_self(), g_main_thread);
    if (point == WPT_POINT_VIEW_RETIRE && main_thread && atomic_load(&g_ep_at_entry)
        && !atomic_exchange(&g_main_at_entry, 1)) {
        wait_for(&g_ep_claimed, 20000);
    } else if (point == WPT_POINT_VIEW_RETIRE && !main_thread && atomic_load(&g_armed)
               && !atomic_exchange(&g_ep_at_entry, 1)) {
        wait_for(&g_main_at_entry, 20000);
    } else if (point == WPT_POINT_VIEW_RETIRING && !main_thread && atomic_exchange(&g_armed, 0)) {
        atomic_store(&g_ep_claimed, 1);
        wait_for(&g_retire_go, 20000);
    }
}

static int retire_twice(const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    if (register_three()) return 5;
    if (EnableTrace(1, 0x5, 4, &g_silent_control, a) != ERROR_SUCCESS || !atomic_load(&g_enabled)) return 6;
    uint32_t host = host_of(slot);
    if (!host) return 7;
    g_main_thread = pthread_self();
    wpt_test_point = at_view_retire;
    atomic_store(&g_armed, 1);
    uint32_t before = atomic_load(&wpt_views_retired);
    kill((pid_t)host, SIGKILL);                /* the endpoint thread sees its JOIN connection end */
    wait_for(&g_ep_at_entry, 20000);
    int held = atomic_load(&g_ep_at_entry);
    ULONG stopped = stop(a);                   /* finds the host gone and cleans up after it */
    uint32_t retired = atomic_load(&wpt_views_retired) - before;   /* counted before the hold */
    atomic_store(&g_retire_go, 1);
    printf("held %d stop_a %u retired %u\n", held, (unsigned)stopped, (unsigned)retired);
    return 0;
}

/* attach-closed: this process joins A while its endpoint is closed (wpptrace_endpoint_close,
 * held once the join chose A). */
static void at_join_close_endpoint(int point) {
    if (point == WPT_POINT_JOIN_CHOSEN && atomic_exchange(&g_armed, 0)) wpptrace_endpoint_close();
}


static int attach_closed(const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    if (wpt_endpoint_ensure() != ERROR_SUCCESS) return 5;
    uint32_t incarnation = 0;
    if (wpt_registry_find_in("control-races-a", &slot, &generation, &incarnation) != ERROR_SUCCESS) return 6;
    int before = open_descriptors();
    wpt_test_point = at_join_close_endpoint;
    atomic_store(&g_armed, 1);
    ULONG attached = wpt_attach(slot, generation, incarnation);
    wpt_test_point = NULL;
    /* the endpoint's socket and wake-up pipe closed (3), the session memory kept open (1) */
    int added = open_descriptors() - before;
    printf("attach %u added %d stop_a %u\n", (unsigned)attached, added, (unsigned)stop_by_name("control-races-a"));
    return 0;
}

/* fork-copying: a thread of this process copies the registry's enables (a reconciliation),
 * held once it holds the copy's lock, while the main thread forks. The child copies the
 * registry as its endpoint starts: it must return from fork and exit. */
static _Atomic int g_copier_held, g_copier_go;

static void at_registry_copying(int point) {
    if (point != WPT_POINT_REGISTRY_COPYING || pthread_equal(pthread_self(), g_main_thread)) return;
    if (atomic_load(&g_copier_go)) return;
    atomic_store(&g_copier_held, 1);
    wait_for(&g_copier_go, 20000);
}

static void *reconcile(void *arg) {
    (void)arg;
    wpt_reconcile_with_registry();
    return NULL;
}

static int fork_copying(void) {
    if (wpt_endpoint_ensure() != ERROR_SUCCESS) return 3;   /* a child starts its own endpoint */
    g_main_thread = pthread_self();
    wpt_test_point = at_registry_copying;
    pthread_t copier;
    if (pthread_create(&copier, NULL, reconcile, NULL) != 0) return 4;
    wait_for(&g_copier_held, 20000);
    int held = atomic_load(&g_copier_held);
    pid_t child = fork_tied();
    if (child == 0) _exit(0);
    if (child < 0) return 5;
    int status = 0, returned = 0;
    int64_t deadline = wpt_mono_ms() + 20000;
    while (wpt_mono_ms() < deadline) {
        pid_t got = waitpid(child, &status, WNOHANG);
        if (got == child) {
            returned = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            break;
        }
        usleep(1000);
    }
    if (!returned) kill_and_reap(child);
    atomic_store(&g_copier_go, 1);
    pthread_join(copier, NULL);
    wpt_test_point = NULL;
    printf("held %d child_returned %d\n", held, returned);
    return 0;
}

/* other-session-disable: this process disables its provider for its private session X (which
 * never held it); then public session B's ENABLE of it, made before that disable, arrives. */
static int other_session_disable(const char *dir) {
    TRACEHANDLE b, x;
    if (start(dir, "control-races-b", &b)) return 3;
    uint32_t slot_b, gen_b, incarnation_b;
    if (wpt_registry_find_in("control-races-b", &slot_b, &gen_b, &incarnation_b) != ERROR_SUCCESS) return 4;
    TRACEHANDLE registration;
    if (register_provider(track_control, NULL, &g_silent_control, &registration))
        return 5;
    if (start_private_in_proc(dir, "control-races-x", &x)) return 6;
    uint64_t enabled_at = wpt_next_version(NULL);          /* B's enable, not heard of yet */
    ULONG disabled = EnableTrace(0, 0, 0, &g_silent_control, x);
    ULONG enabled = wpt_apply_enable(&g_silent_control, 1, wpt_handle_of((uint16_t)slot_b, (uint8_t)gen_b, 0x5, 4),
                                     gen_b, incarnation_b, 0, enabled_at);
    int got = atomic_load(&g_enabled);
    ULONG stopped_x = stop(x), stopped_b = stop(b);
    UnregisterTraceGuids(registration);
    printf("disable %u enable %u enabled %d stop_x %u stop_b %u\n", (unsigned)disabled, (unsigned)enabled, got,
           (unsigned)stopped_x, (unsigned)stopped_b);
    return 0;
}

/* memfd-reused: StartTrace of public session A here hands its memory to A's host and retires
 * the view it made; as the view's memfd is closed, this process opens descriptors: enough to
 * fill every free number up to that one (descriptors take the lowest free number). */
#define REUSE_FDS 64
static int g_reuse_fds[REUSE_FDS];
static pid_t g_reuse_pid;

static void at_view_retired(int point) {
    if (point != WPT_POINT_VIEW_RETIRED || getpid() != g_reuse_pid || !atomic_exchange(&g_armed, 0)) return;
    for (int i = 0; i < REUSE_FDS; i++) g_reuse_fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static int memfd_reused(const char *dir) {
    for (int i = 0; i < REUSE_FDS; i++) g_reuse_fds[i] = -1;
    g_reuse_pid = getpid();
    wpt_test_point = at_view_retired;
    atomic_store(&g_armed, 1);
    TRACEHANDLE a;
    ULONG started = start(dir, "control-races-a", &a);
    wpt_test_point = NULL;
    int opened = 0, kept = 0;
    struct stat null_st;
    if (stat("/dev/null", &null_st) != 0) return 3;
    dev_t null_dev = null_st.st_rdev;
    for (int i = 0; i < REUSE_FDS; i++) {
        if (g_reuse_fds[i] < 0) continue;
        opened++;
        /* still the descriptor opened (a number closed under it is soon another's: the
         * session memory this process joins after StartTrace) */
        struct stat st;
        if (fstat(g_reuse_fds[i], &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == null_dev) {
            kept++;
            close(g_reuse_fds[i]);
        }
    }
    printf("start_a %u opened %d kept %d stop_a %u\n", (unsigned)started, opened, kept,
           (unsigned)stop_by_name("control-races-a"));
    return 0;
}

/* reconcile-busy-once: this process reconciles with the registry, which holds enables of two
 * of its providers for A, while A's host is stopped: the JOINs this thread tries are counted. */
static _Atomic int g_main_joins;

static void count_main_joins(int point) {
    if (point == WPT_POINT_JOIN_CHOSEN && pthread_equal(pthread_self(), g_main_thread))
        atomic_fetch_add(&g_main_joins, 1);
}

static int reconcile_busy_once(const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    if (register_three()) return 5;
    if (registry_enable(&g_silent_control, slot) < 0 || registry_enable(&g_first_control, slot) < 0) return 6;
    uint32_t host = host_of(slot);
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 7;
    wpt_host_reply_ms = 300;                /* a stopped host never answers: do not wait long */
    g_main_thread = pthread_self();
    wpt_test_point = count_main_joins;
    ULONG reconciled = wpt_reconcile_with_registry();
    wpt_test_point = NULL;
    kill((pid_t)host, SIGCONT);
    wpt_host_reply_ms = 10000;
    printf("reconcile %u joins %d stop_a %u\n", (unsigned)reconciled, atomic_load(&g_main_joins),
           (unsigned)stop_by_name("control-races-a"));
    return 0;
}

/* query-reuse / list-reuse / flush-reuse / update-reuse: held once the QUERY of A (by handle, or
 * the listing's), or its FLUSH or UPDATE, found A,
 * while another process stops A and starts B in its slot; B's host is then stopped (SIGSTOP)
 * and the wait for replies shortened, so the request, sent to the slot's socket, is not
 * answered in time. */
static uint32_t g_busy_host;

static void at_target_found_busy(int point) {
    if (point != WPT_POINT_TARGET_FOUND || !atomic_exchange(&g_armed, 0)) return;
    g_start_b = run_point("replace-a", g_dir);
    uint32_t slot, generation;
    if (wpt_registry_find("control-races-b", &slot, &generation) != ERROR_SUCCESS) return;
    g_busy_host = host_of(slot);
    if (g_busy_host && kill((pid_t)g_busy_host, SIGSTOP) == 0)
        wpt_host_reply_ms = wpt_host_long_reply_ms = 300;
}

static int query_reuse(const char *dir, int listing, ULONG code) {
    g_dir = dir;
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    wpt_test_point = at_target_found_busy;
    atomic_store(&g_armed, 1);
    ULONG queried;
    ULONG count = 0;
    if (listing) {
        props_block listed;
        blank(&listed);
        listed.p.LoggerNameOffset = sizeof listed.p;
        EVENT_TRACE_PROPERTIES *one[1] = {&listed.p};
        queried = QueryAllTracesA(one, 1, &count);
    } else {
        props_block q;
        blank(&q);
        queried = ControlTrace(a, NULL, &q.p, code);
    }
    wpt_test_point = NULL;
    int stopped_b = g_busy_host != 0;
    if (g_busy_host) kill((pid_t)g_busy_host, SIGCONT);
    wpt_host_reply_ms = 10000;
    wpt_host_long_reply_ms = 120000;
    b_answers answers = answers_of_b();
    printf("replaced %d busy %d query_a %u listed %u %s\n", g_start_b == 0, stopped_b, (unsigned)queried,
           (unsigned)count, answers.text);
    return 0;
}

/* attach-reentry: this process has a provider and no endpoint (wpptrace_endpoint_close); another
 * process starts A and enables the provider for it; then this process starts B. Attaching B
 * starts the endpoint, which copies the registry: the provider's enable for A attaches A. */
static const GUID g_reentry_control = {0x6a3c2f1e, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};

static int attach_reentry(const char *dir) {
    static const GUID message = {0x6a3c2f1f, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
    TRACE_GUID_REGISTRATION reg = {&message, NULL};
    TRACEHANDLE registration, b;
    if (RegisterTraceGuids(track_control, NULL, &g_reentry_control, 1, &reg, NULL, NULL, &registration))
        return 3;
    wpptrace_endpoint_close();
    if (run_point("start-enable-a", dir) != 0) return 4;
    uint32_t slot_a, generation_a;
    if (wpt_registry_find("control-races-a", &slot_a, &generation_a) != ERROR_SUCCESS) return 5;
    ULONG started = start(dir, "control-races-b", &b);       /* it hung here */
    int on_a = atomic_load(&g_enabled) && (atomic_load(&g_logger) & 0xFFFF) == slot_a;
    printf("start_b %u enabled_on_a %d stop_a %u stop_b %u\n", (unsigned)started, on_a,
           (unsigned)stop_by_name("control-races-a"), (unsigned)stop(b));
    return 0;
}

/* wake-closed: a thread wakes the endpoint thread (an enable left undelivered) and is held once
 * it read the wake pipe's number, while another thread closes the endpoint; the process then
 * opens sockets, which take the closed numbers. Released, the waking thread must not write into
 * one of them. */
static sem_t g_waking, g_wake_go, g_closed;

static void at_waking(int point) {
    if (point != WPT_POINT_ENDPOINT_WAKING || !atomic_exchange(&g_armed, 0)) return;
    sem_post(&g_waking);
    sem_wait(&g_wake_go);
}

static void *redeliver_thread(void *arg) {
    (void)arg;
    wpt_endpoint_redeliver();
    return NULL;
}

static void *close_thread(void *arg) {
    (void)arg;
    wpptrace_endpoint_close();
    sem_post(&g_closed);
    return NULL;
}

static int wake_closed(void) {
    sem_init(&g_waking, 0, 0);
    sem_init(&g_wake_go, 0, 0);
    sem_init(&g_closed, 0, 0);
    if (wpt_endpoint_ensure() != ERROR_SUCCESS) return 3;
    wpt_test_point = at_waking;
    atomic_store(&g_armed, 1);
    pthread_t waker, closer;
    if (pthread_create(&waker, NULL, redeliver_thread, NULL) != 0) return 4;
    if (wait_sem(&g_waking, 10)) return 5;
    if (pthread_create(&closer, NULL, close_thread, NULL) != 0) return 6;
    /* the close waits for the waking thread (the fix), or ends at once: then the numbers are
     * taken before the waking thread goes on */
    int closed_first = wait_sem(&g_closed, 2) == 0;
    int fds[2 * PAIRS];
    int opened = 0;
    if (closed_first)
        for (; opened < PAIRS; opened++)
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, &fds[2 * opened]) != 0) return 7;
    sem_post(&g_wake_go);
    pthread_join(waker, NULL);
    if (!closed_first && wait_sem(&g_closed, 20)) return 8;
    pthread_join(closer, NULL);
    wpt_test_point = NULL;
    int touched = 0;
    for (int i = 0; i < 2 * opened; i++) {
        int waiting = 0;
        if (ioctl(fds[i], FIONREAD, &waiting) == 0 && waiting) touched++;
        close(fds[i]);
    }
    printf("touched %d\n", touched);
    return 0;
}

/* broadcast-unresolved: a thread resolving the runtime directory is held (making it) while
 * another broadcasts a change the registry took: the directory cannot be had in time. */
static sem_t g_mkdir_held, g_mkdir_go;
static _Atomic int g_hold_mkdir;

int mkdirat(int at, const char *path, mode_t mode) {
    if (atomic_exchange(&g_hold_mkdir, 0)) {
        sem_post(&g_mkdir_held);
        sem_wait(&g_mkdir_go);
    }
    return (int)syscall(SYS_mkdirat, at, path, mode);
}

int mkdir(const char *path, mode_t mode) {
    return mkdirat(AT_FDCWD, path, mode);
}

static void *resolve_thread(void *arg) {
    (void)arg;
    wpptrace_runtime_directory();
    return NULL;
}

static int broadcast_unresolved(void) {
    sem_init(&g_mkdir_held, 0, 0);
    sem_init(&g_mkdir_go, 0, 0);
    atomic_store(&g_hold_mkdir, 1);
    pthread_t resolver;
    if (pthread_create(&resolver, NULL, resolve_thread, NULL) != 0) return 3;
    if (wait_sem(&g_mkdir_held, 10)) return 4;
    wpt_registry_wait_ms = 50;
    wpt_wire_enable msg;
    memset(&msg, 0, sizeof msg);
    msg.version = 1;
    ULONG told = wpt_broadcast(WPT_REQ_DISABLE, wpt_for_session(1), &msg);
    sem_post(&g_mkdir_go);
    pthread_join(resolver, NULL);
    printf("broadcast %u\n", (unsigned)told);
    return 0;
}

/* fork-retiring: a thread retiring the view of session A (started here) is held once it took
 * the view, before it swapped its memory, while another thread forks: the child must not keep
 * the session's memory mapped nor its memfd open (nobody there would release them). */
static sem_t g_retiring, g_retiring_go;

static void at_retiring(int point) {
    if (point != WPT_POINT_VIEW_RETIRING || !atomic_exchange(&g_armed, 0)) return;
    sem_post(&g_retiring);
    sem_wait(&g_retiring_go);
}

static void *retire_thread(void *arg) {
    wpt_view_retire(arg);
    return NULL;
}

/* Does this process hold a session memfd (mapped, or a descriptor)? */
static int holds_session_memory(void) {
    int held = 0;
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[1024];
    while (maps && fgets(line, sizeof line, maps)) held |= strstr(line, "memfd:wpptrace-session") != NULL;
    if (maps) fclose(maps);
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], target[512];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n > 0) {
            target[n] = 0;
            held |= strstr(target, "memfd:wpptrace-session") != NULL;
        }
    }
    if (d) closedir(d);
    return held;
}

static int fork_retiring(const char *dir) {
    sem_init(&g_retiring, 0, 0);
    sem_init(&g_retiring_go, 0, 0);
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    wpt_view *v = atomic_load(&wpt_views[a & 0xFFFF]);
    if (!v) return 4;
    int held_before = holds_session_memory();
    wpt_test_point = at_retiring;
    atomic_store(&g_armed, 1);
    pthread_t retirer;
    if (pthread_create(&retirer, NULL, retire_thread, v) != 0) return 5;
    if (wait_sem(&g_retiring, 10)) return 6;
    pid_t child = fork_tied();
    if (child == 0) _exit(holds_session_memory());
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    sem_post(&g_retiring_go);
    pthread_join(retirer, NULL);
    wpt_test_point = NULL;
    printf("held_before %d child_held %d parent_held %d stop_a %u\n", held_before,
           WIFEXITED(status) ? WEXITSTATUS(status) : 2, holds_session_memory(), (unsigned)stop(a));
    return 0;
}

/* commit-retire: a writer about to commit a new buffer of session A's memory (held there)
 * finds that a retire closed the view's memfd and the application opened a file that took its
 * number: it must not allocate space in that file. From kernel 5.14 on the writer never uses
 * the number (it fills the pages through the mapping), so the number is also handed to a file
 * while the view still holds it (as a writer that read it before the close finds it): the file
 * must stay empty there too. Before 5.14 the writer falls back to fallocate on the number it
 * reads then, which a retire has set to none. "fallback 1": this kernel takes that path. */
static int g_commit_number = -1, g_commit_file = -1;
static _Atomic int g_commit_swapped, g_commit_retires;
static wpt_view *g_commit_view;

static void at_commit(int point) {
    if (point != WPT_POINT_COMMIT_MEMORY || !atomic_exchange(&g_armed, 0)) return;
    if (atomic_load(&g_commit_retires)) wpt_view_retire(g_commit_view);   /* closes the memfd */
    /* the number is the file's now (the view holds it still, or none once retired) */
    atomic_store(&g_commit_swapped, dup2(g_commit_file, g_commit_number) == g_commit_number);
}

static void *commit_thread(void *arg) {
    wpt_view *v = arg;
    wpt_install_buffer(v, &v->slots[0], 0);
    return NULL;
}

/* Does this kernel fill pages with MADV_POPULATE_WRITE (5.14 on)? */
static int populate_write_works(void) {
    long page = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 0;
    int works = madvise(p, (size_t)page, MADV_POPULATE_WRITE) == 0;
    munmap(p, (size_t)page);
    return works;
}

/* A's newest buffer committed by a writer held as `retires` says; the application file's size
 * after it (-1 if the race could not be set up). */
static long long commit_into(const char *dir, const char *name, int retires, TRACEHANDLE *a) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s.file", dir, name);
    g_commit_file = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (g_commit_file < 0) return -1;
    if (start(dir, "control-races-a", a)) return -1;
    wpt_view *v = atomic_load(&wpt_views[*a & 0xFFFF]);
    if (!v || v->memfd < 0) return -1;
    g_commit_view = v;
    g_commit_number = v->memfd;
    while (wpt_pool_pop(v)) {}          /* the next buffer is a new one: its memory is committed */
    atomic_store(&g_commit_retires, retires);
    atomic_store(&g_commit_swapped, 0);
    wpt_test_point = at_commit;
    atomic_store(&g_armed, 1);
    pthread_t writer;
    if (pthread_create(&writer, NULL, commit_thread, v) != 0) return -1;
    pthread_join(writer, NULL);
    wpt_test_point = NULL;
    struct stat st;
    if (!atomic_load(&g_commit_swapped) || fstat(g_commit_file, &st) != 0) return -1;
    close(g_commit_file);
    return (long long)st.st_size;
}

static int commit_retire(const char *dir) {
    int fallback = !populate_write_works();
    TRACEHANDLE a;
    long long retired = commit_into(dir, "commit-retired", 1, &a);
    if (retired < 0) return 3;
    ULONG stop_retired = stop(a);
    long long held = -2;              /* not tried: the fallback would use the number it holds */
    ULONG stop_held = 0;
    if (!fallback) {
        held = commit_into(dir, "commit-held", 0, &a);
        if (held < 0) return 4;
        stop_held = stop(a);
    }
    printf("fallback %d file_size %lld stop_a %u held_file_size %lld stop_held %u\n", fallback, retired,
           (unsigned)stop_retired, held, (unsigned)stop_held);
    return 0;
}

/* stop-sync: the STOP of private session X (this process writes its file) is held as X's file
 * is to be flushed to the disk, while another thread lists the sessions: the listing must not
 * wait for the flush. */
static sem_t g_syncing, g_sync_go, g_sync_listed;
static TRACEHANDLE g_sync_x;
static ULONG g_sync_stopped, g_sync_list;

static void at_file_sync(int point) {
    if (point != WPT_POINT_FILE_SYNC || !atomic_exchange(&g_armed, 0)) return;
    sem_post(&g_syncing);
    sem_wait(&g_sync_go);
}

static void *stop_x_thread(void *arg) {
    (void)arg;
    g_sync_stopped = stop(g_sync_x);
    return NULL;
}

static void *list_thread(void *arg) {
    (void)arg;
    props_block listed;
    blank(&listed);
    listed.p.LoggerNameOffset = sizeof listed.p;
    EVENT_TRACE_PROPERTIES *one[1] = {&listed.p};
    ULONG count = 0;
    g_sync_list = QueryAllTracesA(one, 1, &count);
    sem_post(&g_sync_listed);
    return NULL;
}

static int stop_sync(const char *dir) {
    sem_init(&g_syncing, 0, 0);
    sem_init(&g_sync_go, 0, 0);
    sem_init(&g_sync_listed, 0, 0);
    if (start_private_in_proc(dir, "control-races-x", &g_sync_x)) return 3;
    wpt_test_point = at_file_sync;
    atomic_store(&g_armed, 1);
    pthread_t stopper, lister;
    if (pthread_create(&stopper, NULL, stop_x_thread, NULL) != 0) return 4;
    if (wait_sem(&g_syncing, 10)) return 5;
    if (pthread_create(&lister, NULL, list_thread, NULL) != 0) return 6;
    int listed = wait_sem(&g_sync_listed, 10) == 0;     /* only a failure waits this long */
    sem_post(&g_sync_go);
    pthread_join(stopper, NULL);
    pthread_join(lister, NULL);
    wpt_test_point = NULL;
    printf("listed_while_syncing %d list %u stop_x %u\n", listed, (unsigned)g_sync_list,
           (unsigned)g_sync_stopped);
    return 0;
}

/* host-stop-syncing: A's host (it inherits the test point) is held as A's file is to be
 * flushed to the disk, until this process lets it go, while a thread of this process stops A:
 * a QUERY of A and a listing are answered meanwhile (their wait for a reply shortened to 5 s,
 * so that one not answered fails instead of waiting 10 s), the STOP is not, and it is answered
 * once the flush is let go. The files the host and this process meet at are in DIR. */
static const char *g_host_sync_dir;
static pid_t g_host_sync_caller;
static _Atomic int g_host_stop_returned;
static ULONG g_host_stopped = 99;
static TRACEHANDLE g_host_sync_a;

static void host_sync_file(char *path, size_t size, const char *what) {
    snprintf(path, size, "%s/host-sync-%s", g_host_sync_dir, what);
}

static void at_host_file_sync(int point) {
    if (point != WPT_POINT_FILE_SYNC || getpid() == g_host_sync_caller) return;
    char path[600];
    host_sync_file(path, sizeof path, "reached");
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    host_sync_file(path, sizeof path, "go");
    int64_t until = wpt_mono_ms() + 30000;
    while (access(path, F_OK) != 0 && wpt_mono_ms() < until) usleep(1000);
}

static void *stop_a_thread(void *arg) {
    (void)arg;
    g_host_stopped = stop(g_host_sync_a);
    atomic_store(&g_host_stop_returned, 1);
    return NULL;
}

static int host_stop_syncing(const char *dir) {
    g_host_sync_dir = dir;
    g_host_sync_caller = getpid();
    wpt_test_point = at_host_file_sync;      /* A's host inherits it */
    if (start(dir, "control-races-a", &g_host_sync_a)) return 3;
    uint32_t host = host_of((uint32_t)(g_host_sync_a & 0xFFFF));
    if (!host) return 4;
    wpt_host_reply_ms = 5000;
    pthread_t stopper;
    if (pthread_create(&stopper, NULL, stop_a_thread, NULL) != 0) return 5;
    char reached[600], go[600];
    host_sync_file(reached, sizeof reached, "reached");
    host_sync_file(go, sizeof go, "go");
    int64_t until = wpt_mono_ms() + 20000;
    while (access(reached, F_OK) != 0 && wpt_mono_ms() < until) usleep(1000);
    int held = access(reached, F_OK) == 0;
    ULONG queried = query_by_name("control-races-a");
    props_block listed;
    blank(&listed);
    listed.p.LoggerNameOffset = sizeof listed.p;
    EVENT_TRACE_PROPERTIES *one[1] = {&listed.p};
    WPPTRACE_SESSION_INFO info[1];
    ULONG count = 0;
    ULONG list = wpptrace_list_sessions(one, info, 1, &count);
    int stopped_early = atomic_load(&g_host_stop_returned);
    int fd = open(go, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    pthread_join(stopper, NULL);
    until = wpt_mono_ms() + 20000;
    while (kill((pid_t)host, 0) == 0 && wpt_mono_ms() < until) usleep(1000);
    int ended = kill((pid_t)host, 0) != 0;
    wpt_test_point = NULL;
    printf("held %d query %u list %u stopped_early %d stop_a %u host_ended %d\n", held, (unsigned)queried,
           (unsigned)list, stopped_early, (unsigned)g_host_stopped, ended);
    return 0;
}

/* stop-sync-cancel: the STOP of private session X is held as X's file is to be flushed to the
 * disk, and its thread is cancelled meanwhile: the STOP must still close the file. */
static int x_file_open(void) {
    DIR *d = opendir("/proc/self/fd");
    int open_ = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char link[300], target[600];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        open_ |= strstr(target, "control-races-x.etl") != NULL;
    }
    if (d) closedir(d);
    return open_;
}

static int stop_sync_cancel(const char *dir) {
    sem_init(&g_syncing, 0, 0);
    sem_init(&g_sync_go, 0, 0);
    if (start_private_in_proc(dir, "control-races-x", &g_sync_x)) return 3;
    int open_before = x_file_open();
    g_sync_stopped = 99;
    wpt_test_point = at_file_sync;
    atomic_store(&g_armed, 1);
    pthread_t stopper;
    if (pthread_create(&stopper, NULL, stop_x_thread, NULL) != 0) return 4;
    if (wait_sem(&g_syncing, 10)) return 5;
    pthread_cancel(stopper);
    sem_post(&g_sync_go);
    pthread_join(stopper, NULL);
    wpt_test_point = NULL;
    printf("open_before %d open_after %d stop_x %u\n", open_before, x_file_open(),
           (unsigned)g_sync_stopped);
    return 0;
}

static const GUID g_owed_control = {0x6a3c2f1e, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};

static ULONG register_counted(const GUID *control, callback_count *c) {
    TRACEHANDLE r;
    return register_provider(count_callbacks, c, control, &r);
}

/* owed-once: R1's ENABLE for A is owed (A's host stopped), R2 registers once the host answers
 * and gets it at once; then the endpoint thread, held so far as it began to reconcile, delivers
 * the owed one. */
static int owed_once(const char *dir) {
    static callback_count r1, r2;
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    if (register_counted(&g_owed_control, &r1)) return 5;
    uint32_t host = host_of(slot);
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 6;
    wpt_host_reply_ms = 300;                /* a stopped host never answers: do not wait long */
    g_main_thread = pthread_self();
    wpt_test_point = at_registry_copying;   /* the endpoint thread's reconciliation held */
    ULONG enabled = EnableTrace(1, 0x5, 4, &g_owed_control, a);
    wait_for(&g_copier_held, 20000);
    int held = atomic_load(&g_copier_held);
    kill((pid_t)host, SIGCONT);
    wpt_host_reply_ms = 10000;
    ULONG registered = register_counted(&g_owed_control, &r2);
    int r2_at_once = atomic_load(&r2.enables);
    atomic_store(&g_copier_go, 1);
    wpt_reconcile_with_registry();          /* after the endpoint thread's (one at a time) */
    wpt_test_point = NULL;
    int r1_on = atomic_load(&r1.enables), r2_on = atomic_load(&r2.enables);
    int r1_off = atomic_load(&r1.disables), r2_off = atomic_load(&r2.disables);
    ULONG stopped = stop_by_name("control-races-a");
    printf("enable %u held %d register %u r2_at_once %d r1 %d r2 %d r1_off %d r2_off %d stop_a %u\n",
           (unsigned)enabled, held, (unsigned)registered, r2_at_once, r1_on, r2_on, r1_off, r2_off,
           (unsigned)stopped);
    return 0;
}

/* disable-owed: R1's ENABLE for A is owed (A's host stopped), then A disables the provider. */
static int disable_owed(const char *dir) {
    static callback_count r1;
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    if (register_counted(&g_owed_control, &r1)) return 5;
    uint32_t host = host_of(slot);
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 6;
    wpt_host_reply_ms = 300;
    g_main_thread = pthread_self();
    wpt_test_point = at_registry_copying;   /* the endpoint thread stays out of it */
    ULONG enabled = EnableTrace(1, 0x5, 4, &g_owed_control, a);
    ULONG disabled = EnableTrace(0, 0, 0, &g_owed_control, a);
    int enables = atomic_load(&r1.enables), disables = atomic_load(&r1.disables);
    kill((pid_t)host, SIGCONT);
    wpt_host_reply_ms = 10000;
    atomic_store(&g_copier_go, 1);
    wpt_reconcile_with_registry();
    wpt_test_point = NULL;
    int enables_after = atomic_load(&r1.enables), disables_after = atomic_load(&r1.disables);
    ULONG stopped = stop_by_name("control-races-a");
    printf("enable %u disable %u enables %d disables %d enables_after %d disables_after %d stop_a %u\n",
           (unsigned)enabled, (unsigned)disabled, enables, disables, enables_after, disables_after,
           (unsigned)stopped);
    return 0;
}

/* enable-overtaken: another thread's EnableTrace of the provider for A is held once the
 * registry has the enable and the locks are let go, before it applies the enable here; the
 * main thread disables the provider for A meanwhile; then the held thread goes on. */
static sem_t g_applying_arrived, g_applying_go;
static _Atomic int g_applying_armed;
static TRACEHANDLE g_overtaken_a;
static ULONG g_overtaken_rc;

static void at_enable_applying(int point) {
    if (point != WPT_POINT_ENABLE_APPLYING || !atomic_exchange(&g_applying_armed, 0)) return;
    sem_post(&g_applying_arrived);
    sem_wait(&g_applying_go);
}

static void *enable_held(void *arg) {
    (void)arg;
    g_overtaken_rc = EnableTrace(1, 0x5, 4, &g_owed_control, g_overtaken_a);
    return NULL;
}

static int enable_overtaken(const char *dir) {
    static callback_count r;
    if (start(dir, "control-races-a", &g_overtaken_a)) return 3;
    if (register_counted(&g_owed_control, &r)) return 4;
    sem_init(&g_applying_arrived, 0, 0);
    sem_init(&g_applying_go, 0, 0);
    wpt_test_point = at_enable_applying;
    atomic_store(&g_applying_armed, 1);
    pthread_t enabler;
    if (pthread_create(&enabler, NULL, enable_held, NULL) != 0) return 5;
    if (wait_sem(&g_applying_arrived, 10)) return 6;
    ULONG disabled = EnableTrace(0, 0, 0, &g_owed_control, g_overtaken_a);
    sem_post(&g_applying_go);
    pthread_join(enabler, NULL);
    wpt_test_point = NULL;
    int enables = atomic_load(&r.enables), disables = atomic_load(&r.disables);
    int listed = listed_enabled(&g_owed_control);
    ULONG stopped = stop(g_overtaken_a);
    printf("enable %u disable %u enables %d disables %d listed %d stop_a %u\n", (unsigned)g_overtaken_rc,
           (unsigned)disabled, enables, disables, listed, (unsigned)stopped);
    return 0;
}

/* Two enables of one provider applied by two threads, each held once its callbacks are queued
 * (the first arrival, then the second), each let go in turn; the endpoint thread stays out. */
static sem_t g_queued_arrived, g_queued_go[2];
static _Atomic int g_queued_count;

static void at_enable_queued(int point) {
    at_registry_copying(point);
    if (point != WPT_POINT_ENABLE_QUEUED || pthread_equal(pthread_self(), g_main_thread)) return;
    int k = atomic_fetch_add(&g_queued_count, 1);
    if (k > 1) return;
    sem_post(&g_queued_arrived);
    sem_wait(&g_queued_go[k]);
}

/* A session nobody runs (slot 9, never used by these tests): joining it fails at once. */
#define NOBODYS_SLOT 9
static const TRACEHANDLE g_nobodys = (TRACEHANDLE)NOBODYS_SLOT | ((TRACEHANDLE)4 << 16)
                                   | ((TRACEHANDLE)1 << 24) | ((TRACEHANDLE)5 << 32);
static const uint64_t g_newest = (uint64_t)1 << 62;    /* newer than any enable of the registry */

static TRACEHANDLE g_cancel_a;
static ULONG g_cancel_first, g_cancel_second;

static void *enable_a_thread(void *arg) {
    (void)arg;
    g_cancel_first = EnableTrace(1, 0x5, 4, &g_owed_control, g_cancel_a);
    return NULL;
}

static void *enable_nobodys_thread(void *arg) {
    (void)arg;
    g_cancel_second = wpt_apply_enable(&g_owed_control, 1, g_nobodys, 1, 0, 1, g_newest);
    return NULL;
}

/* cancel-overtaken: thread 1's ENABLE for A (A's host stopped: its JOIN fails, busy) is queued;
 * thread 2's newer ENABLE for a session nobody runs is queued; thread 1's JOIN fails, then
 * thread 2's. The registration must be owed A's enable, and get it once A's host answers. */
static int cancel_overtaken(const char *dir) {
    static callback_count r;
    uint32_t slot, generation;
    int failed = host_a_elsewhere(dir, &slot, &generation, &g_cancel_a);
    if (failed) return failed;
    if (register_counted(&g_owed_control, &r)) return 5;
    uint32_t host = host_of(slot);
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 6;
    wpt_host_reply_ms = 300;                /* a stopped host never answers: do not wait long */
    sem_init(&g_queued_arrived, 0, 0);
    sem_init(&g_queued_go[0], 0, 0);
    sem_init(&g_queued_go[1], 0, 0);
    g_main_thread = pthread_self();
    wpt_test_point = at_enable_queued;
    pthread_t first, second;
    if (pthread_create(&first, NULL, enable_a_thread, NULL) != 0) return 7;
    if (wait_sem(&g_queued_arrived, 10)) return 8;
    int listed_queued = listed_enabled(&g_owed_control);
    if (pthread_create(&second, NULL, enable_nobodys_thread, NULL) != 0) return 9;
    if (wait_sem(&g_queued_arrived, 10)) return 10;
    sem_post(&g_queued_go[0]);
    pthread_join(first, NULL);
    sem_post(&g_queued_go[1]);
    pthread_join(second, NULL);
    int enables = atomic_load(&r.enables);
    kill((pid_t)host, SIGCONT);
    wpt_host_reply_ms = 10000;
    atomic_store(&g_copier_go, 1);
    wpt_reconcile_with_registry();          /* A's enable, from the registry */
    wpt_test_point = NULL;
    int enables_after = atomic_load(&r.enables), disables_after = atomic_load(&r.disables);
    int listed = listed_enabled(&g_owed_control);
    ULONG stopped = stop_by_name("control-races-a");
    printf("listed_queued %d first %u second %u enables %d enables_after %d disables_after %d "
           "listed %d stop_a %u\n", listed_queued, (unsigned)g_cancel_first, (unsigned)g_cancel_second,
           enables, enables_after,
           disables_after, listed, (unsigned)stopped);
    return 0;
}

/* cancel-taken-over: the provider is enabled for A (this process's session); B (another
 * process's, its host stopped) takes it over, and the JOIN of B fails. Then A disables the
 * provider and stops; then B's host answers and B's enable is delivered; then B stops. */
static int cancel_taken_over(const char *dir) {
    static callback_count r;
    TRACEHANDLE a;
    uint32_t slot_b, gen_b;
    if (start(dir, "control-races-a", &a)) return 3;
    if (b_elsewhere(dir, &slot_b, &gen_b)) return 4;
    TRACEHANDLE b = wpt_handle_of((uint16_t)slot_b, (uint8_t)gen_b, 0, 0);
    if (register_counted(&g_owed_control, &r)) return 5;
    ULONG enabled_a = EnableTrace(1, 0x5, 4, &g_owed_control, a);
    uint32_t host = host_of(slot_b);
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 6;
    wpt_host_reply_ms = 300;
    g_main_thread = pthread_self();
    wpt_test_point = at_registry_copying;   /* the endpoint thread stays out of it */
    ULONG enabled_b = EnableTrace(1, 0x5, 4, &g_owed_control, b);
    int disables_at_once = atomic_load(&r.disables);
    ULONG disabled_a = EnableTrace(0, 0, 0, &g_owed_control, a);
    ULONG stopped_a = stop(a);
    int disables = atomic_load(&r.disables);
    kill((pid_t)host, SIGCONT);
    wpt_host_reply_ms = 10000;
    atomic_store(&g_copier_go, 1);
    wpt_reconcile_with_registry();          /* B's enable, from the registry */
    wpt_test_point = NULL;
    int enables_b = atomic_load(&r.enables);
    ULONG stopped_b = stop_by_name("control-races-b");
    printf("enable_a %u enable_b %u disables_at_once %d disable_a %u stop_a %u disables %d "
           "enables %d stop_b %u disables_end %d\n", (unsigned)enabled_a, (unsigned)enabled_b,
           disables_at_once, (unsigned)disabled_a, (unsigned)stopped_a, disables, enables_b,
           (unsigned)stopped_b, atomic_load(&r.disables));
    return 0;
}

/* close-starting: this process's first RegisterTraceGuids starts its endpoint and is held
 * while the endpoint copies the registry, its thread not made yet; another thread closes the
 * endpoint meanwhile (an atexit handler while a thread registers). */
static sem_t g_close_waiting;
static _Atomic int g_starting_armed, g_close_waited, g_close_returned, g_closer_made;
static pthread_t g_closer;

static void *close_endpoint(void *arg) {
    (void)arg;
    wpptrace_endpoint_close();
    atomic_store(&g_close_returned, 1);
    return NULL;
}

static void at_endpoint_starting(int point) {
    if (point == WPT_POINT_ENDPOINT_CLOSE_WAITING) {
        sem_post(&g_close_waiting);
        return;
    }
    if (point != WPT_POINT_ENDPOINT_STARTING || !atomic_exchange(&g_starting_armed, 0)) return;
    if (pthread_create(&g_closer, NULL, close_endpoint, NULL) != 0) return;
    atomic_store(&g_closer_made, 1);
    atomic_store(&g_close_waited, wait_sem(&g_close_waiting, 10) == 0);
}

static int endpoint_socket_exists(void) {
    char path[256];
    struct stat st;
    return wpt_socket_path(path, sizeof path, 'p', (uint32_t)getpid()) == ERROR_SUCCESS && stat(path, &st) == 0;
}

static int close_starting(void) {
    static callback_count r;
    sem_init(&g_close_waiting, 0, 0);
    wpt_test_point = at_endpoint_starting;
    atomic_store(&g_starting_armed, 1);
    ULONG registered = register_counted(&g_owed_control, &r);
    if (!atomic_load(&g_closer_made)) return 3;
    pthread_join(g_closer, NULL);
    wpt_test_point = NULL;
    int left = endpoint_socket_exists();
    ULONG again = register_counted(&g_owed_control, &r);   /* a new endpoint starts */
    int restarted = endpoint_socket_exists();
    wpptrace_endpoint_close();
    printf("register %u close_waited %d close_returned %d socket_left %d again %u restarted %d closed %d\n",
           (unsigned)registered, atomic_load(&g_close_waited), atomic_load(&g_close_returned), left,
           (unsigned)again, restarted, !endpoint_socket_exists());
    return 0;
}

/* close-in-callback: the endpoint thread reconciles with the registry, which holds enables of
 * two providers here, the first for A, the second for B (neither joined yet); the first's
 * ENABLE callback closes the endpoint, so joining B starts a new one, which copies the
 * registry inside the endpoint thread's copy. */
static _Atomic int g_closed_in_callback;

static ULONG close_on_enable(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code == WMI_ENABLE_EVENTS && !atomic_exchange(&g_closed_in_callback, 1)) wpptrace_endpoint_close();
    return ERROR_SUCCESS;
}

static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int close_in_callback(const char *dir) {
    uint32_t slot_a, slot_b;
    TRACEHANDLE a;
    int failed = a_and_b_elsewhere(dir, &slot_a, &a, &slot_b);
    if (failed) return failed;
    TRACEHANDLE r;
    if (register_provider(close_on_enable, NULL, &g_first_control, &r)
        || register_provider(track_last, NULL, &g_last_control, &r))
        return 6;
    if (first_then_last(slot_a, slot_b)) return 7;
    int threads = thread_count();              /* this one and the endpoint thread */
    wpt_endpoint_redeliver();                  /* a reconciliation owed */
    wait_for(&g_last_enabled, 20000);
    int closed = atomic_load(&g_closed_in_callback), last_enabled = atomic_load(&g_last_enabled);
    int64_t deadline = wpt_mono_ms() + 20000;          /* the endpoint thread ends, none replaces it */
    while (thread_count() != threads - 1 && wpt_mono_ms() < deadline) usleep(1000);
    int ended = thread_count() == threads - 1, left = endpoint_socket_exists();
    ULONG stopped_a = stop_by_name("control-races-a"), stopped_b = stop_by_name("control-races-b");
    printf("closed %d last %d ended %d socket_left %d stop_a %u stop_b %u\n", closed, last_enabled, ended,
           left, (unsigned)stopped_a, (unsigned)stopped_b);
    exit_at_once();
}

/* close-joining-in-callback: the endpoint thread runs a provider's ENABLE callback (held) while
 * another thread's wpptrace_endpoint_close tells it to end and is to join it; then the callback
 * closes the endpoint too. */
static _Atomic int g_joining_in_callback, g_joining_closer_at_join;

static void at_closer_joining(int point) {
    if (point == WPT_POINT_ENDPOINT_JOINING) atomic_store(&g_joining_closer_at_join, 1);
}

static ULONG close_when_joined(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code != WMI_ENABLE_EVENTS || atomic_exchange(&g_joining_in_callback, 1)) return ERROR_SUCCESS;
    wait_for(&g_joining_closer_at_join, 20000);
    wpptrace_endpoint_close();
    return ERROR_SUCCESS;
}

static void *close_endpoint_thread(void *arg) {
    (void)arg;
    wpptrace_endpoint_close();
    return NULL;
}

static int close_joining_in_callback(const char *dir) {
    uint32_t slot_a, gen_a;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot_a, &gen_a, &a);
    if (failed) return failed;
    TRACEHANDLE r;
    if (register_provider(close_when_joined, NULL, &g_first_control, &r)) return 6;
    if (registry_enable(&g_first_control, slot_a) < 0) return 7;
    uint32_t teardowns = atomic_load(&wpt_endpoint_teardowns);
    wpt_test_point = at_closer_joining;
    wpt_endpoint_redeliver();                  /* the endpoint thread reconciles: the callback */
    wait_for(&g_joining_in_callback, 20000);
    int in_callback = atomic_load(&g_joining_in_callback);
    pthread_t closer;
    if (pthread_create(&closer, NULL, close_endpoint_thread, NULL) != 0) return 8;
    pthread_join(closer, NULL);
    wpt_test_point = NULL;
    int closer_joined = atomic_load(&g_joining_closer_at_join);
    ULONG stopped_a = stop_by_name("control-races-a");
    printf("in_callback %d joined %d teardowns %u stop_a %u\n", in_callback, closer_joined,
           (unsigned)(atomic_load(&wpt_endpoint_teardowns) - teardowns), (unsigned)stopped_a);
    exit_at_once();
}

/* unregister-sibling: two providers of this process are enabled for A; A stops, which queues
 * both DISABLE calls in the stopping thread; the first callback to run unregisters the other
 * registration, whose call is queued in this same thread and not started. */
static TRACEHANDLE g_sibling[2];
static _Atomic int g_sibling_unregistered, g_sibling_disables, g_sibling_stopped;
static ULONG g_sibling_stop_rc;
static TRACEHANDLE g_sibling_a;

static ULONG unregister_sibling(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)size;
    (void)buffer;
    if (code != WMI_DISABLE_EVENTS) return ERROR_SUCCESS;
    atomic_fetch_add(&g_sibling_disables, 1);
    int other = (int)(intptr_t)context == 0 ? 1 : 0;
    if (!atomic_exchange(&g_sibling_unregistered, 1)) UnregisterTraceGuids(g_sibling[other]);
    return ERROR_SUCCESS;
}

static void *stop_sibling_session(void *arg) {
    (void)arg;
    g_sibling_stop_rc = stop(g_sibling_a);
    atomic_store(&g_sibling_stopped, 1);
    return NULL;
}

static int unregister_sibling_mode(const char *dir) {
    if (start(dir, "control-races-a", &g_sibling_a)) return 3;
    if (register_provider(unregister_sibling, (PVOID)(intptr_t)0, &g_first_control,
                           &g_sibling[0])
        || register_provider(unregister_sibling, (PVOID)(intptr_t)1, &g_last_control,
                              &g_sibling[1]))
        return 4;
    if (EnableTrace(1, 0x5, 4, &g_first_control, g_sibling_a) || EnableTrace(1, 0x5, 4, &g_last_control, g_sibling_a))
        return 5;
    pthread_t stopper;
    if (pthread_create(&stopper, NULL, stop_sibling_session, NULL) != 0) return 6;
    wait_for(&g_sibling_stopped, 20000);
    printf("returned %d stop_a %u disables %d\n", atomic_load(&g_sibling_stopped), (unsigned)g_sibling_stop_rc,
           atomic_load(&g_sibling_disables));
    exit_at_once();
}

/* callback-order: a thread registers a provider that A enabled already; its ENABLE call,
 * confirmed (A joined), is held before it is invoked while the main thread disables the
 * provider for A, whose DISABLE runs at once; then the held thread goes on. */
static sem_t g_confirmed_arrived, g_confirmed_go;
static _Atomic int g_confirmed_armed, g_last_code = -1;
static callback_count g_ordered;
static ULONG g_ordered_rc;

static ULONG last_code(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    count_callbacks(code, context, size, buffer);
    atomic_store(&g_last_code, (int)code);
    return ERROR_SUCCESS;
}

static void at_callbacks_confirmed(int point) {
    if (point != WPT_POINT_CALLBACKS_CONFIRMED || !atomic_exchange(&g_confirmed_armed, 0)) return;
    sem_post(&g_confirmed_arrived);
    sem_wait(&g_confirmed_go);
}

static void *register_ordered(void *arg) {
    (void)arg;
    TRACEHANDLE r;
    g_ordered_rc = register_provider(last_code, &g_ordered, &g_owed_control, &r);
    return NULL;
}

static int callback_order(const char *dir) {
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    if (EnableTrace(1, 0x5, 4, &g_owed_control, a)) return 4;      /* nothing registered yet */
    sem_init(&g_confirmed_arrived, 0, 0);
    sem_init(&g_confirmed_go, 0, 0);
    wpt_test_point = at_callbacks_confirmed;
    atomic_store(&g_confirmed_armed, 1);
    pthread_t registrar;
    if (pthread_create(&registrar, NULL, register_ordered, NULL) != 0) return 5;
    if (wait_sem(&g_confirmed_arrived, 10)) return 6;
    ULONG disabled = EnableTrace(0, 0, 0, &g_owed_control, a);
    int disables_first = atomic_load(&g_ordered.disables);
    sem_post(&g_confirmed_go);
    pthread_join(registrar, NULL);
    wpt_test_point = NULL;
    ULONG stopped = stop(a);
    printf("register %u disable %u disables_first %d enables %d disables %d last_disable %d stop_a %u\n",
           (unsigned)g_ordered_rc, (unsigned)disabled, disables_first, atomic_load(&g_ordered.enables),
           atomic_load(&g_ordered.disables), atomic_load(&g_last_code) == WMI_DISABLE_EVENTS, (unsigned)stopped);
    return 0;
}

/* fork-in-copy: this process reconciles with the registry, which holds enables of two of its
 * providers for A; the first one's ENABLE callback forks. The child starts its endpoint as it
 * begins, inside the copy its forking thread was making. */
static _Atomic int g_second_enabled;
static int g_forked_status = -1;
/* The child: another thread of it copies the registry while the forking thread is still in
 * the callback, inside the copy it forked in; that copy must wait for the outer one. */
static int g_fork_child, g_child_second_at_fork;
static pthread_t g_child_copier;
static sem_t g_child_copying;
static _Atomic int g_child_in_callback, g_child_copied_inside, g_child_copied;
static __thread int t_child_copier;

static _Atomic int g_child_copier_tid;

static void at_child_copying(int point) {
    if (!t_child_copier) return;
    if (point == WPT_POINT_REGISTRY_COPY_LOCKING) {
        atomic_store(&g_child_copier_tid, (int)syscall(SYS_gettid));
        sem_post(&g_child_copying);
    }
    if (point != WPT_POINT_REGISTRY_COPYING) return;
    atomic_store(&g_child_copied_inside, atomic_load(&g_child_in_callback));
    atomic_store(&g_child_copied, 1);
}

/* The state letter of a thread of this process (0: gone). */
static char thread_state(int tid) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    const char *fields = stat_fields(path, text, sizeof text);
    return fields ? fields[0] : 0;
}

/* The child's copier reached its copy's lock: until it sleeps there (or copied, or ended:
 * what a missing wait does), no copy ended. Only a failure waits the 10 s. */
static void wait_child_copier_blocked(void) {
    if (wait_sem(&g_child_copying, 10)) return;
    int tid = atomic_load(&g_child_copier_tid);
    int64_t deadline = wpt_mono_ms() + 10000;
    for (;;) {
        char state = thread_state(tid);
        if (state == 'S' || state == 'D' || !state || atomic_load(&g_child_copied)
            || wpt_mono_ms() > deadline)
            return;
        sched_yield();
    }
}

static void *copy_in_child(void *arg) {
    (void)arg;
    t_child_copier = 1;
    wpt_reconcile_with_registry();
    return NULL;
}

static ULONG second_enabled(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code == WMI_ENABLE_EVENTS) atomic_store(&g_second_enabled, 1);
    return ERROR_SUCCESS;
}

static ULONG fork_on_enable(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code != WMI_ENABLE_EVENTS || g_forked_status != -1) return ERROR_SUCCESS;
    pid_t child = fork_tied();
    if (child == 0) {
        g_fork_child = 1;
        g_child_second_at_fork = atomic_load(&g_second_enabled);   /* delivered inside fork()? */
        sem_init(&g_child_copying, 0, 0);
        atomic_store(&g_child_in_callback, 1);
        wpt_test_point = at_child_copying;
        if (pthread_create(&g_child_copier, NULL, copy_in_child, NULL) != 0) _exit(64);
        wait_child_copier_blocked();         /* a copy it may not make before this one ends */
        atomic_store(&g_child_in_callback, 0);
        return ERROR_SUCCESS;
    }
    g_forked_status = exit_code_of(child, 2);
    return ERROR_SUCCESS;
}

static int fork_in_copy(const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    TRACEHANDLE r;
    if (register_provider(fork_on_enable, NULL, &g_first_control, &r)
        || register_provider(second_enabled, NULL, &g_last_control, &r))
        return 5;
    if (first_then_last(slot, slot)) return 6;
    ULONG reconciled = wpt_reconcile_with_registry();
    if (g_fork_child) {
        pthread_join(g_child_copier, NULL);
        _exit(g_child_second_at_fork | atomic_load(&g_child_copied_inside) << 1 | atomic_load(&g_child_copied) << 2);
    }
    int status = g_forked_status;
    printf("reconcile %u child_second_at_fork %d child_copied_inside %d child_copied %d second %d stop_a %u\n",
           (unsigned)reconciled, status < 8 ? status & 1 : status, status < 8 ? status >> 1 & 1 : status,
           status < 8 ? status >> 2 & 1 : 0, atomic_load(&g_second_enabled), (unsigned)stop_by_name("control-races-a"));
    return 0;
}

/* fork-nested: private session X's ENABLE callback of a provider here enables it for private
 * session Y, whose ENABLE runs the same callback nested in it; that one forks. The child
 * unwinds both and unregisters the provider. */
static TRACEHANDLE g_nested_x, g_nested_y, g_nested_reg;
static int g_nested_child, g_nested_outer, g_nested_status = -1;
static _Atomic int g_nested_unregistered;

static ULONG fork_when_nested(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code != WMI_ENABLE_EVENTS || g_nested_status != -1 || g_nested_child) return ERROR_SUCCESS;
    if (!g_nested_outer) {
        g_nested_outer = 1;
        EnableTrace(1, 0x5, 4, &g_owed_control, g_nested_y);      /* nested: Y's ENABLE */
        return ERROR_SUCCESS;
    }
    pid_t child = fork_tied();
    if (child == 0) {
        g_nested_child = 1;
        return ERROR_SUCCESS;
    }
    g_nested_status = exit_code_of(child, 2);
    return ERROR_SUCCESS;
}

static void *unregister_nested(void *arg) {
    (void)arg;
    UnregisterTraceGuids(g_nested_reg);
    atomic_store(&g_nested_unregistered, 1);
    return NULL;
}

static int fork_nested(const char *dir) {
    if (start_private_in_proc(dir, "control-races-x", &g_nested_x)) return 3;
    if (start_private_in_proc(dir, "control-races-y", &g_nested_y)) return 4;
    if (register_provider(fork_when_nested, NULL, &g_owed_control, &g_nested_reg)) return 5;
    ULONG enabled = EnableTrace(1, 0x5, 4, &g_owed_control, g_nested_x);
    if (g_nested_child) {
        pthread_t t;
        if (pthread_create(&t, NULL, unregister_nested, NULL) != 0) _exit(3);
        wait_for(&g_nested_unregistered, 10000);
        _exit(atomic_load(&g_nested_unregistered));   /* a hung unregister must not hold up exit */
    }
    ULONG stopped_y = stop(g_nested_y), stopped_x = stop(g_nested_x);
    printf("enable %u child_unregistered %d stop_x %u stop_y %u\n", (unsigned)enabled, g_nested_status,
           (unsigned)stopped_x, (unsigned)stopped_y);
    return 0;
}

/* fork-deep: ENABLE callbacks of a provider here nested DEEP_NESTING deep (each enables it for
 * the next private session), the innermost forks. In the child, with all but the outermost
 * unwound, another thread unregisters the provider: it must wait for the outermost, still
 * running, to return. Child's exit status: 1 if it waited and then returned, 0 if it returned
 * at once, 2 if it never returned. */
#define DEEP_NESTING 12
static TRACEHANDLE g_deep[DEEP_NESTING], g_deep_reg;
static int g_deep_level, g_deep_child, g_deep_status = -1;
static sem_t g_deep_told;
static _Atomic int g_deep_waiting, g_deep_unregistered;
static const GUID g_deep_control = {0x6a3c2f1c, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 9}};

static void at_unregister_waiting(int point) {
    if (point == WPT_POINT_UNREGISTER_WAITING && !atomic_exchange(&g_deep_waiting, 1)) sem_post(&g_deep_told);
}

static void *unregister_deep(void *arg) {
    (void)arg;
    UnregisterTraceGuids(g_deep_reg);
    atomic_store(&g_deep_unregistered, 1);
    sem_post(&g_deep_told);
    return NULL;
}

static ULONG fork_when_deep(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code != WMI_ENABLE_EVENTS || g_deep_child || g_deep_level >= DEEP_NESTING) return ERROR_SUCCESS;
    int level = ++g_deep_level;
    if (level < DEEP_NESTING) {
        EnableTrace(1, 0x5, 4, &g_deep_control, g_deep[level]);      /* nested one deeper */
        if (level == 1 && g_deep_child) {
            /* the child, all but this callback unwound: the unregister must wait for it */
            pthread_t t;
            if (pthread_create(&t, NULL, unregister_deep, NULL) != 0) _exit(3);
            pthread_detach(t);
            sem_wait(&g_deep_told);
            g_deep_status = atomic_load(&g_deep_waiting) && !atomic_load(&g_deep_unregistered);
        }
        return ERROR_SUCCESS;
    }
    pid_t child = fork_tied();
    if (child == 0) {
        g_deep_child = 1;
        return ERROR_SUCCESS;
    }
    g_deep_status = exit_code_of(child, 2);
    return ERROR_SUCCESS;
}

static int fork_deep(const char *dir) {
    for (int i = 0; i < DEEP_NESTING; i++) {
        char name[64];
        snprintf(name, sizeof name, "control-races-deep%d", i);
        if (start_private_in_proc(dir, name, &g_deep[i])) return 3;
    }
    sem_init(&g_deep_told, 0, 0);
    static const GUID message = {0x6a3c2f1d, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
    TRACE_GUID_REGISTRATION reg = {&message, NULL};
    if (RegisterTraceGuids(fork_when_deep, NULL, &g_deep_control, 1, &reg, NULL, NULL, &g_deep_reg)) return 5;
    wpt_test_point = at_unregister_waiting;
    ULONG enabled = EnableTrace(1, 0x5, 4, &g_deep_control, g_deep[0]);
    if (g_deep_child) {
        /* the outermost returned: the unregister ends (only a failure waits this long) */
        wait_for(&g_deep_unregistered, 10000);
        _exit(!atomic_load(&g_deep_unregistered) ? 2 : g_deep_status == 1);
    }
    wpt_test_point = NULL;
    int stopped = 1;
    for (int i = DEEP_NESTING - 1; i >= 0; i--) stopped &= stop(g_deep[i]) == ERROR_SUCCESS;
    printf("enable %u depth %d child %d stopped %d\n", (unsigned)enabled, g_deep_level, g_deep_status,
           stopped);
    return 0;
}

/* close-in-stop: a new endpoint starts (a thread registers a provider) and is held before
 * its copy, which holds an enable for A of another provider here; meanwhile private session P stops, and its
 * DISABLE callback, run with the control lock held, closes the endpoint; the copy's ENABLE
 * callback then calls EnableTrace, which takes that lock. */
static TRACEHANDLE g_stopping_p;
static sem_t g_start_held, g_start_go;
static _Atomic int g_start_armed, g_stop_close_waited, g_stop_returned, g_copy_enabled, g_copy_registered;
static ULONG g_stop_rc;

static ULONG close_on_disable(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code == WMI_DISABLE_EVENTS) wpptrace_endpoint_close();
    return ERROR_SUCCESS;
}

static ULONG control_on_enable(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code != WMI_ENABLE_EVENTS) return ERROR_SUCCESS;
    EnableTrace(0, 0, 0, &g_first_control, g_stopping_p);       /* takes the control lock */
    atomic_store(&g_copy_enabled, 1);
    return ERROR_SUCCESS;
}

static void at_start_held(int point) {
    if (point == WPT_POINT_ENDPOINT_CLOSE_WAITING) {
        atomic_store(&g_stop_close_waited, 1);
        sem_post(&g_start_go);              /* the start goes on while the close waits */
        return;
    }
    if (point != WPT_POINT_ENDPOINT_STARTING || !atomic_exchange(&g_start_armed, 0)) return;
    sem_post(&g_start_held);
    wait_sem(&g_start_go, 30);
}

static void *register_in_copy(void *arg) {
    (void)arg;
    static callback_count other;
    if (register_counted(&g_first_control, &other) == ERROR_SUCCESS) atomic_store(&g_copy_registered, 1);
    return NULL;
}

static void *stop_p(void *arg) {
    (void)arg;
    g_stop_rc = stop(g_stopping_p);
    atomic_store(&g_stop_returned, 1);
    return NULL;
}

/* Session A started by another process, and private session P here (into `p`); a provider
 * here enabled for P whose DISABLE callback closes the endpoint, and one (`on_enable` its
 * callback) the registry holds enabled for A: heard of by the next copy. 0, or the step that
 * failed. */
static int stopping_p_closes(TRACEHANDLE *p, WMIDPREQUEST on_enable, const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    if (start_private_in_proc(dir, "control-races-p", p)) return 5;
    TRACEHANDLE q, e;
    if (register_provider(close_on_disable, NULL, &g_owed_control, &q)
        || register_provider(on_enable, NULL, &g_last_control, &e))
        return 6;
    if (EnableTrace(1, 0x5, 4, &g_owed_control, *p)) return 7;
    return registry_enable(&g_last_control, slot) < 0 ? 8 : 0;
}

static int close_in_stop(const char *dir) {
    int failed = stopping_p_closes(&g_stopping_p, control_on_enable, dir);
    if (failed) return failed;
    wpptrace_endpoint_close();                 /* the next registration starts a new one */
    sem_init(&g_start_held, 0, 0);
    sem_init(&g_start_go, 0, 0);
    wpt_test_point = at_start_held;
    atomic_store(&g_start_armed, 1);
    pthread_t registering, stopping;
    if (pthread_create(&registering, NULL, register_in_copy, NULL) != 0) return 9;
    if (wait_sem(&g_start_held, 10)) return 10;
    if (pthread_create(&stopping, NULL, stop_p, NULL) != 0) return 11;
    wait_for(&g_stop_returned, 20000);
    sem_post(&g_start_go);
    int64_t deadline = wpt_mono_ms() + 20000;
    while (!(atomic_load(&g_copy_registered) && atomic_load(&g_copy_enabled) && atomic_load(&g_stop_returned))
           && wpt_mono_ms() < deadline)
        usleep(1000);
    int registered = atomic_load(&g_copy_registered), returned = atomic_load(&g_stop_returned);
    if (registered) pthread_join(registering, NULL);
    int left = endpoint_socket_exists();
    ULONG stopped_a = returned ? stop_by_name("control-races-a") : ERROR_BUSY;   /* the lock is free */
    printf("close_waited %d stop_returned %d stop_p %u registered %d enabled %d socket_left %d stop_a %u\n",
           atomic_load(&g_stop_close_waited), returned, (unsigned)g_stop_rc, registered,
           atomic_load(&g_copy_enabled), left, (unsigned)stopped_a);
    exit_at_once();
}

/* cancel-starting: a thread's registration starts this process's endpoint and is held
 * before its copy; the thread is cancelled meanwhile, then let go; then the endpoint closes. */
static sem_t g_cancel_held, g_cancel_go;
static _Atomic int g_cancel_armed, g_cancel_closed;

/* Holds the next thread that reaches the test point `at` looks for: `at` posts g_cancel_held,
 * then waits on g_cancel_go (a cancellation point). */
static void arm_cancel_hold(void (*at)(int)) {
    sem_init(&g_cancel_held, 0, 0);
    sem_init(&g_cancel_go, 0, 0);
    wpt_test_point = at;
    atomic_store(&g_cancel_armed, 1);
}

/* Cancels thread `t`, lets the thread arm_cancel_hold held go on (`t` itself, or another) and
 * joins `t`: what it returned (PTHREAD_CANCELED if the cancellation ended it). */
static void *cancel_held(pthread_t t) {
    pthread_cancel(t);
    sem_post(&g_cancel_go);
    void *result = NULL;
    pthread_join(t, &result);
    return result;
}

static void at_cancel_starting(int point) {
    if (point != WPT_POINT_ENDPOINT_STARTING || !atomic_exchange(&g_cancel_armed, 0)) return;
    sem_post(&g_cancel_held);
    sem_wait(&g_cancel_go);                /* a cancellation point */
}

static void *register_cancelled(void *arg) {
    static callback_count r;
    *(ULONG *)arg = register_counted(&g_owed_control, &r);
    pthread_testcancel();
    return NULL;
}

static void *close_after_cancel(void *arg) {
    (void)arg;
    wpptrace_endpoint_close();
    atomic_store(&g_cancel_closed, 1);
    return NULL;
}

static int cancel_starting(void) {
    arm_cancel_hold(at_cancel_starting);
    static ULONG registered = 99;
    pthread_t t, closer;
    if (pthread_create(&t, NULL, register_cancelled, &registered) != 0) return 3;
    if (wait_sem(&g_cancel_held, 10)) return 4;
    void *result = cancel_held(t);
    if (pthread_create(&closer, NULL, close_after_cancel, NULL) != 0) return 5;
    wait_for(&g_cancel_closed, 10000);
    int closed = atomic_load(&g_cancel_closed);
    printf("registered %u cancelled %d closed %d socket_left %d\n", (unsigned)registered,
           result == PTHREAD_CANCELED, closed, closed ? endpoint_socket_exists() : 1);
    exit_at_once();
}

/* close-in-stop-joining: the endpoint thread reconciles with the registry, which holds an
 * enable for A of a provider here, whose ENABLE callback is held, then calls EnableTrace;
 * meanwhile private session P stops, and its DISABLE callback, run with the control lock
 * held, closes the endpoint. */
static TRACEHANDLE g_joining_p;
static sem_t g_thread_in_callback, g_thread_go;
static _Atomic int g_joined_in_stop, g_join_stop_returned, g_thread_enabled;
static ULONG g_join_stop_rc;

static ULONG held_then_control(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code != WMI_ENABLE_EVENTS) return ERROR_SUCCESS;
    sem_post(&g_thread_in_callback);
    wait_sem(&g_thread_go, 30);
    EnableTrace(0, 0, 0, &g_first_control, g_joining_p);        /* takes the control lock */
    atomic_store(&g_thread_enabled, 1);
    return ERROR_SUCCESS;
}

static void at_close_joining(int point) {
    if (point != WPT_POINT_ENDPOINT_JOINING) return;
    atomic_store(&g_joined_in_stop, 1);
    sem_post(&g_thread_go);                 /* the callback goes on while the close joins */
}

static void *stop_joining_p(void *arg) {
    (void)arg;
    g_join_stop_rc = stop(g_joining_p);
    atomic_store(&g_join_stop_returned, 1);
    return NULL;
}

static int close_in_stop_joining(const char *dir) {
    int failed = stopping_p_closes(&g_joining_p, held_then_control, dir);
    if (failed) return failed;
    sem_init(&g_thread_in_callback, 0, 0);
    sem_init(&g_thread_go, 0, 0);
    wpt_test_point = at_close_joining;
    wpt_endpoint_redeliver();                  /* a reconciliation owed */
    if (wait_sem(&g_thread_in_callback, 20)) return 9;
    pthread_t stopping;
    if (pthread_create(&stopping, NULL, stop_joining_p, NULL) != 0) return 10;
    wait_for(&g_join_stop_returned, 20000);
    sem_post(&g_thread_go);
    int returned = atomic_load(&g_join_stop_returned);
    if (returned) pthread_join(stopping, NULL);
    int64_t deadline = wpt_mono_ms() + 20000;          /* the endpoint thread undoes the endpoint, ends */
    while (returned && endpoint_socket_exists() && wpt_mono_ms() < deadline) usleep(1000);
    int left = endpoint_socket_exists();
    ULONG stopped_a = returned ? stop_by_name("control-races-a") : ERROR_BUSY;   /* the lock is free */
    printf("joined %d stop_returned %d stop_p %u enabled %d socket_left %d stop_a %u\n",
           atomic_load(&g_joined_in_stop), returned, (unsigned)g_join_stop_rc, atomic_load(&g_thread_enabled),
           left, (unsigned)stopped_a);
    exit_at_once();
}

/* close-twice: one thread's wpptrace_endpoint_close is held once it told the endpoint thread
 * to end, before it joins it; another thread closes the endpoint meanwhile. */
static sem_t g_joining_arrived, g_joining_go, g_second_close;
static _Atomic int g_joining_armed, g_second_waited, g_second_returned;

static void at_endpoint_joining(int point) {
    if (point == WPT_POINT_ENDPOINT_CLOSE_WAITING) {
        atomic_store(&g_second_waited, 1);
        sem_post(&g_second_close);
        return;
    }
    if (point != WPT_POINT_ENDPOINT_JOINING || !atomic_exchange(&g_joining_armed, 0)) return;
    sem_post(&g_joining_arrived);
    sem_wait(&g_joining_go);
}

static void *close_first(void *arg) {
    (void)arg;
    wpptrace_endpoint_close();
    return NULL;
}

static void *close_second(void *arg) {
    (void)arg;
    wpptrace_endpoint_close();
    atomic_store(&g_second_returned, 1);
    sem_post(&g_second_close);
    return NULL;
}

static int close_twice(void) {
    static callback_count r;
    if (register_counted(&g_owed_control, &r)) return 3;     /* the endpoint runs */
    sem_init(&g_joining_arrived, 0, 0);
    sem_init(&g_joining_go, 0, 0);
    sem_init(&g_second_close, 0, 0);
    wpt_test_point = at_endpoint_joining;
    atomic_store(&g_joining_armed, 1);
    pthread_t first, second;
    if (pthread_create(&first, NULL, close_first, NULL) != 0) return 4;
    if (wait_sem(&g_joining_arrived, 10)) return 5;
    if (pthread_create(&second, NULL, close_second, NULL) != 0) return 6;
    if (wait_sem(&g_second_close, 10)) return 7;             /* waiting, or returned */
    int returned_early = atomic_load(&g_second_returned), waited = atomic_load(&g_second_waited);
    sem_post(&g_joining_go);
    pthread_join(first, NULL);
    pthread_join(second, NULL);
    wpt_test_point = NULL;
    printf("second_waited %d returned_early %d closed %d\n", waited, returned_early, !endpoint_socket_exists());
    return 0;
}

/* full-table: this process's enable table is full (its private session X enabled 1024
 * providers) when it reconciles with the registry, which holds one more enable, for A. */
static int full_table(const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a, x;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    if (start_private_in_proc(dir, "control-races-x", &x)) return 5;
    int filled = 0;
    for (uint32_t i = 0; i < WPT_MAX_ENABLES; i++) {
        GUID g = {0x7b000000u + i, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
        filled += EnableTrace(1, 0x5, 4, &g, x) == ERROR_SUCCESS;
    }
    if (registry_enable(&g_owed_control, slot) < 0) return 6;
    ULONG first = wpt_reconcile_with_registry();
    ULONG second = wpt_reconcile_with_registry();
    ULONG dropped = wpptrace_enables_dropped();
    ULONG stopped_x = stop(x);
    ULONG stopped_a = stop_by_name("control-races-a");
    printf("filled %d first %u second %u dropped %u stop_x %u stop_a %u\n", filled, (unsigned)first,
           (unsigned)second, (unsigned)dropped, (unsigned)stopped_x, (unsigned)stopped_a);
    return 0;
}

/* generation-atomic: the session's registry generation, read by the endpoint thread and by
 * handle checks without the control lock, is an atomic object. */
static int generation_atomic(void) {
    int atomic = _Generic(&wpt_sessions[0].registry_generation, _Atomic uint32_t *: 1, default: 0);
    printf("atomic %d\n", atomic);
    return 0;
}

/* A fork made in a thread of its own: has it returned within 10 s (a lock fork waits for
 * left held by a cancelled thread makes it wait forever)? */
static _Atomic int g_fork_returned;

static void *fork_thread(void *arg) {
    (void)arg;
    pid_t child = fork_tied();
    if (child == 0) _exit(0);
    exit_code_of(child, 0);                   /* reaped */
    atomic_store(&g_fork_returned, 1);
    return NULL;
}

static int fork_returns(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, fork_thread, NULL) != 0) return 0;
    wait_for(&g_fork_returned, 10000);
    return atomic_load(&g_fork_returned);
}

/* fork-on-endpoint: the endpoint thread reconciles with the registry, which holds an enable
 * for A of a provider here, whose ENABLE callback forks; in the child it returns, into the
 * copy of the endpoint thread's loop. */
static _Atomic int g_ep_forked, g_copy_polled, g_copy_ended, g_copy_waiting;
static pid_t g_ep_child = -1;
static pid_t g_copy_tid;
static pthread_key_t g_copy_key;
static int g_ep_pipe[2] = {-1, -1};
static const GUID g_ep_served_control = {0x6a3c2f21, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
static callback_count g_ep_served;

static void at_child_poll(int point) {
    if ((pid_t)syscall(SYS_gettid) != g_copy_tid) return;
    if (point == WPT_POINT_ENDPOINT_POLL) atomic_store(&g_copy_polled, 1);
    if (point == WPT_POINT_COPY_WAITING) atomic_store(&g_copy_waiting, 1);
}

static void copy_ended(void *value) {
    (void)value;
    atomic_store(&g_copy_ended, 1);
}

/* The child's application thread: until the copy of the endpoint thread polled (a second
 * loop), ended or waits for this thread; then it says whether the child's endpoint is there,
 * waits for an enable of a provider the child inherited, says whether it came, and returns
 * (the child's last thread of its own). */
static void *watch_copy(void *arg) {
    (void)arg;
    int64_t deadline = wpt_mono_ms() + 10000;
    while (!atomic_load(&g_copy_polled) && !atomic_load(&g_copy_ended) && !atomic_load(&g_copy_waiting)
           && wpt_mono_ms() < deadline)
        usleep(1000);
    char seen[2] = {(char)('0' + (atomic_load(&g_copy_polled) | atomic_load(&g_copy_ended) << 1
                                  | endpoint_socket_exists() << 2)), 0};
    if (write(g_ep_pipe[1], seen, 1) != 1) _exit(64);
    deadline = wpt_mono_ms() + 10000;
    while (atomic_load(&g_ep_served.enables) < 1 && wpt_mono_ms() < deadline) usleep(1000);
    seen[1] = atomic_load(&g_ep_served.enables) >= 1 ? '1' : '0';
    if (write(g_ep_pipe[1], seen + 1, 1) != 1) _exit(64);
    return NULL;
}

/* fork-on-endpoint watches the child from a thread of its own, which returns in the end;
 * fork-on-endpoint-returns leaves the child to end as it may once the callback returned. */
static int g_watch_child = 1;
static int g_child_ended = -1, g_child_socket_left = -1;

/* The child's end (its status, else 128 if it had to be killed). */
static int wait_child_end(pid_t child) {
    int status = 0;
    int64_t deadline = wpt_mono_ms() + 10000;
    pid_t got;
    while ((got = waitpid(child, &status, WNOHANG)) == 0 && wpt_mono_ms() < deadline) usleep(1000);
    g_child_ended = got == child;
    if (got == 0) {
        kill_and_reap(child);
        return 128;
    }
    return got == child && WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static ULONG fork_on_endpoint(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code != WMI_ENABLE_EVENTS || atomic_exchange(&g_ep_forked, 1)) return ERROR_SUCCESS;
    pid_t child = fork_tied();
    if (child == 0) {
        if (!g_watch_child) return ERROR_SUCCESS;      /* back into the copy of the endpoint thread */
        g_copy_tid = (pid_t)syscall(SYS_gettid);
        if (pthread_key_create(&g_copy_key, copy_ended) != 0) _exit(64);
        pthread_setspecific(g_copy_key, &g_copy_key);     /* its destructor runs as it ends */
        wpt_test_point = at_child_poll;
        pthread_t watcher;
        if (pthread_create(&watcher, NULL, watch_copy, NULL) != 0) _exit(64);
        pthread_detach(watcher);
        return ERROR_SUCCESS;                  /* back into the endpoint thread's loop */
    }
    g_ep_child = child > 0 ? child : 0;
    return ERROR_SUCCESS;
}

static int fork_on_endpoint_mode(const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a, b;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    if (pipe(g_ep_pipe) != 0) return 5;
    TRACEHANDLE r;
    if (register_provider(fork_on_endpoint, NULL, &g_first_control, &r)
        || register_counted(&g_ep_served_control, &g_ep_served))
        return 6;
    if (registry_enable(&g_first_control, slot) < 0) return 7;
    wpt_endpoint_redeliver();                  /* the endpoint thread reconciles */
    int64_t deadline = wpt_mono_ms() + 30000;
    while (g_ep_child == -1 && wpt_mono_ms() < deadline) usleep(1000);
    pid_t child = g_ep_child;
    if (child <= 0) return 8;
    if (!g_watch_child) {
        int status = wait_child_end(child);
        char path[256];
        struct stat st;
        g_child_socket_left = wpt_socket_path(path, sizeof path, 'p', (uint32_t)child) == ERROR_SUCCESS
                              && stat(path, &st) == 0;
        printf("child_ended %d child_status %d child_socket_left %d stop_a %u\n", g_child_ended, status,
               g_child_socket_left, (unsigned)stop_by_name("control-races-a"));
        exit_at_once();
    }
    char seen = '8', served = '0';
    if (read(g_ep_pipe[0], &seen, 1) != 1) seen = '8';
    ULONG enabled = ERROR_INVALID_PARAMETER;
    if (start(dir, "control-races-b", &b) == 0) enabled = EnableTrace(1, 0x5, 4, &g_ep_served_control, b);
    if (read(g_ep_pipe[0], &served, 1) != 1) served = '0';
    int status = wait_child_end(child);         /* its last thread of its own returned */
    char path[256];
    struct stat st;
    int socket_left = wpt_socket_path(path, sizeof path, 'p', (uint32_t)child) == ERROR_SUCCESS
                      && stat(path, &st) == 0;
    int bits = seen - '0';
    printf("two_loops %d copy_ended %d child_socket %d enable %u child_served %d child_status %d "
           "child_socket_left %d stop_b %u stop_a %u\n",
           bits >= 0 && bits < 8 ? bits & 1 : 1, bits >= 0 && bits < 8 ? !!(bits & 2) : 1,
           bits >= 0 && bits < 8 ? !!(bits & 4) : 0, (unsigned)enabled, served == '1', status, socket_left,
           (unsigned)stop(b), (unsigned)stop_by_name("control-races-a"));
    exit_at_once();
}

/* cancel-joining: a thread's wpptrace_endpoint_close is held once it told the endpoint thread
 * to end, before it joins it, and is cancelled there; then another thread closes the endpoint
 * and this process forks. */
static void at_cancel_joining(int point) {
    if (point != WPT_POINT_ENDPOINT_JOINING || !atomic_exchange(&g_cancel_armed, 0)) return;
    sem_post(&g_cancel_held);
    sem_wait(&g_cancel_go);                /* a cancellation point */
}

static void *close_cancelled(void *arg) {
    (void)arg;
    wpptrace_endpoint_close();
    pthread_testcancel();
    return NULL;
}

static int cancel_joining(void) {
    static callback_count r;
    if (register_counted(&g_owed_control, &r)) return 3;      /* the endpoint runs */
    arm_cancel_hold(at_cancel_joining);
    pthread_t t, closer;
    if (pthread_create(&t, NULL, close_cancelled, NULL) != 0) return 4;
    if (wait_sem(&g_cancel_held, 10)) return 5;
    void *result = cancel_held(t);
    if (pthread_create(&closer, NULL, close_after_cancel, NULL) != 0) return 6;
    wait_for(&g_cancel_closed, 10000);
    int closed = atomic_load(&g_cancel_closed);
    printf("cancelled %d closed %d socket_left %d forked %d\n", result == PTHREAD_CANCELED, closed,
           endpoint_socket_exists(), fork_returns());
    exit_at_once();
}

/* cancel-close-waiting: a thread's close is held before it joins the endpoint thread; a second
 * thread's close waits for it and is cancelled as it waits; then the first goes on, and this
 * process forks. */
static sem_t g_second_waiting;

static void at_joining_then_waiting(int point) {
    if (point == WPT_POINT_ENDPOINT_CLOSE_WAITING) {
        sem_post(&g_second_waiting);           /* the endpoint's lock held: never waits here */
        return;
    }
    if (point != WPT_POINT_ENDPOINT_JOINING || !atomic_exchange(&g_cancel_armed, 0)) return;
    sem_post(&g_cancel_held);
    sem_wait(&g_cancel_go);
}

static int cancel_close_waiting(void) {
    static callback_count r;
    if (register_counted(&g_owed_control, &r)) return 3;      /* the endpoint runs */
    sem_init(&g_second_waiting, 0, 0);
    arm_cancel_hold(at_joining_then_waiting);
    pthread_t first, second;
    if (pthread_create(&first, NULL, close_first, NULL) != 0) return 4;
    if (wait_sem(&g_cancel_held, 10)) return 5;
    if (pthread_create(&second, NULL, close_cancelled, NULL) != 0) return 6;
    if (wait_sem(&g_second_waiting, 10)) return 7;
    void *result = cancel_held(second);        /* the first close goes on to join the endpoint thread */
    int forked = fork_returns();
    int64_t deadline = wpt_mono_ms() + 10000;  /* the first close ends (or waits for the lock) */
    while (endpoint_socket_exists() && wpt_mono_ms() < deadline) usleep(1000);
    printf("cancelled %d forked %d socket_left %d\n", result == PTHREAD_CANCELED, forked, endpoint_socket_exists());
    exit_at_once();
}

/* cancel-join: the endpoint runs; a thread registers a provider that A (hosted elsewhere)
 * enabled, and its JOIN of A is held once it chose A, and cancelled there; then this process
 * forks. */
static void at_join_cancelled(int point) {
    if (point != WPT_POINT_JOIN_CHOSEN || !atomic_exchange(&g_cancel_armed, 0)) return;
    sem_post(&g_cancel_held);
    sem_wait(&g_cancel_go);                /* a cancellation point */
}

/* Session A started by another process (its slot and handle); a provider registered here,
 * so the endpoint runs, and g_owed_control enabled for A with nothing registered for it yet.
 * 0, or the step that failed. */
static int a_enabled_for_none(const char *dir, uint32_t *slot, TRACEHANDLE *a) {
    uint32_t generation;
    int failed = host_a_elsewhere(dir, slot, &generation, a);
    if (failed) return failed;
    static callback_count other;
    if (register_counted(&g_first_control, &other)) return 5;
    return EnableTrace(1, 0x5, 4, &g_owed_control, *a) ? 6 : 0;
}

static int cancel_join(const char *dir) {
    uint32_t slot;
    TRACEHANDLE a;
    int failed = a_enabled_for_none(dir, &slot, &a);
    if (failed) return failed;
    arm_cancel_hold(at_join_cancelled);
    static ULONG registered = 99;
    pthread_t t;
    if (pthread_create(&t, NULL, register_cancelled, &registered) != 0) return 7;
    if (wait_sem(&g_cancel_held, 10)) return 8;
    void *result = cancel_held(t);
    int forked = fork_returns();
    printf("registered %u cancelled %d forked %d stop_a %u\n", (unsigned)registered, result == PTHREAD_CANCELED,
           forked, forked ? (unsigned)stop_by_name("control-races-a") : 99u);
    exit_at_once();
}

/* cancel-in-callback: a thread's EnableTrace of A runs the ControlCallback of a provider here,
 * which blocks (sem_wait: a cancellation point) and is cancelled there. cancel-unregister-waiting:
 * that callback is left blocked, and another thread's UnregisterTraceGuids of the provider,
 * waiting for it, is cancelled. Afterwards the provider is unregistered and another registered
 * and unregistered in a third thread, and this process has the descriptors it had before (both
 * counted with its endpoint thread waiting for work). */
static const GUID g_blocking_control = {0x6a3c2f22, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
static const GUID g_after_control = {0x6a3c2f23, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
static sem_t g_blocked, g_unblock, g_unregister_waits;
static _Atomic int g_block_next, g_block_returned, g_unregister_armed, g_after_done;
static TRACEHANDLE g_blocking_reg;
static ULONG g_enable_rc = 99, g_unregistered = 99, g_after_registered = 99, g_after_unregistered = 99;

static ULONG blocking_callback(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code != WMI_ENABLE_EVENTS || !atomic_exchange(&g_block_next, 0)) return ERROR_SUCCESS;
    sem_post(&g_blocked);
    sem_wait(&g_unblock);                  /* a cancellation point */
    atomic_store(&g_block_returned, 1);
    return ERROR_SUCCESS;
}

static void *enable_blocked(void *arg) {
    g_enable_rc = EnableTrace(1, 0x7, 5, &g_blocking_control, *(TRACEHANDLE *)arg);
    pthread_testcancel();
    return NULL;
}

static void at_unregistration_waits(int point) {
    if (point == WPT_POINT_UNREGISTER_WAITING && atomic_exchange(&g_unregister_armed, 0)) sem_post(&g_unregister_waits);
}

static void *unregister_blocking(void *arg) {
    (void)arg;
    g_unregistered = UnregisterTraceGuids(g_blocking_reg);
    pthread_testcancel();
    return NULL;
}

static void *register_after(void *arg) {
    (void)arg;
    if (!atomic_load(&g_block_returned)) g_unregistered = UnregisterTraceGuids(g_blocking_reg);
    static callback_count counted;
    TRACEHANDLE r = 0;
    g_after_registered = register_provider(count_callbacks, &counted, &g_after_control, &r);
    if (g_after_registered == ERROR_SUCCESS) g_after_unregistered = UnregisterTraceGuids(r);
    atomic_store(&g_after_done, 1);
    return NULL;
}

/* This process's descriptors, counted while its endpoint thread is held where it waits for
 * work (-1 if it did not get there within 10 s). Between waits that thread opens descriptors
 * of its own for a moment: the reconciliation a cancelled callback asks it for reads
 * /proc/<pid>/stat of each session's host to see that it is alive. A count taken then, on a
 * loaded machine, took that for a descriptor left open. */
static sem_t g_idle_held, g_idle_go;
static _Atomic int g_idle_armed;
static void (*g_idle_chained)(int);

static void at_endpoint_idle(int point) {
    if (point == WPT_POINT_ENDPOINT_POLL && atomic_exchange(&g_idle_armed, 0)) {
        sem_post(&g_idle_held);
        sem_wait(&g_idle_go);
        return;
    }
    if (g_idle_chained) g_idle_chained(point);
}

static int descriptors_endpoint_idle(void) {
    static int made;                       /* once: the thread let go last time may not have */
    if (!made) {                           /* returned from sem_wait yet */
        sem_init(&g_idle_held, 0, 0);
        sem_init(&g_idle_go, 0, 0);
        made = 1;
    }
    g_idle_chained = wpt_test_point;
    atomic_store(&g_idle_armed, 1);
    wpt_test_point = at_endpoint_idle;
    int held = wait_sem(&g_idle_held, 10) == 0;
    int n = held ? open_descriptors() : -1;
    int taken = !atomic_exchange(&g_idle_armed, 0);
    wpt_test_point = g_idle_chained;
    if (taken && !held) sem_wait(&g_idle_held);    /* it got there only now */
    if (taken) sem_post(&g_idle_go);
    return n;
}

/* `t` joined if it ends within 5 s (1), else left (0). */
static int ends_soon(pthread_t t, void **result) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    return pthread_timedjoin_np(t, result, &ts) == 0;
}

static int cancel_in_callback(const char *dir, int unregistering) {
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    if (register_provider(blocking_callback, NULL, &g_blocking_control, &g_blocking_reg))
        return 5;
    if (EnableTrace(1, 0x5, 4, &g_blocking_control, a)) return 6;    /* A joined, nothing blocked */
    int before = descriptors_endpoint_idle();
    sem_init(&g_blocked, 0, 0);
    sem_init(&g_unblock, 0, 0);
    sem_init(&g_unregister_waits, 0, 0);
    atomic_store(&g_block_next, 1);
    pthread_t enabler, unregisterer, after;
    if (pthread_create(&enabler, NULL, enable_blocked, &a) != 0) return 7;
    if (wait_sem(&g_blocked, 10)) return 8;
    pthread_t cancelled = enabler;
    if (unregistering) {
        wpt_test_point = at_unregistration_waits;
        atomic_store(&g_unregister_armed, 1);
        if (pthread_create(&unregisterer, NULL, unregister_blocking, NULL) != 0) return 9;
        if (wait_sem(&g_unregister_waits, 10)) return 10;
        cancelled = unregisterer;
    }
    pthread_cancel(cancelled);
    void *result = NULL;
    int ended = ends_soon(cancelled, &result);
    sem_post(&g_unblock);                  /* a callback still blocked returns */
    if (!ended) pthread_join(cancelled, &result);
    if (unregistering) pthread_join(enabler, NULL);
    if (pthread_create(&after, NULL, register_after, NULL) != 0) return 11;
    wait_for(&g_after_done, 10000);
    int done = atomic_load(&g_after_done);
    int fds_kept = done && before >= 0 && descriptors_endpoint_idle() == before;
    if (unregistering)
        printf("ended_waiting %d cancelled %d enable %u registered %u unregistered %u fds_kept %d stop_a %u\n",
               ended, result == PTHREAD_CANCELED, (unsigned)g_enable_rc, (unsigned)g_after_registered,
               (unsigned)g_after_unregistered, fds_kept, done ? (unsigned)stop_by_name("control-races-a") : 99u);
    else
        printf("ended_in_callback %d cancelled %d unregistered %u registered %u unregistered_other %u fds_kept %d "
               "stop_a %u\n",
               ended && !atomic_load(&g_block_returned), result == PTHREAD_CANCELED, (unsigned)g_unregistered,
               (unsigned)g_after_registered, (unsigned)g_after_unregistered, fds_kept,
               done ? (unsigned)stop_by_name("control-races-a") : 99u);
    exit_at_once();
}

/* refused-view-fork: every JOIN's memory is refused here (a test switch, as for memory not
 * sealed); a provider of this process is enabled for A (refused: counted), then this process
 * forks; the child's endpoint copies the registry (A's enable refused again). */
static const GUID g_refused_control = {0x6a3c2f24, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};

static int refused_view_fork(const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    static callback_count counted;
    if (register_counted(&g_refused_control, &counted)) return 5;
    wpt_test_refuse_views = 1;
    EnableTrace(1, 0x5, 4, &g_refused_control, a);
    ULONG refused = wpptrace_views_refused();
    pid_t child = fork_tied();
    if (child == 0) _exit((int)wpptrace_views_refused());
    int child_refused = exit_code_of(child, 99);
    wpt_test_refuse_views = 0;
    printf("refused %u child_refused %d stop_a %u\n", (unsigned)refused, child_refused,
           (unsigned)stop_by_name("control-races-a"));
    exit_at_once();
}

/* cancel-join-busy: as cancel-join, but A's host is stopped (SIGSTOP) and the wait for its
 * reply shortened, so the JOIN ends with ERROR_BUSY (the registration leaves the enable to
 * the endpoint thread); then this process forks, and another thread closes the endpoint. */
static int cancel_join_busy(const char *dir) {
    uint32_t slot;
    TRACEHANDLE a;
    int failed = a_enabled_for_none(dir, &slot, &a);
    if (failed) return failed;
    uint32_t host = host_of(slot);
    if (!host || kill((pid_t)host, SIGSTOP) != 0) return 7;
    wpt_host_reply_ms = 300;                /* a stopped host never answers: do not wait long */
    arm_cancel_hold(at_join_cancelled);
    static ULONG registered = 99;
    pthread_t t, closer;
    if (pthread_create(&t, NULL, register_cancelled, &registered) != 0) return 8;
    if (wait_sem(&g_cancel_held, 10)) return 9;
    void *result = cancel_held(t);
    int forked = fork_returns();
    if (pthread_create(&closer, NULL, close_after_cancel, NULL) != 0) return 10;
    wait_for(&g_cancel_closed, 10000);
    kill((pid_t)host, SIGCONT);
    wpt_host_reply_ms = 10000;
    int closed = atomic_load(&g_cancel_closed);
    printf("registered %u cancelled %d forked %d closed %d stop_a %u\n", (unsigned)registered,
           result == PTHREAD_CANCELED, forked, closed, (unsigned)stop_by_name("control-races-a"));
    exit_at_once();
}

/* cancel-unregister: a thread's UnregisterTraceGuids waits for the ENABLE callback another
 * thread runs (private session X's EnableTrace) and is cancelled as it waits; then the callback
 * returns, and this process forks. */
static const GUID g_unregister_control = {0x6a3c2f20, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
static sem_t g_unreg_entered, g_unreg_release, g_unreg_waiting;
static TRACEHANDLE g_unreg_x, g_unreg_r;

static ULONG held_enable(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code != WMI_ENABLE_EVENTS) return ERROR_SUCCESS;
    sem_post(&g_unreg_entered);
    sem_wait(&g_unreg_release);
    return ERROR_SUCCESS;
}

static void at_unregister_cancel_point(int point) {
    if (point == WPT_POINT_UNREGISTER_WAITING && atomic_exchange(&g_cancel_armed, 0)) sem_post(&g_unreg_waiting);
}

static void *enable_held_in_callback(void *arg) {
    (void)arg;
    EnableTrace(1, 0, 4, &g_unregister_control, g_unreg_x);
    return NULL;
}

static void *unregister_cancelled(void *arg) {
    *(ULONG *)arg = UnregisterTraceGuids(g_unreg_r);
    pthread_testcancel();
    return NULL;
}

static int cancel_unregister(const char *dir) {
    sem_init(&g_unreg_entered, 0, 0);
    sem_init(&g_unreg_release, 0, 0);
    sem_init(&g_unreg_waiting, 0, 0);
    static const GUID message = {0x6a3c2f21, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
    TRACE_GUID_REGISTRATION reg = {&message, NULL};
    if (RegisterTraceGuids(held_enable, NULL, &g_unregister_control, 1, &reg, NULL, NULL, &g_unreg_r)) return 3;
    if (start_private_in_proc(dir, "control-races-x", &g_unreg_x)) return 4;
    pthread_t enabler, t;
    if (pthread_create(&enabler, NULL, enable_held_in_callback, NULL) != 0) return 5;
    if (wait_sem(&g_unreg_entered, 10)) return 6;
    wpt_test_point = at_unregister_cancel_point;
    atomic_store(&g_cancel_armed, 1);
    static ULONG unregistered = 99;
    if (pthread_create(&t, NULL, unregister_cancelled, &unregistered) != 0) return 7;
    if (wait_sem(&g_unreg_waiting, 10)) return 8;
    pthread_cancel(t);
    sem_post(&g_unreg_release);                /* the callback returns: the wait ends */
    void *result = NULL;
    pthread_join(t, &result);
    int forked = fork_returns();
    printf("unregistered %u cancelled %d forked %d stop_x %u\n", (unsigned)unregistered,
           result == PTHREAD_CANCELED, forked, forked ? (unsigned)stop(g_unreg_x) : 99u);
    exit_at_once();
}

/* close-then-register: private session X's ENABLE callback (run in the main thread) closes
 * the endpoint, then registers another provider, while the endpoint thread is held before it
 * polls; then it goes on, and another process starts C and enables that provider for it. */
static const GUID g_after_close_control = {0x6a3c2f1f, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
static callback_count g_after_close;
static _Atomic int g_poll_armed, g_polls_after;
static sem_t g_poll_held, g_poll_go;

static void at_poll_held(int point) {
    if (point != WPT_POINT_ENDPOINT_POLL) return;
    if (atomic_exchange(&g_poll_armed, 0)) {
        sem_post(&g_poll_held);
        sem_wait(&g_poll_go);
    } else {
        atomic_fetch_add(&g_polls_after, 1);
    }
}

static ULONG close_then_register(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code != WMI_ENABLE_EVENTS) return ERROR_SUCCESS;
    wpptrace_endpoint_close();                 /* in a callback: returns at once */
    register_counted(&g_after_close_control, &g_after_close);
    return ERROR_SUCCESS;
}

static int close_then_register_mode(const char *dir) {
    TRACEHANDLE x, r;
    if (register_provider(close_then_register, NULL, &g_first_control, &r)) return 3;
    if (start_private_in_proc(dir, "control-races-x", &x)) return 4;
    sem_init(&g_poll_held, 0, 0);
    sem_init(&g_poll_go, 0, 0);
    wpt_test_point = at_poll_held;
    atomic_store(&g_poll_armed, 1);
    wpt_endpoint_redeliver();                  /* wakes the endpoint thread */
    if (wait_sem(&g_poll_held, 10)) return 5;
    ULONG enabled = EnableTrace(1, 0x5, 4, &g_first_control, x);
    atomic_store(&g_polls_after, 0);
    sem_post(&g_poll_go);
    int64_t deadline = wpt_mono_ms() + 10000;  /* one more round, or the endpoint undone */
    while (atomic_load(&g_polls_after) < 1 && endpoint_socket_exists() && wpt_mono_ms() < deadline)
        usleep(1000);
    int kept = endpoint_socket_exists();
    int started = run_point("start-enable-c", dir);
    deadline = wpt_mono_ms() + 5000;
    while (atomic_load(&g_after_close.enables) < 1 && wpt_mono_ms() < deadline) usleep(1000);
    printf("enable %u socket_kept %d start_c %d enables %d stop_x %u stop_c %u\n", (unsigned)enabled, kept,
           started, atomic_load(&g_after_close.enables), (unsigned)stop(x),
           (unsigned)stop_by_name("control-races-c"));
    exit_at_once();
}

/* fork-in-copy-stays: this process reconciles; the first enable's callback forks, and the
 * child never returns into it (a worker that ends with _exit); its endpoint must still serve:
 * a session started in this process then enables a provider of the child. */
static const GUID g_child_served_control = {0x6a3c2f20, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
static callback_count g_child_served;
static int g_stay_pipe[2] = {-1, -1};
static pid_t g_stay_child = -1;
static int64_t g_stay_after;
static _Atomic int g_stay_polls;

static void at_stay_poll(int point) {
    if (point == WPT_POINT_ENDPOINT_POLL && wpt_mono_ms() >= g_stay_after) atomic_fetch_add(&g_stay_polls, 1);
}

static ULONG fork_and_stay(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code != WMI_ENABLE_EVENTS || g_stay_child != -1) return ERROR_SUCCESS;
    pid_t child = fork_tied();
    if (child != 0) {
        g_stay_child = child;
        return ERROR_SUCCESS;
    }
    /* The child's endpoint owes a copy, tried 1 s after it started: two rounds of its poll
     * later than that, it was tried (the thread went on past it). */
    g_stay_after = wpt_mono_ms() + 1100;
    wpt_test_point = at_stay_poll;
    int64_t deadline = wpt_mono_ms() + 10000;
    while (atomic_load(&g_stay_polls) < 2 && wpt_mono_ms() < deadline) usleep(1000);
    char served_before = atomic_load(&g_stay_polls) >= 2 ? '1' : '0';
    if (write(g_stay_pipe[1], &served_before, 1) != 1) _exit(64);
    deadline = wpt_mono_ms() + 10000;
    while (atomic_load(&g_child_served.enables) < 1 && wpt_mono_ms() < deadline) usleep(1000);
    _exit(atomic_load(&g_child_served.enables) >= 1 ? 0 : 1);   /* never returns to the copy */
}

static int fork_in_copy_stays(const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a, b;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    if (pipe(g_stay_pipe) != 0) return 5;
    TRACEHANDLE r;
    if (register_provider(fork_and_stay, NULL, &g_first_control, &r)
        || register_counted(&g_child_served_control, &g_child_served))
        return 6;
    if (registry_enable(&g_first_control, slot) < 0) return 7;
    ULONG reconciled = wpt_reconcile_with_registry();
    if (g_stay_child <= 0) return 8;
    char served_before = '0';
    if (read(g_stay_pipe[0], &served_before, 1) != 1) return 9;
    if (start(dir, "control-races-b", &b)) return 10;
    ULONG enabled = EnableTrace(1, 0x5, 4, &g_child_served_control, b);
    int child_enabled = exit_code_of(g_stay_child, -1) == 0;
    printf("reconcile %u served_before %d enable %u child_enabled %d stop_b %u stop_a %u\n", (unsigned)reconciled,
           served_before == '1', (unsigned)enabled, child_enabled,
           (unsigned)stop(b), (unsigned)stop_by_name("control-races-a"));
    return 0;
}


/* unsealed-view: the memory of a session as a host hands it out, mapped as a JOIN maps it:
 * the host's own file (sealed against shrinking and sealing), a copy of it not sealed, and a
 * copy sealed against shrinking only. Prints "sealed RC unsealed RC shrink_only RC". */
static int copy_sealed(const void *from, uint64_t size, unsigned seals) {
    int fd = (int)syscall(SYS_memfd_create, "unsealed-copy", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) return -1;
    void *to = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (to == MAP_FAILED) return -1;
    memcpy(to, from, size);
    munmap(to, size);
    if (seals && fcntl(fd, F_ADD_SEALS, seals) != 0) return -1;
    return fd;
}

static int unsealed_view(void) {
    wpt_pool_config c = {.buffer_size = 4096, .nslots = 1, .capacity = 4, .max_buffers = 4,
                         .min_buffers = 1, .logger_id = 1, .generation = 7, .log_file_mode = 0,
                         .clock_type = 1};
    wpt_view *host = NULL, *mapped = NULL;
    int memfd = -1;
    if (wpt_pool_create(&c, &host, &memfd) != ERROR_SUCCESS || memfd < 0) return 1;
    uint64_t size = host->sh->map_size;
    int unsealed = copy_sealed(host->sh, size, 0);
    int shrink_only = copy_sealed(host->sh, size, F_SEAL_SHRINK);
    if (unsealed < 0 || shrink_only < 0) return 1;
    ULONG sealed_rc = wpt_view_map(memfd, size, 1, 7, &mapped);
    ULONG unsealed_rc = wpt_view_map(unsealed, size, 1, 7, &mapped);
    ULONG shrink_rc = wpt_view_map(shrink_only, size, 1, 7, &mapped);
    printf("sealed %lu unsealed %lu shrink_only %lu\n", (unsigned long)sealed_rc,
           (unsigned long)unsealed_rc, (unsigned long)shrink_rc);
    return 0;
}

/* cancel-query-all, cancel-list-sessions, cancel-session-info: a thread's QueryAllTraces,
 * wpptrace_list_sessions or wpptrace_session_info (of A, hosted by a process of its own) is
 * cancelled once it connected to A's host; the wait for the reply is a cancellation point.
 * Then a QUERY of A from this thread must return, and no descriptor may be left open. */
static pthread_t g_lister;
static _Atomic int g_lister_armed, g_queried_a;
static ULONG g_lister_rc = 99, g_queried_a_rc = 99;

static void at_lister_connected(int point) {
    if (point == WPT_POINT_REQUEST_CONNECTED && pthread_equal(pthread_self(), g_lister)
        && atomic_exchange(&g_lister_armed, 0))
        pthread_cancel(g_lister);
}

static void *cancelled_lister(void *arg) {
    int which = *(const int *)arg;
    props_block blocks[4];
    EVENT_TRACE_PROPERTIES *array[4];
    blank_array(blocks, array, 4);
    WPPTRACE_SESSION_INFO infos[4];
    ULONG n = 0;
    if (which == 0) g_lister_rc = QueryAllTracesA(array, 4, &n);
    else if (which == 1) g_lister_rc = wpptrace_list_sessions(array, infos, 4, &n);
    else g_lister_rc = wpptrace_session_info(0, "control-races-a", &infos[0]);
    pthread_testcancel();                      /* a cancel held off acts once the call is done */
    return NULL;
}

static void *query_a_once(void *arg) {
    (void)arg;
    g_queried_a_rc = query_by_name("control-races-a");
    atomic_store(&g_queried_a, 1);
    return NULL;
}

static int cancel_listing(const char *dir, int which) {
    TRACEHANDLE a;
    if (start(dir, "control-races-a", &a)) return 3;
    int before = open_descriptors();
    wpt_test_point = at_lister_connected;
    atomic_store(&g_lister_armed, 1);
    static int chosen;
    chosen = which;
    if (pthread_create(&g_lister, NULL, cancelled_lister, &chosen) != 0) return 4;
    void *result = NULL;
    pthread_join(g_lister, &result);
    wpt_test_point = NULL;
    int left = open_descriptors() - before;
    pthread_t q;
    if (pthread_create(&q, NULL, query_a_once, NULL) != 0) return 5;
    wait_for(&g_queried_a, 10000);
    int queried = atomic_load(&g_queried_a);
    printf("listed %u cancelled %d fds_left %d queried %d query_a %u stop_a %u\n", (unsigned)g_lister_rc,
           result == PTHREAD_CANCELED, left, queried, (unsigned)g_queried_a_rc,
           queried ? (unsigned)stop(a) : 99u);
    exit_at_once();
}

/* cancel-runtime-directory, cancel-host-log-path, cancel-enumerate, cancel-subscribe: a thread's
 * wpptrace_runtime_directory, wpptrace_host_log_path, EnumerateTraceGuids (a provider registered
 * by another process) or wpptrace_rt_subscribe (of A, a file session hosted by a process of its
 * own) is cancelled as it checks the runtime directory, that directory's lock held (open, openat
 * and close are cancellation points, and so are the connections the last two make after it).
 * Then the same call from this thread must answer as it did before, and no descriptor may be
 * left open. */
static pthread_t g_dir_caller;
static _Atomic int g_dir_caller_armed;

static void at_dir_opening(int point) {
    if (point == WPT_POINT_RUNTIME_DIR_OPENING && pthread_equal(pthread_self(), g_dir_caller)
        && atomic_exchange(&g_dir_caller_armed, 0))
        pthread_cancel(g_dir_caller);
}

/* The call `which` names: its result (the runtime directory's: 0 if it named one) and, for
 * EnumerateTraceGuids, the providers it found. */
static ULONG dir_call(int which, ULONG *found) {
    if (which == 0) return wpptrace_runtime_directory() ? ERROR_SUCCESS : ERROR_FILE_NOT_FOUND;
    if (which == 1) {
        char path[4096];
        return wpptrace_host_log_path(1, path, sizeof path);
    }
    if (which == 2) {
        TRACE_GUID_PROPERTIES props[4];
        PTRACE_GUID_PROPERTIES array[4];
        for (int i = 0; i < 4; i++) array[i] = &props[i];
        ULONG n = 0;
        ULONG rc = EnumerateTraceGuids(array, 4, &n);
        if (found) *found = n;
        return rc;
    }
    wpptrace_rt_subscription *sub = NULL;
    ULONG rc = wpptrace_rt_subscribe("control-races-a", &sub, NULL);
    if (sub) wpptrace_rt_close(sub);
    return rc;
}

typedef struct { int which; ULONG rc; } dir_caller;

static void *dir_call_cancelled(void *arg) {
    dir_caller *c = arg;
    c->rc = dir_call(c->which, NULL);
    pthread_testcancel();                      /* a cancel held off acts once the call is done */
    return NULL;
}

static int cancel_in_dir_check(const char *dir, int which) {
    TRACEHANDLE a = 0;
    if (which == 3 && start(dir, "control-races-a", &a)) return 3;
    int ready[2], hold[2];
    pid_t provider = -1;
    if (which == 2) {
        if (pipe(ready) != 0 || pipe(hold) != 0) return 3;
        provider = fork_tied();
        if (provider < 0) return 3;
        if (provider == 0) {
            static const GUID control = {0x6a3c2f30, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
            static const GUID message = {0x6a3c2f31, 0x1d2e, 0x4b5a, {1, 2, 3, 4, 5, 6, 7, 8}};
            TRACE_GUID_REGISTRATION reg = {&message, NULL};
            TRACEHANDLE registration;
            char c = RegisterTraceGuids(track_control, NULL, &control, 1, &reg, NULL, NULL, &registration)
                   == ERROR_SUCCESS ? 'r' : 'f';
            close(hold[1]);
            if (write(ready[1], &c, 1) != 1) _exit(1);
            while (read(hold[0], &c, 1) < 0 && errno == EINTR) {}   /* until this process ends */
            _exit(0);
        }
        char c = 0;
        if (read(ready[0], &c, 1) != 1 || c != 'r') return 4;
    }
    wpt_registry_wait_ms = 1000;               /* a lock left held: the call after fails in 1 s */
    ULONG first = dir_call(which, NULL);       /* what is made once (the directory held) is made */
    int before = open_descriptors();
    wpt_test_point = at_dir_opening;
    atomic_store(&g_dir_caller_armed, 1);
    static dir_caller called;
    called = (dir_caller){which, 99};
    if (pthread_create(&g_dir_caller, NULL, dir_call_cancelled, &called) != 0) return 5;
    void *result = NULL;
    pthread_join(g_dir_caller, &result);
    wpt_test_point = NULL;
    int left = open_descriptors() - before;
    ULONG found = 0;
    ULONG again = dir_call(which, &found);
    printf("first %u called %u cancelled %d fds_left %d again %u found %u", (unsigned)first,
           (unsigned)called.rc, result == PTHREAD_CANCELED, left, (unsigned)again, (unsigned)found);
    if (which == 3) printf(" stop_a %u", (unsigned)stop(a));
    printf("\n");
    fflush(stdout);
    if (provider > 0) {
        close(hold[1]);
        while (waitpid(provider, NULL, 0) < 0 && errno == EINTR) {}
    }
    _exit(0);                                  /* a lock left held must not hold up exit */
}

/* fork-in-copy-withheld: this process reconciles with the registry, which holds enables of two
 * of its providers for A; the first one's ENABLE callback forks, and the child never returns
 * into that copy. The second enable, which only that copy would bring (the copy the child's
 * endpoint owes waits for it), never reaches the child: the child must count it as withheld,
 * once however often it asks. */
static pid_t g_withheld_child = -1;
static callback_count g_withheld_second;

static ULONG fork_and_withhold(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code != WMI_ENABLE_EVENTS || g_withheld_child != -1) return ERROR_SUCCESS;
    pid_t child = fork_tied();
    if (child != 0) {
        g_withheld_child = child;
        return ERROR_SUCCESS;
    }
    ULONG first = wpptrace_enables_withheld(), again = wpptrace_enables_withheld();
    int second = atomic_load(&g_withheld_second.enables) != 0;
    _exit((int)(first > 3 ? 3 : first) | (int)(again > 3 ? 3 : again) << 2 | second << 4);
}

static int fork_in_copy_withheld(const char *dir) {
    uint32_t slot, generation;
    TRACEHANDLE a;
    int failed = host_a_elsewhere(dir, &slot, &generation, &a);
    if (failed) return failed;
    TRACEHANDLE r;
    if (register_provider(fork_and_withhold, NULL, &g_first_control, &r)
        || register_counted(&g_last_control, &g_withheld_second))
        return 5;
    if (first_then_last(slot, slot)) return 6;
    ULONG reconciled = wpt_reconcile_with_registry();
    if (g_withheld_child <= 0) return 7;
    int code = exit_code_of(g_withheld_child, 255);
    printf("reconcile %u child_withheld %d child_withheld_again %d child_second %d second %d withheld %u stop_a %u\n",
           (unsigned)reconciled, code & 3, code >> 2 & 3, code >> 4 & 1,
           atomic_load(&g_withheld_second.enables), (unsigned)wpptrace_enables_withheld(),
           (unsigned)stop_by_name("control-races-a"));
    return 0;
}

/* fork-while-retiring: a view of session 3 is replaced by a newer one (published by another
 * thread, held where the old view is retired) while this thread forks: in the child the old
 * view must be published still, or its memory released (it was neither: taken out of its slot,
 * not yet listed as being swapped, it stayed mapped until the child exited). */
static sem_t g_replace_held, g_replace_go;
static _Atomic int g_replace_armed;

static void at_replacing(int point) {
    if (point != WPT_POINT_VIEW_RETIRE || !atomic_exchange(&g_replace_armed, 0)) return;
    sem_post(&g_replace_held);
    sem_wait(&g_replace_go);
}

static void *publish_newer(void *arg) {
    wpt_view_publish(arg);
    return NULL;
}

static int fork_while_retiring(void) {
    wpt_pool_config c = {.buffer_size = 4096, .nslots = 1, .capacity = 4, .max_buffers = 4,
                         .min_buffers = 1, .logger_id = 3, .generation = 7, .log_file_mode = 0,
                         .clock_type = 1};
    wpt_view *old = NULL, *newer = NULL;
    int old_fd = -1, newer_fd = -1;
    if (wpt_pool_create(&c, &old, &old_fd) != ERROR_SUCCESS
        || wpt_pool_create(&c, &newer, &newer_fd) != ERROR_SUCCESS)
        return 1;
    sem_init(&g_replace_held, 0, 0);
    sem_init(&g_replace_go, 0, 0);
    wpt_view_publish(old);
    wpt_test_point = at_replacing;
    atomic_store(&g_replace_armed, 1);
    pthread_t t;
    if (pthread_create(&t, NULL, publish_newer, newer) != 0) return 2;
    if (wait_sem(&g_replace_held, 10)) return 3;
    pid_t child = fork_tied();
    if (child == 0)
        _exit(old->map != NULL && atomic_load(&wpt_views[3]) != old);   /* out of its slot, mapped */
    sem_post(&g_replace_go);
    pthread_join(t, NULL);
    wpt_test_point = NULL;
    int kept = exit_code_of(child, 9);
    printf("forked %d child_kept_mapping %d replaced %d released %d\n", child > 0, kept,
           atomic_load(&wpt_views[3]) == newer, old->map == NULL);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "fork-on-endpoint") == 0) return fork_on_endpoint_mode(argv[2]);
    if (argc == 3 && strcmp(argv[1], "fork-on-endpoint-returns") == 0) {
        g_watch_child = 0;
        return fork_on_endpoint_mode(argv[2]);
    }
    if (argc == 3 && strcmp(argv[1], "cancel-joining") == 0) return cancel_joining();
    if (argc == 3 && strcmp(argv[1], "cancel-close-waiting") == 0) return cancel_close_waiting();
    if (argc == 3 && strcmp(argv[1], "cancel-join") == 0) return cancel_join(argv[2]);
    if (argc == 3 && strcmp(argv[1], "cancel-join-busy") == 0) return cancel_join_busy(argv[2]);
    if (argc == 3 && strcmp(argv[1], "refused-view-fork") == 0) return refused_view_fork(argv[2]);
    if (argc == 3 && strcmp(argv[1], "cancel-in-callback") == 0) return cancel_in_callback(argv[2], 0);
    if (argc == 3 && strcmp(argv[1], "cancel-unregister-waiting") == 0) return cancel_in_callback(argv[2], 1);
    if (argc == 3 && strcmp(argv[1], "cancel-unregister") == 0) return cancel_unregister(argv[2]);
    if (argc == 3 && strcmp(argv[1], "cancel-query-all") == 0) return cancel_listing(argv[2], 0);
    if (argc == 3 && strcmp(argv[1], "cancel-list-sessions") == 0) return cancel_listing(argv[2], 1);
    if (argc == 3 && strcmp(argv[1], "cancel-session-info") == 0) return cancel_listing(argv[2], 2);
    if (argc == 3 && strcmp(argv[1], "cancel-runtime-directory") == 0) return cancel_in_dir_check(argv[2], 0);
    if (argc == 3 && strcmp(argv[1], "cancel-host-log-path") == 0) return cancel_in_dir_check(argv[2], 1);
    if (argc == 3 && strcmp(argv[1], "cancel-enumerate") == 0) return cancel_in_dir_check(argv[2], 2);
    if (argc == 3 && strcmp(argv[1], "cancel-subscribe") == 0) return cancel_in_dir_check(argv[2], 3);
    if (argc == 3 && strcmp(argv[1], "close-then-register") == 0) return close_then_register_mode(argv[2]);
    if (argc == 3 && strcmp(argv[1], "unsealed-view") == 0) return unsealed_view();
    if (argc == 3 && strcmp(argv[1], "fork-while-retiring") == 0) return fork_while_retiring();
    if (argc == 3 && strcmp(argv[1], "fork-in-copy-stays") == 0) return fork_in_copy_stays(argv[2]);
    if (argc == 3 && strcmp(argv[1], "fork-in-copy-withheld") == 0) return fork_in_copy_withheld(argv[2]);
    if (argc == 3 && strcmp(argv[1], "start-enable-c") == 0) {
        TRACEHANDLE c;
        if (start(argv[2], "control-races-c", &c) != ERROR_SUCCESS) return 1;
        return EnableTrace(1, 0x5, 4, &g_after_close_control, c) == ERROR_SUCCESS ? 0 : 1;
    }
    if (argc == 3 && strcmp(argv[1], "owed-once") == 0) return owed_once(argv[2]);
    if (argc == 3 && strcmp(argv[1], "copy-after-disable") == 0) return copy_after_disable(argv[2]);
    if (argc == 3 && strcmp(argv[1], "disable-owed") == 0) return disable_owed(argv[2]);
    if (argc == 3 && strcmp(argv[1], "enable-overtaken") == 0) return enable_overtaken(argv[2]);
    if (argc == 3 && strcmp(argv[1], "close-joining-in-callback") == 0) return close_joining_in_callback(argv[2]);
    if (argc == 3 && strcmp(argv[1], "cancel-overtaken") == 0) return cancel_overtaken(argv[2]);
    if (argc == 3 && strcmp(argv[1], "cancel-taken-over") == 0) return cancel_taken_over(argv[2]);
    if (argc == 3 && strcmp(argv[1], "close-starting") == 0) return close_starting();
    if (argc == 3 && strcmp(argv[1], "close-twice") == 0) return close_twice();
    if (argc == 3 && strcmp(argv[1], "fork-nested") == 0) return fork_nested(argv[2]);
    if (argc == 3 && strcmp(argv[1], "fork-deep") == 0) return fork_deep(argv[2]);
    if (argc == 3 && strcmp(argv[1], "close-in-stop") == 0) return close_in_stop(argv[2]);
    if (argc == 3 && strcmp(argv[1], "close-in-stop-joining") == 0) return close_in_stop_joining(argv[2]);
    if (argc == 3 && strcmp(argv[1], "cancel-starting") == 0) return cancel_starting();
    if (argc == 3 && strcmp(argv[1], "fork-in-copy") == 0) return fork_in_copy(argv[2]);
    if (argc == 3 && strcmp(argv[1], "callback-order") == 0) return callback_order(argv[2]);
    if (argc == 3 && strcmp(argv[1], "unregister-sibling") == 0) return unregister_sibling_mode(argv[2]);
    if (argc == 3 && strcmp(argv[1], "close-in-callback") == 0) return close_in_callback(argv[2]);
    if (argc == 3 && strcmp(argv[1], "full-table") == 0) return full_table(argv[2]);
    if (argc == 3 && strcmp(argv[1], "generation-atomic") == 0) return generation_atomic();
    if (argc == 3 && strcmp(argv[1], "reconcile-busy-once") == 0) return reconcile_busy_once(argv[2]);
    if (argc == 3 && strcmp(argv[1], "memfd-reused") == 0) return memfd_reused(argv[2]);
    if (argc == 3 && strcmp(argv[1], "other-session-disable") == 0) return other_session_disable(argv[2]);
    if (argc == 3 && strcmp(argv[1], "fork-copying") == 0) return fork_copying();
    if (argc == 3 && strcmp(argv[1], "attach-closed") == 0) return attach_closed(argv[2]);
    if (argc == 3 && strcmp(argv[1], "retire-twice") == 0) return retire_twice(argv[2]);
    if (argc == 3 && strcmp(argv[1], "stale-replaces") == 0) return stale_replaces(argv[2]);
    if (argc == 3 && strcmp(argv[1], "resurrect") == 0) return resurrect(argv[2]);
    if (argc == 3 && strcmp(argv[1], "reconcile-busy-join") == 0) return reconcile_busy_join(argv[2]);
    if (argc == 3 && strcmp(argv[1], "register-busy") == 0) return register_busy(argv[2]);
    if (argc == 3 && strcmp(argv[1], "start-only") == 0) {
        TRACEHANDLE b;
        return start(argv[2], "control-races-b", &b) == ERROR_SUCCESS ? 0 : 1;
    }
    if (argc == 3 && strcmp(argv[1], "start-a-only") == 0) {
        TRACEHANDLE a;
        return start(argv[2], "control-races-a", &a) == ERROR_SUCCESS ? 0 : 1;
    }
    if (argc == 3 && strcmp(argv[1], "query-reuse") == 0) return query_reuse(argv[2], 0, EVENT_TRACE_CONTROL_QUERY);
    if (argc == 3 && strcmp(argv[1], "list-reuse") == 0) return query_reuse(argv[2], 1, EVENT_TRACE_CONTROL_QUERY);
    if (argc == 3 && strcmp(argv[1], "flush-reuse") == 0)
        return query_reuse(argv[2], 0, EVENT_TRACE_CONTROL_FLUSH);
    if (argc == 3 && strcmp(argv[1], "update-reuse") == 0)
        return query_reuse(argv[2], 0, EVENT_TRACE_CONTROL_UPDATE);
    if (argc == 3 && strcmp(argv[1], "attach-reentry") == 0) return attach_reentry(argv[2]);
    if (argc == 3 && strcmp(argv[1], "commit-retire") == 0) return commit_retire(argv[2]);
    if (argc == 3 && strcmp(argv[1], "stop-sync") == 0) return stop_sync(argv[2]);
    if (argc == 3 && strcmp(argv[1], "host-stop-syncing") == 0) return host_stop_syncing(argv[2]);
    if (argc == 3 && strcmp(argv[1], "stop-sync-cancel") == 0) return stop_sync_cancel(argv[2]);
    if (argc == 3 && strcmp(argv[1], "start-enable-a") == 0) {
        TRACEHANDLE a;
        if (start(argv[2], "control-races-a", &a) != ERROR_SUCCESS) return 1;
        return EnableTrace(1, 0x5, 4, &g_reentry_control, a) == ERROR_SUCCESS ? 0 : 1;
    }
    if (argc == 3 && strcmp(argv[1], "wake-closed") == 0) return wake_closed();
    if (argc == 3 && strcmp(argv[1], "broadcast-unresolved") == 0) return broadcast_unresolved();
    if (argc == 3 && strcmp(argv[1], "fork-retiring") == 0) return fork_retiring(argv[2]);
    if (argc == 3 && strcmp(argv[1], "join-wrap") == 0) return join_wrap(argv[2]);
    if (argc == 3 && strcmp(argv[1], "handle-wrap") == 0) return handle_wrap(argv[2]);
    if (argc == 3 && strncmp(argv[1], "replace-a", 9) == 0) {
        TRACEHANDLE b;
        if (stop_by_name("control-races-a") != ERROR_SUCCESS) return 1;
        if (strcmp(argv[1], "replace-a-wrap") == 0) {
            /* what 255 more sessions started and stopped in the slot leave behind */
            ULONG rc;
            wpt_registry *reg = wpt_registry_lock(1, &rc);
            if (!reg || reg->loggers[1].state != WPT_FREE) return 1;
            reg->loggers[1].generation += 255;
            wpt_registry_unlock();
        }
        ULONG started = strcmp(argv[1], "replace-a-rt") == 0 ? start_rt("control-races-b", &b)
                                                             : start(argv[2], "control-races-b", &b);
        return started == ERROR_SUCCESS ? 0 : 1;
    }
    if (argc == 3 && strcmp(argv[1], "subscribe-reuse") == 0) return subscribe_reuse(argv[2]);
    if (argc == 3 && strcmp(argv[1], "control-reuse") == 0) return control_reuse(argv[2]);
    if (argc == 3 && strcmp(argv[1], "info-reuse") == 0) return info_reuse(argv[2]);
    if (argc == 3 && strcmp(argv[1], "wrap-reuse") == 0) return wrap_reuse(argv[2]);
    if (argc == 3 && strcmp(argv[1], "old-requests") == 0) return old_requests(argv[2]);
    if (argc == 3 && strcmp(argv[1], "slow-host") == 0) return slow_host(argv[2]);
    if (argc == 3 && strcmp(argv[1], "full-host") == 0) return full_host(argv[2]);
    if (argc == 3 && strcmp(argv[1], "start-given-up") == 0) return start_given_up(argv[2]);
    if (argc == 3 && strcmp(argv[1], "freed-stop") == 0) return freed_stop(argv[2]);
    if (argc == 3 && strcmp(argv[1], "gone-reuse") == 0) return gone_reuse(argv[2]);
    if (argc == 3 && strcmp(argv[1], "gone-wrap") == 0) return gone_wrap(argv[2]);
    if (argc == 3 && strcmp(argv[1], "join-busy") == 0) return join_busy(argv[2]);
    if (argc == 3 && strcmp(argv[1], "stale-peer") == 0) return stale_peer();
    if (argc == 3 && strcmp(argv[1], "peer-no-proc") == 0) return peer_no_proc();
    if (argc == 3 && strcmp(argv[1], "busy-both") == 0) return busy_both(argv[2]);
    if (argc == 3 && strcmp(argv[1], "made-up-disable") == 0) return made_up_disable(argv[2]);
    if (argc == 3 && strcmp(argv[1], "silent-peer") == 0) return silent_peer(argv[2]);
    if (argc == 3 && strcmp(argv[1], "accept-emfile") == 0) return accept_emfile();
    if (argc == 3 && strcmp(argv[1], "host-emfile") == 0) return host_emfile(argv[2]);
    if (argc == 3 && strcmp(argv[1], "busy-enable") == 0) return busy_enable(argv[2]);
    if (argc == 3 && strcmp(argv[1], "busy-disable") == 0) return busy_disable(argv[2]);
    if (argc == 3 && strcmp(argv[1], "list-slow-host") == 0) return list_slow_host(argv[2], 0);
    if (argc == 3 && strcmp(argv[1], "info-slow-host") == 0) return list_slow_host(argv[2], 1);
    if (argc == 3 && strcmp(argv[1], "flush-slow-host") == 0) return list_slow_host(argv[2], 2);
    if (argc == 3 && strcmp(argv[1], "stop-slow-host") == 0) return list_slow_host(argv[2], 3);
    if (argc == 3 && strcmp(argv[1], "fork-sessions") == 0) return fork_sessions(argv[2]);
    if (argc == 3 && strcmp(argv[1], "dir-while-locked") == 0) return dir_while_locked();
    if (argc == 3 && strcmp(argv[1], "broadcast-join-busy") == 0) return broadcast_join_busy(argv[2]);
    if (argc == 3 && strcmp(argv[1], "request-deadline") == 0) return request_deadline();
    if (argc == 3 && strcmp(argv[1], "release-locked") == 0) return release_locked(argv[2]);
    if (argc == 3 && strcmp(argv[1], "wall-stepped") == 0) return wall_stepped();
    if (argc == 3 && (strcmp(argv[1], "provider-only") == 0 || strcmp(argv[1], "provider-impatient") == 0
                      || strcmp(argv[1], "provider-hasty") == 0)) {
        if (strcmp(argv[1], "provider-impatient") == 0) wpt_registry_wait_ms = 300;
        if (strcmp(argv[1], "provider-hasty") == 0) wpt_registry_wait_ms = 50;
        TRACEHANDLE registration;
        if (register_provider(track_control, NULL, &g_silent_control, &registration))
            return 1;
        char ready[600];
        snprintf(ready, sizeof ready, "%s/provider-ready", argv[2]);
        FILE *f = fopen(ready, "w");
        if (!f) return 1;
        fclose(f);
        for (;;) pause();
    }
    if (argc == 3 && strcmp(argv[1], "locked-registry") == 0) return locked_registry(argv[2]);
    if (argc == 3 && strcmp(argv[1], "replace-gone-wrap") == 0) {
        ULONG rc;
        wpt_registry *reg = wpt_registry_lock(1, &rc);
        if (!reg || reg->loggers[1].state != WPT_FREE) return 1;
        reg->loggers[1].generation += 255;  /* what 255 more sessions in the slot leave behind */
        wpt_registry_unlock();
        TRACEHANDLE b;
        if (start(argv[2], "control-races-b", &b) != ERROR_SUCCESS) return 1;
        return EnableTrace(1, 0x5, 4, &g_wrap_control, b) == ERROR_SUCCESS ? 0 : 1;
    }
    if (argc == 3 && strcmp(argv[1], "late-host") == 0) return late_host(argv[2]);
    if (argc == 3 && strcmp(argv[1], "stop-reuse") == 0) return stop_reuse(argv[2]);
    if (argc == 3 && strcmp(argv[1], "judged-reuse") == 0) return judged_reuse(argv[2]);
    if (argc == 3 && strcmp(argv[1], "host-reuse") == 0) return host_reuse(argv[2], "start-held");
    if (argc == 3 && strcmp(argv[1], "listen-reuse") == 0)
        return host_reuse(argv[2], "start-held-unbound");
    if (argc == 3 && strcmp(argv[1], "run-reuse") == 0) return host_reuse(argv[2], "start-held-bound");
    if (argc == 3 && strcmp(argv[1], "log-reuse") == 0) return host_reuse(argv[2], "start-held-forked");
    if (argc == 3 && strncmp(argv[1], "start-held", 10) == 0) {
        g_dir = argv[2];
        if (strcmp(argv[1], "start-held-unbound") == 0) g_hold_point = WPT_POINT_HOST_LISTENING;
        if (strcmp(argv[1], "start-held-bound") == 0) g_hold_point = WPT_POINT_HOST_BOUND;
        if (strcmp(argv[1], "start-held-forked") == 0) g_hold_point = WPT_POINT_HOST_FORKED;
        wpt_test_point = at_host_running;
        atomic_store(&g_armed, 1);          /* the host inherits it armed */
        TRACEHANDLE a;
        return start(argv[2], "control-races-a", &a) == ERROR_SUCCESS ? 0 : 1;
    }
    if (argc != 3 || strcmp(argv[1], "join-reuse") != 0) return 2;
    sem_init(&g_arrived, 0, 0);
    sem_init(&g_go, 0, 0);
    wpt_test_point = at_point;
    TRACEHANDLE a, b;
    if (start(argv[2], "control-races-a", &a)) return 3;      /* this process watches A */
    atomic_store(&g_armed, 2);
    if (wait_sem(&g_arrived, 10)) return 4;                    /* held, A's connection polled */
    if (stop(a)) return 5;
    if (start(argv[2], "control-races-b", &b)) return 6;      /* A's watch connection closed */
    int fds[2 * PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, &fds[2 * i]) != 0) return 7;
        if (write(fds[2 * i], "x", 1) != 1 || write(fds[2 * i + 1], "y", 1) != 1) return 7;
    }
    atomic_store(&g_rounds, 0);               /* the endpoint thread is held: nothing counts */
    sem_post(&g_go);
    wait_for(&g_rounds, 10000);                  /* one whole round, then look */
    if (atomic_load(&g_rounds) < 1) return 8;
    int untouched = 0;
    for (int i = 0; i < 2 * PAIRS; i++) {
        int waiting = 0;
        if (ioctl(fds[i], FIONREAD, &waiting) == 0 && waiting == 1) untouched++;
        close(fds[i]);
    }
    if (stop(b)) return 9;
    printf("slot_a %u slot_b %u untouched %d of %d\n", (unsigned)(a & 0xFFFF), (unsigned)(b & 0xFFFF),
           untouched, 2 * PAIRS);
    return 0;
}
