"""Prisma-compatible text ids (cuid style): 'c' + 24 lowercase base-36 characters.

    >>> import random
    >>> from hub.ids import new_id, stable_id
    >>> new_id(random.Random(7))
    'c8co40kd3oe7o4219oo64zogd'
    >>> len(new_id())
    25
    >>> stable_id('template', 'lead-qualification')  # the same on every machine, every run
    'cuth0pzewq6kcd957ltq0w7zn'

Given a `random.Random`, ids are reproducible (the seeder draws them from each organization's
own stream); without one they come from the operating system's generator.
"""
import hashlib
import random

ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz'
_SYSTEM = random.SystemRandom()


def new_id(rng=None):
    """A new id; deterministic when `rng` (a random.Random) is given."""
    value = (rng or _SYSTEM).getrandbits(124)
    chars = []
    for _ in range(24):
        value, digit = divmod(value, 36)
        chars.append(ALPHABET[digit])
    return 'c' + ''.join(chars)


def stable_id(*parts):
    """An id derived from `parts` alone, e.g. a fixture file's name."""
    digest = hashlib.blake2b('\x1f'.join(parts).encode(), digest_size=16).digest()
    return new_id(random.Random(digest))
