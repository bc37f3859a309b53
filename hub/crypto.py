"""Integration credentials, encrypted with Fernet before they reach the database.

    >>> from cryptography.fernet import Fernet
    >>> import os; os.environ['HUB_SECRET_KEY'] = Fernet.generate_key().decode()
    >>> from hub import crypto
    >>> box = crypto.Credentials(crypto.load_key(embedded=False))
    >>> sealed = box.encrypt({'bot_token': 'xoxb-123'})
    >>> sorted(sealed)                       # what the credentials column holds
    ['alg', 'ciphertext', 'fields', 'kid']
    >>> box.decrypt(sealed)
    {'bot_token': 'xoxb-123'}

The key is `HUB_SECRET_KEY` (a Fernet key: 32 url-safe base64 bytes). On the embedded default
database a key is generated once and kept in `hub_home()/secret.key` (mode 0600) beside the
server's data; with any other database the key must be given, since a generated one would be
lost with the machine and every stored credential with it.

`kid` names the key (a hash prefix, not the key), so a wrong key is reported as such instead
of as corrupt data. `fields` lists the secret names, never their values.
"""
import base64
import hashlib
import hmac
import json
import os

from hub.errors import ConfigError, HubError

KEY_ENV = 'HUB_SECRET_KEY'
KEY_FILE = 'secret.key'
MAKE_KEY = ('python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"')


def is_embedded(db):
    """True when `db` (a peewee database) is on the embedded server of hub_home()."""
    from hub.db import hub_home

    host = (getattr(db, 'connect_params', None) or {}).get('host')
    return bool(host) and os.path.abspath(str(host)) == str(hub_home() / 'pgdata')


def load_key(embedded):
    """The Fernet key: $HUB_SECRET_KEY, else (embedded only) the generated key file."""
    value = os.environ.get(KEY_ENV, '').strip()
    if value:
        return _checked(value.encode(), '$%s' % KEY_ENV)
    if not embedded:
        raise ConfigError('%s is not set: integration credentials are encrypted with it and '
                          'this database is not the embedded default; make one with %s and '
                          'export %s=<that key>' % (KEY_ENV, MAKE_KEY, KEY_ENV))
    return _embedded_key()


def _embedded_key():
    from hub.db import hub_home

    path = hub_home() / KEY_FILE
    try:
        return _checked(path.read_bytes().strip(), str(path))
    except FileNotFoundError:
        pass
    from cryptography.fernet import Fernet

    path.parent.mkdir(parents=True, exist_ok=True)
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
    try:
        raw = base64.urlsafe_b64decode(key)
    except (ValueError, TypeError):
        raw = b''
    if len(raw) != 32:
        raise ConfigError('the key in %s is not a Fernet key (32 url-safe base64 bytes); make '
                          'one with %s' % (where, MAKE_KEY))
    return key


def key_for(db):
    """The key to use with `db`; raises ConfigError before anything is written when missing."""
    return load_key(is_embedded(db))


class Credentials:
    """Seals and opens credential dicts with one Fernet key."""

    def __init__(self, key):
        from cryptography.fernet import Fernet

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
            # derived IV (still AES-CBC + HMAC, still opened by Fernet.decrypt).
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
