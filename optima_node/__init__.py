"""OPTIMA node agent: runs approved federated analyses next to a hospital's OMOP CDM database.

This package must never import Django: hospitals install it on its own, and the portal imports
only :mod:`optima_node.schemas` from it so that the wire format is defined in one place.
"""

from __future__ import annotations

__version__ = "0.1.0"
