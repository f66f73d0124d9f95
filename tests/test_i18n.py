"""Every string the console shows has its Portuguese translation (pt-BR is the default)."""

from __future__ import annotations

import re
from pathlib import Path

from dialer.web import i18n

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "dialer" / "web"
CALL = re.compile(r"""\b_\(\s*(["'])((?:\\.|(?!\1).)+)\1\s*\)""")


def used_strings() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in [*WEB.rglob("*.html"), *WEB.rglob("*.py")]:
        for m in CALL.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(2).replace("\\'", "'").replace('\\"', '"'), str(path.relative_to(ROOT)))
    return found


def test_every_string_of_the_console_is_translated():
    known = i18n.catalogue_ids("pt-BR")
    missing = {s: where for s, where in used_strings().items() if s not in known}
    assert not missing, "add these to dialer/web/locale/pt_BR/LC_MESSAGES/*.po:\n" + "\n".join(
        f"{where}: {s!r}" for s, where in sorted(missing.items())
    )


def test_portuguese_is_the_default_and_english_the_strings_as_written():
    assert i18n.translations("pt-BR").gettext("Campaigns") == "Campanhas"
    assert i18n.translations("en").gettext("Campaigns") == "Campaigns"
    assert i18n.pick("fr") == "pt-BR"
