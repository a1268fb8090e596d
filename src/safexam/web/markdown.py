"""Question prompts (and exam descriptions) as Markdown, rendered to safe HTML.

An educator writes a prompt in CommonMark with tables; the page gets HTML
that can hold no script, no event handler, no style and no remote resource,
whatever the prompt says:

- markdown-it-py renders with raw HTML off, so ``<script>`` in a prompt is
  shown as text, and it refuses ``javascript:``, ``vbscript:`` and ``file:``
  links itself;
- nh3 then keeps only an allow-list of tags, attributes, classes and URL
  schemes (a second, independent wall: a renderer bug cannot let markup
  through that the allow-list does not name);
- fenced code is highlighted by Pygments into ``<span class="k">`` and the
  like: the page's Content-Security-Policy forbids inline styles, so the
  colours live in ``static/css/code.css`` (written by
  ``scripts/code-css.py``);
- images are kept only when they come from this site: the policy would block
  any other (``img-src`` falls back to ``'self'``), and fetching one from
  elsewhere would tell that host who is taking the exam and when. A remote
  image is shown as its description (the alt text) instead;
- table alignment becomes a class (markdown-it writes it as an inline style);
- headings move down to fit under the page's own: a prompt's ``#`` sits under
  the page's "Question n" (``h2``), so it becomes an ``h3``;
- links open in a new tab (leaving the exam page mid-answer is the last thing a
  student wants), say so to screen readers, and carry
  ``rel="noopener noreferrer nofollow"``.

Five hundred students open the same exam at the bell, so each prompt is
rendered once per process (:func:`render_markdown` is cached on its text).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

__all__ = [
    "CODE_CLASS",
    "CODE_CSS",
    "CODE_STYLE",
    "highlight_code",
    "markdown_filter",
    "render_markdown",
    "token_rules",
    "with_token_rules",
]

#: The Pygments style of ``static/css/code.css``: every token colour of it has
#: a contrast of at least 5:1 on its white background (WCAG AA asks 4.5:1).
CODE_STYLE = "xcode"
#: The class of a highlighted block's ``<pre>``, the scope of the rules in code.css.
CODE_CLASS = "highlight"
#: How many different texts are kept rendered (a prompt is a few KB at most).
CACHE_SIZE = 4096
_NEW_TAB = "(opens in a new tab)"
_ALIGN = {"left", "center", "right"}

#: The stylesheet holding the token colours (linked from base.html).
CODE_CSS = Path(__file__).parent / "static" / "css" / "code.css"
_BEGIN = "/* BEGIN generated token rules */"
_END = "/* END generated token rules */"

_formatter = HtmlFormatter(nowrap=True)


def token_rules() -> str:
    """The CSS of :data:`CODE_STYLE`'s token colours, scoped to highlighted blocks."""
    formatter = HtmlFormatter(style=CODE_STYLE)
    scope = f".{CODE_CLASS}"
    # The stubs leave these two untyped; both return a list of CSS rule strings.
    background: list[str] = formatter.get_background_style_defs(scope)  # type: ignore[no-untyped-call]
    tokens: list[str] = formatter.get_token_style_defs(scope)  # type: ignore[no-untyped-call]
    rules = [*background, *tokens]
    return "\n".join(rules)


def with_token_rules(css: str) -> str:
    """``css`` with the text between its two markers replaced by :func:`token_rules`."""
    head, found, rest = css.partition(_BEGIN)
    _old, found_end, tail = rest.partition(_END)
    if not (found and found_end):
        raise ValueError(f"code.css lacks the markers {_BEGIN!r} and {_END!r}")
    return f"{head}{_BEGIN}\n{token_rules()}\n{_END}{tail}"


# --- rendering -----------------------------------------------------------


def _highlighted(code: str, language: str) -> str | None:
    """``code`` as Pygments token spans, or None when the language is unknown."""
    if not language:
        return None
    try:
        lexer = get_lexer_by_name(language)
    except ClassNotFound:
        return None
    return highlight(code, lexer, _formatter)


def _fence(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    language = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""
    body = _highlighted(token.content, language)
    if body is None:
        return f"<pre><code>{escape(token.content)}</code></pre>\n"
    return f'<pre class="{CODE_CLASS}"><code>{body}</code></pre>\n'


def _same_site(url: str) -> bool:
    """An absolute path on this site (``/static/x.png``), nothing that names another host."""
    return url.startswith("/") and not url.startswith("//") and "\\" not in url


def _image(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    src = str(token.attrGet("src") or "")
    if _same_site(src):
        return f'<img src="{escape(src)}" alt="{escape(alt)}">'
    return f"{escape(alt)}" if alt else ""


def _link_close(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return f'<span class="visually-hidden"> {_NEW_TAB}</span></a>'


def _headings_and_alignment(state: StateCore) -> None:
    """Move headings below the page's (``env["top"]`` is the level of ``#``) and
    turn table alignment into a class."""
    shift = int(state.env.get("top", 1)) - 1
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close") and shift:
            level = min(6, int(token.tag[1]) + shift)
            token.tag = f"h{level}"
        elif token.type in ("th_open", "td_open"):
            style = str(token.attrGet("style") or "")
            token.attrs.pop("style", None)
            align = style.removeprefix("text-align:")
            if align in _ALIGN:
                token.attrSet("class", f"align-{align}")


_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_SCHEMES = {"http", "https", "mailto"}


def _valid_link(url: str) -> bool:
    """A link the sanitizer keeps: a web or mail address, or a path on this site.

    Anything else stays plain text instead of a link that goes nowhere.
    """
    scheme = _SCHEME.match(url.strip())
    return scheme is None or scheme.group(1).lower() in _SCHEMES


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.validateLink = _valid_link  # type: ignore[method-assign]
    md.add_render_rule("fence", _fence)
    md.add_render_rule("image", _image)
    md.add_render_rule("link_close", _link_close)
    md.core.ruler.push("safexam_headings_alignment", _headings_and_alignment)
    return md


_md = _parser()


# --- sanitizing -----------------------------------------------------------


def _attribute(tag: str, name: str, value: str) -> str | None:
    if tag == "img" and name == "src" and not _same_site(value):
        return None
    return value


_TOKEN_CLASSES = {name for name in STANDARD_TYPES.values() if name}
_ALIGN_CLASSES = {f"align-{a}" for a in _ALIGN}

_cleaner = nh3.Cleaner(
    tags={
        *(f"h{n}" for n in range(1, 7)),
        *("p", "br", "hr", "blockquote", "ul", "ol", "li", "strong", "em", "code", "pre"),
        *("a", "img", "span", "table", "thead", "tbody", "tr", "th", "td"),
    },
    attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}},
    allowed_classes={
        "pre": {CODE_CLASS},
        "span": {*_TOKEN_CLASSES, "visually-hidden"},
        "th": _ALIGN_CLASSES,
        "td": _ALIGN_CLASSES,
    },
    attribute_filter=_attribute,
    url_schemes=_SCHEMES,
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    strip_comments=True,
)


# --- the API ---------------------------------------------------------------


@lru_cache(maxsize=CACHE_SIZE)
def render_markdown(text: str, top: int = 3) -> Markup:
    """``text`` (Markdown) as sanitized HTML, safe to place in any page.

    ``top`` is the level a ``#`` heading becomes: 3 under a question's ``h2``,
    2 directly under a page's ``h1``.
    """
    if not text:
        return Markup("")
    html = _md.render(text, {"top": top})
    # Safe to mark: nh3 has just kept only the allow-list above.
    return Markup(_cleaner.clean(html))  # noqa: S704


def highlight_code(source: str, language: str) -> Markup:
    """A student's ``source`` as a highlighted block, like a prompt's fenced code.

    Pygments escapes the code itself; an unknown language gives a plain block.
    Not cached: each student's code is their own.
    """
    body = _highlighted(source, language)
    if body is None:
        return Markup("<pre><code>{}</code></pre>").format(source)
    return Markup(f'<pre class="{CODE_CLASS}"><code>{body}</code></pre>')  # noqa: S704


def markdown_filter(text: Any, top: int = 3) -> Markup:
    """The ``markdown`` template filter: ``{{ question.prompt | markdown }}``."""
    if text is None:
        return Markup("")
    return render_markdown(str(text), top)
