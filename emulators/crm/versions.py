"""The CRM API versions the emulator serves (/crm/v2 … /crm/v8) and what differs between them.

Every answer is v8's unless a row of the table in docs/emulator-api-versions.md says otherwise;
each predicate below is one row, named after the behaviour and the first version that has it:

* `fields_required`: a record list call without `fields` is REQUIRED_PARAM_MISSING from v8 on
  (Zoho's v8 getRecords operation); earlier versions document `fields` as optional and answer
  every field (v2 Get Records page).
* `lookup_module_is_object`: field metadata's `lookup.module` is {"api_name","id"} from v2.1 on;
  v2 sends the module's API name as a string (Zoho's v2 Python SDK types `module` a str).
* `module_status_key`: module metadata's `visible` is replaced by `status` and
  `sub_menu_available` is added from v5 on (v5 changelog).
* `module_capability_flags`: nine capability flags of module metadata are gone from v6 on (v6
  changelog), so only v2 … v5 send them.
* `field_customizable_properties`: every field carries `customizable_properties` from v6 on
  (v6 changelog).
"""

from __future__ import annotations

VERSIONS: tuple[str, ...] = ("v2", "v2.1", "v3", "v4", "v5", "v6", "v7", "v8")
LATEST = VERSIONS[-1]

# Keys of /settings/modules that the v6 changelog says are no longer sent.
CAPABILITY_FLAGS = ("email_parser_supported", "emailTemplate_support", "filter_supported",
                    "global_search_supported", "inventory_template_supported",
                    "isBlueprintSupported", "scoring_supported", "triggers_supported",
                    "webform_supported")


def known(version: str) -> bool:
    """Whether the emulator serves this version at all."""
    return version in VERSIONS


def at_least(version: str, floor: str) -> bool:
    """Whether `version` is `floor` or newer (an unknown version counts as the latest)."""
    rank = VERSIONS.index(version) if version in VERSIONS else len(VERSIONS) - 1
    return rank >= VERSIONS.index(floor)


def fields_required(version: str) -> bool:
    """`fields` is mandatory on a record list call."""
    return at_least(version, "v8")


def lookup_module_is_object(version: str) -> bool:
    """Field metadata names a lookup's module as an object (else its API name)."""
    return at_least(version, "v2.1")


def module_status_key(version: str) -> bool:
    """Module metadata says `status` (and `sub_menu_available`) instead of `visible`."""
    return at_least(version, "v5")


def module_capability_flags(version: str) -> bool:
    """Module metadata still carries the flags in CAPABILITY_FLAGS."""
    return not at_least(version, "v6")


def field_customizable_properties(version: str) -> bool:
    """Field metadata carries `customizable_properties`."""
    return at_least(version, "v6")
