"""The record modules (customers, vendors, items) as a family of the one pipeline.

Each is a ModuleSpec (crmbooks/sync/modules.py) plus a mapping file (mappings/): the family
checks the mapping against both sides' live fields at start, reads what changed since the
cursors, maps, looks up duplicates, plans per record (crmbooks/sync/plan.py, pure), pushes
Books first then the CRM (or the other way round, by the spec's first side, inside the plan)
and settles the cursors.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from crmbooks.metadata import books_custom_fields, crm_field_metadata, resolve_view
from crmbooks.sync.check import assert_mapping_ok
from crmbooks.sync.cursors import read_from_start, settings_fingerprint
from crmbooks.sync.mapping import crm_fields, effective_mapping
from crmbooks.sync.modules import module_spec
from tasks.family import Family, Fetched
from tasks.guards import assert_currency_unchanged
from tasks.policy import KEY_COLUMNS
from tasks.records import deletions as deleting
from tasks.records import fetch as fetching
from tasks.records import figures
from tasks.records import plan as planning
from tasks.records import push as pushing
from tasks.records.settle import settle


class RecordsFamily(Family):
    """Customers, vendors or items: CRM records ↔ Books contacts or items, field by field."""

    def __init__(self, module: str):
        self.module = module
        self.spec = module_spec(module)

    def for_organization(self, settings, one_way: bool, org_id: str):
        """An extra Books organization syncs CRM → Books only, whatever its settings say."""
        if one_way and getattr(settings, "scope", "fetch") != "fetch":
            return settings.model_copy(update={"scope": "fetch"}), (
                f"Books organization {org_id} is an extra organization: one-way sync (CRM → "
                "Books) whatever the settings say")
        return settings, None

    def start(self, runtime, settings, targets):
        """The mapping against live metadata, then the views (an unknown one stops the run);
        the CRM fields each module's reads ask for."""
        kinds = self.spec.active_kinds(settings)
        mapping = effective_mapping(self.spec, settings)
        crm_meta = {m: crm_field_metadata(runtime, m) for m in sorted({k.crm_module
                                                                       for k in kinds})}
        assert_mapping_ok(
            self.spec, mapping, kinds, crm_fields=crm_meta,
            books_custom_fields={r: books_custom_fields(runtime, r,
                                                        self.spec.books_crm_id_field)
                                 for r in sorted({k.books_resource for k in kinds})})
        listed: dict[str, list[str]] = {}
        by_id: dict[str, list[str]] = {}
        configured = self.spec.configured_kinds(settings)
        for kind in kinds:
            known = {f.get("api_name") for f in crm_meta[kind.crm_module]}
            fields = crm_fields(mapping, kind, self.spec)
            if kind in configured or self._follows(runtime, kind, configured):
                # The CRM has a Currency field only with multi-currency on: ask for it only
                # when the module has one; without it every record is in the base currency.
                listed.setdefault(kind.crm_module, []).extend(
                    f for f in fields if f != kind.currency_field or f in known)
            by_id.setdefault(kind.crm_module, []).extend(f for f in fields if f in known)
        return {"views": self._views(runtime, settings, kinds),
                "crm_fields": {m: list(dict.fromkeys(f)) for m, f in listed.items()},
                "crm_target_fields": {m: list(dict.fromkeys(f)) for m, f in by_id.items()}}

    def _follows(self, runtime, kind, configured) -> bool:
        """Whether the change scan reads the CRM module of a kind only two-way mode adds
        (individual customers while customers come from CRM Accounts): only once one is
        linked, so that a CRM edit of it follows its link. Before, it would read CRM
        Contacts on every run only to keep them all out."""
        if any(k.crm_module == kind.crm_module for k in configured):
            return True  # the module is read anyway (accounts+contacts)
        return runtime.store.has_links(self.module, kind.name)

    @staticmethod
    def _views(runtime, settings, kinds) -> dict[str, str]:
        wanted = {}
        if getattr(settings, "view", None):
            wanted[kinds[0].crm_module] = settings.view
        if getattr(settings, "contact_view", None):
            wanted["Contacts"] = settings.contact_view
        return {module: resolve_view(runtime, module, view) for module, view in wanted.items()}

    def cursors(self, store, settings, facts, targets) -> dict[str, datetime | None]:
        """One cursor per side; both from the start once after a change of what the module
        reads or how it maps (the cursors remember the settings they settled under)."""
        fingerprint = settings_fingerprint(settings.model_dump(mode="json"))
        facts["settings_fingerprint"] = fingerprint
        cursors = {side: store.cursor(self.module, side) for side in ("crm", "books")}
        settled = {side: store.cursor_settings(self.module, side) for side in cursors}
        chosen = read_from_start(cursors, settled, fingerprint)
        if chosen != cursors and not targets:
            facts["read_note"] = ("the settings that decide what is read and how it maps "
                                  "changed since the last run: every record is read once")
        return chosen

    def fetch(self, run, side: str) -> Fetched:
        """What changed on one side since its cursor (or the targeted records)."""
        return fetching.fetch(run, side)

    def map(self, run, crm, books):
        """Mapped frames per kind and side, plus the mapping failures."""
        return planning.map_records(run, crm, books)

    def dedupe(self, run, crm, books, mapped):
        """The other side's name index per kind, for the duplicates policy."""
        return planning.dedupe(run, crm, books)

    def plan(self, run, mapped, found):
        """Create / update / merge / skip / clone / overwrite, per record."""
        return planning.plan_changes(run, mapped, found)

    def keys_only(self, fetched):
        """Only the ids and stamps of the fetched records: settling the cursors reads no more,
        and their values, held through the push, were a quarter of the Python heap a first
        customers sync held at its report (34 of 131 MB at N = 10,000)."""
        return replace(fetched, frames={
            name: frame[[c for c in KEY_COLUMNS if c in frame.columns]]
            for name, frame in fetched.frames.items()})

    def before_push(self, run, plan) -> None:
        """Check the base currency before the first write, then link the pairs that need
        nothing but their link: after a crash between a create and its link, the rerun finds
        the record by the id one side stores of the other, and only the link is left."""
        if pushing.rows_for(plan, "books") or pushing.rows_for(plan, "crm"):
            assert_currency_unchanged(run)
        pushing.link_pairs(run, pushing.pairs_to_link(plan))

    def planned_writes(self, plan) -> int:
        """Rows pushed to Books plus rows pushed to the CRM (persons travel inline)."""
        return len(pushing.rows_for(plan, "books")) + len(pushing.rows_for(plan, "crm"))

    def units(self, run, plan, side, outcomes):
        """Books rows with their inline persons; CRM rows with what Books just wrote."""
        if side == "books":
            return pushing.books_units(plan)
        return pushing.crm_units(plan, [o for o in outcomes if o["side"] == "books"])

    def write(self, run, side, units):
        """One batch: Books one record per call, the CRM 100 per call."""
        return pushing.push_books(run, units) if side == "books" else pushing.push_crm(run,
                                                                                      units)

    def deletions(self, run, crm, books, outcomes):
        """Twins of records deleted on either side, by the module's policy and its brake."""
        return deleting.deletions(run, crm, books, outcomes)

    def follows_up(self, run):
        """Customers two ways: the figures (see `follow_up`)."""
        return (self.module == "customers" and not run.one_way
                and run.settings.get("scope") == "both"
                and (not run.targets or "figures" in run.targets))

    def follow_up(self, run, outcomes):
        """Customers: the accounting figures of the linked customers (those a Books webhook
        named, or, in a catch-up, those whose Books ledger changed since the figures cursor).
        A run targeted at records, or one-way (scope fetch, or an extra organization), leaves
        them."""
        # The figures are writes into the CRM: a one-way scope (CRM → Books only, or an extra
        # organization) writes nothing there, figures included.
        if self.module != "customers" or run.one_way or run.settings.get("scope") != "both":
            return {}
        if run.targets and "figures" not in run.targets:
            return {}
        if run.targets:
            return {"figures": figures.refresh(run, run.targets["figures"])}
        written = {str(o["books_id"]) for o in outcomes if o.get("ok", True)
                   and o.get("books_id") and o.get("kind") in ("accounts", "contacts")}
        return {"figures": figures.refresh(run, None, also=written)}

    def settle(self, run, crm, books, outcomes, failed):
        """Both cursors, past our own writes when one verifying scan shows they are ours."""
        return settle(run, crm, books, outcomes, failed)
