"""The event receiver (`crmbooks webhook`, and a service of `crmbooks up`).

server: the HTTP app, the Receiver that runs it and registers where events go, `serve`;
routing: what an event starts, and when it waits or starts nothing;
debounce: the queues that turn bursts of events into runs.
"""
