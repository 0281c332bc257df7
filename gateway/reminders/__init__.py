"""Reminders (催办): the hourly `obligations` job of `gateway run` and the Friday reminders
it sends each department with overdue obligations (encrypted and signed, like every
delivery), with a summary for the population office.

Kept apart from `gateway.obligations` because sending goes through routing and the
scheduler, while the obligations themselves sit below routing and the exchange (both open
and close obligations as they work). May import the duties' lower layers (obligations,
routing, exchange, scheduler, store); must not import the platform, the population
reports or the front ends."""
