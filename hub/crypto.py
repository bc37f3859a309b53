"""Integration credentials, encrypted with Fernet before they reach the database.

    >>> import os
    >>> from cryptography.fernet import Fernet
    >>> from hub import crypto
    >>> box = crypto.Credentials(Fernet.generate_key())   # str or bytes
    >>> sealed = box.encrypt({'bot_token': 'xoxb-123'})
    >>> sorted(sealed)                       # what the credentials column holds
    ['alg', 'ciphertext', 'fields', 'kid']
    >>> box.decrypt(sealed)
    {'bot_token': 'xoxb-123'}
    >>> kids = crypto.key_ids(database)      # {key id: integrations} of a seeded database
    >>> kids                                 # e.g. {'5f0c9a1e27b4': 23}
    {'...': ...}
    >>> new = Fernet.generate_key()          # the database's key is in $HUB_SECRET_KEY
    >>> crypto.rotate(database, os.environ['HUB_SECRET_KEY'], new)['rotated'] == sum(kids.values())
    True

The key is `HUB_SECRET_KEY` (a Fernet key: 32 url-safe base64 bytes). On the embedded default
database a key is generated once and kept in `hub_home()/secret.key` (mode 0600) beside the
server's data; with any other database the key must be given, since a generated one would be
lost with the machine and every stored credential with it.

`kid` names the key (a hash prefix, not the key), so a wrong key is reported as such instead
of as corrupt data. `fields` lists the secret names, never their values.

A database holds credentials under one key: writers call `ensure_one_key` before they write, so
a second key is refused instead of leaving rows that no single key opens. `rotate` moves every
credential to a new key in one transaction, after checking that the old key(s) open all of them;
`rotate_key_file` does it for the embedded default's generated key and replaces the key file.
"""
import base64
import hashlib
import hmac
import json
import os

from hub.errors import ConfigError, HubError

KEY_ENV = 'HUB_SECRET_KEY'
#: Where `hub secrets rotate` reads the key(s) being replaced (comma-separated).
OLD_KEY_ENV = 'HUB_SECRET_KEY_OLD'
KEY_FILE = 'secret.key'
ROTATE_HINT = ('`hub secrets rotate` (%s=<key in use> %s=<new key>; see its --help)'
               % (OLD_KEY_ENV, KEY_ENV))
MAKE_KEY = ('python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"')


def is_embedded(db):
    """True when `db` (a peewee database) is on the embedded server of hub_home()."""
    from hub.connection import hub_home

    host = (getattr(db, 'connect_params', None) or {}).get('host')
    # Real paths: as root the data may sit in /var/lib/hub/<id>, linked from .hub/pgdata.
    return bool(host) and os.path.realpath(str(host)) == os.path.realpath(hub_home() / 'pgdata')


def load_key(embedded, create=True):
    """The Fernet key: $HUB_SECRET_KEY, else (embedded only) the generated key file.

    With `create=False` a missing key file gives None instead of a new key.
    """
    value = os.environ.get(KEY_ENV, '').strip()
    if value:
        return _checked(value.encode(), '$%s' % KEY_ENV)
    if not embedded:
        raise ConfigError('%s is not set: integration credentials are encrypted with it and '
                          'this database is not the embedded default; make one with %s and '
                          'export %s=<that key>' % (KEY_ENV, MAKE_KEY, KEY_ENV))
    return _embedded_key(create)


def key_source(embedded):
    """Where load_key(embedded) takes the key from, for messages: '$HUB_SECRET_KEY' or a path."""
    if os.environ.get(KEY_ENV, '').strip() or not embedded:
        return '$%s' % KEY_ENV
    from hub.connection import hub_home

    return str(hub_home() / KEY_FILE)


def _embedded_key(create=True):
    from hub.connection import hub_home

    path = hub_home() / KEY_FILE
    try:
        return _checked(path.read_bytes().strip(), str(path))
    except FileNotFoundError:
        if not create:
            return None
    from cryptography.fernet import Fernet

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        # O_EXCL: two commands starting at once must not each write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _checked(path.read_bytes().strip(), str(path))
    with os.fdopen(fd, 'wb') as fh:
        fh.write(key + b'\n')
    return key


def _checked(key, where):
    """`key` as bytes when it is a Fernet key; a ConfigError naming `where` (never the key)."""
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, (bytes, bytearray)):
        raise ConfigError('the key in %s must be str or bytes, not %s'
                          % (where, type(key).__name__))
    key = bytes(key).strip()
    try:
        raw = base64.urlsafe_b64decode(key)
    except (ValueError, TypeError):
        raw = b''
    if len(raw) != 32:
        raise ConfigError('the key in %s is not a Fernet key (32 url-safe base64 bytes); make '
                          'one with %s' % (where, MAKE_KEY))
    return key


def kid_of(key):
    """The key id stored beside each ciphertext: a hash prefix that does not reveal the key."""
    return hashlib.sha256(_checked(key, 'the key given')).hexdigest()[:12]


def key_for(db):
    """The key to use with `db`; raises ConfigError before anything is written when missing."""
    return load_key(is_embedded(db))


def credentials_for(db):
    """Credentials with the key of `db` (key_for), remembering where the key came from."""
    embedded = is_embedded(db)
    return Credentials(load_key(embedded), source=key_source(embedded))


class Credentials:
    """Seals and opens credential dicts with one Fernet key (str or bytes)."""

    def __init__(self, key, source=None):
        from cryptography.fernet import Fernet

        #: where the key came from ('$HUB_SECRET_KEY', a key file), for messages
        self.source = source or 'the key given'
        key = _checked(key, self.source)
        self._fernet = Fernet(key)
        self._raw = base64.urlsafe_b64decode(key)
        self.kid = hashlib.sha256(key).hexdigest()[:12]

    def encrypt(self, secrets, at=None, context=None):
        """The jsonb document to store for `secrets` (a dict of str).

        `at` (unix seconds) dates the token; with `context` (e.g. the row id) the IV is derived
        from the key and the context, so the same call gives the same ciphertext: a seeded
        database is byte-identical run to run. Without `context` the IV is random.
        """
        import time

        data = json.dumps(secrets, sort_keys=True, separators=(',', ':')).encode()
        at = int(time.time()) if at is None else int(at)
        if context is None:
            token = self._fernet.encrypt_at_time(data, at)
        else:
            iv = hmac.new(self._raw, b'iv\x1f' + context.encode(), hashlib.sha256).digest()[:16]
            # The public API draws the IV from os.urandom; this is the same token format with a
            # derived IV (still AES-CBC + HMAC, still opened by Fernet.decrypt). Private API:
            # `_encrypt_from_parts(data, current_time, iv)` is the same in cryptography 42.0.0
            # and 50.0.2, hence setup.cfg's `cryptography>=42,<51`; raise the bound only after
            # tests/test_seed_crypto.py passes on the new major.
            token = self._fernet._encrypt_from_parts(data, at, iv)
        return {'alg': 'fernet', 'kid': self.kid, 'fields': sorted(secrets),
                'ciphertext': token.decode()}

    def decrypt(self, sealed):
        """The secrets dict back; a wrong key raises a HubError that says so."""
        from cryptography.fernet import InvalidToken

        if not isinstance(sealed, dict) or sealed.get('alg') != 'fernet':
            raise HubError('credentials are not a Fernet document ({"alg": "fernet", ...})')
        try:
            return json.loads(self._fernet.decrypt(sealed['ciphertext'].encode()))
        except InvalidToken:
            if sealed.get('kid') not in (None, self.kid):
                raise HubError('credentials were encrypted with another key (kid %s, this key '
                               'is %s); set %s to the key used when they were stored'
                               % (sealed.get('kid'), self.kid, KEY_ENV)) from None
            raise HubError('credentials do not decrypt: the ciphertext was altered') from None


# -- the key of a database -----------------------------------------------------------------------

_SEALED = "credentials->>'alg' = 'fernet'"


def key_ids(db):
    """{key id: integrations} for the encrypted credentials in `db`; {} before its migration."""
    if not _has_integrations(db):
        return {}
    cursor = db.execute_sql("SELECT credentials->>'kid', count(*) FROM integrations WHERE %s "
                            "GROUP BY 1 ORDER BY 2 DESC, 1" % _SEALED)
    return dict(cursor.fetchall())


def _describe(kids):
    return ', '.join('%s (%d)' % (kid, count) for kid, count in kids.items())


def ensure_one_key(db, kid, given):
    """Raise KeyMismatch unless every credential in `db` is sealed under key id `kid`.

    Call it before writing credentials sealed under `kid`; `given` says where they come from
    ('the key in $HUB_SECRET_KEY', 'the snapshot'). An empty table accepts any key.
    """
    from hub.errors import KeyMismatch

    kids = key_ids(db)
    others = {k: n for k, n in kids.items() if k != kid}
    if not others:
        return
    if len(kids) > 1:
        raise KeyMismatch('the integration credentials in this database are already under %d '
                          'keys (ids %s) and %s is key id %s: re-encrypt them all under one key '
                          'with %s, giving every old key in %s (comma-separated)'
                          % (len(kids), _describe(kids), given, kid, ROTATE_HINT, OLD_KEY_ENV))
    (in_use, count), = others.items()
    raise KeyMismatch('the integration credentials in this database (%d) are encrypted with key '
                      'id %s, but %s is key id %s: set %s to the key with id %s, or move the '
                      'database to the new key first with %s'
                      % (count, in_use, given, kid, KEY_ENV, in_use, ROTATE_HINT))


def still_one_key(db, kid, given):
    """`ensure_one_key` between two writes of one run that passed it, at the cost of one row.

    Every committed state holds one key (writers check, `rotate` moves every credential in one
    transaction), so after the full check a change of key shows in any sealed row: one is read,
    and only if it names another key does the full check run, for its message. The full check
    reads every credential: ~1 s with 1,070,000 stored, where this takes ~1 ms.
    """
    row = db.execute_sql("SELECT credentials->>'kid' FROM integrations WHERE %s LIMIT 1"
                         % _SEALED).fetchone()
    if row is not None and row[0] != kid:
        ensure_one_key(db, kid, given)


def status(db, credentials=None):
    """What protects the credentials of `db`, as a dict (what `hub secrets status` prints).

    {'integrations': n, 'unsealed': n not encrypted, 'keys': {kid: n}, 'key': None or
    {'kid', 'source', 'decrypts': n, 'fails': [integration ids]}, 'ok': one key, and it opens
    every credential}. Each credential is decrypted with `credentials` when given; nothing is
    printed or returned of the secrets themselves.
    """
    table = _has_integrations(db)
    kids = key_ids(db)
    total = db.execute_sql('SELECT count(*) FROM integrations').fetchone()[0] if table else 0
    report = {'integrations': total, 'unsealed': total - sum(kids.values()), 'keys': kids,
              'key': None}
    if credentials is not None:
        fails = [integration_id for integration_id, sealed in (_sealed_rows(db) if table else ())
                 if not _opens(credentials, sealed)]
        report['key'] = {'kid': credentials.kid, 'source': credentials.source,
                         'decrypts': sum(kids.values()) - len(fails), 'fails': fails}
    report['ok'] = len(kids) <= 1 and (credentials is None or not report['key']['fails'])
    return report


def _has_integrations(db):
    from hub.catalog import live_table_exists

    return live_table_exists(db, 'integrations')


def _sealed_rows(db):
    return db.execute_sql('SELECT id, credentials FROM integrations WHERE %s ORDER BY id'
                          % _SEALED).fetchall()


def _opens(box, sealed):
    try:
        box.decrypt(sealed)
    except HubError:
        return False
    return True


# -- rotation ------------------------------------------------------------------------------------

def parse_keys(value, where):
    """Keys from `value`: one key or several separated by commas (str or bytes each)."""
    if isinstance(value, (str, bytes, bytearray)):
        value = value.split(b',' if isinstance(value, (bytes, bytearray)) else ',')
    keys = [_checked(part, where) for part in value if part.strip()]
    if not keys:
        raise ConfigError('no key in %s' % where)
    return keys


def rotate(db, old_keys, new_key):
    """Re-encrypt every credential of `db` under `new_key`, in one transaction.

    `old_keys`: the key in use, or a list of keys (or 'k1,k2') when the database already mixes
    several. Every credential is decrypted first, each with the old key of its id; if any does
    not open, KeyMismatch names the key id it needs and nothing is written. Credentials already
    under `new_key` are checked and left as they are. Fernet timestamps are kept.

    Returns {'rotated': n, 'unchanged': n, 'from': {kid: n}, 'to': new kid}.
    """
    from cryptography.fernet import MultiFernet

    from hub.errors import KeyMismatch
    from hub.migrate import ensure_known

    new = Credentials(new_key, source='the new key')
    boxes = {box.kid: box for box in (Credentials(k, source='the old key')
                                      for k in parse_keys(old_keys, 'the old key(s)'))}
    boxes[new.kid] = new
    result = {'rotated': 0, 'unchanged': 0, 'from': {}, 'to': new.kid}
    ensure_known(db)  # a newer schema may store credentials differently
    if not _has_integrations(db):
        return result
    with db.atomic():
        # A running `hub seed` holds this lock: it finishes first (and a seed that starts later
        # sees the new key id and refuses an old key), so no row is written under the old key
        # after the check below.
        from hub import locks

        locks.hold(db, locks.SEED)
        # Writers of other programs wait too: no credential lands between reading and updating.
        db.execute_sql('LOCK TABLE integrations IN SHARE ROW EXCLUSIVE MODE')
        changes, missing = [], {}
        for integration_id, sealed in _sealed_rows(db):
            kid = sealed.get('kid')
            box = boxes.get(kid)
            if box is None or not _opens(box, sealed):
                missing.setdefault(kid, []).append(integration_id)
                continue
            if box is new:
                result['unchanged'] += 1
                continue
            token = MultiFernet([new._fernet, box._fernet]).rotate(sealed['ciphertext'].encode())
            changes.append((integration_id, json.dumps(dict(sealed, kid=new.kid,
                                                            ciphertext=token.decode()))))
            result['from'][kid] = result['from'].get(kid, 0) + 1
        if missing:
            count = sum(len(ids) for ids in missing.values())
            need = ', '.join('%s (%d, e.g. integration %s)' % (k, len(ids), ids[0])
                             for k, ids in missing.items())
            raise KeyMismatch('the old key(s) given (id %s) do not open %d of %d credentials, '
                              'stored under key id %s: nothing was changed; give the key(s) with '
                              'those ids in %s' % (', '.join(k for k in boxes if k != new.kid)
                                                   or 'none besides the new key', count,
                                                   count + len(changes) + result['unchanged'],
                                                   need, OLD_KEY_ENV))
        if changes:
            from psycopg2.extras import execute_values

            cursor = db.connection().cursor()
            execute_values(cursor, 'UPDATE integrations AS t SET credentials = v.c::jsonb '
                                   'FROM (VALUES %s) AS v(id, c) WHERE t.id = v.id', changes,
                           page_size=1000)
        result['rotated'] = len(changes)
    return result


def rotate_key_file(db):
    """Rotate the embedded default's generated key: a new key file, and every credential under it.

    The new key is written beside the old one (secret.key.next) before the transaction, and
    replaces secret.key (an atomic rename) once it committed; the previous key is kept as
    secret.key.old for backups made before. A run interrupted between the commit and the rename
    is completed by the next one. Returns rotate()'s dict plus 'key_file' and 'previous_key_file'.
    """
    from cryptography.fernet import Fernet

    from hub.connection import hub_home

    path = hub_home() / KEY_FILE
    pending = path.with_name(KEY_FILE + '.next')
    previous = path.with_name(KEY_FILE + '.old')
    old = _embedded_key(create=False)
    if old is None:
        raise ConfigError('there is no key file %s to rotate: the embedded database has no '
                          'generated key yet (`hub seed` makes one)' % path)
    if pending.exists():
        waiting = _checked(pending.read_bytes().strip(), str(pending))
        if set(key_ids(db)) == {kid_of(waiting)}:  # committed, not yet renamed: finish it
            result = {'rotated': 0, 'unchanged': sum(key_ids(db).values()), 'from': {},
                      'to': kid_of(waiting)}
            return _install_key(path, pending, previous, old, result)
        pending.unlink()  # left by a run that failed before its commit
    new = Fernet.generate_key()
    _write_private(pending, new)
    try:
        result = rotate(db, old, new)
    except BaseException:
        pending.unlink()
        raise
    return _install_key(path, pending, previous, old, result)


def _install_key(path, pending, previous, old, result):
    # The old key is kept (backups taken before the rotation need it), then the new one takes
    # its place in one rename: secret.key never goes missing, so no command generates a third.
    tmp = previous.with_name(previous.name + '.tmp')
    if tmp.exists():
        tmp.unlink()
    _write_private(tmp, old)
    os.replace(tmp, previous)
    os.replace(pending, path)
    _sync_dir(path.parent)
    return dict(result, key_file=str(path), previous_key_file=str(previous))


def _write_private(path, key):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as fh:
        fh.write(key + b'\n')
        fh.flush()
        os.fsync(fh.fileno())


def _sync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
