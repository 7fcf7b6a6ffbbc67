from django.urls import reverse


def test_it_lists_every_collection_of_every_app(api):
    links = api.get("/api/").json()["links"]
    for key, name in {
        "organisations": "organisation-list",
        "datasets": "catalogue-dataset-list",
        "access-requests": "access-request-list",
        "agreements": "agreement-list",
        "entitlements": "entitlement-list",
        "analyses": "analysis-list",
        "cds/pathways": "cds-pathway-list",
        "feedback/items": "feedback-item-list",
        "audit": "audit-event-list",
        "me": "api-me",
        "schema": "api-schema",
        "docs": "api-docs",
    }.items():
        assert links[key] == "http://testserver" + reverse(name)


def test_every_link_answers_get_and_node_only_routes_are_left_out(api_as, platform_admin):
    client = api_as(platform_admin)
    client.force_login(platform_admin)  # the HTML docs are for signed-in people
    links = client.get("/api/").json()["links"]
    assert not any(key.startswith("node/") for key in links)
    assert "cds/evaluate" not in links  # POST only
    for key, url in links.items():
        assert client.get(url, follow=True).status_code == 200, key
