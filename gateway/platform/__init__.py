"""The national floating-population exchange platform (全国流动人口信息交换平台).

Holds assist-check requests and notices (协查请求 / 协查通报) with their answers, and the
exchange cycle's report (报送周期 figures: the 20th and the 27th).

May import: `gateway.obligations`, `gateway.register`, `gateway.exchange`, `gateway.routing`, `gateway.store`,
`gateway.receipts` and the top-level modules. Must not import the front ends."""
