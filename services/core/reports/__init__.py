"""Executive reports: a brand against its competitive set, who is saying it, and whether
it matters. ``build_executive_report`` is the entry point; ``model`` is its output."""

from services.core.reports.executive import (
    AccuracySource,
    AlertsSource,
    ReportRequest,
    build_executive_report,
)
from services.core.reports.model import ExecutiveReport

__all__ = [
    "AccuracySource",
    "AlertsSource",
    "ExecutiveReport",
    "ReportRequest",
    "build_executive_report",
]
