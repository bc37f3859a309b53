"""Run `hub` as a user would (a subprocess with DATABASE_URL), and the checks several files share."""
import os
import signal
import subprocess
import sys


def ctrl_c_reaches():
    """preexec_fn for a child the test will Ctrl-C: SIGINT back to its default action. A suite
    started where SIGINT is ignored (a background job of a non-interactive shell) would
    otherwise hand that to the child, whose Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def hub(url, *args, stdin=None, timeout=300):
    """`hub ARGS` on database `url`: a CompletedProcess with text stdout and stderr."""
    env = dict(os.environ, DATABASE_URL=url)
    return subprocess.run([sys.executable, '-m', 'hub', *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=timeout)


def remove_system_place(home):
    """Remove the server folder hub made under SYSTEM_DIR for the `.hub` at `home`, if any
    (as root, when the server's user could not reach the project or the venv)."""
    import shutil
    from pathlib import Path

    from hub import connection

    if (Path(home) / 'pgdata').is_symlink():
        shutil.rmtree(connection.system_place(home), ignore_errors=True)


def check_shell_and_round_trip(url, other_url, org_id, user_id, folder):
    """`hub shell --as` sees only the user's organization; export -> import into `other_url`
    (migrated here) -> export gives the same document."""
    result = hub(url, 'shell', '--as', user_id,
                 stdin='print(sorted({o.id for o in Organization.select()}))\n')
    assert result.returncode == 0, result.stderr
    assert repr([org_id]) in result.stdout  # only its own organization
    first, second = folder / 'first.json', folder / 'second.json'
    assert hub(url, 'export', '--org', org_id, '-o', str(first)).returncode == 0
    assert hub(other_url, 'db', 'migrate').returncode == 0
    result = hub(other_url, 'import', str(first))
    assert result.returncode == 0, result.stderr
    assert hub(other_url, 'export', '--org', org_id, '-o', str(second)).returncode == 0
    assert second.read_text() == first.read_text()
