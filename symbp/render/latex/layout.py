"""How wide a printed formula will be on the page, estimated without running TeX.

The documents decide where to break a display (a justification under its step, a long sum over
several rows) from these estimates. The estimate reads the LaTeX that SymPy's printer produced,
token by token, with the widths of Computer Modern at 11 pt; it never changes that text. It errs
on the wide side, so that a display judged to fit does fit.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Text block of the documents: A4 with 2.3 cm margins, in points.
TEXT_WIDTH_PT = 464.0

_TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|[{}^_]|[^\\{}^_]", re.DOTALL)
_SCRIPT = 0.75  # sub- and superscripts are set at 8 pt (a little wider than 8/11 with their kerns)
_GLYPH = 6.6  # an italic letter of cmmi11 (w and v are wider, i and j narrower)
_DIGIT = 5.5
_BINARY = 13.5  # + or - with its medium spaces
_RELATION = 14.5  # = with its thick spaces
_TEXT_CHAR = 5.2
# Measured with pdflatex on long gradients of the typesetting catalogue (478 pt where the sum of the
# widths above gave 427): kerns, italic corrections and grown delimiters add about an eighth.
_CALIBRATION = 1.13

_SPACES = {r"\,": 1.8, r"\:": 2.4, r"\;": 3.1, r"\!": -1.8, r"\ ": 3.7, r"\quad": 11.0, r"\qquad": 22.0}
_ZERO = {r"\left", r"\right", r"\bigl", r"\bigr", r"\Bigl", r"\Bigr", r"\displaystyle", r"\limits",
         r"\color", r"\small", r"\mathclap", r"\allowbreak"}
_BINARY_COMMANDS = {r"\cdot", r"\odot", r"\times", r"\circ", r"\pm", r"\otimes"}
_RELATION_COMMANDS = {r"\coloneqq", r"\leftarrow", r"\rightarrow", r"\approx", r"\leq", r"\geq", r"\neq", r"\to"}
_WORD_COMMANDS = {r"\log": 3, r"\exp": 3, r"\tanh": 4, r"\sinh": 4, r"\cosh": 4, r"\sin": 3, r"\cos": 3,
                  r"\max": 3, r"\min": 3, r"\operatorname": 0}
_TEXT_ARGUMENT = {r"\text", r"\textit", r"\mathrm", r"\operatorname", r"\textbf", r"\why"}
_WRAPPERS = {r"\mathbf": 1.1, r"\boldsymbol": 1.1, r"\hat": 1.0, r"\vec": 1.0, r"\bar": 1.0, r"\mathcal": 1.3,
             r"\mathbb": 1.1, r"\tilde": 1.0}


class _Reader:
    def __init__(self, latex: str):
        self.tokens = _TOKEN.findall(latex)
        self.position = 0

    def next(self) -> str | None:
        if self.position >= len(self.tokens):
            return None
        token = self.tokens[self.position]
        self.position += 1
        return token

    def group(self) -> list[str]:
        """The tokens of the next argument: a braced group, or a single token."""
        token = self.next()
        if token != "{":
            return [token] if token is not None else []
        depth, out = 1, []
        while (token := self.next()) is not None:
            if token == "{":
                depth += 1
            elif token == "}":
                depth -= 1
                if depth == 0:
                    break
            out.append(token)
        return out


def _text_width(tokens: list[str]) -> float:
    # Text inside \text{...}: letters, and any math in it measured as math.
    joined = "".join(tokens)
    if "$" in joined:
        parts = joined.split("$")
        return sum(_TEXT_CHAR * len(part) if n % 2 == 0 else estimated_width(part) for n, part in enumerate(parts))
    return _TEXT_CHAR * len(joined)


def _width(tokens: list[str]) -> float:
    reader = _Reader("")
    reader.tokens = tokens
    total = 0.0
    while (token := reader.next()) is not None:
        if token in ("^", "_"):
            script = _width(reader.group()) * _SCRIPT
            # A sub- and a superscript stack: count the wider one only.
            following = reader.tokens[reader.position] if reader.position < len(reader.tokens) else None
            if following in ("^", "_") and following != token:
                reader.next()
                script = max(script, _width(reader.group()) * _SCRIPT)
            total += script
        elif token == "{":
            reader.position -= 1
            total += _width(reader.group())
        elif token == "}" or token == "&" or token.isspace():
            continue
        elif token == r"\begin":
            reader.group()  # the environment's name: cases, matrix ...
            body, depth = [], 1
            while (inner := reader.next()) is not None:
                depth += {r"\begin": 1, r"\end": -1}.get(inner, 0)
                if depth == 0:
                    reader.group()
                    break
                body.append(inner)
            rows, row = [], []
            for inner in body:
                if inner == "\\\\":
                    rows.append(row)
                    row = []
                else:
                    row.append(" " if inner == "&" else inner)
            total += max((_width(r) + (_SPACES[r"\quad"] if "&" in "".join(body) else 0.0) for r in [*rows, row]),
                         default=0.0) + 10.0
        elif token == r"\frac":
            total += max(_width(reader.group()), _width(reader.group())) + 2.4
        elif token == r"\sqrt":
            total += _width(reader.group()) + 9.0
        elif token == r"\boxed":
            total += _width(reader.group()) + 7.0
        elif token in _TEXT_ARGUMENT:
            total += _text_width(reader.group()) * (0.9 if token == r"\why" else 1.0)
        elif token in _WRAPPERS:
            total += _width(reader.group()) * _WRAPPERS[token]
        elif token in (r"\sum", r"\prod"):
            total += 16.0
        elif token in _SPACES:
            total += _SPACES[token]
        elif token in _ZERO:
            continue
        elif token in _BINARY_COMMANDS:
            total += _BINARY
        elif token in _RELATION_COMMANDS:
            total += _RELATION + 4.0
        elif token in _WORD_COMMANDS:
            total += _WORD_COMMANDS[token] * _TEXT_CHAR + 1.7
        elif token.startswith("\\") and len(token) > 2:
            total += _GLYPH + 0.5  # a Greek letter, \partial, \infty ...
        elif token in "+-":
            total += _BINARY
        elif token in "=<>":
            total += _RELATION
        elif token in "()[]|":
            total += 4.3
        elif token in ",;":
            total += 3.1
        elif token.isdigit() or token == ".":
            total += _DIGIT if token != "." else 3.0
        elif token == "'":
            total += 2.8
        else:
            total += _GLYPH
    return total


@lru_cache(maxsize=65536)
def estimated_width(latex: str) -> float:
    """The width in points that ``latex`` (math, display style, 11 pt) takes on the page; errs wide."""
    return _width(_TOKEN.findall(latex)) * _CALIBRATION
