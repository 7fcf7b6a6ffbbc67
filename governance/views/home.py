from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .. import dashboard


@login_required
def home(request):
    return render(request, "governance/home.html", {"sections": dashboard.sections(request.user)})
