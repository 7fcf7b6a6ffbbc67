"""Named extension points between sibling apps, which may not import one another.

``catalogue``, ``cds`` and ``feedback`` sit on the same floor of the layers contract
(``pyproject.toml``): none imports another. When one can use what a sibling offers (a clinician's
disagreement with CDS advice becomes a feedback item), the sibling *provides* a function under a
name at app ready, and the user asks for it by that name here, in the floor below both. Without a
provider the user carries on without it (``provided`` returns None).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# name -> function; filled by AppConfig.ready() of the providing apps.
PROVIDERS: dict[str, Callable[..., Any]] = {}

# Records a clinician's disagreement with a CDS evaluation as a feedback item (feedback provides
# it; cds uses it): f(*, user, evaluation, reason) -> the item, or None when none is recorded.
CDS_DISAGREEMENT = "cds.disagreement_record"

# Which node serves a dataset (federation provides them; the catalogue, one floor lower, uses them):
# the approved nodes a publisher's steward may choose in the dataset form,
# f(*, organisation_ids) -> [(node_ref, label)];
DATASET_NODE_CHOICES = "federation.dataset_node_choices"
# the steward chose one (saved with the dataset): f(*, user, dataset, node_ref) -> None;
DATASET_NODE_CHOSEN = "federation.dataset_node_chosen"
# the dataset page's federation section (the node link, why it is not analysable yet),
# f(*, request, dataset) -> HTML.
DATASET_PAGE_SECTION = "federation.dataset_page_section"


def provide(name: str, function: Callable[..., Any]) -> None:
    PROVIDERS[name] = function


def provided(name: str) -> Callable[..., Any] | None:
    return PROVIDERS.get(name)
