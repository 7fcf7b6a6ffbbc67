def test_errors_share_one_json_shape(api):
    response = api.get("/api/me/")
    assert response.status_code in (401, 403)
    error = response.json()["error"]
    assert set(error) >= {"status", "code", "message"}


def test_it_serves_the_openapi_schema_and_docs_offline(client_as, researcher):
    client = client_as(researcher)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"openapi: 3" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


def test_it_lists_organisations(api, hospital_a):
    body = api.get("/api/organisations/").json()
    assert body["results"][0]["country"] == "DE"
