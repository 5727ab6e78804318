"""The README documents every environment variable the settings and gunicorn.conf.py read."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_READ = re.compile(r'''(?:env(?:\.[a-z_]+)?|os\.environ\.get)\(\s*"([A-Z][A-Z0-9_]+)"''')


def test_every_environment_variable_is_documented():
    read = set()
    for source in ("refresh_project/settings.py", "gunicorn.conf.py"):
        read |= set(_READ.findall((ROOT / source).read_text()))
    assert len(read) > 40  # the pattern still finds them
    readme = (ROOT / "README.md").read_text()
    assert sorted(name for name in read if f"`{name}`" not in readme) == []
