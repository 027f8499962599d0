"""What each CRM API version answers differently, and the departures from Zoho fixed so far.

One test per row of the table in docs/emulator-api-versions.md (the docstring of each test names
its source), then one contract test per departure fixed (the section "Departures fixed" there).
"""

from __future__ import annotations

import pytest

from emulators.crm.versions import CAPABILITY_FLAGS, VERSIONS

BEFORE_V8 = [v for v in VERSIONS if v != "v8"]


def _fields(http, version: str, module: str = "Accounts") -> dict[str, dict]:
    response = http.get(f"/crm/{version}/settings/fields", params={"module": module})
    assert response.status_code == 200, response.text
    return {f["api_name"]: f for f in response.json()["fields"]}


def _modules(http, version: str) -> dict[str, dict]:
    response = http.get(f"/crm/{version}/settings/modules")
    assert response.status_code == 200, response.text
    return {m["api_name"]: m for m in response.json()["modules"]}


# -- the table: one test per row ---------------------------------------------------------------


@pytest.mark.parametrize("version", BEFORE_V8)
def test_fields_is_optional_before_v8(crm_http, version):
    """Row 1. v2 Get Records (zoho.com/crm/developer/docs/api/v2/get-records.html) lists
    `fields` as optional and answers every field; v8's getRecords operation makes it mandatory
    (REQUIRED_PARAM_MISSING, crm-oas v8.0/record/operations/getRecords/operation.md)."""
    response = crm_http.get(f"/crm/{version}/Accounts", params={"per_page": 5})
    assert response.status_code == 200, response.text
    record = response.json()["data"][0]
    assert {"id", "Account_Name", "Owner", "Modified_Time"} <= set(record)
    v8 = crm_http.get("/crm/v8/Accounts", params={"per_page": 5})
    assert v8.status_code == 400
    assert v8.json()["code"] == "REQUIRED_PARAM_MISSING"
    assert v8.json()["details"] == {"param_name": "fields"}


def test_lookup_module_is_a_name_on_v2_and_an_object_later(crm_http):
    """Row 2. Zoho's v2 Python SDK (zoho/zohocrm-python-sdk, zcrmsdk/src/com/zoho/crm/api/
    fields/module.py) types a lookup's `module` as a string; v8's fields.json makes it a
    Minified_Module object {api_name, id}, as the v2.1 changelog's field-metadata updates do."""
    lookup = _fields(crm_http, "v2")["Parent_Account"]["lookup"]
    assert lookup["module"] == "Accounts"
    for version in ("v2.1", "v5", "v8"):
        module = _fields(crm_http, version)["Parent_Account"]["lookup"]["module"]
        assert module["api_name"] == "Accounts" and module["id"].isdigit()


def test_module_status_replaces_visible_from_v5(crm_http):
    """Row 3. v5 changelog (zoho.com/crm/developer/docs/api/v5/change-log.html): in the Modules
    API "the key visible is replaced with a new key status" and `sub_menu_available` is added."""
    for version in ("v2", "v4"):
        accounts = _modules(crm_http, version)["Accounts"]
        assert accounts["visible"] is True and "status" not in accounts
    for version in ("v5", "v8"):
        accounts = _modules(crm_http, version)["Accounts"]
        assert "visible" not in accounts
        assert accounts["status"] == "visible" and accounts["sub_menu_available"] is True


def test_module_capability_flags_are_gone_from_v6(crm_http):
    """Row 4. v6 changelog (zoho.com/crm/developer/docs/api/v6/change-log.html): Get Modules and
    Module Metadata no longer include email_parser_supported, emailTemplate_support,
    filter_supported, global_search_supported, inventory_template_supported,
    isBlueprintSupported, scoring_supported, triggers_supported, webform_supported."""
    assert set(CAPABILITY_FLAGS) <= set(_modules(crm_http, "v5")["Accounts"])
    for version in ("v6", "v8"):
        assert not set(CAPABILITY_FLAGS) & set(_modules(crm_http, version)["Accounts"])
        one = crm_http.get(f"/crm/{version}/settings/modules/Accounts").json()["modules"][0]
        assert not set(CAPABILITY_FLAGS) & set(one)


def test_field_customizable_properties_from_v6(crm_http):
    """Row 5. v6 changelog: "A new property customizable_properties is introduced for each
    field" in the Fields Metadata API."""
    assert "customizable_properties" not in _fields(crm_http, "v5")["Account_Name"]
    for version in ("v6", "v8"):
        assert _fields(crm_http, version)["Account_Name"]["customizable_properties"] == []


# -- departures from Zoho's documented behaviour, fixed ----------------------------------------


@pytest.mark.parametrize("version", ["v2", "v8"])
def test_refer_from_field_is_null_unless_the_field_mirrors_one(crm_http, version):
    """Zoho's v8 getFields examples show `"refer_from_field": null` for ordinary fields (and the
    official SDK types its id as a number); an empty-string id made the SDK fail on a 200."""
    for module in ("Accounts", "Contacts", "Deals", "Quotes"):
        for name, field in _fields(crm_http, version, module).items():
            ref = field["refer_from_field"]
            assert ref is None or str(ref.get("id", "")).isdigit(), (module, name, ref)


def test_list_without_fields_answers_on_v2(crm_http):
    """v2 Get Records documents `fields` as optional: a v2 client that sends none gets its
    records, not 400 REQUIRED_PARAM_MISSING (which only v8 answers)."""
    response = crm_http.get("/crm/v2/Contacts")
    assert response.status_code == 200, response.text
    assert response.json()["info"]["count"] == len(response.json()["data"]) > 0


def test_v2_field_metadata_names_the_lookup_module(crm_http):
    """On /crm/v2 a lookup's module is its API name (a v2 client builds its next query from
    it); the v8 object shape broke those clients."""
    for field in _fields(crm_http, "v2", "Contacts").values():
        if field["data_type"] == "lookup":
            assert isinstance(field["lookup"]["module"], str), field["api_name"]


@pytest.mark.parametrize("prefix", ["/books/v3", "/api/v3"])
def test_books_collections_with_a_trailing_slash_are_served_directly(books_http, emu_reset,
                                                                    prefix):
    """Clients built on Zoho's own Books Python wrapper put a slash after every collection URL
    (`.../contacts/`); a 307 there makes HTTP clients drop Authorization and fail with 401."""
    org = emu_reset.emu.config.books_org_ids[0]
    params = {"organization_id": org}
    for path in ("/contacts/", "/items/", "/invoices/", "/estimates/", "/salesorders/",
                 "/purchaseorders/"):
        response = books_http.get(prefix + path, params=params, follow_redirects=False)
        assert response.status_code == 200, (path, response.status_code)
        assert response.json()["code"] == 0
    created = books_http.post(prefix + "/contacts/", params=params, follow_redirects=False,
                              json={"contact_name": f"Slash Ltd {prefix}"})
    assert created.status_code == 201, created.text
    contact_id = created.json()["contact"]["contact_id"]
    one = books_http.get(f"{prefix}/contacts/{contact_id}/", params=params,
                         follow_redirects=False)
    assert one.status_code == 200 and one.json()["contact"]["contact_id"] == contact_id
    orgs = books_http.get(prefix + "/organizations/", follow_redirects=False)
    assert orgs.status_code == 200 and orgs.json()["organizations"]
