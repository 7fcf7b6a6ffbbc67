"""Markdown for descriptions and comments, rendered and then cleaned with nh3 (no raw HTML gets
through, no images: accounts.markdown)."""

from __future__ import annotations

from django.utils.safestring import SafeString, mark_safe

from accounts import markdown as user_markdown

TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td", "del",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


def render(text: str) -> SafeString:
    cleaned = user_markdown.to_html(
        text, tags=TAGS, attributes=ATTRIBUTES, extensions=["fenced_code", "tables", "sane_lists"]
    )
    return mark_safe(cleaned)  # noqa: S308 - nh3 produced it from an allow-list
