"""A Circe cohort expression in words, for the analysis page (the portal renders these lines)."""

from __future__ import annotations

from optima_node.circe.model import (
    CohortExpression,
    CorrelatedCriteria,
    CriteriaGroup,
    CriteriaSpec,
    DemographicCriteria,
    NumericRange,
    WindowBound,
)

DOMAIN_WORDS = {
    "ConditionOccurrence": "condition occurrence",
    "DrugExposure": "drug exposure",
    "ProcedureOccurrence": "procedure occurrence",
    "Measurement": "measurement",
    "Observation": "observation",
    "Death": "death",
}
OPS = {"lt": "<", "lte": "≤", "eq": "=", "!eq": "≠", "gt": ">", "gte": "≥"}
OCCURRENCE = {0: "exactly", 1: "at most", 2: "at least"}
GROUP = {
    "ALL": "all of",
    "ANY": "any of",
    "AT_LEAST": "at least {n} of",
    "AT_MOST": "at most {n} of",
}


def _range(what: str, value: NumericRange) -> str:
    if value.Op in OPS:
        return f"{what} {OPS[value.Op]} {value.Value:g}"
    inside = f"{what} between {value.Value:g} and {value.Extent:g}"
    return (
        inside if value.Op == "bt" else f"{what} not between {value.Value:g} and {value.Extent:g}"
    )


def _bound(bound: WindowBound, side: str) -> str:
    if bound.Days is None:  # an open window side: from the start, or to the end, of the record
        return "any time before" if side == "start" else "any time after"
    return f"{bound.Days} days {'before' if bound.Coeff < 0 else 'after'}"


class Describer:
    def __init__(self, expression: CohortExpression) -> None:
        self.expression = expression
        self.names = {cs.id: cs.name or f"concept set {cs.id}" for cs in expression.ConceptSets}

    def criteria(self, criteria: CriteriaSpec) -> str:
        spec = criteria.spec
        text = DOMAIN_WORDS[criteria.domain]
        if spec.CodesetId is not None:
            text += f" of “{self.names[spec.CodesetId]}”"
        if getattr(spec, "First", False):
            text = "first " + text
        if getattr(spec, "ValueAsNumber", None) is not None:
            text += f" with {_range('value', spec.ValueAsNumber)}"
        return text

    def correlated(self, item: CorrelatedCriteria) -> str:
        window = item.StartWindow
        text = (
            f"{OCCURRENCE[item.Occurrence.Type]} {item.Occurrence.Count} × "
            f"{self.criteria(item.Criteria)} between {_bound(window.Start, 'start')} and "
            f"{_bound(window.End, 'end')} index"
        )
        return text + (" (observation period ignored)" if item.IgnoreObservationPeriod else "")

    @staticmethod
    def demographic(item: DemographicCriteria) -> str:
        parts = [_range("age at index", item.Age)] if item.Age else []
        if item.Gender:
            names = ", ".join(g.CONCEPT_NAME or str(g.CONCEPT_ID) for g in item.Gender)
            parts.append(f"gender {names}")
        return " and ".join(parts) or "anyone"

    def group(self, group: CriteriaGroup, depth: int = 0) -> list[str]:
        lines = [("  " * depth) + GROUP[group.Type].format(n=group.Count) + ":"]
        pad = "  " * (depth + 1)
        lines += [pad + self.correlated(c) for c in group.CriteriaList]
        lines += [pad + self.demographic(d) for d in group.DemographicCriteriaList]
        for sub in group.Groups:
            lines += self.group(sub, depth + 1)
        return lines


def describe(expression: CohortExpression) -> list[tuple[str, list[str]]]:
    """Sections (heading, lines) in the order ATLAS shows a definition."""
    d = Describer(expression)
    sets = []
    for cs in expression.ConceptSets:
        items = []
        for item in cs.expression.items:
            flags = [
                f
                for f, on in (
                    ("excluded", item.isExcluded),
                    ("with descendants", item.includeDescendants),
                    ("with mapped", item.includeMapped),
                )
                if on
            ]
            name = item.concept.CONCEPT_NAME or "concept"
            items.append(
                f"{name} ({item.concept.CONCEPT_ID})" + (f" [{', '.join(flags)}]" if flags else "")
            )
        sets.append(f"{d.names[cs.id]}: " + "; ".join(items))
    primary = expression.PrimaryCriteria
    window = primary.ObservationWindow
    entry = [d.criteria(c) for c in primary.CriteriaList] + [
        f"observation: {window.PriorDays} days before and {window.PostDays} days after the event",
        f"events per person: {primary.PrimaryCriteriaLimit.Type.lower()}; "
        f"qualified: {expression.QualifiedLimit.Type.lower()}; "
        f"after inclusion rules: {expression.ExpressionLimit.Type.lower()}",
    ]
    rules = []
    for i, rule in enumerate(expression.InclusionRules, start=1):
        rules.append(f"{i}. {rule.name or 'rule'}")
        rules += ["   " + line for line in d.group(rule.expression)]
    offset = expression.EndStrategy.DateOffset if expression.EndStrategy else None
    end = [
        f"{'start' if offset.DateField == 'StartDate' else 'end'} date of the index event + "
        f"{offset.Offset} days (at most the end of observation)"
        if offset
        else "end of continuous observation"
    ]
    end += [f"censored at {d.criteria(c)}" for c in expression.CensoringCriteria]
    end.append(f"eras collapsed with a gap of {expression.CollapseSettings.EraPad} days")
    return [
        ("Concept sets", sets or ["none"]),
        ("Cohort entry", entry),
        ("Inclusion rules", rules or ["none"]),
        ("Cohort exit", end),
    ]
