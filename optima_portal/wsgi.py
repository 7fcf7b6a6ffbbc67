import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optima_portal.settings")
application = get_wsgi_application()


def _warm_up() -> None:
    """Import the URLconf (and with it every view, scipy.stats included) now, not on the first request.

    Django resolves its URLconf lazily, so a fresh server process would spend its first request
    importing about a second's worth of modules while requests queue behind it. Under gunicorn's
    ``--preload`` this runs once in the master and the forked workers inherit it.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - evaluated for its side effect


_warm_up()
