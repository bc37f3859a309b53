"""`hub seed --orgs N` holds the same memory whatever N is, and Ctrl-C leaves one honest line.

Before the fix every organization id was made and kept before the first row: 3,000,000
organizations took 30 s and 430 MB before anything was written. Here a seed of 1,000 tiny
organizations runs to the end, and one of 2,000,000 is interrupted once it has committed as
many: the peak RSS of the `hub` process (and of the generator it forks, which wait4 counts
too) must be the same within a bound far below what 2,000,000 ids held at once take (~240 MB).
"""
import os
import signal
import subprocess
import sys

from hub import connection
from tests.commands import ctrl_c_reaches

SMALL, LARGE = 1000, 2000000
#: The two runs reach the same batch sizes; what may differ is noise (allocator, page cache).
BOUND_KB = 25 * 1024


def start(url, orgs, **options):
    env = dict(os.environ, DATABASE_URL=url, HUB_PROGRESS_SECONDS='0')
    return subprocess.Popen([sys.executable, '-m', 'hub', 'seed', '--orgs', str(orgs),
                             '--scale', 'tiny', '--yes', '--as-of', '2025-01-31'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=ctrl_c_reaches,
                            **options)


def finish(process):
    """(exit code, peak RSS in KB of the process and the children it waited for, stderr)."""
    err = process.stderr.read()
    process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    process.stderr.close()
    return process.returncode, usage.ru_maxrss, err


def committed(url):
    database = connection.open_database(url)
    try:
        return database.execute_sql('SELECT count(*) FROM organizations').fetchone()[0]
    finally:
        database.close()


def test_peak_memory_is_flat_in_orgs_and_ctrl_c_says_what_stays(databases, migrated_template,
                                                                secret):
    small_url = databases.url(databases.create(template=migrated_template))
    code, small_kb, err = finish(start(small_url, SMALL))
    assert code == 0, err

    large_url = databases.url(databases.create(template=migrated_template))
    process = start(large_url, LARGE)
    # Progress starts at once, after the setup notices (migrations, policies, marketplace).
    setup = []
    for line in process.stderr:
        if line.startswith('seeding'):
            break
        setup.append(line)
    assert line.strip() == 'seeding 2,000,000 organizations', setup
    for line in process.stderr:
        if line.startswith('seeded ') and int(line.split()[1].replace(',', '')) >= SMALL:
            break
    process.send_signal(signal.SIGINT)
    code, large_kb, err = finish(process)
    assert code == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('interrupted: '), err
    stays = committed(large_url)
    assert SMALL <= stays < LARGE
    assert '{:,} organizations committed stay'.format(stays) in lines[0]
    assert 'Aborted' not in err and 'Traceback' not in err
    assert large_kb - small_kb < BOUND_KB, (small_kb, large_kb)
