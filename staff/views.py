"""The staff pages: thin views that parse the query, call one selector or service, and render a template."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from recommendations.models import ModelKind, ModelVersion
from recommendations.services import ModelActivationError, model_version_activate, model_version_rollback
from staff import health, presenters, selectors
from staff.access import staff_required
from staff.preview import PreviewRequest, homepage_preview, preview_contexts, preview_query_parse
from users.models import Profile

MODEL_PERMISSION = "recommendations.change_modelversion"
PROFILE_DETAILS_PERMISSION = "users.view_profile_details"  # viewing history and account details (users 0003)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and the smoke test: the process answers. Public, says nothing more."""
    return JsonResponse({"status": "ok"})


def _page(request: HttpRequest, template: str, title: str, **context: Any) -> HttpResponse:
    """Render inside the admin's frame (header, user links, messages)."""
    frame = {
        "site_header": admin.site.site_header,
        "site_title": admin.site.site_title,
        "site_url": "/",
        "has_permission": True,
        "is_nav_sidebar_enabled": False,
        "title": title,
    }
    return render(request, template, {**frame, **context})


@never_cache
@staff_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return _page(request, "staff/index.html", "Staff pages")


# --- homepage preview -------------------------------------------------------------------------------
def _int(value: str | None, *, low: int, high: int) -> int | None:
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None


@never_cache
@staff_required
@require_GET
def preview(request: HttpRequest) -> HttpResponse:
    choices = preview_contexts()
    asked = preview_query_parse(request.GET, country_codes=[code for code, _ in choices["countries"]])
    details = request.user.has_perm(PROFILE_DETAILS_PERMISSION)
    context: dict[str, Any] = {
        "query": asked.query,
        "profile_id": asked.profile_id,
        "device": asked.device,
        "hour": asked.hour,
        "country": asked.country or "",
        "compare": asked.compare,
        "problems": asked.problems,
        "show_details": details,
        **choices,
    }
    if asked.query and asked.profile_id is None:
        context["search"] = selectors.profiles_search(query=asked.query, after=asked.after, with_account=details)
    status = 200
    if asked.profile_id is not None:
        try:
            context["preview"] = homepage_preview(
                request=PreviewRequest(
                    profile_id=asked.profile_id,
                    device_type=asked.device,
                    time_of_day=asked.hour,
                    country=asked.country,
                    compare=asked.compare,
                    show_details=details,
                )
            )
        except Profile.DoesNotExist:
            context["not_found"] = asked.profile_id
            status = 404
    response = _page(request, "staff/preview.html", "Homepage preview", **context)
    response.status_code = status
    return response


# --- models -----------------------------------------------------------------------------------------
@never_cache
@staff_required
@require_GET
def models(request: HttpRequest) -> HttpResponse:
    sections = presenters.model_sections(selectors.model_versions_by_kind())
    return _page(
        request, "staff/models.html", "Models", sections=sections, can_change=request.user.has_perm(MODEL_PERMISSION)
    )


@staff_required
@require_POST
def model_activate(request: HttpRequest, version_id: int) -> HttpResponse:
    if not request.user.has_perm(MODEL_PERMISSION):
        return HttpResponseForbidden("You may not change model versions.")
    if request.POST.get("confirmed") != "yes":  # the button leads here first: what would change, then confirm
        chosen = ModelVersion.objects.filter(pk=version_id).first()
        if chosen is None:
            messages.error(request, f"Model version {version_id} does not exist.")
            return redirect("staff:models")
        return _page(
            request,
            "staff/model_confirm.html",
            "Activate a model version",
            question=f"Activate {chosen.kind} {chosen.version}?",
            verb="activate",
            action_url=request.path,
            changes=[selectors.model_change_for_activation(version=chosen)],
        )
    try:
        version = model_version_activate(version_id=version_id, by_user=request.user)
    except ModelVersion.DoesNotExist:
        messages.error(request, f"Model version {version_id} does not exist.")
    except ModelActivationError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{version} is active; web processes switch to it within seconds.")
    return redirect("staff:models")


@staff_required
@require_POST
def model_rollback(request: HttpRequest, kind: str) -> HttpResponse:
    if not request.user.has_perm(MODEL_PERMISSION):
        return HttpResponseForbidden("You may not change model versions.")
    if kind not in ModelKind.values:
        messages.error(request, f"Unknown model kind {kind!r}.")
        return redirect("staff:models")
    if request.POST.get("confirmed") != "yes":
        return _page(
            request,
            "staff/model_confirm.html",
            "Roll back a model",
            question=f"Roll back {kind} to the previously active version?",
            verb="roll back",
            action_url=request.path,
            changes=[selectors.model_change_for_rollback(kind=kind)],
        )
    try:
        version = model_version_rollback(kind=kind, by_user=request.user)
    except ModelActivationError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Rolled back: {version} is active again.")
    return redirect("staff:models")


# --- jobs -------------------------------------------------------------------------------------------
@never_cache
@staff_required
@require_GET
def jobs(request: HttpRequest) -> HttpResponse:
    before = _int(request.GET.get("before"), low=1, high=2**62)
    overview = selectors.jobs_overview(before=before)
    return _page(request, "staff/jobs.html", "Jobs", overview=overview, before=before)


# --- experiments ------------------------------------------------------------------------------------
@never_cache
@staff_required
@require_GET
def experiments(request: HttpRequest) -> HttpResponse:
    page = selectors.experiments_page(page=_int(request.GET.get("page"), low=1, high=10**6) or 1)
    return _page(
        request,
        "staff/experiments.html",
        "Experiments",
        page=page,
        experiments=[presenters.experiment_view(e) for e in page.object_list],
    )


# --- health -----------------------------------------------------------------------------------------
@never_cache
@staff_required
@require_GET
def health_page(request: HttpRequest) -> HttpResponse:
    return _page(request, "staff/health.html", "Health", report=health.health_report())


@never_cache
@staff_required
@require_GET
def health_json(request: HttpRequest) -> JsonResponse:
    report = health.health_report()
    return JsonResponse(report, status=503 if report["status"] == health.DOWN else 200)
