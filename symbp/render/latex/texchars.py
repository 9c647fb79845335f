"""Which characters of a spec's text pdflatex can typeset with the documents' preamble.

LaTeX reads its input as UTF-8 and maps each character it knows to a command of the font
encoding (OT1 here: Computer Modern). Characters it has no mapping for (CJK, emoji, Greek as
text) or whose command OT1 lacks (thorn, ogonek) stop the run, so a title carrying one is
rejected before anything is written, with the field and the character named.
"""

from __future__ import annotations

import unicodedata

from symbp.errors import SymbpError

# Latin-1 and Latin Extended-A: every letter LaTeX maps, less those OT1 cannot set (checked by
# compiling each one in tests/test_tex.py).
_NOT_IN_OT1 = set("«»ÐÞðþĄąĐđĘęĦħĮįĸĿŀŉŊŋŦŧŲųſ")
_PUNCTUATION = set("–—‘’“”…•€°×·†‡‰™")
TYPESETTABLE = frozenset(
    {chr(code) for code in range(0x20, 0x7F)}
    | ({chr(code) for code in range(0xA1, 0x180)} - _NOT_IN_OT1 - {"\xad"})
    | _PUNCTUATION
)


def check_typesettable(text: str, field: str) -> None:
    """A SymbpError naming ``field`` and the first character pdflatex cannot typeset, if any."""
    for char in text:
        if char not in TYPESETTABLE:
            name = unicodedata.name(char, "unnamed character")
            raise SymbpError(
                f"{field}: contains {char!r} (U+{ord(char):04X} {name}), which the LaTeX documents cannot "
                "typeset; write it with Latin letters"
            )
