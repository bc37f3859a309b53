"""Run a command with a pseudo-terminal as its controlling terminal, as a user at a shell.

    code, seen, out = on_terminal([sys.executable, '-m', 'hub', 'seed'], env, streams='stderr')
    code, seen, _ = on_terminal(argv, env, answers={b'(input hidden)': b'KEY\\n'})
"""
import fcntl
import os
import select
import subprocess
import termios


def on_terminal(argv, env, streams=('stdin', 'stdout', 'stderr'), answers=None, timeout=120):
    """Run `argv` with `streams` on a new pseudo-terminal (the others piped); write each answer
    once its prompt appears. Returns (exit code, bytes the terminal showed, piped stdout)."""
    answers = dict(answers or {})
    names = ('stdin', 'stdout', 'stderr')
    streams = (streams,) if isinstance(streams, str) else tuple(streams)
    master, slave = os.openpty()
    tty_fd = names.index(streams[0])

    def controlling_terminal():  # getpass reads /dev/tty: the terminal must be the child's own
        os.setsid()
        fcntl.ioctl(tty_fd, termios.TIOCSCTTY, 0)

    pipe = {name: (slave if name in streams else subprocess.PIPE) for name in names}
    proc = subprocess.Popen(argv, env=env, preexec_fn=controlling_terminal, **pipe)
    os.close(slave)
    seen = b''
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            for prompt in [p for p in answers if p in seen]:
                os.write(master, answers.pop(prompt))
        out, _ = proc.communicate(timeout=timeout)
    finally:
        os.close(master)
    return proc.returncode, seen, out
