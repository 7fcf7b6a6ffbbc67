"""An independent reading of Circe's semantics in pandas, for the equivalence tests.

It shares nothing with optima_node.circe but the pydantic model of the definition: concept sets,
events, windows, rules, limits, end dates and eras are recomputed here from the frames row by row.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

TABLE = {
    "ConditionOccurrence": ("condition_occurrence", "condition_concept_id", "condition_start_date"),
    "DrugExposure": ("drug_exposure", "drug_concept_id", "drug_exposure_start_date"),
    "ProcedureOccurrence": ("procedure_occurrence", "procedure_concept_id", "procedure_date"),
    "Measurement": ("measurement", "measurement_concept_id", "measurement_date"),
    "Observation": ("observation", "observation_concept_id", "observation_date"),
    "Death": ("death", "cause_concept_id", "death_date"),
}


def codeset(concept_set: dict, frames: dict[str, pd.DataFrame]) -> set[int]:
    ancestry = list(
        zip(
            frames["concept_ancestor"]["ancestor_concept_id"],
            frames["concept_ancestor"]["descendant_concept_id"],
            strict=True,
        )
    )
    rel = frames["concept_relationship"]
    maps = list(zip(rel["concept_id_1"], rel["concept_id_2"], rel["relationship_id"], strict=True))

    def expand(items: list[dict]) -> set[int]:
        out: set[int] = set()
        for item in items:
            cid = item["concept"]["CONCEPT_ID"]
            got = {cid}
            if item.get("includeDescendants"):
                got |= {d for a, d in ancestry if a == cid}
            if item.get("includeMapped"):
                got |= {src for src, std, how in maps if how == "Maps to" and std in got}
            out |= got
        return out

    items = concept_set["expression"]["items"]
    return expand([i for i in items if not i.get("isExcluded")]) - expand(
        [i for i in items if i.get("isExcluded")]
    )


def _where(frame: pd.DataFrame, mask: list[bool]) -> pd.DataFrame:
    return frame[pd.Series(mask, index=frame.index, dtype=bool)]


def passes(value: float | None, rng: dict) -> bool:
    if value is None or pd.isna(value):
        return False
    v, ext, op = rng["Value"], rng.get("Extent"), rng["Op"]
    inside = ext is not None and v <= value <= ext
    return {
        "lt": value < v,
        "lte": value <= v,
        "eq": value == v,
        "!eq": value != v,
        "gt": value > v,
        "gte": value >= v,
        "bt": inside,
        "!bt": not inside,
    }[op]


def events(frames: dict[str, pd.DataFrame], criteria: dict, codesets: dict) -> pd.DataFrame:
    ((domain, spec),) = ((k, v) for k, v in criteria.items() if v is not None)
    table, concept, start = TABLE[domain]
    frame = frames[table].copy()
    frame["source_id"] = frame["person_id"] if domain == "Death" else frame[f"{table}_id"]
    frame["start_date"] = frame[start]
    if domain == "ConditionOccurrence":
        frame["end_date"] = [
            e if e is not None and not pd.isna(e) else s + timedelta(days=1)
            for s, e in zip(frame[start], frame["condition_end_date"], strict=True)
        ]
    elif domain == "DrugExposure":
        frame["end_date"] = frame["drug_exposure_end_date"]
    else:
        frame["end_date"] = [s + timedelta(days=1) for s in frame[start]]
    if spec.get("CodesetId") is not None:
        frame = frame[frame.get(concept, pd.Series(dtype=object)).isin(codesets[spec["CodesetId"]])]
    if spec.get("First"):
        frame = frame.sort_values(["person_id", "start_date", "source_id"])
        frame = frame.groupby("person_id", as_index=False).head(1)
    if spec.get("ValueAsNumber"):
        frame = _where(frame, [passes(v, spec["ValueAsNumber"]) for v in frame["value_as_number"]])
    return frame[["person_id", "source_id", "start_date", "end_date"]]


def _group_holds(group: dict, q: pd.Series, person: pd.Series, ctx: dict) -> bool:
    results = []
    for item in group.get("CriteriaList") or []:
        found = events(ctx["frames"], item["Criteria"], ctx["codesets"])
        found = found[found["person_id"] == q["person_id"]]
        window = item.get("StartWindow") or {}
        for side, keep in (("Start", lambda d, b: d >= b), ("End", lambda d, b: d <= b)):
            bound = window.get(side) or {}
            if bound.get("Days") is not None:
                limit = q["start_date"] + timedelta(days=bound["Days"] * bound.get("Coeff", 1))
                found = _where(found, [keep(d, limit) for d in found["start_date"]])
        if not item.get("IgnoreObservationPeriod"):
            found = _where(found, [q["op_start"] <= d <= q["op_end"] for d in found["start_date"]])
        n, occ = len(found), item["Occurrence"]
        results.append(
            {0: n == occ["Count"], 1: n <= occ["Count"], 2: n >= occ["Count"]}[occ["Type"]]
        )
    for demo in group.get("DemographicCriteriaList") or []:
        ok = True
        if demo.get("Age"):
            ok &= passes(q["start_date"].year - person["year_of_birth"], demo["Age"])
        if demo.get("Gender"):
            ok &= person["gender_concept_id"] in {g["CONCEPT_ID"] for g in demo["Gender"]}
        results.append(ok)
    results += [_group_holds(g, q, person, ctx) for g in group.get("Groups") or []]
    if not results:
        return True
    kind, count = group.get("Type", "ALL"), group.get("Count")
    hits = sum(results)
    return {
        "ALL": hits == len(results),
        "ANY": hits >= 1,
        "AT_LEAST": hits >= (count or 0),
        "AT_MOST": hits <= (count or 0),
    }[kind]


def expected(frames: dict[str, pd.DataFrame], expr: dict) -> tuple[list, list[int]]:
    """(entries as (person, start, end), persons after qualification and after each rule)."""
    codesets = {cs["id"]: codeset(cs, frames) for cs in expr.get("ConceptSets", [])}
    ctx = {"frames": frames, "codesets": codesets}
    primary = expr["PrimaryCriteria"]
    parts = []
    for i, criteria in enumerate(primary["CriteriaList"]):
        part = events(frames, criteria, codesets)
        part["criterion"] = i
        parts.append(part)
    ev = pd.concat(parts, ignore_index=True)
    op = frames["observation_period"].rename(
        columns={
            "observation_period_start_date": "op_start",
            "observation_period_end_date": "op_end",
        }
    )
    ev = ev.merge(op[["person_id", "op_start", "op_end"]], on="person_id")
    window = primary.get("ObservationWindow") or {}
    prior, post = window.get("PriorDays", 0), window.get("PostDays", 0)
    ev = _where(
        ev,
        [
            s <= d <= e and s + timedelta(days=prior) <= d and d + timedelta(days=post) <= e
            for d, s, e in zip(ev["start_date"], ev["op_start"], ev["op_end"], strict=True)
        ],
    )
    ev = ev.sort_values(["person_id", "start_date", "criterion", "source_id"])
    if (primary.get("PrimaryCriteriaLimit") or {}).get("Type") == "First":
        ev = ev.groupby("person_id").head(1)
    if (expr.get("QualifiedLimit") or {}).get("Type") == "First":
        ev = ev.groupby("person_id").head(1)
    people = frames["person"].set_index("person_id")
    rules = expr.get("InclusionRules") or []
    flags = [
        [_group_holds(r["expression"], q, people.loc[q["person_id"]], ctx) for r in rules]
        for _, q in ev.iterrows()
    ]
    attrition = [ev["person_id"].nunique()]
    for i in range(len(rules)):
        attrition.append(
            len({p for p, f in zip(ev["person_id"], flags, strict=True) if all(f[: i + 1])})
        )
    ev = _where(ev, [all(f) for f in flags]) if rules else ev
    if (expr.get("ExpressionLimit") or {}).get("Type") == "First":
        ev = ev.groupby("person_id").head(1)
    censors = [events(frames, c, codesets) for c in expr.get("CensoringCriteria") or []]
    offset = ((expr.get("EndStrategy") or {}).get("DateOffset")) or None
    ends = []
    for _, q in ev.iterrows():
        end = q["op_end"]
        if offset:
            anchor = (
                q["start_date"]
                if offset.get("DateField", "StartDate") == "StartDate"
                else q["end_date"]
            )
            end = min(end, anchor + timedelta(days=offset.get("Offset", 0)))
        for c in censors:
            hits = [
                d
                for p, d in zip(c["person_id"], c["start_date"], strict=True)
                if p == q["person_id"] and q["start_date"] <= d <= q["op_end"]
            ]
            if hits:
                end = min(end, min(hits))
        ends.append((int(q["person_id"]), q["start_date"], end))
    pad = (expr.get("CollapseSettings") or {}).get("EraPad", 0)
    eras: list[list] = []
    for person, start, end in sorted(ends):
        if eras and eras[-1][0] == person and start <= eras[-1][2] + timedelta(days=pad):
            eras[-1][2] = max(eras[-1][2], end)
        else:
            eras.append([person, start, end])
    return [tuple(e) for e in eras], attrition


def as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
