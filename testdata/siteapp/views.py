"""GET /whoami/ → JSON {"site_id": int(settings.SITE_ID) or null,
"current_site": get_current_site(request).id or null, "host": Host}."""
from django.conf import settings
from django.contrib.sites.shortcuts import get_current_site
from django.http import JsonResponse


def whoami(request):
    try:
        site_id = int(settings.SITE_ID)
    except (AttributeError, TypeError, ValueError):
        site_id = None
    try:
        current = get_current_site(request).pk
    except Exception:
        current = None
    return JsonResponse({"site_id": site_id, "current_site": current, "host": request.META.get("HTTP_HOST", "")})


def whoami_stream(request):
    """What /whoami/ answers, computed while a StreamingHttpResponse's body
    is sent (after every middleware has returned)."""
    from django.http import StreamingHttpResponse

    def body():
        yield b""
        yield whoami(request).content

    return StreamingHttpResponse(body(), content_type="application/json")
