"""`[population_reports]` in gateway.toml (docs/reports.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.config import Settings
from gateway.errors import ConfigError


class ReportSettings(BaseModel):
    """How the population reports are made and where they go."""

    model_config = ConfigDict(extra="forbid")

    office: str = Field(default="population-office", description="the department whose outbox receives the reports (人口办)")
    snapshots_file: str = Field(
        default="population_snapshots.csv",
        description="registered population per division and sex at given dates (时点户籍人口), relative to the home",
    )
    min_births_for_sex_ratio: int = Field(
        default=100, ge=1, description="fewer births than this: the sex ratio at birth is shown, never warned about"
    )
    sex_ratio_low: float = Field(default=103.0, description="normal band of the sex ratio at birth (boys per 100 girls)")
    sex_ratio_high: float = Field(default=107.0)
    senders: list[str] | None = Field(
        default=None, description="departments expected to send something every month (default: every department but the office)"
    )
    scheduled: bool = Field(default=True, description="`gateway run` produces each report on its due date")
    formats: list[str] = Field(default_factory=lambda: ["xlsx", "csv", "html"])


def report_settings(settings: Settings) -> ReportSettings:
    try:
        return ReportSettings(**(settings.population_reports or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"[population_reports] in gateway.toml: {problems}") from exc


def snapshots_path(settings: Settings, options: ReportSettings) -> Path:
    path = Path(options.snapshots_file)
    return path if path.is_absolute() else settings.home / path


def expected_senders(settings: Settings, options: ReportSettings) -> list[str]:
    if options.senders is not None:
        return list(options.senders)
    return [name for name in settings.departments if name != options.office]
