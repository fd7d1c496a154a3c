"""factory_boy factories for customers."""

from __future__ import annotations

import factory

from customers.models import Customer


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    customer_id = factory.Sequence(lambda n: f"C{n:05d}")
    age = factory.Sequence(lambda n: 20 + n % 50)
    annual_income = factory.Sequence(lambda n: 20.0 + (n * 7) % 120)
    spending_score = factory.Sequence(lambda n: 1 + (n * 13) % 100)
    purchase_frequency = factory.Sequence(lambda n: (n * 3) % 40)
    sex = factory.Iterator([Customer.Sex.FEMALE, Customer.Sex.MALE, Customer.Sex.OTHER])
