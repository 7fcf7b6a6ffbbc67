"""The portal's side of federated learning on NVIDIA FLARE.

``nvflare`` is optional: the portal imports and runs without it; anything that needs it calls
:func:`require_nvflare`, which raises :class:`FlareUnavailable` with an installable message.

* :mod:`.jobs` builds the FLARE job folder for a ``federated_learning`` analysis;
* :mod:`.session` wraps ``nvflare.fuel.flare_api`` (submit, status, stats, abort, download);
* :mod:`.states` maps FLARE job states onto the portal's;
* :mod:`.poc` prepares, starts and stops FLARE's POC mode on 127.0.0.1 (demo and tests);
* :mod:`.monitor` polls a submitted job and stores its progress (Celery tasks in federation.flare.tasks).
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = (
    "NVIDIA FLARE is not installed: federated learning needs `pip install 'nvflare>=2.9,<2.10'` "
    "on the portal host (and on the FLARE server and sites)."
)


class FlareUnavailable(RuntimeError):
    """nvflare is missing, or the FLARE server cannot be reached."""


class FlareError(RuntimeError):
    """FLARE answered with an error."""


def nvflare_available() -> bool:
    return importlib.util.find_spec("nvflare") is not None


def require_nvflare() -> None:
    if not nvflare_available():
        raise FlareUnavailable(INSTALL_HINT)
