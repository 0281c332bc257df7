"""Obligations (法定时限): the deadlines the regulations set, on the Chinese working-day calendar.

Holds the deadline rules (`deadlines`: 15 days 紧急, 30 days otherwise, working days by
`chinesecalendar`) that the platform and the reports apply.

May import: `gateway.store` and the top-level modules (config, clock, errors). Nothing
above it: every duty reads its due dates from here."""
