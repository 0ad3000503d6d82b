from django.conf import settings
from django.contrib import admin
from django.contrib.flatpages.sitemaps import FlatPageSitemap
from django.contrib.sitemaps.views import sitemap
from django.contrib.sites.models import Site
from django.http import JsonResponse
from django.urls import path
import os


def whoami(request):
    site = Site.objects.filter(pk=settings.SITE_ID).first()
    return JsonResponse(
        {
            "site_id": settings.SITE_ID,
            "site_name": site.name if site else None,
            "current": request.site.pk if getattr(request, "site", None) else None,
            "pid": os.getpid(),
        }
    )


urlpatterns = [
    path("whoami/", whoami),
    path("admin/", admin.site.urls),
    path("sitemap.xml", sitemap, {"sitemaps": {"flatpages": FlatPageSitemap}}),
]
