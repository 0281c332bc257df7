"""The national floating-population exchange platform (全国流动人口信息交换平台).

Holds assist-check requests and notices (协查请求 / 协查通报) with their answers
(`assist_checks`), the county's own requests to other counties (`outgoing`), the exchange
cycle's report with the feedback rate (`cycle_report`: the 20th and the 27th), and the
built-in exchange jobs (`jobs`: inboxes, pulls, assist checks), which do the platform's
follow-ups.

May import: `gateway.reconcile`, `gateway.register`, `gateway.obligations`,
`gateway.scheduler`, `gateway.pulls`, `gateway.exchange` and everything below. Must not
import the population reports or the front ends."""
