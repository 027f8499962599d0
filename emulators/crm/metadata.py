"""Field metadata as `/settings/fields` (and the single-module `/settings/modules`) describe
it: every key Zoho's v8 OpenAPI file requires of a field, in the shape of the API version asked
(see emulators.crm.versions)."""

from __future__ import annotations

from emulators.crm.catalogue import Catalogue
from emulators.crm.fields import DEAL_STAGES, Field
from emulators.crm.versions import LATEST, field_customizable_properties, lookup_module_is_object


def json_type(f: Field) -> str:
    """The `json_type` reported for a field's data type."""
    if f.data_type in ("lookup", "ownerlookup"):
        return "jsonobject"
    if f.data_type == "subform":
        return "jsonarray"
    if f.data_type == "integer":
        return "integer"
    if f.data_type in ("currency", "double"):
        return "double"
    if f.data_type == "boolean":
        return "boolean"
    return "string"


def picklist_values(cat: Catalogue, module: str, f: Field) -> list[dict]:
    """`pick_list_values` of a picklist field; Deal Stage values carry probability/categories."""
    stages = {s[0]: s for s in DEAL_STAGES}
    out = []
    for i, value in enumerate(f.picklist or []):
        item = {
            "display_value": value,
            "actual_value": value,
            "reference_value": value,
            "sequence_number": i + 1,
            "id": f"{cat.field_id(module, f.api_name)}{i:03d}",
            "type": "used",
            "colour_code": None,
        }
        if module == "Deals" and f.api_name == "Stage" and value in stages:
            _, prob, forecast_type, category = stages[value]
            item["probability"] = prob
            item["forecast_type"] = forecast_type
            item["forecast_category"] = {"name": category, "id": f"57257670000001{i:05d}"}
            item["deal_category"] = forecast_type
        out.append(item)
    return out


UI_TYPES = {"text": 1, "textarea": 3, "email": 25, "phone": 33, "website": 21, "picklist": 2,
            "integer": 32, "currency": 36, "double": 38, "boolean": 301, "date": 24,
            "datetime": 333, "lookup": 133, "ownerlookup": 8, "subform": 501}


def _mini() -> dict:
    """An empty module reference, as Zoho fills the ones a field does not use."""
    return {"api_name": None, "id": None}


def field_meta(cat: Catalogue, module: str, f: Field, version: str = LATEST) -> dict:
    """The `/settings/fields` representation of one field in API `version`."""
    fid = cat.field_id(module, f.api_name)
    editable = not f.read_only
    meta = {
        "associated_module": _mini(), "webhook": True,
        "operation_type": {"web_update": editable, "api_create": editable,
                           "web_create": editable, "api_update": editable},
        "colour_code_enabled_by_system": False, "field_label": f.label,
        "tooltip": {"name": "", "value": ""}, "type": "used", "field_read_only": f.read_only,
        "customizable_properties": [], "display_label": f.label, "read_only": f.read_only,
        "association_details": {"related_field": _mini(), "lookup_field": _mini()},
        "businesscard_supported": not f.read_only, "multi_module_lookup": None, "id": fid,
        "created_time": None, "filterable": True, "visible": True,
        # null unless the field mirrors another one (none here), as in Zoho's v8 getFields
        # examples; an empty-string id breaks clients that type it as a number.
        "refer_from_field": None,
        "profiles": [{"permission_type": "read_write" if editable else "read_only",
                      "name": "Administrator", "id": "5725767000000099100"}],
        "view_type": {"view": True, "edit": editable, "quick_create": f.mandatory,
                      "create": editable},
        "separator": False, "searchable": f.data_type != "subform",
        "external": {"show": False, "type": "", "allow_multiple_config": False},
        "api_name": f.api_name, "unique": {"casesensitive": "false"} if f.unique else {},
        "enable_colour_code": False,
        "pick_list_values": picklist_values(cat, module, f) if f.picklist else [],
        "system_mandatory": f.mandatory, "virtual_field": False, "json_type": json_type(f),
        "crypt": {"mode": "", "status": 0}, "created_source": "custom" if f.custom else "default",
        "display_type": -1, "ui_type": UI_TYPES.get(f.data_type, 1), "modified_time": None,
        "email_parser": {"fields_update_supported": False, "record_operations_supported": False},
        "currency": ({"rounding_option": "normal", "precision": f.decimal_place or 2}
                     if f.data_type == "currency" else None),
        "custom_field": f.custom, "lookup": None, "convert_mapping": {},
        "rollup_summary": None, "length": f.length or 0,
        "display_field": f.api_name == cat.name_field(module),
        "pick_list_values_sorted_lexically": False,
        "sortable": f.data_type not in ("subform", "textarea"),
        "history_tracking": {"module": {}, "duration_configured_field": _mini()},
        "data_type": f.data_type, "formula": None, "decimal_place": f.decimal_place,
        "mass_update": editable, "multiselectlookup": None, "multiuserlookup": _msl(),
        "auto_number": None, "autonumber": {"starting_number_length": 0, "prefix": "",
                                            "suffix": "", "start_number": 0},
        "subform": None, "sub_module": _mini(), "file_upolad_optionlist": [],
        "layout_associations": [{"api_name": "Standard", "name": "Standard",
                                 "id": f"57257670000000{cat.modules[module].number:02d}091"}],
        "allowed_modules": [], "additional_column": None, "common.picklist": None,
        "hipaa_compliance_enabled": False,
        "hipaa_compliance": {"restricted_in_export": False, "restricted": False},
        "_update_existing_records": False, "number_separator": f.data_type in (
            "integer", "currency", "double"), "textarea": {"type": "large"}
        if f.data_type == "textarea" else {}, "static_field": False,
        "quick_sequence_number": "1", "available_in_user_layout": True,
        "blueprint_supported": editable, "show_type": 7, "category": 0,
        "column_name": f.api_name.upper(), "sharing_properties": {
            "scheduler_status": "", "share_preference_enabled": False,
            "share_permission": "read-write"},
    }
    if not field_customizable_properties(version):
        del meta["customizable_properties"]
    if f.lookup_module:
        meta["lookup"] = {
            "display_label": f.label, "api_name": f.api_name, "id": fid,
            "module": {"api_name": f.lookup_module, "id": cat.module_id(f.lookup_module)}
            if lookup_module_is_object(version) else f.lookup_module,
            "query_details": {}, "revalidate_filter_during_edit": False, "show_fields": [],
        }
    if f.data_type == "subform":
        meta["associated_module"] = {"api_name": f.api_name, "id": cat.module_id(module)}
        meta["subform"] = {"module": f.api_name, "id": fid}
    return meta


def _msl() -> dict:
    return {"display_label": "", "linking_module": _mini(), "connected_module": _mini(),
            "lookup_apiname": "", "api_name": "", "connectedfield_apiname": "",
            "connectedlookup_apiname": "", "id": "", "record_access": False}
