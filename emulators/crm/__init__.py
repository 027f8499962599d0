"""The Zoho CRM emulator: `CrmEmulator` (state, seeding, writes) and its routes under
/crm/{version}/. It shares only `emulators.common` with the other products."""

from emulators.crm.emulator import CrmEmulator

__all__ = ["CrmEmulator"]
