"""Custom views of the CRM emulator: the predefined ones every module has (All, My, Recently
Created, Recently Modified, Unread) plus seeded user-defined views with criteria, their
`/settings/custom_views` representation and their record filters (`cvid`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from emulators.crm.catalogue import Catalogue
from emulators.crm.criteria import Cond, Group, compile_tree, parse, record_values

RECENT_DAYS = 7  # the window Zoho uses for "Recently Created/Modified" (unverified)

# module -> [(name, criteria)] user-defined views; criteria in the search grammar.
USER_VIEWS = {
    "Accounts": [("Key Accounts", "(Industry:equals:Technology)")],
    "Deals": [("Won Deals", "(Stage:equals:Closed Won)"),
              ("Big Open Deals", "((Amount:greater_than:100000) and "
                                 "(Stage:in:Qualification,Needs Analysis,Value Proposition,"
                                 "Identify Decision Makers,Proposal/Price Quote,"
                                 "Negotiation/Review))")],
    "Contacts": [("Opted Out Contacts", "(Email_Opt_Out:equals:true)")],
}
PREDEFINED = [("All", "All {p}"), ("My", "My {p}"), ("RecentlyCreated", "Recently Created {p}"),
              ("RecentlyModified", "Recently Modified {p}"), ("Unread", "Unread {p}")]


def view_id(cat: Catalogue, module: str, n: int) -> str:
    """A stable numeric view id."""
    return f"57257670000008{cat.modules[module].number:02d}{n:03d}"


def seed_views(crm) -> dict[str, list[dict]]:
    """All views per module (internal form: id, name, system_name, criteria, default)."""
    views = {}
    cat = crm.catalogue
    for module, info in cat.modules.items():
        plural, items = info.plural, []
        for n, (system, label) in enumerate(PREDEFINED):
            items.append({"id": view_id(cat, module, n + 1), "name": label.format(p=plural),
                          "system_name": system, "system_defined": True, "criteria": None,
                          "default": system == "All"})
        for n, (name, criteria) in enumerate(USER_VIEWS.get(module, [])):
            items.append({"id": view_id(cat, module, 100 + n), "name": name, "system_name": None,
                          "system_defined": False, "criteria": criteria, "default": False})
        views[module] = items
    return views


def find(crm, module: str, cvid: str) -> dict | None:
    """The view with id `cvid` in `module`, if any."""
    return next((v for v in crm.views.get(module, []) if v["id"] == cvid), None)


def record_filter(crm, module: str, view: dict) -> Callable[[dict], bool] | None:
    """A predicate selecting the view's records (None = every record)."""
    system = view["system_name"]
    now = crm.emu.now()
    since = (now - timedelta(days=RECENT_DAYS)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    me = crm.directory.current_user_id
    if system == "My":
        return lambda rec: rec.get("Owner") == me
    if system == "RecentlyCreated":
        return lambda rec: rec["Created_Time"] >= since
    if system == "RecentlyModified":
        return lambda rec: rec["Modified_Time"] >= since
    if view["criteria"]:
        tree = parse(crm.catalogue.field_map[module], view["criteria"])
        return compile_tree(tree, record_values(crm, module))
    return None  # All, Unread (an API client has never opened a record in the UI)


def _criteria_json(cat: Catalogue, module: str, node) -> dict:
    """Zoho's custom-view criteria object from a parsed criteria tree."""
    if isinstance(node, Group):
        return {"group_operator": node.op,
                "group": [_criteria_json(cat, module, n) for n in node.items]}
    assert isinstance(node, Cond)
    comparator = {"equals": "equal", "not_equal": "not_equal", "in": "in",
                  "starts_with": "starts_with", "greater_than": "greater_than",
                  "less_than": "less_than", "greater_equal": "greater_equal",
                  "less_equal": "less_equal", "between": "between"}[node.op]
    value = node.values if node.op in ("in", "between") else node.values[0]
    return {"comparator": comparator,
            "field": {"api_name": node.field.api_name,
                      "id": cat.field_id(module, node.field.api_name)},
            "value": value}


def render(crm, module: str, view: dict) -> dict:
    """The `/settings/custom_views` representation of a view."""
    user = crm.user_ref()
    cat = crm.catalogue
    singular = cat.modules[module].singular
    fields = [f for f in crm.active_fields(module) if f.data_type != "subform"][:8]
    system = view["system_defined"]
    return {
        "id": view["id"],
        "name": view["name"],
        "display_value": view["name"],
        "system_name": view["system_name"],
        "system_defined": system,
        "category": "public_views" if system else "created_by_me",
        "default": view["default"],
        "locked": False,
        "favorite": None,
        "offline": False,
        "access_type": "public" if system else "only_to_me",
        "created_by": user,
        "modified_by": user,
        "created_time": None if system else "2024-11-02T10:00:00+00:00",
        "modified_time": None if system else "2024-11-02T10:00:00+00:00",
        "last_accessed_time": None,
        "module": {"api_name": module, "name": singular, "id": cat.module_id(module)},
        "fields": [{"api_name": f.api_name, "id": cat.field_id(module, f.api_name), "_pin": False}
                   for f in fields],
        "sort_by": None,
        "sort_order": None,
        "criteria": (_criteria_json(cat, module, parse(cat.field_map[module], view["criteria"]))
                     if view["criteria"] else None),
        "shared_to": None,
    }
