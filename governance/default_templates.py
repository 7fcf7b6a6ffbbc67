"""Starting texts for the four kinds of agreement (version 1). Platform admins publish new versions
in the portal; these are only used when a kind has no template yet (demo data, a fresh install)."""

from __future__ import annotations

from .models import AgreementKind

_COMMON_END = """
## Term

This agreement takes effect on {{ effective_date }} and ends on {{ expiry_date }} unless terminated
earlier in writing. Obligations of confidentiality and of deletion survive its end.

## Signatures

Each party signs through the OPTIMA Portal. The signature page lists every signature with the
SHA-256 of the document signed.
"""

DEFAULTS = {
    AgreementKind.JOINT_CONTROLLER: (
        "Joint Controller Agreement",
        """# {{ title }}

Reference: {{ reference }}

## Parties

{{ parties }}

## Subject (GDPR Article 26)

The parties jointly determine the purposes and means of processing pseudonymised real-world cancer
data in the OPTIMA network for: {{ purposes }}

## Respective responsibilities

Each party remains responsible for the lawfulness of the data it contributes, answers data-subject
requests concerning its patients and informs the other parties without undue delay of any personal
data breach. The essence of this arrangement is made available to data subjects.

## Data concerned

{{ datasets }}
"""
        + _COMMON_END,
    ),
    AgreementKind.DATA_PROCESSING: (
        "Data Processing Agreement",
        """# {{ title }}

Reference: {{ reference }}

## Parties

{{ parties }}

## Subject (GDPR Article 28)

The processor processes personal data only on documented instructions of the controller, for:
{{ purposes }}

## Obligations of the processor

Confidentiality of personnel; security measures under Article 32; sub-processors only with prior
written authorisation; assistance with data-subject rights and breach notification; deletion or
return of data at the end of the services; audits.

## Data concerned

{{ datasets }}
"""
        + _COMMON_END,
    ),
    AgreementKind.COLLABORATION: (
        "Collaboration Agreement",
        """# {{ title }}

Reference: {{ reference }}

## Parties

{{ parties }}

## Purpose

The parties collaborate in the OPTIMA network; third parties contribute data for: {{ purposes }}

## Data contributed and its use

{{ datasets }}

Patient-level data never leaves the contributing institution; only aggregate results that pass the
disclosure controls of the node are shared.
"""
        + _COMMON_END,
    ),
    AgreementKind.DATA_ACCESS_USE: (
        "Data Access and Use Agreement",
        """# {{ title }}

Reference: {{ reference }}

## Parties

{{ parties }}

## Permitted use

The data user may use the datasets below, through the access modes approved by the data provider's
data access committee, only for: {{ purposes }}

{{ datasets }}

## Conditions

No attempt at re-identification; results published only in aggregate; acknowledgement of the data
provider; each access request is decided by the provider's data access committee and is listed in
the public data-use register.
"""
        + _COMMON_END,
    ),
}


def ensure_default_templates(*, actor=None) -> list:
    """Create version 1 of every kind that has no template yet (idempotent)."""
    from .models import AgreementTemplate

    created = []
    for kind, (title, body) in DEFAULTS.items():
        if not AgreementTemplate.objects.filter(kind=kind).exists():
            created.append(
                AgreementTemplate.objects.create(
                    kind=kind,
                    version=1,
                    title=title,
                    body=body,
                    notes="Initial version.",
                    created_by=actor,
                )
            )
    return created
