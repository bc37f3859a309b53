"""Every ```console block of README.md and docs/*.md runs as written, its shown output compared.

A guide that says "run this, you will see that" must stay true, so each console block is run
here, in a project as a user has it after cloning, and what it prints is compared with what the
guide shows. The convention guides follow (docs/architecture.md, "Console blocks in the guides"):

- In a ```console block a line starting with `$ ` is a command; the lines after it, up to the
  next `$ `, are its shown output. A command continues on the next line after a trailing `\\`,
  and a here-document (`<<'EOF'` ... `EOF`) belongs to its command. `# comments` after a command
  are not part of it (bash drops them; the test strips them before filling placeholders).
- A block that truly cannot run in a fresh embedded project (it needs a Citus cluster, a
  Supabase project, PostgREST, the network, another user, or runs for minutes) has, on the line
  right before its opening fence, `<!-- not run: <reason> -->`. A marker without a reason, or
  not right before a console fence, fails the test; skipped blocks are listed with their reason
  (pytest -ra, as setup.cfg sets it). Illustrative commands nobody should run as shown go in a
  ```sh block instead.

How the blocks run:

- One project for the session, made on first use: a copy of the checkout (without .git, .venv,
  .hub) in a temporary folder, with `.venv` linked to the venv running the tests (so the README's
  `. .venv/bin/activate` works) and that venv's bin first on PATH; HOME is the folder above the
  project (`cd ~/project` works); no DATABASE_URL, HUB_HOME or HUB_SECRET_KEY: the commands use
  the embedded default, PostgreSQL 18 in that project's .hub, started by the first command.
- The blocks of one guide run in order and build on each other (the tour seeds first, then uses
  what it seeded); each `$ ` line runs in its own `bash`, with the exported variables and the
  working directory the previous line of the guide left (so `export` and `cd` carry over, shell
  functions and unexported variables do not). Standard input is empty (a prompt such as
  `hub shell` or `hub db psql` reads end-of-file and exits), output is stdout and stderr together,
  in the order written (PYTHONUNBUFFERED). HUB_PROGRESS_SECONDS is an hour: `hub seed` prints its
  progress line at the end only, as it does in the guides' short seeds.
- Each guide starts as a new user opens it: the project's files as cloned, its .hub/secret.key as
  first generated, and an empty database `hub` on the already running server (dropped and created
  again: milliseconds). A guide that needs data says so with its own `hub seed` line (5
  organizations of scale small, as the tour: about a second). The one exception is NEW_PROJECT:
  guides that show hub's first-run notice get a project of their own with no .hub at all (about
  2 seconds), stopped and removed when the guide is done.
- A command must exit 0, unless its shown output has a line starting with `Error:`; then it must
  fail (non-zero).
- Placeholders in commands (PLACEHOLDERS: `<slug>`, `<users.id>`, `<email>`, ...) are filled from
  the database the guide runs on, when the guide first uses them: the first organization by slug
  (as `hub orgs` lists them), its first OWNER, that user's e-mail, an organization that user is not
  in, a new Fernet key.

Shown output is compared line by line, exactly (trailing blanks aside), after these
normalisations and no others:

1. paths: in what the commands print, the temporary HOME is `/home/me`, the project
   `/home/me/project`; as root, when the server lives in /var/lib/hub/<id> (the project is out of
   its user's reach), that folder stands for the project's `.hub`, and the clause hub adds to its
   first-run notice then (`; as root its server runs as embedded_postgres, ...`) is dropped:
   the guides show what a normal user sees;
2. ids that differ on each run: a cuid (`c` + 24 base-36 characters) or a 12-digit hexadecimal
   key id shown in a guide stands for whatever the command printed in its place, consistently:
   within a guide, one shown id always stands for the same printed id and vice versa (an id the
   seeder makes, being deterministic, is printed as shown); a shown id bound this way is replaced
   by its printed value in the guide's later commands;
3. dates and times (`2026-11-30`, `2026-11-30 19:44:22`: they depend on today), durations with a
   decimal point (`0.11 s`) and rates (`3,838 rows/s`) match any of their kind;
4. a shown line `...` stands for any number of lines (none included), and a shown line may end
   in an annotation, two or more blanks then `# ...`, which is not output.

Skipped when DATABASE_URL is set: the guides describe the embedded default project, and a run
against another server (CI's PostgreSQL 15 step) would test that server, not what the guides
say. CI runs it in its embedded step: as root, from a clone in a 0700 folder (so the server
and a copy of PostgreSQL go to /var/lib/hub/<id>, removed here after `hub db stop`), with the
clock a year ahead (faketime: nothing shown may depend on today's date).
"""
import difflib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.commands import remove_system_place

ROOT = Path(__file__).resolve().parent.parent
GUIDES = [ROOT / 'README.md', *sorted((ROOT / 'docs').rglob('*.md'))]

# Guides run in a project of their own with no .hub: they show hub's first-run notice.
NEW_PROJECT = {'docs/troubleshooting.md'}

MARKER = re.compile(r'^\s*<!--\s*not run\b(.*?)-->\s*$')   # a line of its own
FENCE = re.compile(r'^```')
HEREDOC = re.compile(r'<<-?\s*([\'"]?)([A-Za-z_]\w*)\1')
PLACEHOLDER = re.compile(r'<([a-z][\w.]*(?: [a-z][\w.]*)*)>')
ANNOTATION = re.compile(r'\s{2,}#(\s.*)?$')
TOKEN = re.compile(r'''
    (?P<id>\bc[0-9a-z]{24}\b)
  | (?P<key>\b[0-9a-f]{12}\b)
  | (?P<when>\b\d{4}-\d\d-\d\d(?:[ T]\d\d:\d\d:\d\d(?:\.\d+)?)?\b)
  | (?P<seconds>\b\d+\.\d+\ s\b)
  | (?P<rate>\b\d[\d,]*\ rows/s\b)
''', re.X)
BOUND = ('id', 'key')   # kinds bound one to one within a guide; the others match any value
TIMEOUT = 300           # per command


@dataclass
class Command:
    line: int                 # in the guide
    text: str                 # as written, comments stripped, here-document included
    shown: list = field(default_factory=list)


@dataclass
class Block:
    guide: str                # relative to ROOT
    line: int                 # of the opening fence
    commands: list
    skip: str = None          # the marker's reason


def strip_comment(text):
    """`text` without a trailing `# comment`, as bash reads it (a `#` starting a word, outside
    quotes)."""
    quote = None
    escaped = False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == '\\' and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = None
        elif char in '\'"':
            quote = char
        elif char == '#' and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text.rstrip()


def parse(path, guide=None):
    """(blocks, problems) of one guide: its console blocks, and what breaks the convention."""
    guide = guide or str(path.relative_to(ROOT))
    lines = path.read_text().splitlines()
    blocks, problems = [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line)
        if marker:
            rest = marker.group(1).strip()
            following = lines[i + 1] if i + 1 < len(lines) else ''
            if not rest.startswith(':') or not rest[1:].strip():
                problems.append('%s:%d: a not-run marker needs a reason: <!-- not run: <reason> -->'
                                % (guide, i + 1))
            if following.strip() != '```console':
                problems.append('%s:%d: a not-run marker must be on the line right before a '
                                '```console fence' % (guide, i + 1))
        if not FENCE.match(line):
            i += 1
            continue
        start = i
        kind = line[3:].strip()
        i += 1
        body = []
        while i < len(lines) and not FENCE.match(lines[i]):
            body.append(lines[i])
            i += 1
        i += 1   # past the closing fence
        if kind != 'console':
            continue
        previous = MARKER.match(lines[start - 1]) if start else None
        skip = None
        if previous:
            skip = previous.group(1).strip().lstrip(':').strip() or 'no reason given'
        commands = []
        j = 0
        while j < len(body):
            text = body[j]
            number = start + 2 + j
            if not text.startswith('$ '):
                if not commands:
                    problems.append('%s:%d: a console block starts with a `$ ` command'
                                    % (guide, number))
                else:
                    commands[-1].shown.append(text)
                j += 1
                continue
            command = strip_comment(text[2:])
            while command.endswith('\\') and j + 1 < len(body):
                j += 1
                command = command + '\n' + strip_comment(body[j])
            heredoc = HEREDOC.search(command)
            if heredoc:
                delimiter = heredoc.group(2)
                while j + 1 < len(body):
                    j += 1
                    command += '\n' + body[j]
                    if body[j].strip() == delimiter:
                        break
                else:
                    problems.append('%s:%d: here-document without its %s line'
                                    % (guide, number, delimiter))
            commands.append(Command(number, command))
            j += 1
        if not commands:
            problems.append('%s:%d: a console block without a `$ ` command' % (guide, start + 1))
        blocks.append(Block(guide, start + 1, commands, skip))
    return blocks, problems


def collect():
    blocks, problems = [], []
    for path in GUIDES:
        found, wrong = parse(path)
        blocks += found
        problems += wrong
    return blocks, problems


BLOCKS, PROBLEMS = collect()


# -- comparing ---------------------------------------------------------------------------------

def tokens(line):
    """(line with each normalised token replaced by its kind, [(kind, text), ...])."""
    found = []

    def keep(match):
        found.append((match.lastgroup, match.group()))
        return '\0%s\0' % match.lastgroup

    return TOKEN.sub(keep, line), found


class Bindings:
    """Shown id <-> printed id, one to one, for one guide."""

    def __init__(self):
        self.printed = {}   # shown -> printed
        self.shown = {}     # printed -> shown

    def agree(self, shown, printed):
        if self.printed.get(shown, printed) != printed or self.shown.get(printed, shown) != shown:
            return False
        self.printed[shown] = printed
        self.shown[printed] = shown
        return True

    def fill(self, command):
        return TOKEN.sub(lambda m: self.printed.get(m.group(), m.group())
                         if m.lastgroup in BOUND else m.group(), command)


def line_matches(shown, printed, bindings):
    """Whether one shown line stands for one printed line; binds ids only when it does."""
    shape, shown_tokens = tokens(shown)
    printed_shape, printed_tokens = tokens(printed)
    if shape != printed_shape:
        return False
    pairs = [(s, p) for (kind, s), (_, p) in zip(shown_tokens, printed_tokens) if kind in BOUND]
    trial = Bindings()
    trial.printed, trial.shown = dict(bindings.printed), dict(bindings.shown)
    if not all(trial.agree(s, p) for s, p in pairs):
        return False
    bindings.printed, bindings.shown = trial.printed, trial.shown
    return True


def output_matches(shown, printed, bindings):
    """Whether the shown lines (`...` = any lines) stand for the printed ones, in order."""
    shown = [ANNOTATION.sub('', line).rstrip() for line in shown]
    while shown and not shown[-1]:
        shown.pop()

    def match(i, j):
        if i == len(shown):
            return j == len(printed)
        if shown[i] == '...':
            return any(match(i + 1, k) for k in range(j, len(printed) + 1))
        if j < len(printed) and line_matches(shown[i], printed[j], bindings):
            return match(i + 1, j + 1)
        return False

    return match(0, 0)


# -- the projects ------------------------------------------------------------------------------

_SKIP_COPY = shutil.ignore_patterns('.git', '.venv', '.hub', '__pycache__', '*.pyc', '*.egg-info',
                                    '.pytest_cache', '.hypothesis', 'node_modules', 'build', 'dist')


class Project:
    """A copy of the checkout in `folder`/home/project, its .hub made by the first command."""

    def __init__(self, folder):
        self.home = folder / 'home'
        self.root = self.home / 'project'
        self.home.mkdir(parents=True)
        self.copy_files()
        self.key = None   # .hub/secret.key as first generated
        self._url = None

    def copy_files(self):
        shutil.copytree(ROOT, self.root, ignore=_SKIP_COPY, symlinks=True,
                        dirs_exist_ok=True)
        venv = self.root / '.venv'
        if not venv.exists():
            venv.symlink_to(Path(sys.prefix))

    def environment(self):
        env = {k: v for k, v in os.environ.items()
               if k not in ('DATABASE_URL', 'HUB_HOME', 'HUB_SECRET_KEY', 'HUB_SECRET_KEY_OLD',
                            'VIRTUAL_ENV', 'PYTHONPATH', 'PYTHONHOME', 'OLDPWD')
               and not k.startswith('PYTEST_')}
        # HUB_PROGRESS_SECONDS: `hub seed` without a terminal prints progress every 5 s and at
        # the end; a loaded machine must not add a line a guide cannot show: only the last one.
        env.update(HOME=str(self.home), PYTHONUNBUFFERED='1', LC_ALL='C.UTF-8',
                   HUB_PROGRESS_SECONDS='3600',
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get('PATH', '')]))
        return env

    def hub(self, *args):
        result = subprocess.run([str(Path(sys.executable).parent / 'hub'), *args], cwd=self.root,
                                env=self.environment(), stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=TIMEOUT)
        assert result.returncode == 0, 'hub %s: %s' % (' '.join(args), result.stderr)
        return result.stdout.strip()

    def url(self):
        # `hub db url` starts the server if needed (makes it on first use); no guide stops it.
        if self._url is None:
            self._url = self.hub('db', 'url')
        return self._url

    def fresh(self):
        """The project as cloned, its key as first generated, an empty database `hub`."""
        from hub import connection

        url = self.url()
        key = self.root / '.hub' / 'secret.key'
        if self.key is None and key.exists():
            self.key = key.read_bytes()
        for entry in self.root.iterdir():
            if entry.name in ('.hub', '.venv'):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        self.copy_files()
        if self.key is not None:
            key.write_bytes(self.key)
            key.chmod(0o600)
        (self.root / '.hub' / 'secret.key.old').unlink(missing_ok=True)
        name = connection._parse(url)['database']
        admin = connection.open_database(connection.with_database(url, 'postgres'))
        try:
            admin.connect(reuse_if_open=True)
        except Exception:   # a guide stopped the server: `hub db url` starts it again
            self._url = None
            self.url()
        try:
            admin.execute_sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
            admin.execute_sql('CREATE DATABASE "%s"' % name)
        finally:
            admin.close()

    def paths(self):
        """(real path, path shown in guides), longest first: the normalisation of paths."""
        from hub import connection

        pairs = []
        hub_home = self.root / '.hub'
        if (hub_home / 'pgdata').is_symlink():
            pairs.append((connection.system_place(hub_home), '/home/me/project/.hub'))
        pairs += [(self.root, '/home/me/project'), (self.home, '/home/me')]
        out = []
        for real, shown in pairs:
            for variant in {str(real), os.path.realpath(real)}:
                out.append((variant, shown))
        return sorted(out, key=lambda pair: -len(pair[0]))

    def stop(self):
        """`hub db stop`, then remove the server folder hub made under /var/lib/hub (as root)."""
        if (self.root / '.hub').exists():
            result = subprocess.run([str(Path(sys.executable).parent / 'hub'), 'db', 'stop'],
                                    cwd=self.root, env=self.environment(),
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                    timeout=TIMEOUT)
            remove_system_place(self.root / '.hub')
            assert result.returncode == 0, 'hub db stop: %s' % result.stderr


ROOT_CLAUSE = re.compile(r'; as root its server runs as [^(]*\(to start over: [^)]*\)')


class Run:
    """The state of one guide being run: its project, environment, directory and ids."""

    def __init__(self, project):
        self.project = project
        self.env = project.environment()
        self.cwd = str(project.root)
        self.bindings = Bindings()
        self.placeholders = {}
        self.failed = None

    def fill(self, command):
        command = self.bindings.fill(command)

        def value(match):
            name = match.group(1)
            if name not in PLACEHOLDERS:
                raise AssertionError('unknown placeholder <%s> in a command: add it to '
                                     'tests/test_doc_blocks.py PLACEHOLDERS' % name)
            if name not in self.placeholders:
                self.placeholders[name] = PLACEHOLDERS[name](self)
            return self.placeholders[name]

        return PLACEHOLDER.sub(value, command)

    def query(self, sql):
        from hub import connection

        database = connection.open_database(self.project.url())
        try:
            row = database.execute_sql(sql).fetchone()
        finally:
            database.close()
        assert row is not None, 'no row for a placeholder: %s' % sql
        return row[0]

    def run(self, command):
        """(exit code, printed lines) of one command; the environment and directory carry on."""
        state = Path(self.project.home.parent) / 'state'
        state.mkdir(exist_ok=True)
        script = ('%s\n__rc=$?; env -0 > %s; pwd > %s; exit $__rc\n'
                  % (command, state / 'env', state / 'cwd'))
        result = subprocess.run(['bash', '-c', script], cwd=self.cwd, env=self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=TIMEOUT)
        if (state / 'env').exists():
            pairs = (entry.split('=', 1) for entry in
                     (state / 'env').read_bytes().decode().split('\0') if '=' in entry)
            self.env = {k: v for k, v in pairs if k not in ('PWD', 'OLDPWD', 'SHLVL', '_')}
            self.cwd = (state / 'cwd').read_text().strip()
            (state / 'env').unlink()
        text = result.stdout.decode(errors='replace')
        for real, shown in self.project.paths():
            text = text.replace(real, shown)
        text = ROOT_CLAUSE.sub('', text)
        lines = [line.rstrip() for line in text.splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        return result.returncode, lines


PLACEHOLDERS = {
    'slug': lambda run: run.query('SELECT slug FROM organizations ORDER BY slug LIMIT 1'),
    'org id': lambda run: run.query('SELECT id FROM organizations ORDER BY slug LIMIT 1'),
    'users.id': lambda run: run.query(
        "SELECT m.user_id FROM organization_members m JOIN organizations o "
        "ON o.id = m.organization_id WHERE m.role = 'OWNER' ORDER BY o.slug, m.user_id LIMIT 1"),
    'email': lambda run: run.query(
        "SELECT email FROM users WHERE id = '%s'" % run.fill('<users.id>')),
    'another org': lambda run: run.query(
        "SELECT id FROM organizations WHERE id NOT IN (SELECT organization_id FROM "
        "organization_members WHERE user_id = '%s') ORDER BY slug LIMIT 1"
        % run.fill('<users.id>')),
    'another key': lambda run: __import__('cryptography.fernet').fernet.Fernet
        .generate_key().decode(),
}


# -- the tests ---------------------------------------------------------------------------------

def test_every_not_run_marker_has_a_reason_and_a_block():
    assert not PROBLEMS, '\n'.join(PROBLEMS)


def test_the_convention_is_read_as_documented(tmp_path):
    guide = tmp_path / 'guide.md'
    guide.write_text('\n'.join([
        '<!-- not run -->',
        '```console',
        '$ hub orgs',
        '```',
        '<!-- not run: needs a Citus cluster -->',
        '',
        '```console',
        'output before any command',
        '$ hub seed --orgs 2   # a comment, not part of the command',
        'seeded',
        '$ hub shell --as x <<\'EOF\'',
        'print(1)   # stays: the here-document is the script',
        'EOF',
        '1',
        '```',
        '<!-- not run: needs PostgREST -->',
        '```console',
        '$ curl http://localhost:3000/workflows',
        '```',
    ]))
    blocks, problems = parse(guide, 'guide.md')
    assert problems == [
        'guide.md:1: a not-run marker needs a reason: <!-- not run: <reason> -->',
        'guide.md:5: a not-run marker must be on the line right before a ```console fence',
        'guide.md:8: a console block starts with a `$ ` command',
    ]
    assert [b.skip for b in blocks] == ['no reason given', None, 'needs PostgREST']
    seed, shell = blocks[1].commands
    assert (seed.text, seed.shown) == ('hub seed --orgs 2', ['seeded'])
    assert shell.text == "hub shell --as x <<'EOF'\nprint(1)   # stays: the here-document is the script\nEOF"
    assert shell.shown == ['1']


def test_shown_output_is_compared_with_the_documented_normalisations_only():
    def same(shown, printed):
        return output_matches(shown, printed, Bindings())

    assert same(['exported 419 rows in 0.11 s (3,838 rows/s)'],
                ['exported 419 rows in 2.50 s (167 rows/s)'])
    assert not same(['exported 419 rows'], ['exported 420 rows'])
    assert same(['0001_initial   applied 2026-11-30 19:44:22'],
                ['0001_initial   applied 2027-12-01 08:00:01'])
    assert same(['applied 0001_initial', '...   # one per migration', 'done'],
                ['applied 0001_initial', 'applied 0002', 'applied 0003', 'done'])
    assert same(['a', '...'], ['a'])
    assert not same(['a'], ['a', 'b'])                    # every printed line is shown
    id1, id2, id3 = 'c' + 'a' * 24, 'c' + 'b' * 24, 'c' + 'd' * 24
    assert same([id1, id1], [id2, id2])                   # one shown id, one printed id
    assert not same([id1, id1], [id2, id3])
    assert not same([id1, id3], [id2, id2])
    bindings = Bindings()
    assert output_matches(['key id 5f0c9a1e27b4'], ['key id 21e514791d35'], bindings)
    assert bindings.fill('hub x --kid 5f0c9a1e27b4') == 'hub x --kid 21e514791d35'


class Projects:
    """The session's shared project, and a run per guide."""

    def __init__(self, folder):
        self.folder = folder
        self.shared = None
        self.runs = {}
        self.made = []

    def start(self, guide):
        if guide in NEW_PROJECT:
            project = Project(self.folder / guide.replace('/', '-'))
            self.made.append(project)
        else:
            if self.shared is None:
                self.shared = Project(self.folder / 'shared')
                self.made.append(self.shared)
            project = self.shared
            project.fresh()
        self.runs[guide] = Run(project)
        return self.runs[guide]

    def finish(self, guide):
        run = self.runs.pop(guide)
        if run.project is not self.shared:
            run.project.stop()
            self.made.remove(run.project)

    def close(self):
        for project in self.made:
            project.stop()


@pytest.fixture(scope='module')
def projects(tmp_path_factory):
    if os.environ.get('DATABASE_URL'):
        pytest.skip('DATABASE_URL is set: the guides describe the embedded default project')
    if not (Path(sys.executable).parent / 'hub').exists():
        pytest.skip('not run from a venv with hub installed (%s has no hub)'
                    % Path(sys.executable).parent)
    migrations = sorted(p.name for p in (ROOT / 'hub' / 'migrations').iterdir())
    found = Projects(tmp_path_factory.mktemp('guides'))
    yield found
    found.close()
    # `hub db generate` in a guide must not have written into the checkout's migrations.
    assert sorted(p.name for p in (ROOT / 'hub' / 'migrations').iterdir()) == migrations


def _last_of_guide(block):
    return block is [b for b in BLOCKS if b.guide == block.guide][-1]


@pytest.mark.parametrize('block', BLOCKS, ids=['%s:%d' % (b.guide, b.line) for b in BLOCKS])
def test_console_block_runs_as_shown(block, projects):
    try:
        if block.skip is not None:
            pytest.skip('%s:%d not run: %s' % (block.guide, block.line, block.skip))
        run = projects.runs.get(block.guide) or projects.start(block.guide)
        for command in block.commands:
            text = run.fill(command.text)
            code, printed = run.run(text)
            where = '%s:%d: $ %s' % (block.guide, command.line, text)
            if any(line.startswith('Error:') for line in command.shown):
                assert code != 0, '%s\nexpected to fail, exit 0:\n%s' % (where, '\n'.join(printed))
            else:
                assert code == 0, '%s\nexit %d:\n%s' % (where, code, '\n'.join(printed))
            if command.shown and not output_matches(command.shown, printed, run.bindings):
                diff = difflib.unified_diff(command.shown, printed, 'shown', 'printed',
                                            lineterm='')
                pytest.fail('%s\nprinted output differs from the guide:\n%s'
                            % (where, '\n'.join(diff)), pytrace=False)
    finally:
        if _last_of_guide(block) and block.guide in projects.runs:
            projects.finish(block.guide)
