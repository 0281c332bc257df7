"""The national floating-population exchange platform (全国流动人口信息交换平台).

Holds assist-check requests and notices (协查请求 / 协查通报) with their answers
(`assist_checks`), the county's own requests to other counties (`outgoing`), and the
exchange cycle's report with the feedback rate (`cycle_report`: the 20th and the 27th).

May import: `gateway.obligations`, `gateway.exchange`, `gateway.routing`, `gateway.store`,
`gateway.intake` (staging), `gateway.readers` (xml), `gateway.pulls` (its HTTP client),
`gateway.receipts` and the top-level modules. Must not import the front ends."""
