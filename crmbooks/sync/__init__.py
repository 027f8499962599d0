"""The pure sync core: map, dedupe, plan and merge (no Prefect, no HTTP)."""
