"""User-written Markdown to HTML: rendered, then cleaned with nh3 from an allow-list.

One rule for every app: user Markdown renders without images. Neither ``![alt](url)`` nor raw
``<img>`` survives, whatever tags a caller allows, because an image is a URL that a browser or
the PDF renderer would fetch (a tracking pixel on a page, a server-side request or a local file in
a PDF). Links stay (http, https and mailto only); nothing follows a link on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import markdown as md
import nh3

#: Tags that load a resource by themselves; never allowed in user Markdown.
FETCHING_TAGS = frozenset(
    {"img", "image", "picture", "source", "video", "audio", "track", "iframe", "object", "embed"}
)
LINK_SCHEMES = frozenset({"http", "https", "mailto"})


def to_html(
    text: str,
    *,
    tags: Iterable[str],
    attributes: Mapping[str, set[str]] | None = None,
    extensions: Iterable[str] = ("tables", "sane_lists"),
) -> str:
    html = md.markdown(text or "", extensions=list(extensions), output_format="html")
    allowed = set(tags) - FETCHING_TAGS
    return nh3.clean(
        html,
        tags=allowed,
        attributes={tag: set(names) for tag, names in (attributes or {}).items() if tag in allowed},
        url_schemes=set(LINK_SCHEMES),
        link_rel="noopener noreferrer nofollow",
    )
