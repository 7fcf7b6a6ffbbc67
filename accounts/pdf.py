"""Every PDF the portal renders goes through :func:`render_pdf`: WeasyPrint with a URL fetcher that
can read the portal's own static assets and nothing else.

WeasyPrint's default fetcher follows any URL in the document (``http:``, ``https:``, ``file:``,
``ftp:``, ``data:``), so user text that reached the HTML as ``<img src=...>`` made the server send
requests (SSRF) or embed a local file, such as another user's attachment, in the PDF. Here every
resource is refused unless it is a ``file:`` URL that resolves, after symlinks, to a file inside a
static directory (the project's ``static/`` and each installed app's ``static/``). Refused
resources are left out of the document (WeasyPrint logs and carries on), so a hostile reference
costs the reader one missing picture, never the PDF.

Import this module lazily (inside the function that renders): loading WeasyPrint costs a second.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from django.apps import apps
from django.conf import settings
from weasyprint import CSS, HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

logger = logging.getLogger("optima.pdf")


def asset_roots() -> tuple[Path, ...]:
    """The directories a PDF may read from: the static directories, never the media root."""
    candidates = []
    for entry in settings.STATICFILES_DIRS:
        candidates.append(Path(entry[1] if isinstance(entry, tuple | list) else entry))
    candidates += [Path(app.path) / "static" for app in apps.get_app_configs()]
    media = Path(settings.MEDIA_ROOT).resolve()
    roots = []
    for candidate in candidates:
        root = candidate.resolve()
        # A static directory that contains the media root (or lies inside it) would expose uploads.
        if root.is_dir() and not (media.is_relative_to(root) or root.is_relative_to(media)):
            roots.append(root)
    return tuple(dict.fromkeys(roots))


class AssetOnlyFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that serves files under :func:`asset_roots` and refuses the rest.

    No network: ``http(s)``, ``ftp``, ``data`` and every other scheme raise, as does a ``file:`` URL
    outside the asset roots or naming a host.
    """

    def __init__(self, *, roots: Sequence[Path] | None = None) -> None:
        super().__init__(allowed_protocols=("file",), allow_redirects=False)
        self.roots = tuple(roots) if roots is not None else asset_roots()

    def asset_path(self, url: str) -> Path:
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            raise ValueError("PDF rendering reads only the portal's own static assets.")
        path = Path(url2pathname(unquote(parts.path))).resolve()
        if not any(path.is_relative_to(root) for root in self.roots) or not path.is_file():
            raise ValueError("PDF rendering reads only the portal's own static assets.")
        return path

    def fetch(self, url: str, headers=None) -> URLFetcherResponse:
        try:
            path = self.asset_path(url)
        except ValueError:
            logger.warning("PDF rendering refused a resource: %s", url[:200])
            raise
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(
            path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type}
        )


def default_base_url() -> str | None:
    """Relative references in a PDF template resolve against the project's static directory."""
    roots = asset_roots()
    return roots[0].as_uri() + "/" if roots else None


def render_pdf(
    html: str,
    *,
    stylesheets: Sequence[Path] = (),
    base_url: str | None = None,
) -> bytes:
    """The PDF of ``html``. ``stylesheets`` are the renderer's own files (read directly); any
    ``url()`` inside them or any resource in the HTML goes through :class:`AssetOnlyFetcher`."""
    fetcher = AssetOnlyFetcher()
    document = HTML(string=html, base_url=base_url or default_base_url(), url_fetcher=fetcher)
    return document.write_pdf(
        stylesheets=[CSS(filename=str(path), url_fetcher=fetcher) for path in stylesheets]
    )
