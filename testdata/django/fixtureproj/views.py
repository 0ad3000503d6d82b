"""Views the siteplex tests call. The URLs are a contract with the tests:

/whoami/           JSON {site_id, site_name, domain, host, xff, proto, fwd_host, pid, port}
/upload/           POST: JSON {size, sha256} of the raw body (read in chunks)
/stream/?n=&delay= n lines "chunk <i>\n", one every delay seconds, streamed
/die/?code=        the process ends itself (os._exit(code); code "kill" = SIGKILL)
/env/?k=NAME       JSON {NAME: value or null} from the process environment
"""
import hashlib
import os
import signal
import time

from django.conf import settings
from django.contrib.sites.models import Site
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt


def whoami(request):
    # int(): in siteplex's single mode SITE_ID is a per-request object
    # (docs/django.md, "Single mode"), which JSON cannot encode as is.
    site_id = int(settings.SITE_ID)
    try:
        name = Site.objects.get(pk=site_id).name
        domain = Site.objects.get(pk=site_id).domain
    except Site.DoesNotExist:
        name, domain = None, None
    return JsonResponse(
        {
            "site_id": site_id,
            "site_name": name,
            "domain": domain,
            "host": request.META.get("HTTP_HOST", ""),
            "xff": request.META.get("HTTP_X_FORWARDED_FOR", ""),
            "proto": request.META.get("HTTP_X_FORWARDED_PROTO", ""),
            "fwd_host": request.META.get("HTTP_X_FORWARDED_HOST", ""),
            "pid": os.getpid(),
            "port": os.environ.get("PORT", ""),
        }
    )


@csrf_exempt
def upload(request):
    h = hashlib.sha256()
    size = 0
    while True:
        chunk = request.read(64 * 1024)
        if not chunk:
            break
        size += len(chunk)
        h.update(chunk)
    return JsonResponse({"size": size, "sha256": h.hexdigest()})


def stream(request):
    n = int(request.GET.get("n", "5"))
    delay = float(request.GET.get("delay", "0.2"))

    def lines():
        for i in range(n):
            if i:
                time.sleep(delay)
            yield ("chunk %d\n" % i).encode()

    return StreamingHttpResponse(lines(), content_type="text/plain")


def die(request):
    code = request.GET.get("code", "3")
    print("fixture: /die/ called, exiting with %s" % code, flush=True)
    if code == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(int(code))
    return HttpResponse("unreachable")


def env(request):
    k = request.GET.get("k", "")
    return JsonResponse({k: os.environ.get(k)})
