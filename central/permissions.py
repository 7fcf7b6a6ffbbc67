"""The central app's one access choke point.

- ``view`` (uploads, versions): data stewards of the dataset's publisher; platform admins (the
  operators of the central database) too. Everyone else gets a 404.
- The central node's page: platform admins (operators) only (:func:`may_operate`).
- A central copy's disclosure policy: site admins of the dataset's publisher, no admin bypass
  (``restrict(datasets, user, "set_policy")``); the policy is the provider's.
- ``upload`` (send chunks, complete) and ``retire`` (a version): data stewards of the publisher of
  a dataset that is not retired; no admin bypass, the data is the provider's.
"""

from __future__ import annotations

from django.db.models import QuerySet

from accounts import permissions as base
from accounts.models import Role
from catalogue.models import Dataset, Status

from .models import DatasetVersion, Upload


def _stewards(qs: QuerySet, user) -> QuerySet:
    return qs.filter(dataset__publisher_id__in=base.org_ids_with_role(user, Role.DATA_STEWARD))


def _stewards_of_live(qs: QuerySet, user) -> QuerySet:
    return _stewards(qs, user).exclude(dataset__status=Status.RETIRED)


def may_operate(user) -> bool:
    """Operators (platform admins) enrol, rotate and revoke the central node."""
    return base.is_platform_admin(user)


def _site_admins_of_live(qs: QuerySet[Dataset], user) -> QuerySet[Dataset]:
    """Live datasets whose publisher the user is a site admin of (the caller also checks that the
    dataset is offered as a central copy: JSON containment is not portable to SQLite)."""
    return qs.filter(publisher_id__in=base.org_ids_with_role(user, Role.SITE_ADMIN)).exclude(
        status=Status.RETIRED
    )


restrict = base.ModelRestrictor(
    {
        Upload: base.Restrictor(
            {"view": _stewards, "upload": _stewards_of_live}, admin_bypass_excluded={"upload"}
        ),
        DatasetVersion: base.Restrictor(
            {"view": _stewards, "retire": _stewards_of_live}, admin_bypass_excluded={"retire"}
        ),
        Dataset: base.Restrictor(
            {"set_policy": _site_admins_of_live}, admin_bypass_excluded={"set_policy"}
        ),
    }
)
allows = restrict.allows
