"""A copy of the project in a temporary folder, to edit its models and write its migrations
without touching the checkout: `hub` runs from the copy (PYTHONPATH), on a database of ours."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import hub

ROOT = Path(hub.__file__).resolve().parent.parent
_SKIP = shutil.ignore_patterns('__pycache__', '*.pyc')


class Project:
    """hub/ (with scripts/ as hub/cli and fixtures/ as hub/fixtures, as installed) in `folder`."""

    def __init__(self, folder):
        self.root = Path(folder)
        self.package = self.root / 'hub'
        shutil.copytree(ROOT / 'hub', self.package, ignore=_SKIP)
        shutil.copytree(ROOT / 'scripts', self.package / 'cli', ignore=_SKIP)
        shutil.copytree(ROOT / 'fixtures', self.package / 'fixtures', ignore=_SKIP)
        self.migrations = self.package / 'migrations'
        self.models = self.package / 'models.py'

    def edit(self, relative, old, new):
        """Replace the one occurrence of `old` in the copy's file `relative` (hub/...)."""
        path = self.root / relative
        text = path.read_text()
        assert text.count(old) == 1, '%r is not in %s exactly once' % (old, relative)
        path.write_text(text.replace(old, new))

    def hub(self, url, *args, env=None, stdin=None):
        """`python -m hub ARGS` with the copy first on the path: a CompletedProcess."""
        environ = dict(os.environ, DATABASE_URL=url, PYTHONPATH=str(self.root), **(env or {}))
        return subprocess.run([sys.executable, '-m', 'hub', *args], cwd=self.root, env=environ,
                              input=stdin, capture_output=True, text=True, timeout=300)

    def script(self, url, path, *args):
        """Run the Python file `path` with the copy's hub imported (its models, migrations)."""
        environ = dict(os.environ, DATABASE_URL=url, PYTHONPATH=str(self.root))
        return subprocess.run([sys.executable, str(path), *args], cwd=self.root, env=environ,
                              capture_output=True, text=True, timeout=300)

    def new_files(self):
        """Migration files of the copy that the checkout does not have."""
        ours = {p.name for p in (ROOT / 'hub' / 'migrations').glob('[0-9]*.py')}
        return sorted(p for p in self.migrations.glob('[0-9]*.py') if p.name not in ours)
