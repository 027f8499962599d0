"""crmbooks."""
