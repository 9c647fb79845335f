"""Reading symbp's pages in the tests: the text a reader sees, the elements, and every address a page names."""

from __future__ import annotations

from html.parser import HTMLParser

# What would show that a formula was left as TeX source.
RAW_TEX = ("\\", "$", "\\frac", "\\delta", "^{", "_{")


class PageReader(HTMLParser):
    """Collects the visible text (not the style sheet), the tags, and the attributes that name resources."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.tags: list[str] = []
        self.addresses: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("style", "script"):
            self._skipping += 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data", "poster", "srcset") and value:
                self.addresses.append(value)

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skipping -= 1

    def handle_data(self, data):
        if not self._skipping:
            self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)


def read_page(html: str) -> PageReader:
    reader = PageReader()
    reader.feed(html)
    reader.close()
    return reader


def external_addresses(html: str) -> list[str]:
    """Every address the page would fetch or link: attributes, and url()/@import in its CSS."""
    reader = read_page(html)
    found = [address for address in reader.addresses if not address.startswith("#")]
    for marker in ("url(", "@import"):
        start = 0
        while (position := html.find(marker, start)) >= 0:
            if not html.startswith("url(#", position):  # a reference within the page (the SVG's arrow head)
                found.append(html[position:position + 60])
            start = position + 1
    return found


def raw_tex_in(text: str) -> list[str]:
    return [pattern for pattern in RAW_TEX if pattern in text]
