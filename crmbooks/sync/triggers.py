"""Deal triggers as pure functions: what a deal's current state asks of Books.

The flow reads the deal as it is now, the Books transactions the trigger made for it (with
the status the trigger last left them in), the customer links and the CRM's stage metadata,
and :func:`plan_deal` answers with ordered steps. Because only the current state counts,
replayed, duplicated or reordered events plan the same steps, and steps already done plan
nothing.

Won and lost come from the CRM's stage→probability metadata (probability 100 / 0 together
with the stage's won/lost category), never from stage names. A transaction the trigger made
is *managed* while its Books status is one the trigger sets (draft, accepted, declined for
quotes; draft, void for invoices) and is the status the trigger left it in; once it is Sent
(or changed in Books by a person) later deal changes trigger nothing and the plan says
so in a skip step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from crmbooks.sync.registry import deal_triggers, document_type, party, shape

#: What a triggered transaction takes from the deal (mappings/deal_triggers.yaml).
DEALS = deal_triggers()
#: The Books document types the triggers make: a quote (quote mode) and an invoice.
QUOTE, INVOICE = DEALS.makes["quote"].document_type, DEALS.makes["invoice"].document_type
#: The deal field that shows, on the deal, the Books quote the trigger made.
CRM_QUOTE_FIELD = DEALS.quote_field
CENT = Decimal("0.01")


class StageError(ValueError):
    """A configured stage is not one of the CRM's deal stages."""


@dataclass(frozen=True)
class Stage:
    """One Deals Stage value with its probability and forecast (won/lost) category."""

    name: str
    probability: int | None
    category: str | None
    sequence: int

    @property
    def outcome(self) -> str:
        """won | lost | open, from probability and category together."""
        category = (self.category or "").lower()
        if self.probability == 100 and (not category or "won" in category):
            return "won"
        if self.probability == 0 and (not category or "lost" in category):
            return "lost"
        return "open"


class Stages:
    """The CRM's deal stages in pipeline order (from `CrmClient.deal_stages()`)."""

    def __init__(self, rows: Iterable[tuple[str, int | None, str | None]]):
        self.by_name = {name: Stage(name, prob, category, i)
                        for i, (name, prob, category) in enumerate(rows)}

    def get(self, name: str | None) -> Stage | None:
        """The stage called `name`, or None if the CRM has no such stage."""
        return self.by_name.get(name or "")

    def require(self, name: str, setting: str) -> Stage:
        """The configured stage `name`; StageError naming the known stages otherwise."""
        stage = self.get(name)
        if stage is None:
            raise StageError(f"deals.{setting}: {name!r} is not a deal stage in the CRM; "
                             f"stages: {', '.join(self.by_name)}")
        return stage

    def names(self) -> list[str]:
        """Every stage name, in order."""
        return list(self.by_name)


@dataclass(frozen=True)
class Existing:
    """A Books transaction the trigger made for a deal, as it is now in Books."""

    resource: str
    books_id: str
    number: str = ""
    status: str = "draft"
    last_status: str | None = None  # the status the trigger last left it in
    content: Mapping[str, Any] = field(default_factory=dict)  # what the trigger last wrote
    pending: str | None = None  # a status the trigger set but may not have recorded (crash)

    @property
    def label(self) -> str:
        """'quote EST-00012' for messages."""
        return f"{document_type(self.resource).noun} {self.number or self.books_id}"

    def frozen_reason(self) -> str | None:
        """Why deal changes no longer touch this transaction, or None while they do."""
        if self.status not in managed(self.resource):
            return (f"{self.label} is {self.status} in Books: once a transaction is sent, "
                    "deal changes no longer trigger anything")
        ours = {self.last_status, self.pending}
        if self.status != "draft" and self.last_status and self.status not in ours:
            return (f"{self.label} was marked {self.status} in Books, not by the trigger: "
                    "deal changes no longer trigger anything")
        return None


def _make(resource: str):
    return next(m for m in DEALS.makes.values() if m.document_type == resource)


def managed(resource: str) -> tuple[str, ...]:
    """The Books statuses a trigger sets on a transaction of `resource`; any other status
    freezes the transaction."""
    return _make(resource).managed


def upsert_key(deal_id: str, resource: str) -> str:
    """The unique cf_crm_id value of the transaction a trigger makes for a deal."""
    return f"{deal_id}:{_make(resource).key_suffix}"


def link_crm_id(deal_id: str, resource: str, books_id: str) -> str:
    """The crm_id of the link between a deal and one of its transactions (a deal may link to
    several, a transaction to one deal)."""
    return f"{deal_id}:{resource}:{books_id}"


def record_key(deal_id: str) -> str:
    """The history and failure key of a deal."""
    return f"deal:{deal_id}"


def _lookup(value: Any) -> tuple[str | None, str | None]:
    """(id, name) of a CRM lookup value ({"id", "name"}), or (None, None)."""
    if isinstance(value, Mapping) and value.get("id"):
        return str(value["id"]), (str(value.get("name") or "") or None)
    return None, None


def resolve_customer(deal: Mapping[str, Any], customers: Mapping[str, Any],
                     links: Mapping[str, Mapping[str, str]]) -> tuple[str | None, str | None]:
    """(Books customer id, None) for the deal's account or contact, or (None, reason).

    `customers`: the customers settings (crm_module, include_unassociated_contacts);
    `links`: kind (accounts | contacts) → CRM id → Books contact id, from the customers links.
    """
    mode = customers.get("crm_module") or "accounts"
    account_id, account_name = _lookup(deal.get(DEALS.account))
    contact_id, contact_name = _lookup(deal.get(DEALS.contact))
    if mode in ("accounts", "accounts+contacts") and account_id:
        books_id = links.get("accounts", {}).get(account_id)
        if books_id:
            return books_id, None
        return None, (f"account {account_name!r} ({account_id}) is not linked to a Books "
                      "customer yet: sync customers first (`crmbooks sync customers`); the "
                      "next trigger run picks the deal up again")
    if mode == "contacts" or (mode == "accounts+contacts"
                              and customers.get("include_unassociated_contacts")):
        if contact_id:
            books_id = links.get("contacts", {}).get(contact_id)
            if books_id:
                return books_id, None
            return None, (f"contact {contact_name!r} ({contact_id}) is not linked to a "
                          "Books customer yet: sync customers first (`crmbooks sync "
                          "customers`); the next trigger run picks the deal up again")
        if mode == "contacts":
            return None, ("the deal has no contact: the customers module syncs CRM Contacts, "
                          "so a triggered transaction needs the deal's Contact Name")
    return None, ("the deal has no account: the customers module syncs CRM Accounts, so a "
                  "triggered transaction needs the deal's Account Name")


def unlinked_party(deal: Mapping[str, Any], customers: Mapping[str, Any],
                   links: Mapping[str, Mapping[str, str]]) -> str | None:
    """The CRM id of the deal's account or contact that a customers sync would link, when
    that is all that keeps the deal from triggering (None otherwise)."""
    customer, _ = resolve_customer(deal, customers, links)
    if customer is not None:
        return None
    mode = customers.get("crm_module") or "accounts"
    account_id, _ = _lookup(deal.get(DEALS.account))
    contact_id, _ = _lookup(deal.get(DEALS.contact))
    if mode != "contacts" and account_id:
        return account_id
    if contact_id and (mode == "contacts" or customers.get("include_unassociated_contacts")):
        return contact_id
    return None


def amount_of(deal: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    """The deal amount as money (Decimal, 2 places), or (None, reason)."""
    raw = deal.get(DEALS.amount)
    if raw is None or raw == "":
        return None, "the deal has no Amount: the transaction's rate comes from it"
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        return None, f"the deal's Amount {raw!r} is not a number"
    if not amount.is_finite():
        return None, f"the deal's Amount {raw!r} is not a number"
    if amount < 0:
        return None, f"the deal's Amount is negative ({amount}): a rate cannot be below zero"
    return amount.quantize(CENT), None


def deal_content(deal: Mapping[str, Any], customer_id: str,
                 base_currency: str | None, item: str | None = None) -> dict[str, Any]:
    """What a triggered transaction takes from the deal, JSON-safe (rate as a string): the
    customer (and through it the customer's address), and what mappings/deal_triggers.yaml
    names (item name, description, salesperson, deal name), the rate from the deal amount, and
    the deal's currency when it is not the Books base currency.
    """
    amount, _ = amount_of(deal)
    content: dict[str, Any] = {"customer_id": str(customer_id)}
    for key, take in DEALS.takes.items():
        value = deal.get(take.from_)
        value = (_lookup(value)[1] if take.lookup == "name" else value) or ""
        value = str(value).strip() if take.trim else str(value)
        content[key] = value[:take.max_length] if take.max_length else value
    content["rate"] = None if amount is None else format(amount, "f")
    if item:  # the Books item of the line (`configure deals --item`): the CRM copy's product
        content["item_id"] = str(item)
    currency = str(deal.get(DEALS.currency) or "").strip().upper()
    if currency and currency != (base_currency or "").upper():
        content["currency_code"] = currency
    return content


def books_body(deal_id: str, content: Mapping[str, Any]) -> dict[str, Any]:
    """The Books create/update body of a triggered transaction (rate stays a string here)."""
    books, lines = shape().books, shape().books.lines
    body: dict[str, Any] = {
        party(document_type(QUOTE)).books_id: content["customer_id"],
        books.deal_id: str(deal_id),
        books.deal_name: content["deal_name"],
        "line_items": [{lines.name: content["item_name"],
                        lines.description: content["description"],
                        lines.rate: content["rate"], lines.quantity: 1}],
    }
    if content.get("item_id"):
        body["line_items"][0][lines.item] = content["item_id"]
    if content.get("salesperson_name"):
        body[books.salesperson] = content["salesperson_name"]
    if content.get("currency_code"):
        body[books.currency] = content["currency_code"]
    return body


@dataclass
class DealContext:
    """Everything the plan of one deal needs besides the deal itself."""

    mode: str  # quote | invoice
    stages: Stages
    create_stage: str | None = None
    accept_stage: str | None = None
    invoice_on_accept: bool = False
    item: str | None = None  # the Books item of the transaction's line, if configured
    customers: Mapping[str, Any] = field(default_factory=dict)
    customer_links: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    currencies: frozenset[str] = frozenset()  # currency codes enabled in Books
    base_currency: str | None = None


def _step(deal: Mapping[str, Any], action: str, resource: str | None = None,
          **extra) -> dict:
    """One plan row of a deal: showing the quote on the deal writes the CRM (action "link"),
    every other step a Books transaction."""
    deal_id = str(deal.get("id"))
    return {"record_key": record_key(deal_id), "deal_id": deal_id, "crm_id": deal_id,
            "name": str(deal.get(DEALS.name) or ""), "action": action,
            "target": "crm" if action == "link" else "books", "resource": resource,
            "books_id": None, "status": None, "body": None, "content": None, "reason": "",
            "before": None, **extra}


def plan_deal(deal: Mapping[str, Any], ctx: DealContext,
              existing: Mapping[str, Existing]) -> list[dict]:
    """The ordered steps one deal asks for now.

    Actions: create, update, mark (a status), link (show the quote on the deal), nothing,
    skip (with the reason: frozen transactions), fail (with the reason: bad deal data).
    `existing`: resource → the transaction the trigger made for this deal.
    """
    stage = ctx.stages.get(deal.get(DEALS.stage))
    if stage is None:
        return [_step(deal, "fail", reason=f"the deal's stage {deal.get('Stage')!r} is not a "
                      f"deal stage in the CRM (stages: {', '.join(ctx.stages.names())})")]
    if ctx.mode == "invoice":
        return _plan_invoice_mode(deal, ctx, stage, existing)
    return _plan_quote_mode(deal, ctx, stage, existing)


def _close(deal, txns: list[tuple[Existing | None, str]], why: str) -> list[dict]:
    """Lost deal: mark each managed transaction (declined / void)."""
    steps = []
    for txn, target in txns:
        if txn is None:
            continue
        frozen = txn.frozen_reason()
        if frozen:
            steps.append(_step(deal, "skip", txn.resource, books_id=txn.books_id,
                               reason=frozen))
        elif txn.status == target:
            steps.append(_step(deal, "nothing", txn.resource, books_id=txn.books_id,
                               reason=f"{txn.label} is already {target}"))
        else:
            steps.append(_step(deal, "mark", txn.resource, books_id=txn.books_id,
                               status=target, before=txn.status,
                               reason=f"{why}: {txn.label} marked {target}"))
    return steps or [_step(deal, "nothing", reason=f"{why}, and no transaction was triggered "
                           "for it")]


def _content_or_fail(deal, ctx: DealContext) -> tuple[dict | None, dict | None]:
    """(content, None), or (None, fail step) when the deal cannot make a transaction."""
    customer_id, reason = resolve_customer(deal, ctx.customers, ctx.customer_links)
    _, amount_reason = amount_of(deal)
    problems = [r for r in (reason, amount_reason) if r]
    content = None if problems else deal_content(deal, customer_id, ctx.base_currency,
                                                 ctx.item)
    if content and content.get("currency_code") and ctx.currencies \
            and content["currency_code"] not in ctx.currencies:
        problems.append(f"the deal's currency {content['currency_code']} is not enabled in the "
                        f"Books organization (enabled: {', '.join(sorted(ctx.currencies))}); "
                        "add it in Books (Settings > Currencies) or change the deal")
    if not (deal.get(DEALS.name) or "").strip():
        problems.append("the deal has no Deal Name: the item name comes from it")
    if problems:
        missing = unlinked_party(deal, ctx.customers, ctx.customer_links) if reason else None
        return None, _step(deal, "fail", reason="; ".join(problems), missing_customer=missing)
    return content, None


def _ensure(deal, ctx: DealContext, resource: str, txn: Existing | None,
            content: dict | None, fail: dict | None, why: str, **extra) -> list[dict]:
    """Create the transaction, or bring a draft up to the deal's content."""
    if fail is not None and (txn is None or txn.status in ("draft", "void")):
        return [fail]
    body = books_body(str(deal.get("id")), content) if content else None
    if txn is None:
        noun = document_type(resource).noun
        return [_step(deal, "create", resource, body={**body, **extra}, content=content,
                      status="draft", reason=f"{why}: {noun} created (draft)")]
    steps = []
    if txn.status == "void" and resource == INVOICE:
        steps.append(_step(deal, "mark", resource, books_id=txn.books_id, status="draft",
                           before="void", reason=f"{why}: {txn.label} reopened (draft)"))
        txn = Existing(resource, txn.books_id, txn.number, "draft", "draft", txn.content)
    if txn.status == "draft" and content and dict(txn.content) != content:
        changed = sorted(k for k in set(content) | set(txn.content)
                         if content.get(k) != txn.content.get(k))
        steps.append(_step(deal, "update", resource, books_id=txn.books_id, body=body,
                           content=content, before=dict(txn.content),
                           reason=f"deal changed ({', '.join(changed)}): {txn.label} updated"))
    return steps


def _plan_quote_mode(deal, ctx: DealContext, stage: Stage,
                     existing: Mapping[str, Existing]) -> list[dict]:
    est, inv = existing.get(QUOTE), existing.get(INVOICE)
    if stage.outcome == "lost":
        return _close(deal, [(est, "declined"), (inv, "void")], f"deal lost ({stage.name})")
    create = ctx.stages.require(ctx.create_stage, "create_stage") if ctx.create_stage else None
    accept = ctx.stages.require(ctx.accept_stage, "accept_stage") if ctx.accept_stage else None
    if (create is None or stage.sequence < create.sequence) and est is None:
        return [_step(deal, "nothing", reason=f"stage {stage.name} comes before the quote "
                      f"stage {ctx.create_stage}")]
    if est is not None:
        frozen = est.frozen_reason()
        if frozen:
            return [_step(deal, "skip", QUOTE, books_id=est.books_id, reason=frozen)]
    content, fail = _content_or_fail(deal, ctx)
    why = f"deal at {stage.name}"
    steps = _ensure(deal, ctx, QUOTE, est, content, fail, why)
    if any(s["action"] == "fail" for s in steps):
        return steps
    est_id = est.books_id if est else None
    if est is not None and str(deal.get(CRM_QUOTE_FIELD) or "") != est_id:
        steps.append(_step(deal, "link", QUOTE, books_id=est_id,
                           reason=f"{est.label} shown on the deal ({CRM_QUOTE_FIELD})"))
    accepted = accept is not None and stage.sequence >= accept.sequence
    status = est.status if est else "draft"
    if accepted and status != "accepted":
        steps.append(_step(deal, "mark", QUOTE, books_id=est_id, status="accepted",
                           before=status, reason=f"deal at {stage.name}: quote accepted"))
    elif est is not None and status == "declined":
        steps.append(_step(deal, "nothing", QUOTE, books_id=est_id,
                           reason=f"{est.label} stays declined (it was declined when the deal "
                                  "was lost)"))
    if accepted and ctx.invoice_on_accept:
        if inv is not None and inv.frozen_reason():
            steps.append(_step(deal, "skip", INVOICE, books_id=inv.books_id,
                               reason=inv.frozen_reason()))
        else:
            # the quote it comes from; "$estimate": the one made in this same run
            field = DEALS.makes["invoice"].from_quote_field
            extra = {field: est_id or "$estimate"} if field else {}
            steps += _ensure(deal, ctx, INVOICE, inv, content, fail,
                             "quote accepted", **extra)
    return steps or [_step(deal, "nothing", QUOTE, books_id=est_id,
                           reason=f"{est.label if est else 'quote'} already matches the deal")]


def _plan_invoice_mode(deal, ctx: DealContext, stage: Stage,
                       existing: Mapping[str, Existing]) -> list[dict]:
    inv = existing.get(INVOICE)
    if stage.outcome == "lost":
        return _close(deal, [(inv, "void")], f"deal lost ({stage.name})")
    if stage.outcome != "won":
        return [_step(deal, "nothing", INVOICE, books_id=inv.books_id if inv else None,
                      reason=f"stage {stage.name} is not won (probability {stage.probability})")]
    if inv is not None and inv.frozen_reason():
        return [_step(deal, "skip", INVOICE, books_id=inv.books_id,
                      reason=inv.frozen_reason())]
    content, fail = _content_or_fail(deal, ctx)
    steps = _ensure(deal, ctx, INVOICE, inv, content, fail, f"deal won ({stage.name})")
    return steps or [_step(deal, "nothing", INVOICE, books_id=inv.books_id,
                           reason=f"{inv.label} already matches the deal")]
