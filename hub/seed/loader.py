"""Stream generated rows into PostgreSQL with COPY, one transaction per batch of organizations.

    >>> import datetime
    >>> from hub.seed.generate import SCALES, Context, generate_org
    >>> from hub.seed.loader import load_batches
    >>> ctx = Context(42, SCALES['tiny'], datetime.date(2025, 1, 31), [], None)
    >>> batches = ([generate_org(ctx, i) for i in (0, 1)], [generate_org(ctx, 2)])
    >>> for batch, counts in load_batches(database, iter(batches)):   # a migrated database
    ...     print(len(batch), 'organizations committed,', sum(counts.values()), 'rows')

Generation (Python, one core) and COPY (the PostgreSQL backend, the other core) overlap: a
producer thread generates the next batch while this thread streams the current one. The
producer holds the GIL while it works; this thread needs it only to hand over ~1 MB chunks
and releases it inside libpq while the server consumes them.

A batch is committed whole or not at all: a killed process or a lost connection rolls back the
open transaction, so the database never holds part of an organization, and a rerun (which
skips the organizations already there) completes the rest.
"""
import queue
import threading

from hub.errors import HubError
from hub.seed.generate import COLUMNS, TABLES

CHUNK_BYTES = 1 << 20
_DONE = object()


class _Chunks:
    """A file-like `read()` over a list of COPY lines, joined ~1 MB at a time."""

    def __init__(self, lines):
        self.lines = lines
        self.pos = 0
        self.interrupted = None

    def read(self, size=-1):
        try:
            lines, pos = self.lines, self.pos
            if pos >= len(lines):
                return ''
            end, total = pos, 0
            while end < len(lines) and total < CHUNK_BYTES:
                total += len(lines[end])
                end += 1
            self.pos = end
            return ''.join(lines[pos:end])
        except BaseException as exc:
            # psycopg2 turns an exception raised in read() (Ctrl-C lands here, in Python code)
            # into "COPY from stdin failed: error in .read() call"; keep the real one.
            self.interrupted = exc
            raise


def copy_batch(db, orgs):
    """COPY every table of `orgs` (OrgRows) inside the caller's transaction; returns row counts."""
    cursor = db.connection().cursor()
    counts = {}
    try:
        for table in TABLES:
            lines = [row for org in orgs for row in org.tables[table]]
            counts[table] = len(lines)
            if lines:
                chunks = _Chunks(lines)
                try:
                    cursor.copy_expert('COPY %s (%s) FROM STDIN' % (
                        table, ', '.join(COLUMNS[table].split())), chunks, size=CHUNK_BYTES)
                except Exception:
                    if chunks.interrupted is not None:
                        raise chunks.interrupted from None
                    raise
    finally:
        cursor.close()
    return counts


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


def load_batches(db, batches):
    """Generate `batches` (iterables of OrgRows) in a thread; COPY and commit each in turn.

    Yields (batch, counts) after each commit. One batch waits, generated, while another loads.
    """
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
            try:
                with db.atomic():
                    counts = copy_batch(db, batch)
            except Exception as exc:
                if not db.connection().closed:
                    raise
                # Rolling back on a dead connection fails too and hides why: say what happened.
                first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
                raise HubError('lost the connection to the database while loading (%s): the '
                               'organizations committed so far stay, the batch in progress was '
                               'rolled back; run the same command again to add the rest'
                               % first) from None
            yield batch, counts
    finally:
        stop.set()
        producer.join(timeout=5)
