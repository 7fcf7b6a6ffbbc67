"""Guideline-based clinical decision support engine.

Pure Python: no Django or database imports, so the portal, the CDS Hooks service, notebooks and
tests all use the same code. Pathways are YAML data (``cds/pathways/<id>.yaml``); the format and
the condition language are described in ``docs/cds.md``.
"""

from __future__ import annotations

from .errors import InputValidationError, PathwayFormatError
from .evaluation import EngineWarning, Evaluation, Recommendation, RuleTrace, evaluate
from .pathway import PATHWAYS_DIR, Pathway, canonical_checksum, load_builtin_pathways, load_pathway
from .schema import pathway_json_schema
from .selftest import SelfTestFailure, run_self_tests
from .validation import validate_inputs

__all__ = [
    "PATHWAYS_DIR",
    "EngineWarning",
    "Evaluation",
    "InputValidationError",
    "Pathway",
    "PathwayFormatError",
    "Recommendation",
    "RuleTrace",
    "SelfTestFailure",
    "canonical_checksum",
    "evaluate",
    "load_builtin_pathways",
    "load_pathway",
    "pathway_json_schema",
    "run_self_tests",
    "validate_inputs",
]
