"""Running the test cases that each pathway file carries."""

from __future__ import annotations

from dataclasses import dataclass

from .evaluation import evaluate
from .pathway import Pathway
from .validation import validate_inputs


@dataclass(frozen=True)
class SelfTestFailure:
    pathway_id: str
    test_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.pathway_id} / {self.test_id}: {self.message}"


def run_self_tests(pathway: Pathway) -> list[SelfTestFailure]:
    """Run the pathway's embedded test cases; an empty list means they all pass."""
    failures = []
    for test in pathway.model.tests:

        def fail(message: str, test_id: str = test.id) -> None:
            failures.append(SelfTestFailure(pathway.id, test_id, message))

        _, errors = validate_inputs(pathway, test.inputs)
        if test.expect_errors is not None:
            if sorted(errors) != sorted(test.expect_errors):
                fail(f"expected errors on {sorted(test.expect_errors)}, got {errors or 'none'}")
            continue
        if errors:
            fail(f"inputs do not validate: {errors}")
            continue
        result = evaluate(pathway, test.inputs)
        if result.classification != test.expect:
            fail(
                f"expected {test.expect}, got {result.classification} (decided by {result.decided_by})"
            )
        if test.expect_warnings is not None:
            got = sorted(w.id for w in result.warnings)
            if got != sorted(test.expect_warnings):
                fail(f"expected warnings {sorted(test.expect_warnings)}, got {got}")
        if test.expect_missing is not None and sorted(result.missing) != sorted(
            test.expect_missing
        ):
            fail(f"expected missing {sorted(test.expect_missing)}, got {sorted(result.missing)}")
        if test.expect_options is not None:
            got = [r.id for r in result.recommendations]
            if got != test.expect_options:
                fail(f"expected options {test.expect_options}, got {got}")
    return failures
