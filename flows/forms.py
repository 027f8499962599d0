"""The types of the flows' parameters, so that the Prefect UI's run forms guide the operator.

Prefect builds a deployment's form from its flow's signature (the JSON schema of each
parameter) and its docstring (the `Args:` section gives each field's description). A choice
is a `Literal`, so the form offers a drop-down instead of a free text box; a list of record
keys carries an example. Each choice is spelled out here rather than built from the registry
because `prefect deploy` reads the annotations from the source; tests/deployments checks that
they match the registry.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

#: What `sync now` runs: every module in dependency order, or some of them (deals: the deal
#: triggers, as `crmbooks configure deals` names them).
SyncModule = Literal["all", "customers", "vendors", "items", "transactions", "deals"]
#: The modules whose failures `retry` re-runs, and whose settings `edit` changes.
Module = Literal["customers", "vendors", "items", "transactions", "deals"]
#: What `fetch one` refreshes from the CRM.
FetchKind = Literal["customer", "vendor"]
#: Where `import` looks a name up in the CRM.
LookupWhere = Literal["accounts", "contacts", "vendors"]
#: Which records `linked` lists.
LinkedWhat = Literal["customers", "vendors"]

#: Record keys as `history --failures` shows them (the example lands in the form's schema).
RecordKeys = Annotated[list[str] | None,
                       Field(examples=[["crm/Accounts/4876876000000123001"]])]
#: CRM record ids of an event (a CRM notification).
CrmIds = Annotated[list[str] | None, Field(examples=[["4876876000000123001"]])]
#: Books record ids of an event (a Books webhook).
BooksIds = Annotated[list[str] | None, Field(examples=[["460000000012345"]])]
