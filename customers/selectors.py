"""Reads of customer data that other parts of the site share."""

from __future__ import annotations

from django.apps import apps

from customers.catalogue import BUILT_IN, Catalogue
from customers.models import Attribute


def catalogue_current() -> Catalogue:
    """The built-in features, the purchase-history (RFM) features once there are
    purchases, and every attribute imported so far (two small queries)."""
    attributes = tuple(a.as_feature() for a in Attribute.objects.order_by("id"))
    return Catalogue(BUILT_IN + _purchase_features() + attributes)


def _purchase_features() -> tuple:
    if not apps.is_installed("purchases"):
        return ()
    from purchases.selectors import rfm_features

    return rfm_features()
