"""Prometheus metrics at /metrics, read from the database at each scrape: counts per
department and status, never a record, a name or an identifier."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from gateway.config import Settings
from gateway.store.models import AssistCheck, Delivery, Exchange, FileClaim, JobState, PullCursor, Receipt

# (name, help) of every metric, for docs/console.md and the test.
METRICS = {
    "gateway_exchanges_total": "Exchanges received, by department and status (processed, duplicate, rejected, received).",
    "gateway_records_accepted_total": "Rows accepted and stored, by department.",
    "gateway_rows_rejected_total": "Rows refused, by department.",
    "gateway_exchange_processing_seconds_sum": "Seconds from receipt to commit, summed over processed exchanges, by department.",
    "gateway_exchange_processing_seconds_count": "Processed exchanges counted in the sum above, by department.",
    "gateway_queue_depth": "Found files queued and not yet claimed by a worker.",
    "gateway_deliveries": "Deliveries by status.",
    "gateway_deliveries_unacknowledged_overdue": "Delivered files past their acknowledgement deadline.",
    "gateway_assist_checks_open": "Assist-checks not answered yet.",
    "gateway_receipts_total": "Receipts in the ledger.",
    "gateway_pull_last_success_timestamp_seconds": "When each pull source last reached its partner without error (Unix time).",
    "gateway_job_failures": "Consecutive failed runs of each scheduled job.",
}


def _seconds(moment: dt.datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


class GatewayCollector(Collector):
    def __init__(self, engine: Engine, settings: Settings):
        self.engine, self.settings = engine, settings

    def collect(self) -> Iterator[Metric]:
        exchanges = CounterMetricFamily("gateway_exchanges", METRICS["gateway_exchanges_total"], labels=["department", "status"])
        accepted = CounterMetricFamily("gateway_records_accepted", METRICS["gateway_records_accepted_total"], labels=["department"])
        rejected = CounterMetricFamily("gateway_rows_rejected", METRICS["gateway_rows_rejected_total"], labels=["department"])
        duration_sum = GaugeMetricFamily(
            "gateway_exchange_processing_seconds_sum", METRICS["gateway_exchange_processing_seconds_sum"], labels=["department"]
        )
        duration_count = GaugeMetricFamily(
            "gateway_exchange_processing_seconds_count", METRICS["gateway_exchange_processing_seconds_count"], labels=["department"]
        )
        now = dt.datetime.now(dt.UTC)
        with Session(self.engine) as session:
            per_department: dict[str, list[int]] = {}
            for department, status, n, acc, rej in session.exec(
                select(Exchange.department, Exchange.status, func.count(), func.sum(Exchange.accepted), func.sum(Exchange.rejected))
                .group_by(Exchange.department, Exchange.status)
            ).all():
                exchanges.add_metric([department, status], n)
                totals = per_department.setdefault(department, [0, 0])
                totals[0] += int(acc or 0)
                totals[1] += int(rej or 0)
            for department, (acc, rej) in sorted(per_department.items()):
                accepted.add_metric([department], acc)
                rejected.add_metric([department], rej)
            spans: dict[str, list[float]] = {}
            for department, received, processed in session.exec(
                select(Exchange.department, Exchange.received_at, Exchange.processed_at).where(Exchange.processed_at.is_not(None))  # type: ignore[union-attr]
            ).all():
                start, end = _seconds(received), _seconds(processed)
                if start is not None and end is not None:
                    spans.setdefault(department, []).append(max(end - start, 0.0))
            for department, values in sorted(spans.items()):
                duration_sum.add_metric([department], sum(values))
                duration_count.add_metric([department], len(values))
            queued = session.exec(select(func.count()).select_from(FileClaim).where(FileClaim.worker.is_(None))).one()  # type: ignore[union-attr]
            deliveries = GaugeMetricFamily("gateway_deliveries", METRICS["gateway_deliveries"], labels=["status"])
            for status, n in session.exec(select(Delivery.status, func.count()).group_by(Delivery.status)).all():
                deliveries.add_metric([status], n)
            overdue = session.exec(
                select(func.count()).select_from(Delivery).where(Delivery.status == "delivered", Delivery.ack_due_at < now)  # type: ignore[operator]
            ).one()
            open_checks = session.exec(select(func.count()).select_from(AssistCheck).where(AssistCheck.status != "answered")).one()
            receipts = session.exec(select(func.count()).select_from(Receipt)).one()
            pulls = GaugeMetricFamily(
                "gateway_pull_last_success_timestamp_seconds", METRICS["gateway_pull_last_success_timestamp_seconds"], labels=["source"]
            )
            for cursor in session.exec(select(PullCursor).order_by(PullCursor.source)).all():
                moment = _seconds(cursor.checked_at)
                if moment is not None:
                    pulls.add_metric([cursor.source], moment)
            jobs = GaugeMetricFamily("gateway_job_failures", METRICS["gateway_job_failures"], labels=["job"])
            for state in session.exec(select(JobState).order_by(JobState.name)).all():
                jobs.add_metric([state.name], state.failures)
        yield exchanges
        yield accepted
        yield rejected
        yield duration_sum
        yield duration_count
        yield GaugeMetricFamily("gateway_queue_depth", METRICS["gateway_queue_depth"], value=int(queued))
        yield deliveries
        yield GaugeMetricFamily("gateway_deliveries_unacknowledged_overdue", METRICS["gateway_deliveries_unacknowledged_overdue"], value=int(overdue))
        yield GaugeMetricFamily("gateway_assist_checks_open", METRICS["gateway_assist_checks_open"], value=int(open_checks))
        yield CounterMetricFamily("gateway_receipts", METRICS["gateway_receipts_total"], value=int(receipts))
        yield pulls
        yield jobs


def metrics_registry(engine: Engine, settings: Settings) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(engine, settings))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
