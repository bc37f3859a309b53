"""`hub db new NAME`: the next numbered migration in the project's style, from a copy of the
project; names are checked; a file left as written fails to apply, saying which."""
import pytest

from hub import migrate
from tests.project import Project


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path)


def test_new_writes_the_next_numbered_file_in_the_projects_style(project, empty_db_url):
    result = project.hub(empty_db_url, 'db', 'new', 'add_workflow_priority')
    assert result.returncode == 0, result.stderr
    count = len(list(migrate.MIGRATIONS_DIR.glob('[0-9]*.py')))
    path = project.migrations / ('%04d_add_workflow_priority.py' % (count + 1))
    assert result.stdout == '%s\n' % path
    assert project.new_files() == [path]
    source = path.read_text()
    assert source.startswith('"""Add workflow priority.\n')
    assert '\nimport' not in source and '\nfrom' not in source  # frozen SQL: never hub.models
    assert 'UP = r"""' in source and 'DOWN = r"""' in source
    assert 'def up(migrator, db):\n    db.execute_sql(UP)' in source
    # left as written, it fails to apply, naming it, and the database keeps the others
    result = project.hub(empty_db_url, 'db', 'migrate')
    assert result.returncode == 1
    assert ('migration %s failed and was rolled back: can\'t execute an empty query'
            % path.stem) in result.stderr
    # filled in, it applies and reverts
    path.write_text(source.replace(
        '-- ALTER TABLE public.workflows ADD COLUMN priority integer NOT NULL DEFAULT 0;',
        'ALTER TABLE public.workflows ADD COLUMN priority integer NOT NULL DEFAULT 0;').replace(
        '-- ALTER TABLE public.workflows DROP COLUMN priority;',
        'ALTER TABLE public.workflows DROP COLUMN priority;'))
    result = project.hub(empty_db_url, 'db', 'migrate')
    assert result.returncode == 0 and 'applied %s' % path.stem in result.stdout, result.stderr
    result = project.hub(empty_db_url, 'db', 'rollback', '-y')
    assert result.stdout == 'reverted %s\n' % path.stem, result.stderr


@pytest.mark.parametrize('name', ['Add Priority', 'add-priority', '1st', '', 'x' * 61, 'a;b'])
def test_new_refuses_a_bad_name_in_one_line(project, empty_db_url, name):
    result = project.hub(empty_db_url, 'db', 'new', name)
    assert result.returncode == 2
    assert result.stderr == ('Error: invalid migration name %r: use lowercase letters, digits '
                             'and underscores, starting with a letter, at most 60 characters '
                             '(e.g. add_workflow_priority)\n' % name)
    assert project.new_files() == []


def test_new_refuses_a_name_a_migration_has(project, empty_db_url):
    result = project.hub(empty_db_url, 'db', 'new', 'initial')
    assert result.returncode == 2
    assert "a migration named 'initial' exists already (0001_initial.py)" in result.stderr
    assert project.new_files() == []
