"""The national floating-population exchange platform (全国流动人口信息交换平台).

Holds assist-check requests and notices (协查请求 / 协查通报) with their answers, the
exchange cycle's report (报送周期 figures: the 20th and the 27th), and the built-in exchange
jobs (`jobs`: inboxes, pulls, assist checks), which do the platform's follow-ups.

May import: `gateway.reconcile`, `gateway.obligations`, `gateway.register`, `gateway.scheduler`, `gateway.pulls`,
`gateway.exchange` and everything below. Must not import the population reports or the
front ends."""
