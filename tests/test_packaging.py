"""What ships and what stays in the checkout: the wheel holds the library, its commands and its
fixtures, never a benchmark or a developer tool; those run from the repository root and share
one throwaway-database helper (tools/throwaway.py).
"""
import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import psycopg2
import pytest

from hub import connection
from tools.throwaway import Databases, admin_connection, throwaway_database

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(p.stem for p in (ROOT / 'benchmarks').glob('bench_*.py'))
TOOLS = sorted(p.stem for p in (ROOT / 'tools').glob('*.py') if p.stem != '__init__')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """The wheel `pip wheel .` builds, from a copy of the checkout (the build writes build/ and
    *.egg-info into its source folder; a copy keeps parallel runs apart)."""
    folder = tmp_path_factory.mktemp('wheel')
    source = folder / 'source'
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        '.git', '.venv', '.hub', 'build', '*.egg-info', '__pycache__', '.pytest_cache'))
    result = subprocess.run([sys.executable, '-m', 'pip', 'wheel', str(source), '--no-deps',
                             '--quiet', '-w', str(folder / 'dist')],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (path,) = (folder / 'dist').glob('neuroflow_hub-*.whl')
    return path


@pytest.fixture(scope='module')
def names(wheel):
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_holds_only_the_hub_package(names):
    tops = {name.split('/')[0] for name in names}
    assert {top for top in tops if not top.endswith('.dist-info')} == {'hub'}
    assert not [n for n in names if 'bench' in n or 'make_scenarios' in n or 'throwaway' in n]
    assert not [n for n in names for tool in TOOLS if Path(n).stem == tool]


def test_wheel_commands_are_exactly_scripts_and_none_is_a_benchmark(names):
    cli = {Path(n).name for n in names if n.startswith('hub/cli/')}
    assert cli == {p.name for p in (ROOT / 'scripts').glob('*.py')}
    assert 'main.py' in cli and not [n for n in cli if n.startswith('bench_')]


@pytest.mark.parametrize('kind', ['templates', 'scenarios'])
def test_wheel_holds_every_fixture(names, kind):
    shipped = {Path(n).name for n in names if n.startswith('hub/fixtures/%s/' % kind)}
    assert shipped == {p.name for p in (ROOT / 'fixtures' / kind).glob('*.json')}
    assert shipped


def test_cryptography_has_an_upper_bound_the_installed_version_meets(wheel):
    from importlib.metadata import version

    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as archive:
        meta = next(archive.read(n).decode() for n in archive.namelist()
                    if n.endswith('.dist-info/METADATA'))
    (line,) = [l for l in meta.splitlines() if l.startswith('Requires-Dist: cryptography')]
    requirement = Requirement(line.split(':', 1)[1])
    # hub.crypto uses a private Fernet method: a new major must be a deliberate upgrade.
    assert any(spec.operator == '<' for spec in requirement.specifier)
    assert requirement.specifier.contains(version('cryptography'))


def test_wheel_alone_runs_the_command_line(wheel, tmp_path):
    """hub --help from the unpacked wheel, outside the checkout: every module it loads comes
    from the wheel, and nothing of benchmarks/ or tools/ is needed."""
    unpacked = tmp_path / 'site'
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    code = ('import json, sys\n'
            'from hub.cli.main import main\n'
            'status = None\n'
            'try:\n    main(["--help"])\n'
            'except SystemExit as exc:\n    status = exc.code\n'
            'print(json.dumps([status, {m: getattr(sys.modules[m], "__file__", None) '
            'for m in list(sys.modules) if m.split(".")[0] in ("hub", "tools", "benchmarks")}]))')
    env = dict(os.environ, PYTHONPATH=str(unpacked))
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'Usage:' in result.stdout and 'seed' in result.stdout
    status, loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert status in (0, None)
    assert 'hub.cli.main' in loaded
    outside = {m: f for m, f in loaded.items() if f and not f.startswith(str(unpacked))}
    assert outside == {}


# -- benchmarks and tools run from the checkout ------------------------------------------------

@pytest.mark.parametrize('module', ['benchmarks.%s' % b for b in BENCHMARKS] +
                         ['tools.%s' % t for t in TOOLS])
def test_benchmarks_and_tools_import_without_patching_sys_path(module):
    before = list(sys.path)
    importlib.import_module(module)
    assert sys.path == before


def test_every_benchmark_moved_out_of_the_command_package():
    # The four that moved out of scripts/ are here (later ones may join them), and none is left.
    assert {'bench_rls', 'bench_seed', 'bench_snapshot', 'bench_startup'} <= set(BENCHMARKS)
    assert not list((ROOT / 'scripts').glob('bench_*.py'))
    assert not (ROOT / 'scripts' / 'make_scenarios.py').exists()


def test_make_scenarios_writes_into_the_checkout_and_rebuilds_every_scenario(server_url,
                                                                              tmp_path):
    from hub import snapshot
    from tools import make_scenarios

    assert make_scenarios.OUT == ROOT / 'fixtures' / 'scenarios'
    env = dict(os.environ, DATABASE_URL=server_url)
    result = subprocess.run([sys.executable, '-m', 'tools.make_scenarios', '--out',
                             str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    committed = sorted((ROOT / 'fixtures' / 'scenarios').glob('*.json'))
    assert sorted(p.name for p in tmp_path.glob('*.json')) == [p.name for p in committed]
    for path in committed:
        # New ids and timestamps each run; the same rows in every table.
        fresh = snapshot.loads((tmp_path / path.name).read_text())
        kept = snapshot.loads(path.read_text())
        assert {t: len(rows) for t, rows in fresh['tables'].items()} == \
               {t: len(rows) for t, rows in kept['tables'].items()}


# -- the one throwaway-database helper ------------------------------------------------------------

def _exists(server_url, name):
    with contextlib.closing(admin_connection(server_url)) as conn, conn.cursor() as cur:
        cur.execute('SELECT count(*) FROM pg_database WHERE datname = %s', (name,))
        return cur.fetchone()[0] == 1


def test_databases_create_copy_and_drop_only_their_own(server_url):
    dbs = Databases(server_url, prefix='hub_test_throwaway')
    with dbs:
        empty = dbs.create()
        with contextlib.closing(psycopg2.connect(dbs.url(empty))) as conn:
            with conn, conn.cursor() as cur:
                cur.execute('CREATE TABLE marker (id int)')
        copy = dbs.create(template=empty, prefix='hub_test_copy')
        assert empty.startswith('hub_test_throwaway_') and copy.startswith('hub_test_copy_')
        assert connection._parse(dbs.url(copy))['database'] == copy
        with contextlib.closing(psycopg2.connect(dbs.url(copy))) as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('marker') IS NOT NULL")
            assert cur.fetchone()[0]  # a copy of the template, not an empty database
            dbs.drop(empty)  # FORCE: a connected session does not keep it
            assert not _exists(server_url, empty) and _exists(server_url, copy)
    assert dbs.created == [] and not _exists(server_url, copy)


def test_throwaway_database_is_dropped_when_the_block_fails(server_url):
    with pytest.raises(KeyboardInterrupt):
        with throwaway_database(server_url, prefix='hub_test_throwaway') as url:
            name = connection._parse(url)['database']
            psycopg2.connect(url).close()
            assert _exists(server_url, name)
            raise KeyboardInterrupt  # Ctrl-C in the middle of a benchmark
    assert not _exists(server_url, name)


def test_throwaway_database_kept_on_request(server_url, capsys):
    with throwaway_database(server_url, prefix='hub_test_throwaway', keep=True) as url:
        name = connection._parse(url)['database']
    try:
        assert _exists(server_url, name)
        assert capsys.readouterr().err.strip() == 'kept database %s' % name
    finally:
        Databases(server_url).drop(name)
