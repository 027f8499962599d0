"""The links transactions read: parties (customers, vendors) and line items (products), both
ways, by the parties and the line-item source the document types declare."""

from __future__ import annotations

from crmbooks.sync.registry import shape
from mappings.schema import transactions_mapping


def links_of(store) -> dict[str, dict[str, str]]:
    """{accounts|contacts|vendors|items: {CRM id: Books id}} from the links of the parties'
    modules and of the items module."""
    out: dict[str, dict[str, str]] = {"items": {}}
    for fields in transactions_mapping().parties.values():
        for kind in fields.crm:
            out.setdefault(kind, {})
        for row in store.links(fields.module).to_dict("records"):
            if row["kind"] in fields.crm:
                out[row["kind"]][str(row["crm_id"])] = str(row["books_id"])
    out["items"] = {crm: books for books, crm in items_back(store).items()}
    return out


def parties_back(store) -> dict[str, dict]:
    """{Books customer/vendor id: the CRM lookup that names it} from the links."""
    out: dict[str, dict] = {}
    for fields in transactions_mapping().parties.values():
        for row in store.links(fields.module).to_dict("records"):
            field = fields.crm.get(row["kind"])
            if field and str(row["books_id"]) not in out:
                out[str(row["books_id"])] = {field: {"id": str(row["crm_id"])}}
    return out


def items_back(store) -> dict[str, str]:
    """{Books item id: CRM product id} from the items links."""
    source = shape().books.lines_linked_by
    return {str(r["books_id"]): str(r["crm_id"])
            for r in store.links(source.module, source.kind).to_dict("records")}
