"""Deal triggers as a family of the one pipeline: a deal reaching a stage makes or moves its
Books quote or invoice (crmbooks/sync/triggers.py plans it, pure).

Started with deal ids by the event receiver within seconds of a deal change, and without them
by the schedule as a catch-up over every deal modified since the cursor. Both read the deals
as they are now, so a repeated, late or reordered event plans nothing new.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect.artifacts import create_table_artifact

from crmbooks.metadata import cached, crm_field_metadata, is_unique_key
from crmbooks.settings import SettingsError, parse_module_settings
from crmbooks.sync.cursors import parse_stamp, past_handled
from crmbooks.sync.registry import document_type, shape
from crmbooks.sync.triggers import (
    CRM_QUOTE_FIELD,
    DEALS,
    INVOICE,
    QUOTE,
    DealContext,
    Existing,
    StageError,
    Stages,
    plan_deal,
    record_key,
)
from tasks.deals import push as pushing
from tasks.deals.push import MODULE
from tasks.family import Family, Fetched


def first_cursor(store) -> datetime | None:
    """Where catch-up starts before its first run: when deal triggers were first turned on.

    Deals last changed before triggers existed trigger nothing (they did not *reach* a stage
    while triggers were on); the operator runs them explicitly with deal ids if wanted.
    """
    enabled = [v for v in store.settings_history(MODULE) if (v.settings or {}).get("enabled")]
    if not enabled:
        return None
    first = min(v.created_at for v in enabled)
    first = first if first.tzinfo else first.replace(tzinfo=UTC)
    return first.replace(microsecond=0)


def customer_links(store) -> dict[str, dict[str, str]]:
    """kind → CRM id → Books customer id, from the customers links."""
    out: dict[str, dict[str, str]] = {"accounts": {}, "contacts": {}}
    for row in store.links("customers").to_dict("records"):
        if row["kind"] in out:
            out[row["kind"]][str(row["crm_id"])] = str(row["books_id"])
    return out


class DealsFamily(Family):
    """Deal triggers: CRM deals → Books quotes and invoices."""

    module = MODULE
    off_message = "deal triggers are off: run `crmbooks configure deals`"
    push_order = ("books", "crm")
    failure_hint = ("fix the deal in the CRM (or sync its customer); the next trigger run "
                    "picks it up")

    def enabled(self, settings, targets):
        """Deal triggers configured and on."""
        return bool(settings.enabled)

    def start(self, runtime, settings, targets):
        """The stages configured exist, the Books types made have the unique key; the stages,
        currencies, deal fields and customers settings the steps use."""
        stages = [tuple(s) for s in cached(runtime, "crm-deal-stages", runtime.crm.deal_stages)]
        book = Stages(stages)
        try:
            for name in ("create_stage", "accept_stage"):
                if getattr(settings, name):
                    book.require(getattr(settings, name), name)
        except StageError as exc:
            raise SettingsError(f"{exc}; run `crmbooks configure deals` again") from None
        made = [QUOTE] if settings.mode == "quote" else []
        if settings.mode == "invoice" or settings.invoice_on_accept:
            made.append(INVOICE)
        unique = shape().books.crm_id
        for resource in made:
            if not is_unique_key(runtime, resource, unique):  # a probe that writes nothing
                raise SettingsError(
                    f"Books {resource} have no unique custom field {unique}: create it "
                    f"(Settings > Preferences > {document_type(resource).noun.title()}s > Field "
                    "Customization, unique) so triggers can write exactly once")
        if settings.item and runtime.books.get("items", settings.item) is None:
            raise SettingsError(f"Books has no item {settings.item}: run `crmbooks configure "
                                "deals --item ID` with the id of an item (or --item '' for "
                                "none)")
        currencies = cached(runtime, "books-currencies",
                            lambda: [c.get("currency_code") for c in runtime.books.currencies()])
        present = {f.get("api_name") for f in crm_field_metadata(runtime, DEALS.crm_module)}
        customers = (runtime.store.active_settings("customers") or (None, {}))[1]
        return {"stages": stages, "currencies": [c for c in currencies if c],
                "deal_fields": [f for f in DEALS.deal_fields if f in present],
                "customers": parse_module_settings("customers", customers).model_dump(
                    mode="json")}

    def cursors(self, store, settings, facts, targets):
        """The deals' cursor (before the first catch-up: when triggers were turned on)."""
        return {"crm": None if targets else store.cursor(MODULE, "crm") or first_cursor(store)}

    def fetch(self, run, side) -> Fetched:
        """The deals as they are now: by id (events) or changed since the cursor."""
        if side == "books":
            return Fetched()
        crm = run.runtime().crm
        fields = run.facts["deal_fields"]
        if run.targeted:
            deals, gone = [], []
            for deal_id in dict.fromkeys(str(i) for i in run.targets.get("crm", [])):
                deal = crm.get_record(DEALS.crm_module, deal_id, fields)
                if deal is None:  # not found (a transient error raises)
                    gone.append(record_key(deal_id))
                else:
                    deals.append(deal)
            return Fetched({DEALS.crm_module: deals}, gone)
        deals_by_id: dict[str, dict] = {}
        for page in crm.iter_records(DEALS.crm_module, fields, modified_since=run.cursors["crm"],
                                     sort_by=DEALS.modified):
            for deal in page:
                deals_by_id[str(deal["id"])] = deal  # the boundary may repeat: keep each once
        return Fetched({DEALS.crm_module: list(deals_by_id.values())})

    def map(self, run, crm, books):
        """The deals themselves: a trigger takes its values at plan time."""
        return crm.frames.get(DEALS.crm_module, [])

    def dedupe(self, run, crm, books, mapped):
        """The transactions the triggers made for these deals, as they are in Books now, and
        the stages (read again when a deal is at a stage newer than the cached ones)."""
        runtime = run.runtime()
        stages = run.facts["stages"]
        if any(not Stages(stages).get(d.get(DEALS.stage)) for d in mapped):
            stages = [tuple(s) for s in runtime.crm.deal_stages()]
        links = runtime.store.links(MODULE)
        ids = {str(d["id"]) for d in mapped}
        existing: dict[str, dict[str, Existing]] = {}
        if not links.empty:
            links = links[links["parent_crm_id"].isin(ids) & (links["made_by"] == "trigger")]
        for link in links.to_dict("records") if not links.empty else []:
            record = runtime.books.get(link["kind"], link["books_id"])
            if record is None:  # deleted in Books: the upsert key is free again
                continue
            values = link["books_values"] or {}
            number = document_type(link["kind"]).books.number_field
            existing.setdefault(str(link["parent_crm_id"]), {})[link["kind"]] = Existing(
                link["kind"], str(link["books_id"]), str(record.get(number) or ""),
                str(record.get(shape().books.status) or "draft"), values.get("status"),
                values.get("content") or {}, values.get("pending"))
        return {"stages": stages, "existing": existing}

    def plan(self, run, mapped, found):
        """Every deal's steps, in order."""
        s = run.settings
        ctx = DealContext(mode=s["mode"], stages=Stages(found["stages"]),
                          create_stage=s.get("create_stage"), accept_stage=s.get("accept_stage"),
                          invoice_on_accept=bool(s.get("invoice_on_accept")),
                          item=s.get("item"),
                          customers=run.facts["customers"],
                          customer_links=customer_links(run.runtime().store),
                          currencies=frozenset(run.facts["currencies"]),
                          base_currency=run.base_currency)
        steps = []
        for deal in mapped:
            for step in plan_deal(deal, ctx, found["existing"].get(str(deal["id"]), {})):
                if step["action"] == "link" and CRM_QUOTE_FIELD not in run.facts["deal_fields"]:
                    continue  # the CRM org has no such field: zcrm_potential_id alone links them
                if step["action"] == "fail":
                    step["code"] = "INVALID_DEAL"
                step["modified"] = deal.get(DEALS.modified)
                step["crm_value"] = str(deal.get(CRM_QUOTE_FIELD) or "")
                steps.append(step)
        return steps

    def needs(self, run, plan):
        """The accounts or contacts whose link alone keeps deals from triggering."""
        missing = sorted({s["missing_customer"] for s in plan if s.get("missing_customer")})
        return {"customers": missing} if missing else {}

    def planned_writes(self, plan) -> int:
        """Every write step."""
        return sum(s["action"] in ("create", "update", "mark", "link") for s in plan)

    def units(self, run, plan, side, outcomes):
        """Books: each deal's steps; CRM: the deals to show their quote on."""
        if side == "books":
            return pushing.books_units(plan)
        return pushing.crm_units(run, plan, [o for o in outcomes if o["side"] == "books"])

    def write(self, run, side, units):
        """One batch of deals."""
        return pushing.push_books(run, units) if side == "books" else pushing.push_crm(run,
                                                                                      units)

    def settle(self, run, crm, books, outcomes, failed):
        """Past every deal read, never past the first that failed."""
        deals = crm.frames.get(DEALS.crm_module, [])
        stamps = {record_key(str(d["id"])): parse_stamp("crm", d.get(DEALS.modified))
                  for d in deals}
        cursor = past_handled(stamps, failed)
        old = run.cursors.get("crm")
        if cursor is None or (old is not None and cursor <= old):
            return {}
        return {(MODULE, "crm"): cursor}

    def then(self, run, outcomes):
        """The transactions the triggers wrote, for the transactions module to show in the
        CRM (its Books → CRM side, for just these ids) right away."""
        written: dict[str, list[str]] = {}
        for o in outcomes:
            if o["side"] == "books" and o["ok"] and o.get("books_id"):
                written.setdefault(f"books:{o['resource']}", []).append(str(o["books_id"]))
        return {"transactions": {k: list(dict.fromkeys(v)) for k, v in written.items()}} \
            if written else {}

    def summary(self, crm, books):
        """How many deals the run read."""
        return {"deals": len(crm.frames.get(DEALS.crm_module, []))}

    def artifacts(self, run, plan) -> None:
        """What each deal asked for."""
        prefix = f"{MODULE}-{'plan' if run.dry_run else 'sync'}"
        create_table_artifact(
            [{"deal": s["deal_id"], "name": s["name"], "step": s["action"],
              "type": s["resource"] or "", "reason": s["reason"]}
             for s in plan if s["action"] != "nothing"]
            or [{"deal": "", "name": "", "step": "", "type": "", "reason": "nothing to do"}],
            key=f"{prefix}-steps", description="deal triggers: what each deal asked for")
