"""squawk, the PostgreSQL migration linter, finds nothing under the checked-in .squawk.toml in:
the SQL of every shipped migration (as `hub db migrate --sql` writes it), `hub db sql` in both
row-level-security modes, and `hub db migrate --sql` of what `hub db generate` writes (a new
table with its index, a new column, an enum label).

$HUB_SQUAWK names squawk (else the one next to this Python, else `squawk` on PATH); skipped
without one, except when HUB_REQUIRE_SQUAWK=1 (CI: .ci/run installs squawk-cli). A rule left off
for one kind of file only is in EXCEPTIONS below, with its reason; the rest in .squawk.toml.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub import migrate, rls
from tests.conftest import _required
from tests.project import ROOT, Project
from tests.test_fail_closed import NEW_COLUMN, NEW_TABLE, edit
from tests.test_supabase_cli import NOWHERE

CONFIG = ROOT / '.squawk.toml'
#: Rules left off for one kind of file only, and why.
EXCEPTIONS = {
    # Frozen: 0006 rebuilds the started_at indexes in one transaction. It cannot be edited;
    # a later migration reaches the same state online (issue 20 item 3).
    '0006_started_at_indexes': ('require-concurrent-index-creation',
                                'require-concurrent-index-deletion'),
    # `hub db sql` builds a new project: 0006's index rebuild there runs on tables created
    # empty, moments earlier, by the same files.
    'hub db sql': ('require-concurrent-index-creation', 'require-concurrent-index-deletion'),
}
ENUM_LABEL = [("    OFFLINE = 'OFFLINE'\n", "    OFFLINE = 'OFFLINE'\n    PAUSED = 'PAUSED'\n")]


@pytest.fixture(scope='module')
def squawk():
    found = (os.environ.get('HUB_SQUAWK') or shutil.which('squawk', path=str(Path(sys.executable)
                                                                            .parent))
             or shutil.which('squawk'))
    if not found:
        _required('HUB_REQUIRE_SQUAWK', 'no squawk: pip install squawk-cli (or set HUB_SQUAWK)')
    return found


def configured():
    """The rules .squawk.toml leaves off (squawk's --exclude replaces them, so they are given
    again with any exception; read without tomllib, which Python 3.10 lacks)."""
    block = re.search(r'^excluded_rules = \[(.*?)^\]', CONFIG.read_text(), re.M | re.S).group(1)
    return re.findall(r'^\s*"([a-z-]+)",', block, re.M)


def findings(squawk, paths, exclude=()):
    """[(file, line, rule)] of what squawk reports on `paths` under .squawk.toml (and the rules
    of `exclude` off too)."""
    assert paths
    args = [squawk, '--config', str(CONFIG), '--reporter', 'json']
    if exclude:
        args.append('--exclude=' + ','.join(configured() + list(exclude)))
    result = subprocess.run(args + [str(p) for p in paths], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode in (0, 1), result.stderr
    found = [(Path(v['file']).name, v['line'], v['rule_name'])
             for v in json.loads(result.stdout or '[]')]
    assert (result.returncode == 1) == bool(found), (result.stdout, result.stderr)
    return found


def test_the_configuration_is_read(squawk, tmp_path):
    """A control: a rule the configuration keeps on is reported, one it leaves off is not."""
    assert 'prefer-text-field' in configured()
    path = tmp_path / 'bad.sql'
    path.write_text(migrate.bounds_header() + 'ALTER TABLE public.workflows ADD COLUMN at '
                    'timestamp, ADD COLUMN label varchar(10);\n')
    assert [rule for _, _, rule in findings(squawk, [path])] == ['prefer-timestamp-tz']
    assert [rule for _, _, rule in findings(squawk, [path], ['prefer-timestamp-tz'])] == []


@pytest.mark.parametrize('name', migrate.all_names())
def test_each_shipped_migration(squawk, tmp_path, name):
    plan = migrate.transactions(migrate.migration_steps([name], secure_sql=rls.sync_sql()))
    paths = []
    for i, transaction in enumerate(plan):
        paths.append(tmp_path / ('%s_%d.sql' % (name, i)))
        paths[-1].write_text(migrate.file_text(transaction, migrate.bounds_header()))
    assert findings(squawk, paths, EXCEPTIONS.get(name, ())) == []


@pytest.mark.parametrize('mode', rls.MODES)
def test_db_sql(squawk, tmp_path, mode):
    result = subprocess.run([sys.executable, '-m', 'hub', '--database-url', NOWHERE, 'db', 'sql',
                             '--mode', mode, '-o', str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert findings(squawk, sorted(tmp_path.glob('*.sql')), EXCEPTIONS['hub db sql']) == []


@pytest.mark.parametrize('edits', [NEW_TABLE, NEW_COLUMN, ENUM_LABEL],
                         ids=['new_table', 'new_column', 'enum_label'])
def test_what_db_generate_writes(squawk, tmp_path, db_url, edits):
    project = Project(tmp_path / 'project')
    edit(project, edits)
    for args in (('db', 'generate', 'change'), ('db', 'migrate', '--sql', '-o', str(tmp_path))):
        result = project.hub(db_url, *args)
        assert result.returncode == 0, (args, result.stderr)
    written = sorted(tmp_path.glob('*.sql'))
    assert findings(squawk, written) == []
