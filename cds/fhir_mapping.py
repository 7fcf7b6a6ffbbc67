"""Map FHIR R4 resources (CDS Hooks prefetch) to CDS pathway inputs.

Pure function, no Django. Resources are parsed with ``fhir.resources.R4B`` (FHIR 4.3), whose
Patient, Condition, Observation and Bundle models read R4 (4.0.1) JSON unchanged for the elements
used here. The mapping table (LOINC codes, value handling) is documented in docs/cds.md; every
decision taken while mapping is reported in ``notes`` so a clinician can see where each value came
from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

LOINC = "http://loinc.org"
USABLE_STATUSES = {"final", "amended", "corrected"}

# LOINC code -> pathway input. See docs/cds.md for the verification status of each code.
OBSERVATION_CODES: dict[str, str] = {
    "2857-1": "psa",  # Prostate specific Ag [Mass/volume] in Serum or Plasma
    "35266-6": "gleason",  # Gleason score in Specimen Qualitative
    "94734-1": "isup_grade",  # Prostate cancer grade group [Score] in Prostate tumor Qualitative
    "15325-4": "psa_density",  # Prostate specific Ag density
    "21905-5": "ct",  # Primary tumor.clinical [Class] Cancer
    "21906-3": "cn",  # Regional lymph nodes.clinical [Class] Cancer
    "21907-1": "cm",  # Distant metastases.clinical [Class] Cancer
    "21908-9": "stage",  # Stage group.clinical Cancer
    "16112-5": "er_pct",  # Estrogen receptor [Interpretation] in Tissue
    "85337-4": "er_pct",  # Estrogen receptor Ag [Presence] in Breast cancer specimen by Immune stain
    "16113-3": "pr_pct",  # Progesterone receptor [Interpretation] in Tissue
    "85339-0": "pr_pct",  # Progesterone receptor Ag [Presence] in Breast cancer specimen by Immune stain
    "85319-2": "her2_ihc",  # HER2 [Presence] in Breast cancer specimen by Immune stain
    "18474-7": "her2_ihc",  # HER2 Ag [Presence] in Tissue by Immune stain
    "85318-4": "her2_ish",  # HER2 [Presence] in Breast cancer specimen by FISH
    "85330-9": "ki67_pct",  # Ki-67 (code from the specification; verify before production)
    "29593-1": "ki67_pct",  # Ki-67 (code from the specification; verify before production)
    "85147-7": "pdl1_tps",  # PD-L1 TPS (code from the specification; verify before production)
    "89247-1": "ecog",  # ECOG Performance Status score
    "59847-4": "histology",  # Histology and Behavior ICD-O-3 Cancer
}
GENETIC_VARIANT_ASSESSMENT = "69548-6"
GENE_STUDIED = "48018-6"
VARIANT_COMPONENTS = {"48005-3", "48004-6", "81252-9", "81290-9", "69548-6"}
PRESENT, ABSENT = "LA9633-4", "LA9634-2"

GENES = {
    "egfr": ("EGFR", "HGNC:3236"),
    "alk": ("ALK", "HGNC:427"),
    "ros1": ("ROS1", "HGNC:10261"),
    "ret": ("RET", "HGNC:9967"),
    "ntrk": ("NTRK1", "NTRK2", "NTRK3", "NTRK", "HGNC:8031", "HGNC:8032", "HGNC:8033"),
    "braf": ("BRAF", "HGNC:1097"),
    "kras": ("KRAS", "HGNC:6407"),
    "met": ("MET", "HGNC:7029"),
    "her2": ("ERBB2", "HER2", "HGNC:3430"),
}

PATHWAY_INPUTS: dict[str, tuple[str, ...]] = {
    "prostate-eau": ("psa", "isup_grade", "gleason", "ct", "cn", "cm"),
    "prostate-nccn": (
        "psa",
        "isup_grade",
        "gleason",
        "ct",
        "cn",
        "cm",
        "psa_density",
        "positive_cores",
        "total_cores",
        "max_core_involvement_pct",
        "primary_gleason_pattern",
        "cores_grade_group_4_5",
    ),
    "breast-st-gallen": ("er_pct", "pr_pct", "her2_ihc", "her2_ish", "ki67_pct"),
    "nsclc-esmo": ("histology", "stage", "ecog", *GENES, "pdl1_tps"),
}

PREFETCH_KEYS: dict[str, tuple[str, ...]] = {
    "prostate-eau": ("patient", "conditions", "observations"),
    "prostate-nccn": ("patient", "conditions", "observations"),
    "breast-st-gallen": ("patient", "observations"),
    "nsclc-esmo": ("patient", "conditions", "observations"),
}


def prefetch_templates(pathway_id: str) -> dict[str, str]:
    """CDS Hooks prefetch templates that give this module what it reads for a pathway."""
    wanted = set(PATHWAY_INPUTS[pathway_id])
    codes = sorted(code for code, name in OBSERVATION_CODES.items() if name in wanted)
    if wanted & set(GENES):
        codes.append(GENETIC_VARIANT_ASSESSMENT)
    templates = {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "observations": "Observation?patient={{context.patientId}}&code="
        + ",".join(f"{LOINC}|{code}" for code in codes),
    }
    if pathway_id == "nsclc-esmo":
        # Driver results are often coded with local or gene-specific codes; fetch laboratory results.
        templates["observations"] = "Observation?patient={{context.patientId}}&category=laboratory"
    return {key: templates[key] for key in PREFETCH_KEYS[pathway_id]}


@dataclass(frozen=True)
class _Candidate:
    name: str
    value: Any
    when: datetime
    order: int
    origin: str


def prefetch_to_inputs(
    pathway_id: str, prefetch: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Return ``(inputs, missing_prefetch, notes)`` for a pathway from CDS Hooks prefetch data.

    ``inputs`` holds raw values for :func:`cds.engine.validate_inputs`; only the latest usable
    value of each input is kept. ``missing_prefetch`` lists expected prefetch keys that were
    absent or empty (the caller must fetch them). ``notes`` explains every mapping, conversion
    and skipped resource.
    """
    if pathway_id not in PATHWAY_INPUTS:
        raise ValueError(f"no FHIR mapping for pathway {pathway_id!r}")
    wanted = set(PATHWAY_INPUTS[pathway_id])
    notes: list[str] = []
    missing_prefetch = [key for key in PREFETCH_KEYS[pathway_id] if not prefetch.get(key)]

    resources = []
    for key, data in prefetch.items():
        if not data:
            continue
        resources.extend(_parse(key, data, notes))

    candidates: list[_Candidate] = []
    for order, resource in enumerate(resources, start=1):
        kind = resource.get_resource_type()
        if kind == "Observation":
            candidates.extend(_from_observation(resource, wanted, order, notes))
        elif kind == "Condition":
            candidates.extend(_from_condition(resource, wanted, order, notes))

    inputs: dict[str, Any] = {}
    chosen: dict[str, _Candidate] = {}
    for candidate in candidates:
        current = chosen.get(candidate.name)
        if current is None or (candidate.when, candidate.order) > (current.when, current.order):
            if current is not None and current.value != candidate.value:
                notes.append(
                    f"{candidate.name}: {candidate.origin} is more recent than {current.origin}; "
                    "the older value was not used."
                )
            chosen[candidate.name] = candidate
        elif current.value != candidate.value:
            notes.append(f"{candidate.name}: older value from {candidate.origin} not used.")
    for name, candidate in chosen.items():
        inputs[name] = candidate.value
        notes.append(f"{name} = {candidate.value!r} from {candidate.origin}.")
    return inputs, missing_prefetch, notes


def _parse(key: str, data: Any, notes: list[str]) -> list[Any]:
    if not isinstance(data, Mapping) or "resourceType" not in data:
        notes.append(f"prefetch '{key}' is not a FHIR resource; ignored.")
        return []
    try:
        model = get_fhir_model_class(data["resourceType"])
    except (KeyError, ValueError):
        notes.append(f"prefetch '{key}': unknown resourceType {data['resourceType']!r}; ignored.")
        return []
    try:
        resource = model.model_validate(data)
    except ValidationError as exc:
        notes.append(f"prefetch '{key}' is not valid FHIR ({exc.error_count()} errors); ignored.")
        return []
    if resource.get_resource_type() == "Bundle":
        return [entry.resource for entry in resource.entry or () if entry.resource is not None]
    return [resource]


def _from_observation(obs: Any, wanted: set[str], order: int, notes: list[str]) -> list[_Candidate]:
    origin = f"Observation/{obs.id or '?'}"
    codes = [c.code for c in (obs.code.coding or ()) if c.system == LOINC and c.code]
    status = str(obs.status)
    found: list[tuple[str, Any]] = []
    for code in codes:
        name = OBSERVATION_CODES.get(code)
        if name in wanted:
            value = _observation_value(name, obs, notes, origin)
            if value is not None:
                found.append((name, value))
    if not found and wanted & set(GENES):
        found.extend(_driver_results(obs, wanted, notes, origin))
    if found and status not in USABLE_STATUSES:
        notes.append(f"{origin} has status '{status}'; not used.")
        return []
    when = _when(obs)
    return [_Candidate(name, value, when, order, origin) for name, value in found]


def _from_condition(cond: Any, wanted: set[str], order: int, notes: list[str]) -> list[_Candidate]:
    origin = f"Condition/{cond.id or '?'}"
    clinical = (cond.verificationStatus is None) or any(
        c.code in ("confirmed", "provisional", "differential")
        for c in cond.verificationStatus.coding or ()
    )
    if not clinical:
        notes.append(f"{origin} is not confirmed; not used.")
        return []
    found: list[tuple[str, Any]] = []
    texts = [_concept_text(stage.summary) for stage in cond.stage or () if stage.summary]
    for text in texts:
        for name, value in _parse_tnm(text).items():
            if name in wanted:
                found.append((name, value))
        group = _stage_group(text)
        if "stage" in wanted and group:
            found.append(("stage", group))
    if "histology" in wanted:
        histology = _histology(_concept_text(cond.code)) if cond.code else None
        if histology:
            found.append(("histology", histology))
    when = _as_datetime(cond.recordedDate or cond.onsetDateTime)
    return [_Candidate(name, value, when, order, f"{origin} (stage/code)") for name, value in found]


def _observation_value(name: str, obs: Any, notes: list[str], origin: str) -> Any:
    quantity = obs.valueQuantity
    text = _value_text(obs)
    if name == "psa":
        if quantity is None or quantity.value is None:
            notes.append(f"{origin}: PSA without a quantity; not used.")
            return None
        unit = (quantity.code or quantity.unit or "ng/mL").replace("µ", "u")
        if unit.lower() not in ("ng/ml", "ug/l"):
            notes.append(f"{origin}: PSA unit '{unit}' not supported; not used.")
            return None
        return _number(quantity.value)
    if name in ("er_pct", "pr_pct", "ki67_pct", "pdl1_tps"):
        if quantity is not None and quantity.value is not None:
            unit = quantity.code or quantity.unit or "%"
            if unit != "%":
                notes.append(f"{origin}: unit '{unit}' is not a percentage; not used.")
                return None
            return _number(quantity.value)
        if name in ("er_pct", "pr_pct") and re.search(r"\bnegative\b", text, re.I):
            notes.append(
                f"{origin}: reported 'negative' without a percentage; mapped to 0% (< 1%)."
            )
            return 0
        notes.append(f"{origin}: {name} needs a percentage; '{text}' not used.")
        return None
    if name == "psa_density":
        if quantity is None or quantity.value is None:
            return None
        return _number(quantity.value)
    if name == "gleason":
        match = re.search(r"([1-5])\s*\+\s*([1-5])", text)
        if match:
            return f"{match[1]}+{match[2]}"
        notes.append(
            f"{origin}: Gleason score '{text}' has no primary+secondary pattern; not used."
        )
        return None
    if name == "isup_grade":
        if obs.valueInteger is not None:
            return int(obs.valueInteger)
        grade = _grade_group(obs)
        if grade is None:
            notes.append(f"{origin}: grade group '{text}' not recognised; not used.")
        return grade
    if name in ("ct", "cn", "cm"):
        value = _parse_tnm(text).get(name)
        if value is None:
            notes.append(
                f"{origin}: '{text}' is not a clinical {name[1].upper()} category; not used."
            )
        return value
    if name == "stage":
        group = _stage_group(text)
        if group is None:
            notes.append(f"{origin}: stage '{text}' not mapped (stage III needs 'curable or not').")
        return group
    if name == "her2_ihc":
        if obs.valueInteger is not None and 0 <= obs.valueInteger <= 3:
            return int(obs.valueInteger)
        match = re.search(r"(?<![\d.])([0-3])\s*\+?(?![\d.])", text)
        if match:
            return int(match[1])
        notes.append(f"{origin}: HER2 IHC '{text}' has no 0/1+/2+/3+ score; not used.")
        return None
    if name == "her2_ish":
        group = re.search(r"group\s*([1-5])", text, re.I)
        if group:
            return f"group{group[1]}"
        if re.search(r"not\s+amplified|negative|not\s+detected", text, re.I):
            return "negative"
        if re.search(r"amplified|positive", text, re.I):
            return "positive"
        notes.append(f"{origin}: HER2 ISH '{text}' not mapped.")
        return None
    if name == "ecog":
        score = obs.valueInteger
        if score is None:
            codes = {c.code for c in _codings(obs.valueCodeableConcept)}
            ecog_answers = {
                "LA9622-7": 0,
                "LA9623-5": 1,
                "LA9624-3": 2,
                "LA9625-0": 3,
                "LA9626-8": 4,
            }
            score = next((ecog_answers[c] for c in codes if c in ecog_answers), None)
        if score is None:
            match = re.search(r"\b([0-4])\b", text)
            score = int(match[1]) if match else None
        if score is None:
            notes.append(f"{origin}: ECOG '{text}' not mapped.")
            return None
        return {0: "0-1", 1: "0-1", 2: "2", 3: "3-4", 4: "3-4"}.get(int(score))
    if name == "histology":
        return _histology(text)
    return None


def _driver_results(
    obs: Any, wanted: set[str], notes: list[str], origin: str
) -> list[tuple[str, Any]]:
    """Gene results from genomics-reporting style variant Observations or gene-named codes."""
    gene_texts = [_concept_text(obs.code)]
    variant_texts = [_value_text(obs)]
    for component in obs.component or ():
        codes = {c.code for c in component.code.coding or ()}
        if GENE_STUDIED in codes:
            gene_texts.append(_concept_text(component.valueCodeableConcept))
        elif codes & VARIANT_COMPONENTS or component.valueString:
            variant_texts.append(
                _concept_text(component.valueCodeableConcept) or component.valueString or ""
            )
    gene_blob = " ".join(t for t in gene_texts if t)
    blob = " ".join(t for t in variant_texts if t)
    results = []
    for name in sorted(wanted & set(GENES)):
        if not any(
            re.search(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])", gene_blob)
            for s in GENES[name]
        ):
            continue
        value = _driver_value(name, blob)
        if value is None:
            notes.append(f"{origin}: {name.upper()} result '{blob}' not mapped.")
            continue
        results.append((name, value))
    return results


def _driver_value(gene: str, text: str) -> str | None:
    t = text.lower()
    if re.search(r"not\s+tested|not\s+done|not\s+performed", t):
        return "not_tested"
    if "pending" in t or "in progress" in t:
        return "pending"
    if re.search(
        r"not\s+detected|negative|absent|wild[\s-]?type|\bla9634-2\b|no\s+(mutation|fusion|alteration)",
        t,
    ):
        return "negative"
    positive = re.search(
        r"detected|positive|present|\bla9633-4\b|mutat|fusion|rearrang|amplif|p\.", t
    )
    if gene == "egfr":
        if re.search(r"exon\s*19|ex19|e746|19del", t):
            return "exon19del"
        if "l858r" in t:
            return "L858R"
        if re.search(r"exon\s*20\s*ins|ex20ins|exon20ins", t):
            return "exon20ins"
        if re.search(r"g719|l861q|s768i", t):
            return "other_sensitising"
        return "other" if positive else None
    if gene in ("alk", "ros1", "ret", "ntrk"):
        return "fusion" if positive else None
    if gene == "braf":
        if "v600e" in t:
            return "V600E"
        return "non_V600" if re.search(r"mutat|p\.", t) else None
    if gene == "kras":
        if "g12c" in t:
            return "G12C"
        return "other" if positive else None
    if gene == "met":
        if re.search(r"exon\s*14|ex14", t):
            return "exon14_skipping"
        return "amplification" if "amplif" in t else None
    if gene == "her2":
        if "amplif" in t:
            return "amplification"
        return "mutation" if re.search(r"mutat|exon\s*20|ins|p\.", t) else None
    return None


def _grade_group(obs: Any) -> int | None:
    answers = {"LA30794-4": 1, "LA30795-1": 2, "LA30796-9": 3, "LA30797-7": 4, "LA30798-5": 5}
    for coding in _codings(obs.valueCodeableConcept):
        if coding.code in answers:
            return answers[coding.code]
    match = re.search(r"(?:grade\s*(?:group)?|gg|isup)\s*([1-5])\b", _value_text(obs), re.I)
    if match:
        return int(match[1])
    match = re.fullmatch(r"\s*([1-5])\s*", _value_text(obs))
    return int(match[1]) if match else None


_TNM = re.compile(
    r"(?:(?<=[0-9a-dxX])|(?<![A-Za-z]))(c|p|yc|yp)?\s?([TNM])\s?([0-4X][a-d]?)(?![0-9])", re.I
)


def _parse_tnm(text: str) -> dict[str, str]:
    """'cT2a cN0 cM0', 'T2aN0M0' or 'cT3b' -> clinical categories (pathological ones are ignored)."""
    result = {}
    for prefix, letter, value in _TNM.findall(text or ""):
        if prefix and prefix.lower() in ("p", "yp"):
            continue
        letter = letter.upper()
        value = value.upper() if len(value) == 1 else value[0].upper() + value[1:].lower()
        name = {"T": "ct", "N": "cn", "M": "cm"}[letter]
        result.setdefault(name, f"c{letter}{value}")
    return result


def _stage_group(text: str) -> str | None:
    match = re.search(r"(?:stage\s*)?\b(IV[AB]?)\b", text or "", re.I)
    return match[1].upper() if match else None


def _histology(text: str) -> str | None:
    t = (text or "").lower()
    morphology = re.search(r"\b(8\d{3})/3\b", t)
    if morphology:
        code = int(morphology[1])
        if 8050 <= code <= 8089:
            return "squamous"
        if code in (8140, 8230, 8250, 8251, 8252, 8253, 8254, 8255, 8260, 8265, 8480, 8550):
            return "adenocarcinoma"
        return "other"
    if "squamous" in t:
        return "squamous"
    if "adenocarcinoma" in t:
        return "adenocarcinoma"
    if re.search(r"non[\s-]?small|nsclc|large cell", t):
        return "other"
    return None


def _codings(concept: Any) -> Iterable[Any]:
    return (concept.coding or ()) if concept is not None else ()


def _concept_text(concept: Any) -> str:
    if concept is None:
        return ""
    parts = [concept.text or ""]
    for coding in concept.coding or ():
        parts.extend(str(p) for p in (coding.display, coding.code) if p)
    return " ".join(p for p in parts if p)


def _value_text(obs: Any) -> str:
    if obs.valueString:
        return obs.valueString
    if obs.valueCodeableConcept is not None:
        return _concept_text(obs.valueCodeableConcept)
    if obs.valueInteger is not None:
        return str(obs.valueInteger)
    if obs.valueQuantity is not None and obs.valueQuantity.value is not None:
        return str(obs.valueQuantity.value)
    return ""


def _number(value: Decimal | float | int) -> float | int:
    number = float(value)
    return int(number) if number.is_integer() else number


def _when(obs: Any) -> datetime:
    if obs.effectiveDateTime is not None:
        return _as_datetime(obs.effectiveDateTime)
    if obs.effectivePeriod is not None and (obs.effectivePeriod.end or obs.effectivePeriod.start):
        return _as_datetime(obs.effectivePeriod.end or obs.effectivePeriod.start)
    return _as_datetime(obs.issued)


def _as_datetime(value: Any) -> datetime:
    if value is None:
        return datetime.min.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)
