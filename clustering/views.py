from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from customers.models import Customer


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    # Until a model is trained there is nothing to aggregate; counting is cheap on an index.
    context = {"customer_count": Customer.objects.count()}
    return render(request, "clustering/dashboard.html", context)
