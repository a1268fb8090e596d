"""Prompts in Markdown: what reaches the page can run nothing, load nothing from
elsewhere and style nothing inline, whatever the educator (or an attacker who
took their account) wrote; code is highlighted with classes whose colours are
readable; each prompt is rendered once."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from pygments.styles import get_style_by_name

from safexam.web.layout import template_config
from safexam.web.markdown import (
    CODE_CSS,
    CODE_STYLE,
    markdown_filter,
    render_markdown,
    with_token_rules,
)

ALLOWED_SCHEMES = {"", "http", "https", "mailto"}


class _Collect(HTMLParser):
    """Every start tag and its attributes, as the browser's parser would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Collect()
    parser.feed(html)
    parser.close()
    return parser.tags


ATTACKS = [
    "<script>alert(1)</script>",
    "before <script>alert(1)</script> after",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
    "<iframe src='https://evil.example'></iframe>",
    "<style>body{display:none}</style>",
    '<div style="position:fixed">x</div>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](java%0ascript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<javascript:alert(1)>",
    '[x](https://ok.example "a\\" onmouseover=\\"alert(1))',
    "![x](https://evil.example/track.png)",
    '![x" onerror="alert(1)](/static/x.png)',
    "![x](javascript:alert(1))",
    "![x](//evil.example/x.png)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "```html\n<script>alert(1)</script>\n```",
    "    <script>alert(1)</script>",
    "`<script>alert(1)</script>`",
    "<!-- <script>alert(1)</script> -->",
    "| a |\n|---|\n| <script>alert(1)</script> |",
    "| a |\n|:-:|\n| x |",
]


@pytest.mark.parametrize("text", ATTACKS)
def test_nothing_in_a_prompt_can_run_load_or_style(text: str) -> None:
    html = str(render_markdown(text))
    for tag, attrs in tags_of(html):
        assert tag not in {"script", "style", "iframe", "svg", "object", "embed", "div"}, html
        for name, value in attrs.items():
            assert not name.startswith("on"), html
            assert name != "style", html
            if name in {"href", "src"}:
                assert value is not None, html
                # Browsers drop tabs and newlines from a URL before reading its scheme.
                scheme = urlsplit(re.sub(r"[\t\n\r]", "", value)).scheme
                assert scheme.lower() in ALLOWED_SCHEMES, html
            if tag == "img" and name == "src":
                assert value is not None and value.startswith("/"), html
                assert not value.startswith("//"), html


def test_raw_html_is_shown_as_text() -> None:
    html = str(render_markdown("Use <b>bold</b> and <script>alert(1)</script>."))
    assert html == (
        "<p>Use &lt;b&gt;bold&lt;/b&gt; and &lt;script&gt;alert(1)&lt;/script&gt;.</p>\n"
    )


def test_links_open_in_a_new_tab_and_say_so() -> None:
    html = str(render_markdown("See [the docs](https://docs.python.org/3/)."))
    assert html == (
        '<p>See <a href="https://docs.python.org/3/" target="_blank" '
        'rel="noopener noreferrer nofollow">the docs'
        '<span class="visually-hidden"> (opens in a new tab)</span></a>.</p>\n'
    )


def test_a_link_to_another_scheme_stays_text() -> None:
    assert str(render_markdown("[x](javascript:alert(1))")) == "<p>[x](javascript:alert(1))</p>\n"
    assert "<a" not in str(render_markdown("[f](ftp://files.example/x)"))


def test_images_from_this_site_only_others_become_their_description() -> None:
    assert str(render_markdown("![A graph](/static/img/icon.svg)")) == (
        '<p><img src="/static/img/icon.svg" alt="A graph"></p>\n'
    )
    assert str(render_markdown("![A *graph*](https://cdn.example/g.png)")) == "<p>A graph</p>\n"


def test_code_blocks_are_highlighted_with_classes() -> None:
    html = str(render_markdown("```python\ndef add(a, b):\n    return a + b  # sum\n```"))
    assert html.startswith('<pre class="highlight"><code><span class="k">def</span>')
    assert '<span class="nf">add</span>' in html
    assert '<span class="c1"># sum</span>' in html
    assert "style=" not in html


def test_code_in_an_unknown_language_is_plain_and_escaped() -> None:
    html = str(render_markdown("```klingon\n<b>qapla'</b>\n```"))
    assert html == "<pre><code>&lt;b&gt;qapla'&lt;/b&gt;\n</code></pre>\n"


def test_tables_align_with_classes_and_headings_sit_below_the_page() -> None:
    html = str(render_markdown("# Data\n\n| n | x |\n|--:|:--|\n| 1 | a |"))
    assert html.startswith("<h3>Data</h3>")
    assert '<th class="align-right">n</th>' in html
    assert '<td class="align-left">a</td>' in html
    assert str(render_markdown("# Rules", 2)) == "<h2>Rules</h2>\n"
    assert str(render_markdown("###### Deep")) == "<h6>Deep</h6>\n"


def test_each_text_is_rendered_once() -> None:
    text = "A prompt only this test uses: **2 + 2**?"
    first = render_markdown(text)
    hits = render_markdown.cache_info().hits
    again = render_markdown(text)
    assert again is first
    assert render_markdown.cache_info().hits == hits + 1


def test_the_template_filter() -> None:
    env = template_config().instance.engine  # type: ignore[union-attr]
    rendered = env.from_string("<div>{{ p | markdown }}</div>").render(p="**x** <i>")
    assert rendered == "<div><p><strong>x</strong> &lt;i&gt;</p>\n</div>"
    assert markdown_filter(None) == ""


def _luminance(colour: str) -> float:
    colour = colour.lstrip("#")
    if len(colour) == 3:
        colour = "".join(c * 2 for c in colour)
    channels = [int(colour[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_every_token_colour_is_readable_on_its_background() -> None:
    style = get_style_by_name(CODE_STYLE)
    for token, rule in style:
        if not rule["color"] or "Whitespace" in str(token):
            continue
        background = "#" + rule["bgcolor"] if rule["bgcolor"] else style.background_color
        lighter, darker = sorted(
            (_luminance("#" + rule["color"]), _luminance(background)), reverse=True
        )
        assert (lighter + 0.05) / (darker + 0.05) >= 4.5, token


def test_code_css_holds_the_generated_token_rules() -> None:
    css = CODE_CSS.read_text(encoding="utf-8")
    assert with_token_rules(css) == css, "run `make code-css`"
    assert ".highlight .k {" in css
