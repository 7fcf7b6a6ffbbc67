import csv
import io

from accounts import audit


def _events(hospital_a, hospital_b):
    audit.record("thing.a", organisation=hospital_a)
    audit.record("thing.b", organisation=hospital_b)
    audit.record("thing.platform")


def test_a_platform_admin_sees_the_whole_trail(api_as, platform_admin, hospital_a, hospital_b):
    _events(hospital_a, hospital_b)
    body = api_as(platform_admin).get("/api/audit/").json()
    assert {e["action"] for e in body["results"]} == {"thing.a", "thing.b", "thing.platform"}


def test_an_org_admin_sees_only_their_organisations_events(
    api_as, org_admin_a, hospital_a, hospital_b
):
    _events(hospital_a, hospital_b)
    body = api_as(org_admin_a).get("/api/audit/").json()
    assert [e["action"] for e in body["results"]] == ["thing.a"]


def test_a_researcher_sees_no_audit_events(api_as, client_as, researcher, hospital_a, hospital_b):
    _events(hospital_a, hospital_b)
    assert api_as(researcher).get("/api/audit/").json()["count"] == 0
    assert client_as(researcher).get("/audit/").status_code == 404


def test_the_trail_filters_by_action(client_as, platform_admin, hospital_a, hospital_b):
    _events(hospital_a, hospital_b)
    response = client_as(platform_admin).get("/audit/", {"action": "thing.a"})
    assert response.status_code == 200
    assert b"thing.a" in response.content and b"thing.b" not in response.content


def test_it_exports_the_trail_as_csv(client_as, platform_admin, hospital_a, hospital_b):
    _events(hospital_a, hospital_b)
    response = client_as(platform_admin).get("/audit/export.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["seq", "timestamp", "actor", "action"]
    assert [r[3] for r in rows[1:]] == ["thing.a", "thing.b", "thing.platform"]


def test_it_exports_only_the_events_the_filters_show(
    client_as, platform_admin, hospital_a, hospital_b
):
    _events(hospital_a, hospital_b)
    client = client_as(platform_admin)
    page = client.get("/audit/", {"action": "thing.a"}, headers={"HX-Request": "true"})
    # The htmx answer carries the export link with the filters it shows.
    href = page.content.decode().split('id="audit-export"')[0].rsplit('href="', 1)[1]
    href = href.split('"', 1)[0].replace("&amp;", "&")
    assert href == "/audit/export.csv?action=thing.a"
    rows = list(csv.reader(io.StringIO(b"".join(client.get(href).streaming_content).decode())))
    assert [r[3] for r in rows[1:]] == ["thing.a"]


def test_a_bad_since_is_a_field_error_not_a_silent_filter(
    client_as, api_as, platform_admin, hospital_a, hospital_b
):
    _events(hospital_a, hospital_b)
    response = client_as(platform_admin).get("/audit/", {"since": "yesterday"})
    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_since_error"' in html and "Enter a date such as" in html
    assert 'href="#id_since"' in html  # the summary links to the field
    assert 'value="yesterday"' in html  # the input is kept
    assert "audit-export" not in html
    assert client_as(platform_admin).get("/audit/export.csv?since=yesterday").status_code == 400
    api = api_as(platform_admin).get("/api/audit/", {"since": "yesterday"})
    assert api.status_code == 400
    assert "since" in api.json()["error"]["fields"]


def test_a_date_alone_is_accepted_as_since(client_as, platform_admin, hospital_a, hospital_b):
    _events(hospital_a, hospital_b)
    response = client_as(platform_admin).get("/audit/", {"since": "2000-01-01"})
    assert response.status_code == 200 and b"thing.a" in response.content


def test_the_trail_shows_actions_in_words(client_as, platform_admin, hospital_a):
    audit.record("access_request.updated", organisation=hospital_a)
    html = client_as(platform_admin).get("/audit/").content.decode()
    assert "Access request updated" in html
