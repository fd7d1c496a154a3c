"""The audit trail on pages other apps own (run page, compare page): tags, so those
pages' views need no change."""

from __future__ import annotations

from django import template

from audit import selectors

register = template.Library()


@register.simple_tag
def run_activation_history(run):
    return selectors.run_activations(run=run)


@register.simple_tag
def segment_changes_between(run_a, run_b):
    if run_a is None or run_b is None or run_a.id == run_b.id:
        return []
    return selectors.run_pair_changes(run_from=run_a, run_to=run_b)


@register.simple_tag
def strategy_version_latest(segment):
    """The segment's current strategy version (None before any is recorded)."""
    return segment.strategy_versions.select_related("author").order_by("-number").first()
