"""crmbooks/connectors."""
