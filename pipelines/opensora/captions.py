"""Caption cleaning as the Open-Sora / PixArt / DeepFloyd T5 captions were cleaned for training.

Upstream runs its ``clean_caption`` twice on every prompt before T5 (``text_preprocessing``). It
lower-cases, strips URLs, HTML, @handles, hashtags and long numbers, CJK characters, file names,
shop/download boilerplate and odd punctuation, and unifies dashes and quotes. Prompts written like
the training captions follow them a little better.

This is a re-implementation with the standard library only (``re``, ``html``, ``urllib``,
``unicodedata``) instead of ftfy + BeautifulSoup:

- HTML is turned into text with ``html.parser`` (the parser BeautifulSoup used upstream);
- ftfy's ``fix_text`` is replaced by the parts of it that matter for typed prompts: ligatures and
  full-width characters folded (NFKC on those), curly quotes straightened, control characters and
  odd line breaks removed, NFC. Mojibake repair (``cafÃ©`` → ``café``) is not done.
"""

from __future__ import annotations

import html
import re
import unicodedata
import urllib.parse
from html.parser import HTMLParser

Rule = tuple[re.Pattern, str]


def _rules(*pairs: tuple[str, str]) -> list[Rule]:
    return [(re.compile(pattern), replacement) for pattern, replacement in pairs]


_SHOP_DOMAINS = r"[a-zA-Z0-9.\-]+\.(?:com|co|ru|net|org|edu|gov|it)[\w/-]*\b/?(?!@)"
_URLS = _rules(
    # scheme prefixes ("https://", "www:…") and bare domains; two passes as upstream does them
    (rf"\b(?:https?:(?:/{{1,3}}|[a-zA-Z0-9%])|{_SHOP_DOMAINS})", ""),
    (rf"\b(?:www:(?:/{{1,3}}|[a-zA-Z0-9%])|{_SHOP_DOMAINS})", ""),
)
_DASHES = (
    "\u002d\u058a\u05be\u1400\u1806\u2010-\u2015\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u301c\u3030\u30a0"
    "\ufe31\ufe32\ufe58\ufe63\uff0d"
)
_FILE_TYPES = "png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4"
_BEFORE_FIX = _rules(
    (r"@\w+\b", ""),  # @handles
    (r"[\u31c0-\u9fff]+", ""),  # CJK strokes … unified ideographs (U+31C0–U+9FFF, one block run)
    (f"[{_DASHES}]+", "-"),  # every kind of dash
    (r"[`´«»“”¨]", '"'),
    (r"[‘’]", "'"),
    (r"&quot;?", ""),
    (r"&amp", ""),
    (r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}", " "),  # IP addresses
    (r"\d:\d\d\s+$", ""),  # trailing article ids
    (r"\\n", " "),  # a literal backslash-n
    (r"#\d{1,3}\b", ""),  # "#12"
    (r"#\d{5,}\b", ""),  # "#12345…"
    (r"\b\d{6,}\b", ""),  # long numbers
    (rf"\S+\.(?:{_FILE_TYPES})", ""),  # file names
    (r"[\"']{2,}", '"'),
    (r"\.{2,}", " "),
    (r"[#®•©™&@·º½¾¿¡§~)(\]\[}{|\\/*]+", " "),  # decoration and brackets
    (r"\s+\.\s+", " "),
)
_AFTER_FIX = _rules(
    (r"\b[a-zA-Z]{1,3}\d{3,15}\b", ""),  # product codes: jc6640
    (r"\b[a-zA-Z]+\d+[a-zA-Z]+\b", ""),  # jc6640vc
    (r"\b\d+[a-zA-Z]+\d+\b", ""),  # 6640vc231
    (r"(worldwide\s+)?(free\s+)?shipping", ""),
    (r"(free\s)?download(\sfree)?", ""),
    (r"\bclick\b\s(?:for|on)\s\w+", ""),
    (rf"\b(?:{_FILE_TYPES})(\simages?)?", ""),
    (r"\bpage\s+\d+\b", ""),
    (r"\b\d*[a-zA-Z]+\d+[a-zA-Z]+\d+[a-zA-Z\d]*\b", " "),  # j2d1a2a…
    (r"\b\d+\.?\d*[xх×]\d+\.?\d*\b", ""),  # sizes: 1920x1080
    (r"\b\s+:\s+", ": "),
    (r"(\D[,./])\b", r"\1 "),  # a space after punctuation glued to the next word
    (r"\s+", " "),
)
_TRIM = _rules(
    (r"^[\"']([\w\W]+)[\"']$", r"\1"),  # surrounding quotes
    (r"^['_,\-:;]", ""),
    (r"['_,\-:+]$", ""),
    (r"^\.\S+$", ""),
)
_SEPARATORS = re.compile(r"[-_]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]")
_FOLD = re.compile(
    "[\u0132\u0133\u0149\u01c4-\u01cc\u01f1-\u01f3\ufb00-\ufb06\u3000\uff01-\uffee]"
)  # ligatures, widths
_QUOTES = str.maketrans(
    {**dict.fromkeys("\u02bc\u2018\u2019\u201a\u201b", "'"), **dict.fromkeys("“”„‟", '"')}
)


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment (tags dropped, entities decoded, scripts skipped)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_to_text(text: str) -> str:
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def fix_text(text: str) -> str:
    """The typed-text part of ftfy's ``fix_text``: fold ligatures and full-width forms, straighten
    quotes, drop control characters, unify line breaks, NFC."""
    text = _FOLD.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    text = text.translate(_QUOTES)
    text = re.sub("\r\n|[\r\u2028\u2029\x85]", "\n", text)
    return unicodedata.normalize("NFC", _CONTROL.sub("", text))


def _apply(rules: list[Rule], text: str) -> str:
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


def clean_caption(caption: str) -> str:
    """One cleaning pass (upstream ``clean_caption``)."""
    text = urllib.parse.unquote_plus(str(caption)).strip().lower()
    text = text.replace("<person>", "person")
    text = html_to_text(_apply(_URLS, text))
    text = _apply(_BEFORE_FIX, text)
    if len(_SEPARATORS.findall(text)) > 3:  # this-is-my-cute-cat / this_is_my_cute_cat
        text = _SEPARATORS.sub(" ", text)
    text = html.unescape(html.unescape(fix_text(text))).strip()
    text = _apply(_AFTER_FIX, text)
    return _apply(_TRIM, text).strip()


def clean(prompt: str) -> str:
    """Upstream's ``text_preprocessing``: the cleaning pass run twice, as in training."""
    return clean_caption(clean_caption(prompt))
