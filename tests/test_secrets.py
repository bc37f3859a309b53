"""Integration credentials stay under one key: a second key is refused, `hub secrets rotate`
moves every credential to a new key in one transaction, `hub secrets status` reports."""
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from hub import crypto
from hub import connection
from hub.cli.main import cli
from hub.crypto import Credentials
from hub.errors import ConfigError, KeyMismatch
from tests.terminal import on_terminal

AS_OF = ['--as-of', '2025-01-31']


def hub(url, *args, env=None, input=None):
    return CliRunner().invoke(cli, ['--database-url', url, *args], env=env, input=input)


def new_key():
    return Fernet.generate_key().decode()


def credentials(url):
    """{integration id: credentials document}, straight from the table."""
    database = connection.open_database(url)
    try:
        return dict(database.execute_sql('SELECT id, credentials FROM integrations ORDER BY id'))
    finally:
        database.close()


def one_line(result):
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and 'Traceback' not in result.output, result.output
    return line


def opened(documents, key):
    """How many of `documents` open with `key`, and the secrets of those that do."""
    box, secrets = Credentials(key), {}
    for integration_id, sealed in documents.items():
        try:
            secrets[integration_id] = box.decrypt(sealed)
        except Exception:
            pass
    return secrets


@pytest.fixture
def seeded(db_url, secret):
    """A database with credentials under `secret`: (url, key, documents)."""
    result = hub(db_url, 'seed', '--orgs', '2', '--scale', 'small', '--quiet', *AS_OF)
    assert result.exit_code == 0, result.output
    documents = credentials(db_url)
    assert documents and {doc['kid'] for doc in documents.values()} == {Credentials(secret).kid}
    return db_url, secret, documents


def test_credentials_accept_a_str_or_bytes_key():
    key = Fernet.generate_key()
    sealed = Credentials(key.decode()).encrypt({'token': 's3cret'})
    assert Credentials(key).decrypt(sealed) == {'token': 's3cret'}
    assert Credentials(key.decode()).kid == Credentials(key).kid == crypto.kid_of(key)
    with pytest.raises(ConfigError, match='not a Fernet key'):
        Credentials('not-a-key')
    with pytest.raises(ConfigError, match='str or bytes, not int'):
        Credentials(42)


def test_seeding_with_another_key_is_refused_before_anything_is_written(seeded):
    url, key, before = seeded
    other = new_key()
    result = hub(url, 'seed', '--orgs', '4', '--scale', 'small', *AS_OF,
                 env={'HUB_SECRET_KEY': other})
    assert result.exit_code == 2, result.output
    line = one_line(result)
    assert line.startswith('Error: the integration credentials in this database (%d) are '
                           'encrypted with key id %s, but the key in $HUB_SECRET_KEY is key id %s'
                           % (len(before), Credentials(key).kid, Credentials(other).kid)), line
    assert 'hub secrets rotate' in line and other not in line and key not in line
    assert credentials(url) == before        # ciphertext identical, no row added
    # --reset removes every credential, so a new key may start over
    fresh = hub(url, 'seed', '--orgs', '2', '--scale', 'small', '--reset', '--yes', '--quiet',
                *AS_OF, env={'HUB_SECRET_KEY': other})
    assert fresh.exit_code == 0, fresh.output
    assert {doc['kid'] for doc in credentials(url).values()} == {Credentials(other).kid}


def test_rotate_re_encrypts_every_credential_under_the_new_key(seeded):
    url, old, before = seeded
    plain = opened(before, old)
    new = new_key()
    result = hub(url, 'secrets', 'rotate', env={'HUB_SECRET_KEY_OLD': old, 'HUB_SECRET_KEY': new})
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        're-encrypted %d credentials from key id %s to key id %s in one transaction'
        % (len(before), Credentials(old).kid, Credentials(new).kid))
    assert old not in result.output and new not in result.output
    after = credentials(url)
    assert opened(after, new) == plain       # every one opens with the new key, same secrets
    assert opened(after, old) == {}          # and none with the old one
    assert {doc['kid'] for doc in after.values()} == {Credentials(new).kid}
    for integration_id, doc in after.items():
        assert doc['fields'] == before[integration_id]['fields']
        assert (Fernet(new).extract_timestamp(doc['ciphertext'].encode()) ==
                Fernet(old).extract_timestamp(before[integration_id]['ciphertext'].encode()))
    # The database now takes the new key and refuses the old one.
    assert hub(url, 'seed', '--orgs', '3', '--quiet', *AS_OF,
               env={'HUB_SECRET_KEY': new}).exit_code == 0
    refused = hub(url, 'seed', '--orgs', '4', '--quiet', *AS_OF, env={'HUB_SECRET_KEY': old})
    assert refused.exit_code == 2 and 'key id %s' % Credentials(new).kid in one_line(refused)
    again = hub(url, 'secrets', 'rotate', env={'HUB_SECRET_KEY_OLD': old, 'HUB_SECRET_KEY': new})
    assert again.exit_code == 0
    assert again.stderr.startswith('nothing to re-encrypt: all %d credentials already use key '
                                   'id %s' % (len(credentials(url)), Credentials(new).kid))


def test_a_rotation_between_two_seed_batches_stops_the_seed(db_url, database, secret):
    """Why the seeder checks the key in every batch, under the seed lock: `hub secrets rotate`
    may commit between two batches, and the next batch, sealed under the old key, would
    leave credentials that no single key opens."""
    import datetime

    from hub.seed import seed_database

    new = Fernet.generate_key().decode()
    rotated = []

    def progress(added, total, rows):
        if added and not rotated:
            other = connection.open_database(db_url)
            try:
                rotated.append(crypto.rotate(other, secret, new)['rotated'])
            finally:
                other.close()
    with pytest.raises(KeyMismatch, match='encrypted with key id %s' % crypto.kid_of(new)):
        seed_database(database, orgs=6, scale='small', as_of=datetime.date(2025, 1, 31),
                      batch_rows=500, progress=progress)
    assert rotated and rotated[0] > 0
    assert crypto.key_ids(database) == {crypto.kid_of(new): rotated[0]}


def test_rotate_with_a_wrong_old_key_writes_nothing(seeded):
    url, old, before = seeded
    wrong, new = new_key(), new_key()
    result = hub(url, 'secrets', 'rotate', env={'HUB_SECRET_KEY_OLD': wrong,
                                                'HUB_SECRET_KEY': new})
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith('Error: the old key(s) given (id %s) do not open %d of %d '
                           'credentials, stored under key id %s'
                           % (Credentials(wrong).kid, len(before), len(before),
                              Credentials(old).kid)), line
    assert 'nothing was changed' in line and wrong not in line and new not in line
    assert credentials(url) == before


def test_rotate_without_the_old_key_and_no_terminal_says_where_to_put_it(seeded):
    url, old, before = seeded
    result = hub(url, 'secrets', 'rotate', env={'HUB_SECRET_KEY': new_key(),
                                                'HUB_SECRET_KEY_OLD': None})
    assert result.exit_code == 2
    assert one_line(result) == ('Error: $HUB_SECRET_KEY_OLD is not set: put the key the '
                                'credentials use now there (ids in use: %s), or run this on a '
                                'terminal to be asked' % Credentials(old).kid)
    assert credentials(url) == before
    bad = hub(url, 'secrets', 'rotate', env={'HUB_SECRET_KEY': new_key(),
                                             'HUB_SECRET_KEY_OLD': 'hunter2'})
    assert bad.exit_code == 2
    assert one_line(bad).startswith('Error: the key in $HUB_SECRET_KEY_OLD is not a Fernet key')
    assert 'hunter2' not in bad.output and credentials(url) == before


def test_other_variable_names_and_a_mixed_database_repaired(seeded):
    """A database mixed before this check existed: status says so, rotate takes both keys."""
    url, first, before = seeded
    second = new_key()
    database = connection.open_database(url)
    try:
        # what `hub seed` with a second key used to leave: one credential under another key
        some_id = next(iter(before))
        sealed = Credentials(second).encrypt({'token': 'xoxb-second'})
        database.execute_sql('UPDATE integrations SET credentials = %s WHERE id = %s',
                             (json.dumps(sealed), some_id))
    finally:
        database.close()
    status = hub(url, 'secrets', 'status', '--json', env={'HUB_SECRET_KEY': first})
    assert status.exit_code == 1
    report = json.loads(status.stdout)
    assert report['keys'] == {Credentials(first).kid: len(before) - 1,
                              Credentials(second).kid: 1}
    assert report['key']['fails'] == [some_id] and not report['ok']
    refused = hub(url, 'seed', '--orgs', '3', '--quiet', *AS_OF, env={'HUB_SECRET_KEY': first})
    assert refused.exit_code == 2 and 'already under 2 keys' in one_line(refused)
    mixed = credentials(url)
    target = new_key()
    env = {'OLD_KEYS': '%s,%s' % (first, second), 'TARGET': target,
           'HUB_SECRET_KEY': None, 'HUB_SECRET_KEY_OLD': None}
    half = hub(url, 'secrets', 'rotate', '--old-key-env', 'OLD_KEYS', '--new-key-env', 'TARGET',
               env=dict(env, OLD_KEYS=first))
    assert half.exit_code == 2 and 'stored under key id %s (1, e.g. integration %s)' % (
        Credentials(second).kid, some_id) in one_line(half)
    assert credentials(url) == mixed
    done = hub(url, 'secrets', 'rotate', '--old-key-env', 'OLD_KEYS', '--new-key-env', 'TARGET',
               '--json', env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)['from'] == report['keys']
    after = credentials(url)
    assert len(opened(after, target)) == len(before)
    assert opened(after, target)[some_id] == {'token': 'xoxb-second'}
    ok = hub(url, 'secrets', 'status', env={'HUB_SECRET_KEY': target})
    assert ok.exit_code == 0
    assert ok.stdout.splitlines()[1].split() == [Credentials(target).kid, str(len(before))]
    assert ok.stderr.strip() == 'the key in $HUB_SECRET_KEY (id %s) opens all %d credentials' % (
        Credentials(target).kid, len(before))


def key_file_home(key, monkeypatch):
    """$HUB_HOME holding `key` as the generated key file, and no $HUB_SECRET_KEY."""
    home = Path(os.environ['HUB_HOME'])
    home.mkdir(parents=True, exist_ok=True)
    (home / 'secret.key').write_text(key + '\n')
    monkeypatch.delenv('HUB_SECRET_KEY')
    return home


def test_the_embedded_key_file_is_replaced_and_the_old_one_kept(seeded, monkeypatch):
    url, old, before = seeded
    home = key_file_home(old, monkeypatch)
    database = connection.open_database(url)
    try:
        result = crypto.rotate_key_file(database)
    finally:
        database.close()
    new = (home / 'secret.key').read_text().strip()
    assert new != old and result['to'] == Credentials(new).kid
    assert result['rotated'] == len(before)
    assert (home / 'secret.key.old').read_text().strip() == old
    for name in ('secret.key', 'secret.key.old'):
        assert stat.S_IMODE(os.stat(home / name).st_mode) == 0o600
    assert not (home / 'secret.key.next').exists()
    assert len(opened(credentials(url), new)) == len(before)


def test_a_rotation_interrupted_after_its_commit_is_finished_by_the_next(seeded, monkeypatch):
    url, old, before = seeded
    home = key_file_home(old, monkeypatch)
    waiting = new_key()
    (home / 'secret.key.next').write_text(waiting + '\n')
    database = connection.open_database(url)
    try:
        crypto.rotate(database, old, waiting)    # committed; the rename never happened
        result = crypto.rotate_key_file(database)
        assert (home / 'secret.key').read_text().strip() == waiting
        assert result['to'] == Credentials(waiting).kid and result['rotated'] == 0
        # a .next left by a run that failed before its commit is discarded
        (home / 'secret.key.next').write_text(new_key() + '\n')
        result = crypto.rotate_key_file(database)
    finally:
        database.close()
    latest = (home / 'secret.key').read_text().strip()
    assert latest != waiting and result['from'] == {Credentials(waiting).kid: len(before)}
    assert len(opened(credentials(url), latest)) == len(before)


def test_hub_secrets_rotate_on_the_embedded_default_rotates_its_key_file(
        seeded, server_url, monkeypatch, tmp_path):
    """Reaches the server through a socket under $HUB_HOME, so the command sees the embedded
    default and rotates a throwaway key file, never the project's own .hub/secret.key."""
    url, old, before = seeded
    params = connection._parse(server_url)
    socket_dir = params.get('host') if str(params.get('host')).startswith('/') \
        else '/var/run/postgresql'
    port = params.get('port', 5432)
    if not os.path.exists(os.path.join(socket_dir, '.s.PGSQL.%d' % port)):
        pytest.skip('the server under test has no Unix socket to reach it through')
    home = tmp_path / 'socket_home'
    home.mkdir()
    (home / 'pgdata').symlink_to(socket_dir)
    (home / 'secret.key').write_text(old + '\n')
    os.chmod(home / 'secret.key', 0o600)
    monkeypatch.setenv('HUB_HOME', str(home))
    monkeypatch.delenv('HUB_SECRET_KEY')
    name = connection._parse(url)['database']
    via_socket = 'postgresql://%s@/%s?host=%s&port=%d' % (params.get('user', 'postgres'), name,
                                                          home / 'pgdata', port)
    status = hub(via_socket, 'secrets', 'status')
    assert status.exit_code == 0, status.output
    assert 'the key in %s (id %s) opens all' % (home / 'secret.key', Credentials(old).kid) \
        in status.stderr
    result = hub(via_socket, 'secrets', 'rotate')
    assert result.exit_code == 0, result.output
    new = (home / 'secret.key').read_text().strip()
    assert result.stderr.splitlines() == [
        're-encrypted %d credentials from key id %s to key id %s in one transaction'
        % (len(before), Credentials(old).kid, Credentials(new).kid),
        'the new key is in %s; the previous one is kept in %s for backups made before now'
        % (home / 'secret.key', home / 'secret.key.old')]
    assert len(opened(credentials(url), new)) == len(before)
    assert opened(credentials(url), old) == {}


def test_ensure_one_key_names_the_snapshot_it_refuses(seeded):
    """The check importers call before writing sealed documents of another database."""
    url, key, before = seeded
    database = connection.open_database(url)
    try:
        crypto.ensure_one_key(database, Credentials(key).kid, 'the snapshot')
        with pytest.raises(KeyMismatch, match='but the snapshot is key id 0123456789ab'):
            crypto.ensure_one_key(database, '0123456789ab', 'the snapshot')
    finally:
        database.close()


def test_status_before_any_credential(empty_db_url, secret):
    result = hub(empty_db_url, 'secrets', 'status', '--json')
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report['integrations'], report['keys'], report['ok']) == (0, {}, True)
    assert report['key']['kid'] == Credentials(secret).kid


def test_rotate_asks_for_the_old_key_on_a_terminal_without_echoing_it(seeded):
    url, old, before = seeded
    new = new_key()
    environ = dict(os.environ, HUB_SECRET_KEY=new, DATABASE_URL=url)
    environ.pop('HUB_SECRET_KEY_OLD', None)
    code, seen, _ = on_terminal([sys.executable, '-m', 'hub', 'secrets', 'rotate'], environ,
                                answers={b'key in use now (input hidden)': old.encode() + b'\n'})
    assert code == 0, seen
    assert b'key in use now' in seen and old.encode() not in seen and new.encode() not in seen
    assert b're-encrypted %d credentials' % len(before) in seen
    assert len(opened(credentials(url), new)) == len(before)
