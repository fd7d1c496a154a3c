"""The campaigns' summary on a segment card (a tag, so the dashboard's view needs no change)."""

from __future__ import annotations

from django import template

from campaigns.selectors import segment_campaign_summary, summary_text

register = template.Library()


@register.simple_tag
def segment_campaigns(segment) -> str:
    """ "last 3 campaigns: +4.1 points, 95 % CI +1.2 to +7.0" ("" before any)."""
    summary = segment_campaign_summary(segment_id=segment.id)
    return summary_text(summary) if summary else ""
