"""factory_boy factories for the ground every app stands on. Apps add their own in tests/<app>/factories.py."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from accounts.models import (
    Membership,
    MembershipRole,
    Notification,
    Organisation,
    OrganisationKind,
)

PASSWORD = "correct-horse-battery"


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Hospital {n}")
    slug = factory.Sequence(lambda n: f"hospital-{n}")
    country = "DE"
    kind = OrganisationKind.HOSPITAL
    is_test_site = True


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"Person {n}")

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save()


def make_member(
    organisation: Organisation, *roles: str, username: str | None = None, **user_kwargs
):
    """A user holding ``roles`` in ``organisation``."""
    user = UserFactory(username=username, **user_kwargs) if username else UserFactory(**user_kwargs)
    membership, _ = Membership.objects.get_or_create(user=user, organisation=organisation)
    for role in roles:
        MembershipRole.objects.get_or_create(membership=membership, name=role)
    return user


class NotificationFactory(factory.django.DjangoModelFactory):
    """A notification row as ``accounts.notifications.notify`` writes it (nothing enqueued)."""

    class Meta:
        model = Notification

    recipient = factory.SubFactory(UserFactory)
    verb = "test.happened"
    subject = factory.Sequence(lambda n: f"Something happened {n}")
    body = ""
    url = ""
