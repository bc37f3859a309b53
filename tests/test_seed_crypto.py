"""hub.crypto: where the key comes from, and what the credentials column holds."""
import os
import stat

import pytest
from cryptography.fernet import Fernet
from peewee import PostgresqlDatabase

from hub import crypto
from hub.errors import ConfigError, HubError


@pytest.fixture
def home(monkeypatch, tmp_path):
    monkeypatch.delenv('HUB_SECRET_KEY', raising=False)
    monkeypatch.setenv('HUB_HOME', str(tmp_path / 'hub_home'))
    return tmp_path / 'hub_home'


def test_embedded_default_generates_a_private_key_once(home):
    key = crypto.load_key(embedded=True)
    path = home / 'secret.key'
    assert path.read_bytes().strip() == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert crypto.load_key(embedded=True) == key
    Fernet(key)  # a real Fernet key


def test_environment_key_wins_over_the_key_file(home, monkeypatch):
    crypto.load_key(embedded=True)
    given = Fernet.generate_key()
    monkeypatch.setenv('HUB_SECRET_KEY', given.decode())
    assert crypto.load_key(embedded=True) == given
    assert crypto.load_key(embedded=False) == given


def test_other_databases_need_the_key(home):
    with pytest.raises(ConfigError, match='HUB_SECRET_KEY is not set'):
        crypto.load_key(embedded=False)
    assert not (home / 'secret.key').exists()


def test_a_corrupt_key_file_is_named(home):
    home.mkdir(parents=True)
    (home / 'secret.key').write_text('garbage\n')
    with pytest.raises(ConfigError, match='secret.key is not a Fernet key'):
        crypto.load_key(embedded=True)


def test_embedded_means_the_server_of_hub_home(home):
    ours = PostgresqlDatabase('hub', host=str(home / 'pgdata'), autoconnect=False)
    other_socket = PostgresqlDatabase('hub', host=str(home / 'elsewhere'), autoconnect=False)
    tcp = PostgresqlDatabase('hub', host='127.0.0.1', port=5432, autoconnect=False)
    assert crypto.is_embedded(ours)
    assert not crypto.is_embedded(other_socket) and not crypto.is_embedded(tcp)


def test_sealed_credentials_open_only_with_their_key():
    box = crypto.Credentials(Fernet.generate_key())
    sealed = box.encrypt({'bot_token': 'xoxb-1234567890', 'signing_secret': 'abc'})
    assert sealed['fields'] == ['bot_token', 'signing_secret']
    assert 'xoxb' not in str(sealed)
    assert box.decrypt(sealed) == {'bot_token': 'xoxb-1234567890', 'signing_secret': 'abc'}
    stranger = crypto.Credentials(Fernet.generate_key())
    with pytest.raises(HubError, match='encrypted with another key'):
        stranger.decrypt(sealed)
    token = sealed['ciphertext']
    tampered = dict(sealed, ciphertext=token[:-6] + ('A' if token[-6] != 'A' else 'B') +
                    token[-5:])
    with pytest.raises(HubError, match='altered'):
        box.decrypt(tampered)


def test_a_context_makes_encryption_repeatable_and_still_fernet():
    key = Fernet.generate_key()
    box = crypto.Credentials(key)
    first = box.encrypt({'token': 's3cret'}, at=1700000000, context='cint1')
    assert first == crypto.Credentials(key).encrypt({'token': 's3cret'}, at=1700000000,
                                                    context='cint1')
    assert first != box.encrypt({'token': 's3cret'}, at=1700000000, context='cint2')
    assert Fernet(key).extract_timestamp(first['ciphertext'].encode()) == 1700000000
    # Without a context the IV is random: two seals of the same secret differ.
    assert box.encrypt({'token': 's3cret'}, at=1) != box.encrypt({'token': 's3cret'}, at=1)
