"""Faker, called once: pools of names, companies and phrases that the seeder samples from.

    >>> from hub.seed.pools import pools, fake
    >>> p = pools()                       # built once per process, the same on every machine
    >>> len(p.first_names) >= 300, p.companies[0] == pools().companies[0]
    (True, True)
    >>> fake().agent_tagline() != ''      # the custom provider, for ad-hoc use
    True

Faker costs 7-100 us per call (`company()` ~100 us): calling it per field caps a seeder at a
few thousand rows a second. So Faker fills fixed pools once, from a fixed seed, and each
organization's own `random.Random` samples them: the data stays Faker-realistic, costs a list
index per field, and does not depend on how many values other organizations drew.

Faker is pinned to one exact version in setup.cfg: its output changes between releases, and
with it every seeded row.
"""
import random
import re
import unicodedata

from hub.seed import catalog

POOL_SEED = 20240611
POOL_SIZES = {'first_names': 400, 'last_names': 600, 'companies': 400, 'catch_phrases': 300,
              'sentences': 400, 'jobs': 200, 'cities': 150, 'subjects': 300}

_POOLS = None
_FAKE = None


def _provider_class():
    from faker.providers import BaseProvider

    class NeuroFlowProvider(BaseProvider):
        """AI-platform vocabulary for Faker: models, tools, agent voices, support subjects."""

        _problems = ('cannot', 'is unable to', 'keeps failing to', 'times out when trying to')
        _actions = ('export invoices to CSV', 'reset the password', 'connect Slack',
                    'sync contacts from HubSpot', 'upload a PDF over 20 MB',
                    'invite a teammate', 'change the billing email', 'run the nightly workflow',
                    'see last month\'s usage', 'enable SSO with Okta', 'download the audit log',
                    'rotate the API key', 'import a Google Sheet', 'publish a template')
        _who = ('Customer', 'Admin', 'Our team', 'A new user', 'Finance')

        def tool_name(self):
            return self.random_element(catalog.TOOLS)

        def agent_persona(self):
            return self.random_element(catalog.PERSONA_NAMES)

        def agent_tagline(self):
            archetype = self.random_element(catalog.ARCHETYPES)
            return '%s %s' % (self.agent_persona(), archetype.title)

        def support_subject(self):
            return '%s %s %s' % (self.random_element(self._who),
                                 self.random_element(self._problems),
                                 self.random_element(self._actions))

    return NeuroFlowProvider


def fake():
    """The seeded Faker (en_US) with the NeuroFlow provider added."""
    global _FAKE
    if _FAKE is None:
        from faker import Faker

        instance = Faker('en_US')
        instance.add_provider(_provider_class())
        instance.seed_instance(POOL_SEED)
        _FAKE = instance
    return _FAKE


class Pools:
    """Tuples of Faker values; sample them with `rng.choice(pool)`."""

    def __init__(self, faker):
        def unique(method, size):
            seen = {}
            # Bounded: a provider with fewer distinct values than `size` ends the loop early.
            for _ in range(size * 4):
                value = method()
                seen.setdefault(value, None)
                if len(seen) == size:
                    break
            return tuple(seen)

        self.first_names = unique(faker.first_name, POOL_SIZES['first_names'])
        self.last_names = unique(faker.last_name, POOL_SIZES['last_names'])
        self.companies = unique(faker.company, POOL_SIZES['companies'])
        self.catch_phrases = unique(faker.catch_phrase, POOL_SIZES['catch_phrases'])
        self.sentences = unique(lambda: faker.sentence(nb_words=12), POOL_SIZES['sentences'])
        self.jobs = unique(faker.job, POOL_SIZES['jobs'])
        self.cities = unique(faker.city, POOL_SIZES['cities'])
        self.subjects = unique(faker.support_subject, POOL_SIZES['subjects'])


def pools():
    """The process-wide pools (about 0.3 s of Faker the first time)."""
    global _POOLS
    if _POOLS is None:
        _POOLS = Pools(fake())
    return _POOLS


def ascii_slug(text, sep='-'):
    """'Müller, Hahn & Co' -> 'muller-hahn-co' (for slugs, e-mail local parts, domains)."""
    text = unicodedata.normalize('NFKD', text).encode('ascii', 'ignore').decode()
    return re.sub(r'[^a-z0-9]+', sep, text.lower()).strip(sep)


def stream(seed, index):
    """The random stream of organization `index` under `seed`: independent of every other."""
    import hashlib

    digest = hashlib.blake2b(('neuroflow-seed\x1f%s\x1f%d' % (seed, index)).encode(),
                             digest_size=16).digest()
    return random.Random(int.from_bytes(digest, 'big'))
