"""feedback.permissions.allows (in memory, for lists) and restrict (the queryset choke point) answer
the same for every actor, item and action."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.models import Role
from feedback import permissions
from feedback.models import FeedbackItem
from tests.factories import make_member

from .factories import FeedbackItemFactory

pytestmark = pytest.mark.django_db

ACTIONS = sorted(permissions._items.rules)


def test_it_agrees_with_restrict_for_every_actor_item_and_action(
    clinician_a, colleague_a, clinician_b, triager, platform_admin, hospital_a, hospital_c, item_a
):
    hospital_a.is_test_site = True
    hospital_a.save()
    hospital_c.is_test_site = True
    hospital_c.save()
    clinician_c = make_member(hospital_c, Role.CLINICIAN, username="clinician_c")
    shared = FeedbackItemFactory(site=hospital_a, author=clinician_a, shared=True)
    items = [item_a, shared]
    actors = [clinician_a, colleague_a, clinician_b, clinician_c, triager, platform_admin]
    checked = 0
    for actor in [*actors, AnonymousUser()]:
        for action in ACTIONS:
            allowed = set(
                permissions.restrict(FeedbackItem.objects.all(), actor, action).values_list(
                    "pk", flat=True
                )
            )
            for item in items:
                assert permissions.allows(item, actor, action) == (item.pk in allowed), (
                    actor,
                    action,
                    item.title,
                )
                checked += 1
    assert checked == 7 * len(ACTIONS) * 2
    # The fixture covers both answers: an outsider's refusal and a test site's shared view.
    assert not permissions.allows(item_a, clinician_b, "view")
    assert permissions.allows(shared, clinician_c, "comment")
