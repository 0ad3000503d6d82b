import json

from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path


def whoami(request):
    """The tenant django-pgschemas resolved for this request."""
    return HttpResponse(request.tenant.schema_name, content_type="text/plain")


def redirect(request):
    """An absolute redirect built from the request, as build_absolute_uri
    (password-reset links, OAuth redirect_uri) makes them."""
    return HttpResponseRedirect(request.build_absolute_uri("/landed/"))


def redirect_scheme_relative(request):
    """A scheme-relative redirect, as django-pgschemas' redirect_to_primary
    sends."""
    resp = HttpResponse(status=301)
    resp["Location"] = "//" + request.get_host() + "/landed/"
    return resp


def cookie(request):
    """A cookie for the Host's domain, as SESSION_COOKIE_DOMAIN or
    django-multisite's CookieDomainMiddleware set."""
    resp = HttpResponse(request.tenant.schema_name, content_type="text/plain")
    resp.set_cookie("tenantcookie", request.tenant.schema_name, domain=request.get_host().split(":")[0])
    return resp


def host(request):
    """What the request looked like to Django."""
    return HttpResponse(json.dumps({
        "host": request.get_host(),
        "forwarded_host": request.META.get("HTTP_X_FORWARDED_HOST", ""),
        "origin": request.META.get("HTTP_ORIGIN", ""),
        "referer": request.META.get("HTTP_REFERER", ""),
        "schema": request.tenant.schema_name,
    }), content_type="application/json")


urlpatterns = [
    path("", whoami),
    path("redirect/", redirect),
    path("redirect-sr/", redirect_scheme_relative),
    path("cookie/", cookie),
    path("host/", host),
]
