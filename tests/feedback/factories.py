from __future__ import annotations

import factory

from feedback.models import Category, Component, FeedbackItem, Persona, Severity
from tests.factories import OrganisationFactory, UserFactory


class FeedbackItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FeedbackItem

    site = factory.SubFactory(OrganisationFactory)
    author = factory.SubFactory(UserFactory)
    persona = Persona.CLINICIAN
    category = Category.BUG
    component = Component.CATALOGUE
    component_version = "0.1.0"
    severity = Severity.MEDIUM
    title = factory.Sequence(lambda n: f"Feedback {n}")
    description = "Something **does not** work."


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
