"""crmbooks/store."""
