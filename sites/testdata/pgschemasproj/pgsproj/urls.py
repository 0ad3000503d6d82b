from django.http import HttpResponse
from django.urls import path


def whoami(request):
    """The tenant django-pgschemas resolved for this request."""
    return HttpResponse(request.tenant.schema_name, content_type="text/plain")


urlpatterns = [path("", whoami)]
