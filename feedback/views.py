"""Thin HTML views. Every read goes through ``selectors`` (and so ``permissions.restrict``)."""

from __future__ import annotations

import csv

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.htmx import render_page
from accounts.models import Organisation
from accounts.selectors import audit_events_for_object

from . import charts, forms, links, permissions, selectors, services, versions
from .models import FeedbackItem

PAGE_SIZE = 25


def _errors_into(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _sites(user):
    return services.sites_for(user).order_by("name")


NOT_A_TEST_SITE = (
    "Feedback is collected from the implementation test sites; none of your organisations is one."
)


def _site_versions(sites) -> list[tuple]:
    """[(site, {"portal": ..., "node_agents": [...]})] in two queries."""
    sites = list(sites.order_by("name"))
    nodes = versions.node_agent_versions_by_site([site.pk for site in sites])
    portal = versions.portal_version()
    return [(site, {"portal": portal, "node_agents": nodes.get(site.pk, [])}) for site in sites]


@login_required
def item_list(request):
    filterset = selectors.FeedbackFilter(request.GET or None, request=request)
    items = selectors.feedback_list(user=request.user, filters=request.GET, request=request)
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filter": filterset,
        "page": page,
        "query": query.urlencode(),
        "can_give": permissions.can_give_feedback(request.user),
        "is_team": permissions.is_platform_team(request.user),
        "site_versions": _site_versions(
            Organisation.objects.filter(pk__in=permissions.test_site_ids(request.user))
        ),
    }
    return render_page(
        request, "feedback/list.html", context, partial="feedback/partials/rows.html"
    )


def _initial(request) -> dict:
    page = services.clean_page_path(request.GET.get("page", ""))
    return {
        "page_path": page,
        "component": versions.component_for_path(page),
        "persona": services.default_persona(request.user),
    }


def _submit(request, form) -> FeedbackItem | None:
    data = form.cleaned_data
    link = None
    try:
        if data.get("link_type") or data.get("link_id"):
            link = links.resolve_link(
                user=request.user,
                target=data.get("link_type", ""),
                object_id=data.get("link_id", ""),
            )
        upload = data.get("attachment")
        return services.feedback_submit(
            user=request.user,
            site=data.get("site"),
            persona=data["persona"],
            category=data["category"],
            component=data["component"],
            component_version=data.get("component_version", ""),
            severity=data.get("severity", ""),
            title=data["title"],
            description=data["description"],
            steps_to_reproduce=data.get("steps_to_reproduce", ""),
            page_path=data.get("page_path", "")
            or request.headers.get("HX-Current-URL", "").split(request.get_host(), 1)[-1],
            contact_consent=data.get("contact_consent", False),
            shared=data.get("shared", False),
            link=link,
            attachments=[upload] if upload else (),
        )
    except ValidationError as exc:
        _errors_into(form, exc)
    except PermissionDenied as exc:
        form.add_error(None, str(exc))
    return None


@login_required
@require_http_methods(["GET", "POST"])
def item_new(request):
    if not permissions.can_give_feedback(request.user):
        messages.info(request, NOT_A_TEST_SITE)
        return redirect("feedback:list")
    sites = _sites(request.user)
    form = forms.FeedbackForm(
        request.POST or None, request.FILES or None, sites=sites, initial=_initial(request)
    )
    if request.method == "POST" and form.is_valid():
        item = _submit(request, form)
        if item is not None:
            messages.success(request, f"Thank you: feedback #{item.pk} was recorded.")
            return redirect(item)
    return render(
        request,
        "feedback/new.html",
        {"form": form, "version": settings.PORTAL_VERSION},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def widget(request):
    """The feedback button's short form: GET shows it, POST records it (both as htmx fragments)."""
    if not permissions.can_give_feedback(request.user):
        return render_page(
            request,
            "feedback/widget_page.html",
            {"not_allowed": NOT_A_TEST_SITE},
            partial="feedback/partials/widget_done.html",
        )
    sites = _sites(request.user)
    # Its own ids: the panel opens on pages that have forms of their own.
    form = forms.WidgetForm(
        request.POST or None, sites=sites, initial=_initial(request), auto_id="feedback_%s"
    )
    if request.method == "POST" and form.is_valid():
        item = _submit(request, form)
        if item is not None:
            return render_page(
                request,
                "feedback/widget_page.html",
                {"item": item, "done": True},
                partial="feedback/partials/widget_done.html",
            )
    return render_page(
        request,
        "feedback/widget_page.html",
        {"form": form, "version": settings.PORTAL_VERSION},
        partial="feedback/partials/widget_form.html",
        status=400 if form.errors else 200,
    )


def _detail_context(request, item: FeedbackItem, **forms_override) -> dict:
    user = request.user
    is_team = permissions.is_platform_team(user)
    transitions = services.available_transitions(item, user)
    context = {
        "item": item,
        "is_team": is_team,
        "transitions": transitions,
        "comment_form": forms.CommentForm(),
        "attachment_form": forms.AttachmentForm()
        if permissions.allows(item, user, "attach")
        else None,
        "can_edit": permissions.allows(item, user, "edit"),
        "can_vote": item.author_id != user.pk and item.is_open,
        "link_url": links.link_url(item, user),
        "link_kind": links.link_target_label(item),
        "history": audit_events_for_object(user=user, obj=item),
        "transition_forms": {},
    }
    team = services.platform_team_users() if is_team else None
    for name in transitions:
        form_class = forms.TRANSITION_FORMS[name]
        if form_class is None:
            continue
        if name == "triage":
            form = form_class(
                team=team,
                initial={
                    "assignee": item.assignee_id or user.pk,
                    "priority": item.priority or "normal",
                    "labels": ", ".join(label.name for label in item.labels.all()),
                },
                prefix=name,
            )
        else:
            form = form_class(prefix=name)
        context["transition_forms"][name] = forms_override.get(name, form)
    return context


@login_required
def item_detail(request, pk: int):
    item = selectors.feedback_get_for_user(user=request.user, pk=pk)
    return render(request, "feedback/detail.html", _detail_context(request, item))


@login_required
@require_POST
def item_transition(request, pk: int, name: str):
    item = selectors.feedback_get_for_user(user=request.user, pk=pk)
    if name not in services.TRANSITIONS:
        raise Http404
    form_class = forms.TRANSITION_FORMS[name]
    data = {}
    form = None
    if form_class is not None:
        kwargs = {"prefix": name}
        if name == "triage":
            kwargs["team"] = services.platform_team_users()
        form = form_class(request.POST, **kwargs)
        if not form.is_valid():
            context = _detail_context(request, item, **{name: form})
            messages.error(request, "Please correct the fields below.")
            return render(request, "feedback/detail.html", context, status=400)
        data = dict(form.cleaned_data)
        if name == "duplicate":
            try:
                data["duplicate_of"] = selectors.feedback_get_for_user(
                    user=request.user, pk=data["duplicate_of"]
                )
            except Http404:
                form.add_error("duplicate_of", "No such item.")
                context = _detail_context(request, item, **{name: form})
                return render(request, "feedback/detail.html", context, status=400)
    try:
        services.feedback_transition(user=request.user, item=item, name=name, **data)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return redirect(item)
    except ValidationError as exc:
        if form is not None:
            _errors_into(form, exc)
            context = _detail_context(request, item, **{name: form})
            for message in exc.messages:
                messages.error(request, message)
            return render(request, "feedback/detail.html", context, status=400)
        for message in exc.messages:
            messages.error(request, message)
        return redirect(item)
    messages.success(request, f"Feedback #{item.pk} is now “{item.get_status_display()}”.")
    return redirect(item)


@login_required
@require_http_methods(["GET", "POST"])
def item_edit(request, pk: int):
    item = selectors.feedback_get_for_user(user=request.user, pk=pk, action="edit")
    form = forms.EditForm(request.POST or None, instance=FeedbackItem.objects.get(pk=item.pk))
    if request.method == "POST" and form.is_valid():
        try:
            services.feedback_update(
                user=request.user,
                item=item,
                **{f: form.cleaned_data[f] for f in forms.EditForm.Meta.fields},
            )
        except ValidationError as exc:
            _errors_into(form, exc)
        else:
            messages.success(request, "Your changes were saved.")
            return redirect(item)
    return render(
        request,
        "feedback/edit.html",
        {"item": item, "form": form},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def comment_create(request, pk: int):
    item = selectors.feedback_get_for_user(user=request.user, pk=pk, action="comment")
    form = forms.CommentForm(request.POST)
    if form.is_valid():
        try:
            services.comment_add(user=request.user, item=item, body=form.cleaned_data["body"])
        except ValidationError as exc:
            _errors_into(form, exc)
        else:
            if request.htmx:
                item = selectors.feedback_get_for_user(user=request.user, pk=pk)
                return render(
                    request,
                    "feedback/partials/comments.html",
                    {"item": item, "comment_form": forms.CommentForm()},
                )
            messages.success(request, "Comment added.")
            return redirect(item)
    context = _detail_context(request, item)
    context["comment_form"] = form
    return render_page(
        request,
        "feedback/detail.html",
        context,
        partial="feedback/partials/comments.html",
        status=400,
    )


@login_required
@require_POST
def vote(request, pk: int):
    item = selectors.feedback_get_for_user(user=request.user, pk=pk, action="vote")
    try:
        if request.POST.get("remove"):
            services.vote_remove(user=request.user, item=item)
        else:
            services.vote_add(user=request.user, item=item)
    except (ValidationError, PermissionDenied) as exc:
        message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
        if request.htmx:
            return render(
                request,
                "feedback/partials/vote.html",
                {"item": item, "can_vote": False, "vote_error": message},
                status=400,
            )
        messages.error(request, message)
        return redirect(item)
    item = selectors.feedback_get_for_user(user=request.user, pk=pk)
    if request.htmx:
        return render(request, "feedback/partials/vote.html", {"item": item, "can_vote": True})
    return redirect(item)


@login_required
@require_POST
def attachment_create(request, pk: int):
    item = selectors.feedback_get_for_user(user=request.user, pk=pk, action="attach")
    form = forms.AttachmentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.attachment_add(user=request.user, item=item, upload=form.cleaned_data["file"])
        except ValidationError as exc:
            _errors_into(form, exc)
        else:
            messages.success(request, "Attachment added.")
            return redirect(item)
    context = _detail_context(request, item)
    context["attachment_form"] = form
    return render(request, "feedback/detail.html", context, status=400)


def attachment_response(attachment) -> FileResponse:
    """Always a download, never rendered by the browser in the portal's origin."""
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.original_name,
        content_type=attachment.content_type,
    )
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def attachment_download(request, pk: int, attachment_pk: int):
    attachment = selectors.attachment_get_for_user(user=request.user, item_pk=pk, pk=attachment_pk)
    return attachment_response(attachment)


@login_required
def dashboard(request):
    if not permissions.is_platform_team(request.user):
        raise Http404
    try:
        weeks = min(max(int(request.GET.get("weeks", 12)), 4), 52)
    except ValueError:
        weeks = 12
    series = [
        (key, selectors.items_over_time(user=request.user, weeks=weeks, dimension=key))
        for key in selectors.DIMENSIONS
    ]
    context = {
        "stats": selectors.feedback_stats(user=request.user, weeks=weeks),
        "charts": [
            (key, chart, charts.stacked_bars(chart, chart_id=f"chart-{key}"))
            for key, chart in series
        ],
        "weeks": weeks,
        "site_versions": _site_versions(Organisation.objects.filter(is_test_site=True)),
    }
    return render(request, "feedback/dashboard.html", context)


class _Echo:
    def write(self, value):
        return value


CSV_HEADER = [
    "id",
    "created_at",
    "site",
    "author",
    "persona",
    "category",
    "component",
    "component_version",
    "severity",
    "status",
    "priority",
    "assignee",
    "labels",
    "title",
    "votes",
    "comments",
    "shared",
    "triaged_at",
    "closed_at",
    "fixed_in_version",
    "duplicate_of",
    "cds_pathway",
    "cds_rule",
    "page",
    "url",
]


def _cell(value) -> str:
    """Neutralise spreadsheet formulas (CSV injection)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def csv_rows(items, build_url):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for item in items:
        yield writer.writerow(
            [
                _cell(v)
                for v in (
                    item.pk,
                    item.created_at.isoformat(),
                    item.site.name,
                    item.author.get_username() if item.author else "",
                    item.persona,
                    item.category,
                    item.component,
                    item.component_version,
                    item.severity,
                    item.status,
                    item.priority,
                    item.assignee.get_username() if item.assignee else "",
                    ";".join(label.name for label in item.labels.all()),
                    item.title,
                    item.vote_count,
                    item.comment_count,
                    "yes" if item.shared else "no",
                    item.triaged_at.isoformat() if item.triaged_at else "",
                    item.closed_at.isoformat() if item.closed_at else "",
                    item.fixed_in_version,
                    item.duplicate_of_id or "",
                    item.cds_pathway_id,
                    item.cds_rule_id,
                    item.page_path,
                    build_url(reverse("feedback:detail", args=[item.pk])),
                )
            ]
        )


@login_required
def export_csv(request):
    items = selectors.feedback_list(
        user=request.user, filters=request.GET, request=request, action="export"
    ).order_by("pk")
    response = StreamingHttpResponse(
        csv_rows(items, request.build_absolute_uri), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="optima-feedback.csv"'
    return response


@login_required
def cds_disagreements(request, pathway_id: str):
    if not permissions.is_platform_team(request.user):
        raise Http404
    groups = selectors.cds_disagreements_by_rule(pathway_id, user=request.user)
    return render(
        request,
        "feedback/cds_disagreements.html",
        {"pathway_id": pathway_id, "groups": groups},
    )
