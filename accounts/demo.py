"""Demo organisations and people. Other apps add their demo data in their own ``demo.py``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.test.utils import override_settings

from .models import Membership, MembershipRole, Organisation, OrganisationKind, Role

DEMO_PASSWORD = "optima-demo-2026"
SEED_EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"


@contextmanager
def seed_mail_discarded() -> Iterator[None]:
    """Seeding walks the real services, which notify people by e-mail through Celery tasks. Run
    those tasks inline and discard their mail, so that no seeded e-mail is queued for the worker to
    print on the console after ``make run``'s ready banner (hundreds of lines). The rows they mark
    as sent are the demo's history, as if the e-mails had gone out."""
    from celery import current_app

    previous = current_app.conf.task_always_eager
    trace_log = logging.getLogger("celery.app.trace")  # one INFO line per inline task
    previous_level = trace_log.level
    current_app.conf.task_always_eager = True
    trace_log.setLevel(logging.WARNING)
    try:
        with override_settings(EMAIL_BACKEND=SEED_EMAIL_BACKEND):
            yield
    finally:
        current_app.conf.task_always_eager = previous
        trace_log.setLevel(previous_level)


HOSPITALS = [
    # code, name, country, time zone
    ("de", "Universitätsklinikum Nordrhein", "DE", "Europe/Berlin"),
    ("fr", "CHU de la Loire", "FR", "Europe/Paris"),
    ("nl", "Amstel Universitair Medisch Centrum", "NL", "Europe/Amsterdam"),
    ("se", "Norrland Universitetssjukhus", "SE", "Europe/Stockholm"),
]
RESEARCH = ("eicor", "European Institute for Cancer Outcomes Research", "BE", "Europe/Brussels")
PLATFORM = ("optima", "OPTIMA Platform Operations", "BE", "Europe/Brussels")

HOSPITAL_PEOPLE = [
    ("steward", "Data steward", [Role.DATA_STEWARD]),
    ("dac", "DAC member", [Role.DAC_MEMBER]),
    ("siteadmin", "Site admin", [Role.SITE_ADMIN]),
    ("signatory", "Signatory", [Role.SIGNATORY]),
    ("orgadmin", "Organisation admin", [Role.ORG_ADMIN]),
    ("clinician", "Clinician", [Role.CLINICIAN]),
]

# One login per persona, printed by `make run`.
PERSONA_LOGINS = [
    ("Platform administrator", "admin"),
    ("Catalogue curator", "curator"),
    ("Data steward (DE hospital)", "steward.de"),
    ("DAC member (DE hospital)", "dac.de"),
    ("Site admin (DE hospital)", "siteadmin.de"),
    ("Signatory (DE hospital)", "signatory.de"),
    ("Organisation admin (DE hospital)", "orgadmin.de"),
    ("Researcher (research institute)", "researcher"),
    ("Clinician (FR test site)", "clinician.fr"),
]

FIRST_NAMES = {"de": "Anna", "fr": "Camille", "nl": "Sanne", "se": "Elin"}


def _org(slug, name, country, tz, kind, test_site=False) -> Organisation:
    org, _ = Organisation.objects.update_or_create(
        slug=slug,
        defaults={
            "name": name,
            "country": country,
            "time_zone": tz,
            "kind": kind,
            "is_test_site": test_site,
        },
    )
    return org


@cache
def _demo_password_hash() -> str:
    # One hash for every demo account keeps seeding fast; these are public demo credentials anyway.
    return make_password(DEMO_PASSWORD)


def _person(
    username: str, first: str, last: str, org: Organisation, roles: list[str], *, staff=False
):
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=username,
        defaults={
            "first_name": first,
            "last_name": last,
            "email": f"{username}@demo.optima.local",
            "is_staff": staff,
            "is_superuser": staff,
        },
    )
    if created:
        user.password = _demo_password_hash()
        user.save(update_fields=["password"])
    membership, _ = Membership.objects.get_or_create(user=user, organisation=org)
    for role in roles:
        MembershipRole.objects.get_or_create(membership=membership, name=role)
    return user


@transaction.atomic
def seed(stdout=None) -> dict:
    orgs = {}
    for code, name, country, tz in HOSPITALS:
        orgs[code] = _org(
            f"{code}-hospital", name, country, tz, OrganisationKind.HOSPITAL, test_site=True
        )
        for prefix, label, roles in HOSPITAL_PEOPLE:
            _person(
                f"{prefix}.{code}", FIRST_NAMES[code], f"{label} {code.upper()}", orgs[code], roles
            )
    code, name, country, tz = RESEARCH
    orgs[code] = _org(code, name, country, tz, OrganisationKind.RESEARCH)
    _person("researcher", "Rui", "Researcher", orgs[code], [Role.RESEARCHER])
    _person("researcher2", "Ines", "Analyst", orgs[code], [Role.RESEARCHER])
    _person("signatory.eicor", "Marc", "Signatory", orgs[code], [Role.SIGNATORY])
    _person("orgadmin.eicor", "Lena", "Admin", orgs[code], [Role.ORG_ADMIN])
    code, name, country, tz = PLATFORM
    orgs[code] = _org(code, name, country, tz, OrganisationKind.PLATFORM)
    _person("admin", "Pat", "Platform", orgs[code], [Role.ORG_ADMIN], staff=True)
    _person("curator", "Cora", "Curator", orgs[code], [Role.CURATOR])
    if stdout:
        stdout.write(f"Organisations: {len(orgs)}; demo users ready.")
    return orgs
