"""What every emulated product shares: configuration and sample-data sizes, injected faults,
traffic limits and counters, the request log, error envelopes, the clock and the document-type
declarations. Nothing here knows the CRM, Books or the composed app."""
