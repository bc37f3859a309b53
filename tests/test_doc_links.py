"""Every relative link in README.md and docs/*.md names a file that exists (and, for a Markdown
file, a heading that exists when the link has an #anchor): guides must not point at nothing."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDES = [ROOT / 'README.md', *sorted((ROOT / 'docs').rglob('*.md'))]
LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')


def anchors(path):
    """GitHub's heading anchors of a Markdown file: lowercase, punctuation dropped, spaces -."""
    found = set()
    fenced = False
    for line in path.read_text().splitlines():
        if line.startswith('```'):
            fenced = not fenced
        if fenced or not line.startswith('#'):
            continue
        title = line.lstrip('#').strip().lower()
        found.add(re.sub(r'[^\w\- ]', '', title).replace(' ', '-'))
    found.update(re.findall(r'<a id="([^"]+)"', path.read_text()))  # explicit anchors
    return found


def links(path):
    text = re.sub(r'```.*?```', '', path.read_text(), flags=re.S)  # not inside code blocks
    text = re.sub(r'`[^`\n]*`', '', text)
    for target in LINK.findall(text):
        if not re.match(r'[a-z]+:', target):   # http:, https:, mailto: are not checked here
            yield target


def test_every_relative_link_in_the_guides_resolves():
    broken = []
    for guide in GUIDES:
        for target in links(guide):
            file, _, anchor = target.partition('#')
            path = (guide.parent / file).resolve() if file else guide
            if not path.exists():
                broken.append('%s: %s (no such file)' % (guide.relative_to(ROOT), target))
            elif anchor and path.suffix == '.md' and anchor not in anchors(path):
                broken.append('%s: %s (no such heading)' % (guide.relative_to(ROOT), target))
    assert not broken, '\n'.join(broken)
