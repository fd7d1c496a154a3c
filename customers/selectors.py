"""Reads of customer data that other parts of the site share."""

from __future__ import annotations

from customers.catalogue import BUILT_IN, Catalogue
from customers.models import Attribute


def catalogue_current() -> Catalogue:
    """The built-in features and every attribute imported so far (one small query)."""
    attributes = tuple(a.as_feature() for a in Attribute.objects.order_by("id"))
    return Catalogue(BUILT_IN + attributes)
