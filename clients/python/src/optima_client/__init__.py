"""optima-client: researchers' Python client of the OPTIMA Portal.

>>> from optima_client import Client, Cohort
>>> client = Client()  # OPTIMA_URL, OPTIMA_TOKEN
>>> mine = client.entitlements().query("access_mode == 'federated_analytics'")
>>> km = client.analyses.kaplan_meier(mine, Cohort([4115276, 4110591]), stratify_by="sex").wait()
>>> km.result(); km.plot()
"""

from __future__ import annotations

from .analyses import Analyses, AnalysisHandle, Cohort
from .client import Client
from .errors import (
    AnalysisFailedError,
    AuthenticationError,
    NotEntitledError,
    NotFoundError,
    OptimaError,
    PartialResultError,
    RateLimitedError,
    RefusedByPolicyError,
    ValidationError,
)

__version__ = "0.1.0"
__all__ = [
    "Analyses",
    "AnalysisFailedError",
    "AnalysisHandle",
    "AuthenticationError",
    "Client",
    "Cohort",
    "NotEntitledError",
    "NotFoundError",
    "OptimaError",
    "PartialResultError",
    "RateLimitedError",
    "RefusedByPolicyError",
    "ValidationError",
]
