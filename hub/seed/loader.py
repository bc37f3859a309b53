"""Stream generated rows into PostgreSQL with COPY, one transaction per batch of organizations.

    >>> import datetime
    >>> from hub.seed.generate import SCALES, Context, generate_org
    >>> from hub.seed.loader import load_batches
    >>> ctx = Context(42, SCALES['tiny'], datetime.date(2025, 1, 31), [], None)
    >>> batches = ([generate_org(ctx, i) for i in (0, 1)], [generate_org(ctx, 2)])
    >>> for orgs, counts in load_batches(database, iter(batches)):   # a migrated database
    ...     print(orgs, 'organizations committed,', sum(counts.values()), 'rows')
    2 organizations committed, 107 rows
    1 organizations committed, 45 rows

Generation (Python) and COPY (the PostgreSQL backend) run on the two cores at once. By
default a forked child process generates the batches and streams them, framed, through a pipe;
this process only hands the bytes to libpq. A thread would share the GIL with the generator,
and every wait for it starves the server: a Unix socket holds ~200 KB in flight, 10 ms of
COPY work. Where os.fork is missing the generator runs in a thread instead.

A batch is committed whole or not at all: a killed process or a lost connection rolls back the
open transaction, so the database never holds part of an organization, and a rerun (which
skips the organizations already there) completes the rest. If this process dies the child's
next write fails (broken pipe) and it exits.
"""
import json
import os
import pickle
import queue
import signal
import struct
import sys
import threading

from hub.errors import HubError
from hub.seed.generate import COLUMNS, TABLES

CHUNK_BYTES = 1 << 20
_DONE = object()
_HEADER = struct.Struct('!cI')
# Frames from the generator: a batch opens (B), each table opens (T, its name), carries data
# (D, COPY text) and ends (E); the batch commits (C, JSON counts); the end (Z) or an error (X).
BEGIN, TABLE, DATA, END, COMMIT, DONE, ERROR = b'B', b'T', b'D', b'E', b'C', b'Z', b'X'


def _sql(table):
    return 'COPY %s (%s) FROM STDIN' % (table, ', '.join(COLUMNS[table].split()))


def _chunks(lines):
    """`lines` joined into ~1 MB strings."""
    start, total = 0, 0
    for end, text in enumerate(lines, 1):
        total += len(text)
        if total >= CHUNK_BYTES:
            yield ''.join(lines[start:end])
            start, total = end, 0
    if start < len(lines):
        yield ''.join(lines[start:])


def _counts(orgs):
    return {table: sum(len(org.tables[table]) for org in orgs) for table in TABLES}


def load_batches(db, batches, use_process=None, stats=None, guard=None, after=None):
    """Generate `batches` (iterables of OrgRows) beside this process; COPY and commit each.

    Yields (organizations, row counts per table) after each commit. `use_process` (default:
    where os.fork exists) picks a forked generator process over a thread; then `stats` (a
    dict) receives the child's 'generator_peak_rss_kb' when it has ended, and 'loading' is True
    while a batch's transaction is open (a Ctrl-C then rolls it back). Inside each batch's
    transaction, `guard(org_ids)` runs first (False skips the batch: it yields (0, {})) and
    `after(org_ids)` runs after the COPY.
    """
    if use_process is None:
        use_process = hasattr(os, 'fork')
    hooks = (guard or (lambda ids: True), after or (lambda ids: None))
    stats = {} if stats is None else stats
    if use_process:
        return _load_from_process(db, batches, stats, hooks)
    return _load_from_thread(db, batches, stats, hooks)


class _Interrupts:
    """Notes a Ctrl-C while a batch loads, then lets it raise KeyboardInterrupt as usual.

    A Ctrl-C that lands between two of psycopg2's calls to the COPY source's read() aborts the
    COPY before our code sees it: the server answers 57014 (query canceled), which must not be
    reported as another session's lock. Only the main thread can own a signal handler.
    """

    def __init__(self):
        self.seen = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._note)
        return self

    def _note(self, signum, frame):
        if self.previous is signal.SIG_IGN:
            return
        self.seen = True
        if callable(self.previous):
            self.previous(signum, frame)
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if threading.current_thread() is threading.main_thread():
            # None: a handler installed outside Python; Python's own is the closest we can do.
            signal.signal(signal.SIGINT, self.previous if self.previous is not None
                          else signal.default_int_handler)


def _committed(db, copy):
    """Run `copy()` in a transaction; a lost connection or a lock conflict becomes one clear
    HubError, a Ctrl-C stays a KeyboardInterrupt."""
    from hub.errors import LockConflict, contention

    interrupts = _Interrupts()
    try:
        with interrupts, db.atomic():
            return copy()
    except Exception as exc:
        if interrupts.seen:
            raise KeyboardInterrupt from None
        if not db.connection().closed:
            what = contention(exc)
            if what is None:
                raise
            raise LockConflict('another session held locks on the tables being loaded (%s): the '
                               'organizations committed so far stay, the batch in progress was '
                               'rolled back; run the same command again when the other command '
                               'has finished' % what) from None
        # Rolling back on a dead connection fails too and hides why: say what happened.
        first = _first_line(_origin(exc))
        raise HubError('lost the connection to the database while loading (%s): the '
                       'organizations committed so far stay, the batch in progress was rolled '
                       'back; run the same command again to add the rest' % first) from None


def _origin(exc):
    """The first exception of the chain `exc` ended (the one a failed rollback hides)."""
    while exc.__context__ is not None and not exc.__suppress_context__:
        exc = exc.__context__
    return exc


def _first_line(exc):
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


class _Source:
    """A file-like `read()` for copy_expert over an iterator of chunks (str or bytes)."""

    def __init__(self, chunks):
        self.chunks = chunks
        self.interrupted = None

    def read(self, size=-1):
        try:
            return next(self.chunks, b'')
        except BaseException as exc:
            # psycopg2 turns an exception raised in read() (Ctrl-C lands here, in Python code)
            # into "COPY from stdin failed: error in .read() call"; keep the real one.
            self.interrupted = exc
            raise


def _copy(cursor, table, chunks):
    source = _Source(chunks)
    # When the server ends the session during COPY, psycopg2 (2.9) meets two errors in a row,
    # fails to decode the second while the first is pending and prints that SystemError, with
    # the first as its cause, through sys.excepthook (PyErr_Print) before raising the second:
    # nine lines of noise. Keep them instead, and raise the first: it says what happened.
    printed = []
    hook, sys.excepthook = sys.excepthook, lambda kind, value, tb: printed.append(value)
    try:
        cursor.copy_expert(_sql(table), source, size=CHUNK_BYTES)
    except Exception:
        if source.interrupted is not None:
            raise source.interrupted from None
        cause = next((_root(value) for value in printed), None)
        if cause is not None:
            raise cause from None
        raise
    finally:
        sys.excepthook = hook
    for value in printed:  # not ours to hide when the COPY itself went well
        hook(type(value), value, value.__traceback__)


def _root(exc):
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


# -- a forked generator process -------------------------------------------------------------------

def _load_from_process(db, batches, stats, hooks):
    read_fd, write_fd = os.pipe()
    _widen(write_fd)
    pid = os.fork()
    if pid == 0:  # the child: generate and write; it never returns into the caller's code
        try:
            os.close(read_fd)
            _generate(write_fd, batches)
        finally:
            os._exit(1)
    os.close(write_fd)
    stream = os.fdopen(read_fd, 'rb', buffering=CHUNK_BYTES)
    finished = False
    try:
        while True:
            kind, payload = _frame(stream, pid)
            if kind == DONE:
                finished = True
                return
            if kind != BEGIN:
                raise HubError('the generator process sent an unexpected %r frame' % kind)
            ids = json.loads(payload)
            stats['loading'] = True
            counts = _committed(db, lambda: _copy_batch(db, stream, pid, ids, hooks))
            stats['loading'] = False
            yield counts['orgs'], counts['counts']
    finally:
        stream.close()
        if not finished:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status, usage = os.wait4(pid, 0)
        stats['generator_peak_rss_kb'] = usage.ru_maxrss


def _copy_batch(db, stream, pid, ids, hooks):
    guard, after = hooks
    wanted = guard(ids)
    cursor = db.connection().cursor()
    try:
        while True:
            kind, payload = _frame(stream, pid)
            if kind == TABLE:
                chunks = _table_chunks(stream, pid)
                if wanted:
                    _copy(cursor, payload.decode(), chunks)
                else:
                    for _ in chunks:  # drain the skipped batch's frames
                        pass
            elif kind == COMMIT:
                if not wanted:
                    return {'orgs': 0, 'counts': {}}
                after(ids)
                return json.loads(payload)
            else:
                raise HubError('the generator process sent an unexpected %r frame' % kind)
    finally:
        cursor.close()


def _table_chunks(stream, pid):
    while True:
        kind, payload = _frame(stream, pid)
        if kind == END:
            return
        yield payload


def _frame(stream, pid):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        _, status = os.waitpid(pid, 0)
        raise HubError('the generator process ended unexpectedly (%s); nothing of the batch in '
                       'progress was committed, run the same command again'
                       % _describe_status(status))
    kind, size = _HEADER.unpack(header)
    payload = stream.read(size) if size else b''
    if kind == ERROR:
        raise pickle.loads(payload)
    return kind, payload


def _describe_status(status):
    if os.WIFSIGNALED(status):
        return 'killed by signal %d' % os.WTERMSIG(status)
    return 'exit status %d' % os.WEXITSTATUS(status)


def _widen(fd):
    # A 1 MB pipe (Linux allows it unprivileged) rides out the generator's pauses.
    try:
        import fcntl
        fcntl.fcntl(fd, getattr(fcntl, 'F_SETPIPE_SZ', 1031), CHUNK_BYTES)
    except (ImportError, OSError):
        pass


def _generate(fd, batches):
    """The child process: frames of every batch into `fd`, written by a thread of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    frames = queue.Queue(maxsize=24)  # ~24 MB in flight at most: bounded memory
    writer = threading.Thread(target=_write_frames, args=(fd, frames), daemon=True)
    writer.start()

    def put(kind, payload=b''):
        frames.put(_HEADER.pack(kind, len(payload)) + payload)

    code = 0
    try:
        for batch in batches:
            batch = list(batch)
            put(BEGIN, json.dumps([org.id for org in batch]).encode())
            for table in TABLES:
                lines = [row for org in batch for row in org.tables[table]]
                if lines:
                    put(TABLE, table.encode())
                    for chunk in _chunks(lines):
                        put(DATA, chunk.encode())
                    put(END)
            put(COMMIT, json.dumps({'orgs': len(batch), 'counts': _counts(batch)}).encode())
        put(DONE)
    except BaseException as exc:
        code = 1
        try:
            payload = pickle.dumps(exc)
        except Exception:
            payload = pickle.dumps(HubError('generating organizations failed: %s' % exc))
        put(ERROR, payload)
    frames.put(None)
    writer.join()
    os._exit(code)  # no atexit, no finalizers: the parent's connection is not ours to close


def _write_frames(fd, frames):
    try:
        while True:
            frame = frames.get()
            if frame is None:
                return
            view = memoryview(frame)
            while view:
                view = view[os.write(fd, view):]
    except OSError:  # the parent is gone: nothing more to do
        os._exit(1)


# -- a generator thread (where os.fork is missing) ------------------------------------------------

def _put(out, item, stop):
    """Hand `item` over unless the consumer has stopped; False when it has."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _produce(batches, out, stop):
    try:
        for batch in batches:
            if not _put(out, list(batch), stop):  # list(): generate it here, in this thread
                return
        item = _DONE
    except BaseException as exc:  # handed to the consumer, which re-raises it
        item = exc
    _put(out, item, stop)


def _thread_batch(db, batch, hooks):
    guard, after = hooks
    ids = [org.id for org in batch]
    if not guard(ids):
        return None
    cursor = db.connection().cursor()
    try:
        for table in TABLES:
            lines = [row for org in batch for row in org.tables[table]]
            if lines:
                _copy(cursor, table, _chunks(lines))
    finally:
        cursor.close()
    after(ids)
    return _counts(batch)


def _load_from_thread(db, batches, stats, hooks):
    handoff = queue.Queue(maxsize=1)
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(batches, handoff, stop),
                                name='hub-seed-generate', daemon=True)
    producer.start()
    try:
        while True:
            batch = handoff.get()
            if batch is _DONE:
                return
            if isinstance(batch, BaseException):
                raise batch
            stats['loading'] = True
            counts = _committed(db, lambda: _thread_batch(db, batch, hooks))
            stats['loading'] = False
            yield (0, {}) if counts is None else (len(batch), counts)
    finally:
        stop.set()
        producer.join(timeout=5)
