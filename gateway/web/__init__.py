"""The console (网页控制台): the FastAPI application clerks and security officers sign in to.

Holds the pages, the JSON API, accounts and sessions, receipt verification in the browser and
the metrics endpoint.

May import anything below the front ends (the duties, exchange, routing, store, receipts);
must not import `gateway.cli`."""
