"""The embedded default server: where `.hub` is found, concurrent first use, permissions, sockets.

These start real embedded PostgreSQL servers (a few seconds each) in throwaway folders, whatever
$DATABASE_URL says: every command here runs without it. Every server started is stopped by the
`place` fixture's finalizer, also when the test fails.
"""
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from hub import connection
from tests.commands import remove_system_place

ROOT = os.geteuid() == 0
HUB = [sys.executable, '-m', 'hub']
needs_root = pytest.mark.skipif(not ROOT, reason='the server runs as another user only under root')


def run(*args, cwd, env=None, prefix=()):
    """`hub ARGS` in `cwd` without DATABASE_URL or HUB_HOME (None in `env` unsets), after the
    command `prefix` if any; returns (exit code, out, err)."""
    environ = {k: v for k, v in os.environ.items() if k not in ('DATABASE_URL', 'HUB_HOME')}
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    proc = subprocess.run([*prefix, *HUB, *args], cwd=str(cwd), env=environ,
                          capture_output=True, text=True, timeout=180)
    return proc.returncode, proc.stdout, proc.stderr


class Place:
    """A throwaway folder; remembers each `.hub` used so the finalizer can stop its server."""

    def __init__(self, mode):
        # In /tmp, not $TMPDIR (which may be closed, as CI's is): under root the server's own
        # user must be able to enter the folder, or hub moves the server to its system folder
        # (tested on its own). The tests check that hub leaves this mode (and every other one
        # above .hub) as it found it.
        self.root = Path(tempfile.mkdtemp(prefix='hub-emb-', dir='/tmp'))
        self.root.chmod(mode)
        self.homes = set()

    def hub(self, *args, cwd=None, home=None, **kw):
        env = dict(kw.pop('env', {}))
        if home is not None:
            env['HUB_HOME'] = str(home)
            self.homes.add(Path(home))
        result = run(*args, cwd=cwd or self.root, env=env, **kw)
        for hub_dir in self.root.rglob('.hub'):
            self.homes.add(hub_dir)
        return result

    def stop_all(self):
        for home in self.homes:
            if (home / 'pgdata' / 'postmaster.pid').exists():
                run('db', 'stop', cwd='/', env={'HUB_HOME': str(home)})
            remove_system_place(home)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def place():
    made = Place(0o711)
    yield made
    made.stop_all()


def modes(path):
    """{folder: (mode, uid, gid)} for `path` and every folder above it."""
    path = Path(path)
    return {p: (stat.S_IMODE(p.stat().st_mode), p.stat().st_uid, p.stat().st_gid)
            for p in [path, *path.parents]}


def socket_dir(url):
    return Path(parse_qs(urlparse(url).query)['host'][0])


def server_uid():
    return pwd.getpwnam('embedded_postgres').pw_uid if ROOT else os.geteuid()


def connect_as_nobody(directory, pgdata):
    """Another local user's attempt to use the socket: (psql's exit code, its output).

    With a socket any user can reach this prints "postgres|on|<n>": a superuser reading pg_authid.
    The psql is the server's of `pgdata` (a copy under SYSTEM_DIR when the venv is out of reach).
    """
    nobody = pwd.getpwnam('nobody')
    proc = subprocess.run(
        [str(connection._server_bin(pgdata) / 'psql'), '-h', str(directory), '-U', 'postgres', '-d', 'postgres',
         '-Atc', "select current_user, current_setting('is_superuser'), count(*) from pg_authid"],
        capture_output=True, text=True, timeout=60, cwd='/',
        user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
    return proc.returncode, (proc.stdout + proc.stderr).strip()


# -- where .hub is ------------------------------------------------------------------------------

def test_hub_home_wins_over_a_project_folder(tmp_path, monkeypatch):
    (tmp_path / '.hub' / 'pgdata').mkdir(parents=True)
    (tmp_path / 'docs').mkdir()
    monkeypatch.chdir(tmp_path / 'docs')
    monkeypatch.delenv('HUB_HOME', raising=False)
    assert connection.hub_home() == tmp_path / '.hub'
    monkeypatch.setenv('HUB_HOME', str(tmp_path / 'elsewhere'))
    assert connection.hub_home() == tmp_path / 'elsewhere'


def test_a_stray_dot_hub_is_not_a_project(tmp_path, monkeypatch):
    # A `.hub` without our data (another tool's, an empty folder) does not capture subfolders.
    (tmp_path / '.hub').mkdir()
    (tmp_path / 'app').mkdir()
    monkeypatch.chdir(tmp_path / 'app')
    monkeypatch.delenv('HUB_HOME', raising=False)
    assert connection.hub_home() == tmp_path / 'app' / '.hub'


def test_a_subfolder_uses_the_projects_server_and_says_where_a_new_one_is_made(place):
    docs = place.root / 'docs' / 'deep'
    docs.mkdir(parents=True)
    code, url, err = place.hub('db', 'url')
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(place.root / '.hub') in lines[0], err
    assert 'HUB_HOME' in lines[0]

    code, again, err = place.hub('db', 'url', cwd=docs)
    assert (code, again, err) == (0, url, '')
    code, out, err = place.hub('db', 'migrate', cwd=place.root)
    assert code == 0, err
    code, out, err = place.hub('db', 'status', cwd=docs)
    assert code == 0 and 'applied' in out, err
    assert not (place.root / 'docs' / '.hub').exists() and not (docs / '.hub').exists()

    code, _, err = place.hub('db', 'stop', cwd=docs)
    assert code == 0 and err.strip() == 'stopped the embedded PostgreSQL in %s' % (place.root / '.hub')
    assert not (place.root / '.hub' / 'pgdata' / 'postmaster.pid').exists()


def test_stop_outside_any_project_creates_nothing(place):
    code, out, err = place.hub('db', 'stop')
    assert code == 0 and out == ''
    assert err.strip() == 'no embedded PostgreSQL in %s or the folders above it' % place.root
    assert not (place.root / '.hub').exists()


def test_four_concurrent_first_commands_in_a_fresh_folder_all_succeed(place):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: place.hub('db', 'url'), range(4)))
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results
    assert len({out for _, out, _ in results}) == 1
    announcements = [err for _, _, err in results if err]
    assert len(announcements) == 1, results


# -- bad folders ---------------------------------------------------------------------------------

def test_a_hub_home_under_a_file_is_one_line_with_the_os_error(place):
    (place.root / 'file').write_text('')
    home = place.root / 'file' / 'home'
    code, out, err = place.hub('db', 'url', home=home)
    assert (code, out) == (1, '')
    assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err
    assert 'Not a directory' in err and str(home) in err and 'HUB_HOME' in err
    assert '/log' not in err


def test_an_unwritable_folder_is_one_line_with_the_os_error(place):
    readonly = place.root / 'readonly'
    readonly.mkdir()
    readonly.chmod(0o555)
    # Root writes anywhere: run it without the capabilities that override file modes.
    prefix = ['setpriv', '--bounding-set=-dac_override,-dac_read_search'] if ROOT else []
    if ROOT and not shutil.which('setpriv'):
        pytest.skip('setpriv (util-linux) is needed to drop root\'s override of file modes')
    code, out, err = place.hub('db', 'url', cwd=readonly, prefix=prefix)
    assert (code, out) == (1, ''), err
    assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err
    assert 'Permission denied' in err and str(readonly / '.hub') in err, err
    assert '/log' not in err
    assert list(readonly.iterdir()) == []


# -- permissions and the socket (issue: the embedded default as root) --------------------------

@needs_root
def test_as_root_in_a_closed_home_the_server_lives_in_the_system_folder_and_no_mode_changes():
    closed = Path(tempfile.mkdtemp(prefix='hub-closed-'))  # mode 0700, like /root
    project = closed / 'project'
    try:
        project.mkdir()
        before = modes(project)
        code, url, err = run('db', 'url', cwd=project)
        assert modes(project) == before   # before the fix: 0700 -> 0755 up to /
        assert code == 0, err
        place = connection.system_place(project / '.hub')
        line = err.strip()
        assert len(line.splitlines()) == 1 and str(place) in line and str(closed) in line, err
        assert os.readlink(project / '.hub' / 'pgdata') == str(place / 'pgdata')
        assert socket_dir(url.strip()) == place / 'pgdata'
        assert (place / 'project').read_text().strip() == str(project / '.hub')
        info = (place / 'pgdata').stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o700, server_uid())
        code, out, err = run('db', 'migrate', cwd=project)
        assert code == 0, err
        code, again, err = run('db', 'url', cwd=project)
        assert (code, again, err) == (0, url, '')
        code, out, err = run('db', 'stop', cwd=project)
        assert code == 0 and 'stopped' in err, err
        assert modes(project) == before
    finally:
        run('db', 'stop', cwd=project)
        remove_system_place(project / '.hub')
        shutil.rmtree(closed, ignore_errors=True)


def test_the_socket_is_private_and_no_parent_changes(place):
    project = place.root / 'project'
    project.mkdir()
    before = modes(project)
    code, url, err = place.hub('db', 'url', cwd=project)
    assert code == 0, err
    assert modes(project) == before
    directory = socket_dir(url.strip())
    info = directory.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o700, server_uid())
    assert stat.S_IMODE((directory / '.s.PGSQL.5432').stat().st_mode) == 0o700
    if ROOT:
        code, output = connect_as_nobody(directory, project / '.hub' / 'pgdata')
        assert code != 0 and 'Permission denied' in output, output
        # the server runs as its own user and group, not with root's group
        pid = int((project / '.hub' / 'pgdata' / 'postmaster.pid').read_text().split()[0])
        status = dict(line.split(':', 1) for line in
                      Path('/proc/%d/status' % pid).read_text().splitlines())
        entry = pwd.getpwnam('embedded_postgres')
        assert status['Gid'].split() == [str(entry.pw_gid)] * 4
        assert status['Groups'].split() == []


def test_a_long_path_gets_a_private_socket_folder_not_a_shared_one(place):
    home = place.root / ('x' * 100) / 'home'
    home.parent.mkdir()
    code, url, err = place.hub('db', 'url', home=home)
    assert code == 0, err
    directory = socket_dir(url.strip())
    assert len(str(directory / '.s.PGSQL.5432')) <= 107
    info = directory.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o700, server_uid())
    assert stat.S_IMODE((directory / '.s.PGSQL.5432').stat().st_mode) == 0o700
    if ROOT:
        code, output = connect_as_nobody(directory, home / 'pgdata')
        assert code != 0 and 'Permission denied' in output, output  # before: postgres|on|17
    code, _, err = place.hub('db', 'stop', home=home)
    assert code == 0 and 'stopped' in err
    if (home / 'pgdata').is_symlink():
        # As root with the venv out of the server user's reach (CI's 0700 checkout) the data,
        # and so the socket, are in SYSTEM_DIR: a short path, no private folder to remove.
        assert directory == Path(os.path.realpath(home / 'pgdata'))
    else:
        assert not directory.exists()


def test_a_server_left_on_a_shared_socket_is_refused_until_restarted(place):
    # What the wheel's own start-up does on a long path (and what hub did before): a socket
    # folder other users can reach. hub must not hand out that server's URL. The server is
    # started here as the wheel would, by pg_ctl with a 0777 socket folder, not by the wheel's
    # helper: that one also opens up every folder above the data and the binaries, up to /.
    home = place.root / ('y' * 100) / 'home'
    code, _, err = place.hub('db', 'url', home=home)
    assert code == 0, err
    assert place.hub('db', 'stop', home=home)[0] == 0
    shared = Path(tempfile.mkdtemp(prefix='hub-shared-', dir='/tmp'))
    shared.chmod(0o777)
    account = pwd.getpwnam('embedded_postgres') if ROOT else None
    pgdata = home / 'pgdata'
    try:
        code, problem = connection._run_server_tool(
            ['pg_ctl', '-w', '-l', os.path.realpath(pgdata / 'log'), '-o',
             "-c listen_addresses='' -k %s" % shared, 'start'], account, pgdata)
        assert code == 0, problem
        assert Path((pgdata / 'postmaster.pid').read_text().splitlines()[4]) == shared
        code, out, err = place.hub('db', 'url', home=home)
        assert (code, out) == (1, ''), err
        line = err.strip()
        assert str(shared) in line
        assert len(line.splitlines()) == 1 and 'other local users can reach' in line, err
        assert '`hub db stop`' in line
        code, _, err = place.hub('db', 'stop', home=home)
        assert code == 0 and 'stopped' in err
    finally:
        if (pgdata / 'postmaster.pid').exists():
            connection._run_server_tool(['pg_ctl', '-w', '-m', 'immediate', 'stop'], account,
                                        pgdata)
        shutil.rmtree(shared, ignore_errors=True)
    code, url, err = place.hub('db', 'url', home=home)
    assert code == 0, err
    assert stat.S_IMODE(socket_dir(url.strip()).stat().st_mode) == 0o700


def test_a_server_that_cannot_start_says_why_in_one_line_and_where_the_log_is(place):
    home = place.root / 'home'
    code, _, err = place.hub('db', 'url', home=home)
    assert code == 0, err
    assert place.hub('db', 'stop', home=home)[0] == 0
    with open(home / 'pgdata' / 'postgresql.conf', 'a') as conf:
        conf.write("\nhub_no_such_setting = 'x'\n")
    code, out, err = place.hub('db', 'url', home=home)
    assert (code, out) == (1, ''), err
    line = err.strip()
    assert len(line.splitlines()) == 1 and 'Traceback' not in err, err
    assert 'did not start' in line and 'postgresql.conf" contains errors' in line, line
    log = os.path.realpath(home / 'pgdata' / 'log')  # in SYSTEM_DIR when hub had to put it there
    assert 'see %s' % log in line and os.path.isfile(log)


def test_a_read_only_command_outside_a_project_creates_nothing_and_says_where_it_looked(place):
    # Before: `hub db status` here made a new, empty server, and `hub db prisma` then advised
    # migrating that wrong database.
    for args in (['db', 'status'], ['db', 'prisma'], ['orgs'], ['users'], ['rls', 'status']):
        code, out, err = place.hub(*args)
        assert (code, out) == (2, ''), (args, err)
        assert err.strip() == (
            'Error: no embedded PostgreSQL: looked for .hub in %s and the folders above it; run '
            'this in your project folder, set HUB_HOME or DATABASE_URL, or make one here with '
            '`hub seed` or `hub db migrate`' % place.root)
    assert not (place.root / '.hub').exists()


def test_seed_sql_on_the_embedded_default_uses_the_projects_key_and_says_so(place):
    # Before: it demanded HUB_SECRET_KEY, and exporting one broke `hub secrets rotate` next.
    env = {'HUB_SECRET_KEY': None}
    code, out, err = place.hub('seed', '--sql', 'supabase/seed.sql', '--orgs', '1', '--scale',
                               'tiny', '--as-of', '2025-01-31', env=env)
    assert code == 0, err
    key = place.root / '.hub' / 'secret.key'
    assert 'the embedded default\'s key, %s' % key in err
    header = (place.root / 'supabase' / 'seed.sql').read_text().splitlines()[2]
    assert header.endswith('(%s).' % key)
    kid = header.split('key of id ')[1].split()[0]
    code, out, err = place.hub('seed', '--orgs', '1', '--scale', 'tiny', '--as-of', '2025-01-31',
                               env=env)
    assert code == 0, err
    code, out, err = place.hub('secrets', 'status', env=env)
    assert code == 0 and kid in out + err, out + err


def test_hub_connect_outside_a_project_says_where_it_looked_and_creates_nothing(place):
    # Before: the README's example made an empty server here, then failed with a raw
    # ProgrammingError (relation "workflows" does not exist).
    environ = {k: v for k, v in os.environ.items() if k not in ('DATABASE_URL', 'HUB_HOME')}
    proc = subprocess.run([sys.executable, '-c', 'import hub; hub.connect()'], cwd=str(place.root),
                          env=environ, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('hub.errors.ConfigError: no embedded PostgreSQL: looked for .hub in '
                           '%s' % place.root), proc.stderr
    assert not (place.root / '.hub').exists()
