"""The dashboard's notices: drift warning and notifications, without the dashboard view
knowing about operations (one tag each in templates/clustering/dashboard.html)."""

from __future__ import annotations

from django import template

from operations import selectors
from operations.notifications import notifications_for

register = template.Library()


@register.inclusion_tag("operations/_drift_warning.html", takes_context=True)
def drift_warning(context):
    report = selectors.drift_latest()
    if report is None or report.level == "stable":
        return {"report": None}
    moved = [
        {**item, "words": selectors.drift_words(item)}
        for item in report.features
        if item["level"] != "stable"
    ][:3]
    return {
        "report": report,
        "moved": moved,
        "thresholds": selectors.drift_thresholds(),
        "perms": context.get("perms"),
    }


@register.inclusion_tag("operations/_notices.html", takes_context=True)
def operations_notices(context):
    user = context.get("user")
    if user is None or not user.is_authenticated:
        return {"notifications": []}
    return {"notifications": notifications_for(user)}


@register.filter
def drift_words(item: dict) -> str:
    return selectors.drift_words(item)


@register.filter
def started_by(run) -> str:
    """Who started a run: a person, a schedule (operations.ScheduledRun), or the command line."""
    if run.created_by_id:
        return run.created_by.get_username()
    from operations.models import ScheduledRun

    link = ScheduledRun.objects.filter(run_id=run.id).select_related("schedule").first()
    if link is not None:
        return f"the schedule “{link.schedule.name}”"
    return "command line"
