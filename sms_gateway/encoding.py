"""SMS encoding and segmenting (GSM 03.38), pure functions.

A message is GSM-7 when every character is in the basic table or its extension (the
extension characters ``^{}\\[~]|€`` and form feed cost two septets); otherwise it is
UCS-2. One segment carries 160 septets (GSM-7) or 70 UTF-16 units (UCS-2); a
concatenated message loses room to its header: 153 septets or 67 units per segment.
An escape pair and a surrogate pair are never split across segments.

Portuguese needs accents GSM-7 lacks (á â ã ê í ó ô õ ú ç): ``fold_to_gsm`` replaces
them with their base letters so a message stays in the cheaper encoding, on request.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "^{}\\[~]|€\f"
_BASIC = frozenset(GSM_BASIC) - {"\x1b"}
_EXT = frozenset(GSM_EXTENSION)


@dataclass(frozen=True, slots=True)
class SmsInfo:
    encoding: str  # GSM-7 | UCS-2
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    parts: tuple[str, ...]


def is_gsm7(text: str) -> bool:
    return (_BASIC | _EXT).issuperset(text)


def _gsm_cost(c: str) -> int:
    return 2 if c in _EXT else 1


def _ucs2_cost(c: str) -> int:
    return 2 if ord(c) > 0xFFFF else 1


_ALL_GSM = _BASIC | _EXT


@lru_cache(maxsize=4096)  # a régua sends the same few texts with different first names
def analyse(text: str) -> SmsInfo:
    """Encoding, length in units and the segments the text is cut into."""
    gsm = _ALL_GSM.issuperset(text)
    if gsm:
        units = len(text) + sum(text.count(c) for c in _EXT if c in text)
        single, multi, cost = 160, 153, _gsm_cost
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, cost = 70, 67, _ucs2_cost
    encoding = "GSM-7" if gsm else "UCS-2"
    if units <= single:
        return SmsInfo(encoding, units, 1 if text else 0, (text,) if text else ())
    if units == len(text):  # every character costs one unit: cut by position
        parts_ = tuple(text[i : i + multi] for i in range(0, len(text), multi))
        return SmsInfo(encoding, units, len(parts_), parts_)
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for c in text:
        n = cost(c)
        if used + n > multi:
            parts.append("".join(current))
            current, used = [], 0
        current.append(c)
        used += n
    if current:
        parts.append("".join(current))
    return SmsInfo(encoding, units, len(parts), tuple(parts))


_FOLD_EXTRA = {
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "–": "-",
    "—": "-",
    "…": "...",
    "ª": "a",
    "º": "o",
    "\u00a0": " ",
    "ç": "c",
    "Ç": "C",
}


@lru_cache(maxsize=4096)
def fold_to_gsm(text: str) -> str:
    """Replace characters GSM-7 lacks by their closest GSM-7 form (``ã`` -> ``a``).

    Characters that have no such form are kept, so the text then stays UCS-2 rather than
    losing meaning.
    """
    if _ALL_GSM.issuperset(text):  # the common case: nothing to fold
        return text
    folded = text.translate(_FOLD_TABLE)  # Latin letters and typography, in C
    if _ALL_GSM.issuperset(folded):
        return folded
    return "".join(c if c in _ALL_GSM else _FOLD_EXTRA.get(c) or _fold_char(c) for c in folded)


@lru_cache(maxsize=4096)
def _fold_char(c: str) -> str:
    base = "".join(ch for ch in unicodedata.normalize("NFKD", c) if not unicodedata.combining(ch))
    return base if base and all(ch in _BASIC for ch in base) else c


def cap_segments(text: str, max_segments: int, *, fold: bool = False) -> tuple[str, SmsInfo]:
    """Fold if asked, then refuse text longer than ``max_segments`` (ValueError)."""
    if fold:
        text = fold_to_gsm(text)
    info = analyse(text)
    if info.segments > max_segments:
        raise ValueError(
            f"the message needs {info.segments} {info.encoding} segments; the cap is {max_segments}"
        )
    return text, info


# every Latin-1 / Latin Extended-A character GSM-7 lacks, folded once at import
_FOLD_TABLE: dict[int, str] = {ord(c): v for c, v in _FOLD_EXTRA.items() if c not in _ALL_GSM}
for _code in range(0xA0, 0x250):
    _c = chr(_code)
    if _c not in _ALL_GSM and _code not in _FOLD_TABLE:
        _f = _fold_char(_c)
        if _f != _c:
            _FOLD_TABLE[_code] = _f
