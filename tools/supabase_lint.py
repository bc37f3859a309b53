"""Run Supabase's database linter (the checks `supabase db advisors` runs) on a database.

    python tools/supabase_lint.py SPLINTER_DIR URL     # exit 1 on any WARN or ERROR finding

SPLINTER_DIR is a checkout of github.com/supabase/splinter (not shipped here): each
lints/*.sql creates one view `lint."NNNN_name"`. They are created and read inside one
transaction that is rolled back, so the database is left as it was; a check whose view cannot
be created here (a Supabase service this database lacks: storage, pg_graphql, ...) is listed as
not applicable. URL must log in as a superuser (supabase_admin) to read every catalog.
"""
import sys
from pathlib import Path

import psycopg2


def lint(splinter_dir, url):
    """(findings [(check, level, detail)], checks run [names], not applicable {name: reason})."""
    findings, ran, skipped = [], [], {}
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute('CREATE SCHEMA lint')
            for path in sorted(Path(splinter_dir, 'lints').glob('*.sql')):
                cur.execute('SAVEPOINT lint')
                try:
                    cur.execute(path.read_text())
                    cur.execute('SELECT name, level, detail FROM lint."%s"' % path.stem)
                    rows = cur.fetchall()
                except psycopg2.Error as exc:
                    cur.execute('ROLLBACK TO SAVEPOINT lint')
                    skipped[path.stem] = str(exc).strip().splitlines()[0]
                    continue
                ran.append(path.stem)
                findings.extend((path.stem, level, detail) for _, level, detail in rows)
    finally:
        conn.rollback()
        conn.close()
    return findings, ran, skipped


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    findings, ran, skipped = lint(argv[1], argv[2])
    for check, level, detail in findings:
        print('%-5s %s: %s' % (level, check, detail))
    print('%d checks run, %d not applicable here (%s)' % (
        len(ran), len(skipped), ', '.join(sorted(skipped)) or 'none'), file=sys.stderr)
    return 1 if any(level in ('WARN', 'ERROR') for _, level, _ in findings) else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
