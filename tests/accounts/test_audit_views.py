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
