"""Compiling symbp's LaTeX with the TeX installed on the system, and saying clearly why it failed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from symbp.errors import SymbpError
from symbp.output import PdfCreatorMarker, write_binary_atomically

TEX_TIMEOUT = 180  # seconds for one document, TikZ included
# The document templates set /Creator (symbp VERSION) in the PDF's information dictionary.
PDF_MARKER = PdfCreatorMarker(b"symbp ")
# No shell commands, and TeX may read and write only inside the folder it runs in (kpathsea's
# "paranoid" mode refuses absolute paths, ../ and dot files), so a document can read nothing else.
TEX_FLAGS = ["-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error"]


class TexError(SymbpError):
    """TeX is missing, or it could not compile a document."""


def tex_available() -> bool:
    return shutil.which("pdflatex") is not None


def _commands(name: str) -> list[list[str]]:
    # -norc: no latexmkrc of the user's or the system's changes how TeX is run.
    if shutil.which("latexmk"):
        return [["latexmk", "-norc", "-pdf", "-silent", f"-pdflatex=pdflatex {' '.join(TEX_FLAGS)} %O %S", name]]
    # Twice, so that cross-references settle.
    return [["pdflatex", *TEX_FLAGS, name]] * 2


def tex_environment() -> dict[str, str]:
    """The environment TeX runs in: file reading and writing restricted to its working folder."""
    return {**os.environ, "openin_any": "p", "openout_any": "p", "shell_escape": "f"}


def first_error(log: str) -> str:
    """The first error TeX reports, with the line it happened on, in one line."""
    lines = log.splitlines()
    for position, line in enumerate(lines):
        found = re.match(r"^(?:.*?:(\d+): |! )(.*)$", line)
        if found and (line.startswith("!") or found.group(1)):
            message = found.group(2).strip()
            where = f" (line {found.group(1)})" if found.group(1) else ""
            for after in lines[position + 1:position + 8]:
                at = re.match(r"^l\.(\d+) ?(.*)$", after)
                if at:
                    where = f" (line {at.group(1)}: {at.group(2).strip()[:60]})"
                    break
            return f"{message}{where}"
    return "TeX stopped without an error message; see its log"


def compile_pdf(source: str, name: str = "document") -> bytes:
    """The PDF of a LaTeX source, compiled in a temporary folder; TexError with TeX's first error."""
    if not tex_available():
        raise TexError("--pdf needs pdflatex (TeX Live); install texlive-latex-base, texlive-latex-recommended, "
                       "texlive-pictures and latexmk, or leave out --pdf and compile the .tex yourself")
    with tempfile.TemporaryDirectory(prefix="symbp-tex-") as folder:
        tex = Path(folder) / f"{name}.tex"
        tex.write_text(source, encoding="utf-8")
        for command in _commands(tex.name):
            try:
                result = subprocess.run(command, cwd=folder, capture_output=True, text=True, errors="replace",
                                        timeout=TEX_TIMEOUT, stdin=subprocess.DEVNULL,
                                        env=tex_environment())
            except subprocess.TimeoutExpired:
                raise TexError(f"{name}.tex: TeX did not finish within {TEX_TIMEOUT} s") from None
            if result.returncode != 0:
                break
        pdf = tex.with_suffix(".pdf")
        log = tex.with_suffix(".log")
        if result.returncode != 0 or not pdf.exists():
            text = log.read_text(errors="replace") if log.exists() else result.stdout + result.stderr
            raise TexError(f"{name}.tex: LaTeX failed: {first_error(text)}")
        return pdf.read_bytes()


def write_pdf(path: Path, data: bytes, *, force: bool = False) -> None:
    """Writes a PDF atomically; refuses to replace a PDF that symbp did not make, unless forced."""
    write_binary_atomically(Path(path), lambda stream: stream.write(data), marker=PDF_MARKER, force=force)
