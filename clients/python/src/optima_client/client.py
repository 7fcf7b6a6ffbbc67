"""The connection to an OPTIMA portal: the catalogue, your entitlements and your analyses."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pandas as pd
import requests

from .analyses import Analyses
from .errors import OptimaError, error_from_response

DATASET_COLUMNS = (
    "id",
    "identifier",
    "title",
    "publisher",
    "country",
    "indications",
    "access_modes",
    "data_categories",
    "number_of_individuals",
    "cdm_version",
    "freshness",
    "version",
    "published_at",
    "url",
)
ENTITLEMENT_COLUMNS = (
    "id",
    "dataset_id",
    "dataset_identifier",
    "dataset_title",
    "access_mode",
    "status",
    "starts_at",
    "ends_at",
    "request",
    "agreement",
    "terms_version",
)


class Client:
    """A researcher's connection to an OPTIMA portal through its API.

    Args:
        url: The portal's address, e.g. ``https://portal.example.org/``; default: the
            ``OPTIMA_URL`` environment variable.
        token: Your personal API token (create one under *Account → API tokens* on the portal);
            default: the ``OPTIMA_TOKEN`` environment variable.
        timeout: Seconds to wait for each HTTP answer.

    Raises:
        ValueError: When neither the argument nor the environment gives a URL or a token.

    Example:
        >>> client = Client()                      # OPTIMA_URL and OPTIMA_TOKEN
        >>> lung = client.datasets(indication="lung")
    """

    def __init__(
        self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0
    ) -> None:
        url = url or os.environ.get("OPTIMA_URL", "")
        token = token or os.environ.get("OPTIMA_TOKEN", "")
        if not url:
            raise ValueError("Give the portal's URL, or set OPTIMA_URL.")
        if not token:
            raise ValueError("Give your API token, or set OPTIMA_TOKEN.")
        self.url = url.rstrip("/") + "/"
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers.update(
            {"Authorization": f"Token {token}", "Accept": "application/json"}
        )
        self.analyses = Analyses(self)
        """Start and follow federated analyses: see :class:`optima_client.analyses.Analyses`."""

    def __repr__(self) -> str:
        return f"Client(url={self.url!r})"

    # --- HTTP -------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call to the portal's API (``path`` relative to ``/api/`` or absolute); the decoded
        JSON answer. Raises the :class:`~optima_client.errors.OptimaError` subclass matching the
        portal's error answer, with its message."""
        url = path if path.startswith("http") else f"{self.url}api/{path.lstrip('/')}"
        try:
            response = self._session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise OptimaError(f"Could not reach the portal at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise error_from_response(response.status_code, body, response.text)
        return response.json() if response.content else None

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list (the portal's ``next`` links)."""
        body = self.request("GET", path, params=params)
        while True:
            if isinstance(body, list):  # an unpaginated list
                yield from body
                return
            yield from body.get("results", [])
            if not body.get("next"):
                return
            body = self.request("GET", body["next"])

    # --- catalogue ----------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """Who the token belongs to (username, organisations, roles) as the portal reports it."""
        return self.request("GET", "me/")

    def datasets(
        self,
        search: str | None = None,
        *,
        indication: str | list[str] | None = None,
        country: str | list[str] | None = None,
        mode: str | list[str] | None = None,
        category: str | list[str] | None = None,
        cdm: str | list[str] | None = None,
        publisher: str | list[str] | None = None,
        freshness: str | None = None,
        sort: str | None = None,
    ) -> pd.DataFrame:
        """Published datasets of the catalogue, with the catalogue page's search and facets.

        Args:
            search: Free text (title, description, keywords).
            indication: Cancer indication code(s), e.g. ``"lung"`` (includes NSCLC and SCLC),
                ``"breast"``, ``"prostate"``.
            country: ISO country code(s) of the publisher, e.g. ``"DE"``.
            mode: Access mode(s) offered, e.g. ``"federated_analytics"``.
            category: Data categories, e.g. ``"genomics"``.
            cdm: OMOP CDM version(s), e.g. ``"5.4"``.
            publisher: Publisher slug(s), e.g. ``"de-hospital"``.
            freshness: ``"fresh"`` or ``"overdue"`` (against the agreed update interval).
            sort: ``"recent"``, ``"title"``, ``"relevance"``, … as on the catalogue page.

        Returns:
            One row per dataset: ``id`` (what the analyses take), ``identifier``, ``title``,
            ``publisher`` (its name), ``country``, ``indications``, ``access_modes``,
            ``number_of_individuals``, ``freshness``, ``url``, … ``attrs["facets"]`` holds the
            facet counts of the search.
        """
        params: dict[str, Any] = {"per_page": 100}
        for name, value in (
            ("q", search),
            ("indication", indication),
            ("country", country),
            ("mode", mode),
            ("category", category),
            ("cdm", cdm),
            ("publisher", publisher),
            ("freshness", freshness),
            ("sort", sort),
        ):
            if value:
                params[name] = value
        first = self.request("GET", "datasets/", params=params)
        rows, body = list(first.get("results", [])), first
        while body.get("next"):
            body = self.request("GET", body["next"])
            rows += body.get("results", [])
        for row in rows:
            row["publisher"] = (row.get("publisher") or {}).get("name")
        frame = pd.DataFrame(rows, columns=list(DATASET_COLUMNS))
        frame.attrs["facets"] = first.get("facets", {})
        return frame

    def entitlements(self, status: str | None = "active") -> pd.DataFrame:
        """Your entitlements: which dataset you may use, how and until when.

        Args:
            status: ``"active"`` (default), ``"suspended"``, ``"revoked"``, ``"expired"``, or
                None for all.

        Returns:
            One row per entitlement: ``id``, ``dataset_id``, ``dataset_identifier``,
            ``dataset_title``, ``access_mode``, ``status``, ``starts_at``, ``ends_at``,
            ``request``, ``agreement``, ``terms_version``.
        """
        params = {"status": status} if status else {}
        rows = []
        for item in self._pages("entitlements/", params):
            dataset = item.get("dataset") or {}
            rows.append(
                {
                    **item,
                    "dataset_id": dataset.get("id"),
                    "dataset_identifier": dataset.get("identifier"),
                    "dataset_title": dataset.get("title"),
                }
            )
        return pd.DataFrame(rows, columns=list(ENTITLEMENT_COLUMNS))
