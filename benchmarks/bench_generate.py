"""Time the seeder's generator (pure Python, no database) against another revision's.

    $ python -m benchmarks.bench_generate --baseline main         # or any git revision
    $ python -m benchmarks.bench_generate --baseline HEAD~3 --orgs 4 --scale medium --samples 24

`hub seed` is bound by PostgreSQL (see bench_seed), so a change to the generator's own speed
hardly shows there on a shared machine. This loads hub/seed/generate.py of `--baseline` (from
git) beside the working tree's, both with the working tree's other modules, and generates the
same organizations with each in turn (alternating which goes first), timing CPU seconds of this
process. A third run of the baseline against itself shows what "no difference" measures as here.
Ratios of the minimum and of the median; the output must be the same (checked).
"""
import argparse
import datetime
import gc
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = b'rZHHKnMDOvZUQzYJ05APnmwY3RInO_ahzt5pGyDpRwE='


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare(first, second, orgs, scale, samples):
    """{label: [CPU seconds per sample]} for two generator modules, alternating."""
    from hub.crypto import Credentials

    runs = {}
    for label, module in (('a', first), ('b', second)):
        ctx = module.Context(seed=1, scale=module.SCALES[scale], as_of=datetime.date(2025, 1, 31),
                             templates=[], credentials=Credentials(KEY))
        runs[label] = (module, ctx, [])
    outputs = {}
    for n in range(samples):
        for label in ('a', 'b') if n % 2 == 0 else ('b', 'a'):
            module, ctx, times = runs[label]
            gc.collect()
            started = time.process_time()
            made = [module.generate_org(ctx, i) for i in range(orgs)]
            times.append(time.process_time() - started)
            outputs[label] = [org.tables for org in made]
    if outputs['a'] != outputs['b']:
        raise SystemExit('the two generators wrote different rows')
    return runs['a'][2], runs['b'][2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--baseline', required=True, help='git revision to compare with')
    parser.add_argument('--orgs', type=int, default=4)
    parser.add_argument('--scale', default='medium')
    parser.add_argument('--samples', type=int, default=24)
    args = parser.parse_args(argv)

    source = subprocess.run(['git', '-C', ROOT, 'show', '%s:hub/seed/generate.py' % args.baseline],
                            capture_output=True, text=True, check=True).stdout
    import hub.seed.generate as current

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'generate_baseline.py')
        with open(path, 'w') as fh:
            fh.write(source)
        baseline, again = load(path, 'generate_baseline'), load(path, 'generate_baseline_again')
        print('%d %s organizations per sample, %d samples each, CPU seconds'
              % (args.orgs, args.scale, args.samples))
        for name, other in (('working tree', current), ('%s again' % args.baseline, again)):
            base, new = compare(baseline, other, args.orgs, args.scale, args.samples)
            print('%-24s / %s: min %.3f s / %.3f s = %.3f, median %.3f s / %.3f s = %.3f'
                  % (name, args.baseline, min(new), min(base), min(new) / min(base),
                     statistics.median(new), statistics.median(base),
                     statistics.median(new) / statistics.median(base)))
        sys.stdout.flush()


if __name__ == '__main__':
    main()
