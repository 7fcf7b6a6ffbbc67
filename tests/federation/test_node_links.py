"""Which node serves a dataset: the steward proposes one of the hospital's approved nodes, the
node's site admin confirms (told in-app and on the dashboard), and only then can researchers
analyse it; researchers are told why a dataset is not analysable yet."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Notification
from federation.models import LinkStatus, Node, NodeDataset
from tests.federation.factories import grant_federated_analytics, make_dataset, make_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(hospital_a, hospital_b):
    node_a, _ = make_node(hospital_a, "omop-a")
    node_b, _ = make_node(hospital_b, "omop-b")
    pending = Node.objects.create(organisation=hospital_a, name="not-yet-approved")
    dataset = make_dataset(hospital_a, "PSMA PET cohort")
    return {"node_a": node_a, "node_b": node_b, "pending": pending, "dataset": dataset}


def serve(client, dataset, node):
    return client.post(reverse("federation:dataset_serve", args=[dataset.pk]), {"node": node.pk})


def confirm(client, link):
    return client.post(reverse("federation:node_dataset_confirm", args=[link.node_id, link.pk]))


def analysis_form_datasets(client) -> list[int]:
    form = client.get(reverse("federation:analysis_create")).context["form"]
    return [d.pk for d in form.fields["datasets"].queryset]


def test_it_walks_proposal_confirmation_and_analysis(
    client_as, world, steward_a, site_admin_a, researcher
):
    dataset, node = world["dataset"], world["node_a"]
    grant_federated_analytics(researcher, dataset)

    # Entitled and published but served by no node: not selectable, and the form says why.
    page = client_as(researcher).get(reverse("federation:analysis_create"))
    assert dataset.pk not in [d.pk for d in page.context["form"].fields["datasets"].queryset]
    assert "PSMA PET cohort</a>: not served by any node yet" in page.content.decode()

    # The steward chooses the node from the dataset page.
    detail = client_as(steward_a).get(reverse("catalogue:detail", args=[dataset.identifier]))
    assert "Propose node" in detail.content.decode()
    response = serve(client_as(steward_a), dataset, node)
    assert response.status_code == 302
    link = NodeDataset.objects.get(dataset=dataset, node=node)
    assert link.status == LinkStatus.PROPOSED and link.proposed_by == steward_a
    assert AuditEvent.objects.filter(action="node.dataset_proposed", actor=steward_a).exists()

    # The site admin is told, and the dashboard lists the task.
    told = Notification.objects.get(recipient=site_admin_a, verb="node.dataset_proposed")
    assert told.url == reverse("federation:node", args=[node.pk])
    dashboard = client_as(site_admin_a).get(reverse("accounts:dashboard")).content.decode()
    assert "Datasets awaiting your confirmation" in dashboard
    assert "PSMA PET cohort at omop-a" in dashboard

    # Still not analysable; the researcher sees why.
    researcher_client = client_as(researcher)
    assert dataset.pk not in analysis_form_datasets(researcher_client)
    detail = researcher_client.get(reverse("catalogue:detail", args=[dataset.identifier]))
    assert "its node (omop-a) awaits the site admin&#x27;s confirmation" in detail.content.decode()

    # The site admin confirms on the node page.
    node_page = client_as(site_admin_a).get(reverse("federation:node", args=[node.pk]))
    assert "Confirm PSMA PET cohort" in node_page.content.decode()
    assert confirm(client_as(site_admin_a), link).status_code == 302
    link.refresh_from_db()
    assert link.status == LinkStatus.CONFIRMED and link.confirmed_by == site_admin_a
    assert AuditEvent.objects.filter(action="node.dataset_confirmed", actor=site_admin_a).exists()
    assert Notification.objects.filter(recipient=steward_a, verb="node.dataset_confirmed").exists()

    researcher_client = client_as(researcher)
    assert dataset.pk in analysis_form_datasets(researcher_client)
    detail = researcher_client.get(reverse("catalogue:detail", args=[dataset.identifier]))
    assert "You can analyse this dataset" in detail.content.decode()


def test_it_offers_only_the_publishers_approved_nodes(client_as, world, steward_a):
    page = client_as(steward_a).get(reverse("catalogue:detail", args=[world["dataset"].identifier]))
    offered = _node_options(page.content.decode())
    assert offered == [str(world["node_a"].pk)]
    form = client_as(steward_a).get(reverse("catalogue:create")).context["form"]
    assert [v for v, _ in form.fields["node_ref"].choices] == ["", "hospital-a/omop-a"]


def _node_options(html: str) -> list[str]:
    import re

    select = re.search(r'<select name="node".*?</select>', html, re.S).group(0)
    return [v for v in re.findall(r'<option value="(\d+)"', select)]


def test_a_steward_cannot_link_another_hospitals_node_or_a_pending_one(client_as, world, steward_a):
    for node in (world["node_b"], world["pending"]):
        response = serve(client_as(steward_a), world["dataset"], node)
        assert response.status_code == 400
    assert not NodeDataset.objects.exists()


def test_a_steward_of_another_hospital_gets_404(client_as, world, steward_b):
    response = serve(client_as(steward_b), world["dataset"], world["node_b"])
    assert response.status_code == 404
    response = serve(client_as(steward_b), world["dataset"], world["node_a"])
    assert response.status_code == 404
    assert not NodeDataset.objects.exists()


def test_only_the_nodes_site_admin_confirms(
    client_as, world, steward_a, hospital_b, researcher, site_admin_a
):
    from accounts.models import Role
    from tests.factories import make_member

    serve(client_as(steward_a), world["dataset"], world["node_a"])
    link = NodeDataset.objects.get()
    site_admin_b = make_member(hospital_b, Role.SITE_ADMIN, username="siteadmin_b")
    for intruder in (site_admin_b, researcher, steward_a):
        assert confirm(client_as(intruder), link).status_code == 404
    link.refresh_from_db()
    assert link.status == LinkStatus.PROPOSED
    # A confirmation named through another node of one's own is a 404 too.
    other = make_node(world["node_a"].organisation, "omop-a2")[0]
    url = reverse("federation:node_dataset_confirm", args=[other.pk, link.pk])
    assert client_as(site_admin_a).post(url).status_code == 404


def test_unticking_in_the_node_form_keeps_an_open_proposal(
    client_as, world, steward_a, site_admin_a
):
    serve(client_as(steward_a), world["dataset"], world["node_a"])
    url = reverse("federation:node_datasets", args=[world["node_a"].pk])
    assert client_as(site_admin_a).post(url, {}).status_code == 302
    assert NodeDataset.objects.get().status == LinkStatus.PROPOSED
    client_as(site_admin_a).post(url, {"datasets": [world["dataset"].pk]})
    assert NodeDataset.objects.get().status == LinkStatus.CONFIRMED
    assert AuditEvent.objects.filter(action="node.dataset_confirmed").count() == 1


def test_the_analysis_form_hides_drafts_and_unentitled_datasets(
    client_as, world, researcher, hospital_b
):
    served = world["dataset"]
    NodeDataset.objects.create(node=world["node_a"], dataset=served)
    draft = make_dataset(hospital_b, "Draft elsewhere", published=False)
    NodeDataset.objects.create(node=world["node_b"], dataset=draft)
    not_entitled = make_dataset(hospital_b, "Not entitled")
    NodeDataset.objects.create(node=world["node_b"], dataset=not_entitled)
    grant_federated_analytics(researcher, served)
    client = client_as(researcher)
    assert analysis_form_datasets(client) == [served.pk]
    page = client.get(reverse("federation:analysis_create")).content.decode()
    assert "Draft elsewhere" not in page  # another hospital's draft: not even named
    assert "request access" in page
    # Its dataset page says how to get access.
    detail = client.get(reverse("catalogue:detail", args=[not_entitled.identifier])).content
    assert b"no entitlement for federated analytics: request access" in detail
    assert f"?dataset={not_entitled.pk}".encode() in detail


def test_choosing_a_node_in_the_dataset_form_proposes_it(client_as, world, steward_a):
    from catalogue import services as catalogue_services

    dataset = world["dataset"]
    catalogue_services.dataset_update(
        user=steward_a,
        dataset=dataset,
        data={},
        distributions=[
            {
                "kind": "federated_omop",
                "title": "Federated OMOP CDM database",
                "description": "",
                "access_url": "",
                "node_ref": world["node_a"].ref,
            }
        ],
    )
    link = NodeDataset.objects.get(dataset=dataset)
    assert link.node == world["node_a"] and link.status == LinkStatus.PROPOSED


def test_a_steward_who_is_also_site_admin_links_at_once(client_as, world, steward_a, hospital_a):
    from accounts.models import Role
    from tests.factories import make_member

    both = make_member(hospital_a, Role.DATA_STEWARD, Role.SITE_ADMIN, username="both_a")
    serve(client_as(both), world["dataset"], world["node_a"])
    assert NodeDataset.objects.get().status == LinkStatus.CONFIRMED
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"node.dataset_proposed", "node.dataset_confirmed"} <= actions


def test_a_steward_of_two_hospitals_cannot_give_one_the_others_node(
    client_as, world, hospital_a, hospital_b
):
    from accounts.models import Role
    from catalogue.forms import DatasetForm
    from tests.factories import make_member

    make_member(hospital_a, Role.DATA_STEWARD, username="steward_ab")
    make_member(hospital_b, Role.DATA_STEWARD, username="steward_ab")
    form = DatasetForm(
        {"publisher": hospital_a.pk, "title": "Two sites", "node_ref": world["node_b"].ref},
        steward_orgs={hospital_a.pk, hospital_b.pk},
    )
    offered = [v for v, _ in form.fields["node_ref"].choices]
    assert world["node_a"].ref in offered and world["node_b"].ref in offered
    assert not form.is_valid() and "node_ref" in form.errors
