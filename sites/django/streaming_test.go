package django

import (
	"path/filepath"
	"testing"
)

// TestSingleModeStreamingHoldsSite: in single mode a streaming answer's
// body sees the site its request chose, however late it is sent, and no
// other request on the same thread sees that site (one without the
// secret gets the default). Django's test client runs every request on
// this one thread, as a threaded WSGI server reuses its threads.
func TestSingleModeStreamingHoldsSite(t *testing.T) {
	dir := fixture(t, "djpackage", true)
	ov, err := Write(filepath.Join(dir, ".siteplex", "overlay"), mustIntrospect(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	env, err := ov.ProcessEnv(ProcessOverlay{Mode: Single, SiteID: 2, Secret: "s3cret", Key: "single",
		AllowedHosts: []string{".localhost", "alpha.example.com", "gamma.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	script := `import django, json
django.setup()
from django.test import Client
engine = Client(HTTP_X_SITEPLEX_SECRET="s3cret")
plain = Client()
def site(r):
    body = b"".join(r.streaming_content) if r.streaming else r.content
    return json.loads(body)["site_id"]
# The body is sent after the middleware returned.
print("stream", site(engine.get("/whoami/stream/", HTTP_HOST="gamma.localhost", HTTP_X_SITEPLEX_SITE="3")))
# Nothing stays for the next request on this thread.
print("after", site(plain.get("/whoami/", HTTP_HOST="alpha.localhost")))
print("after-stream", site(plain.get("/whoami/stream/", HTTP_HOST="alpha.localhost")))
# A body sent while another request runs on the thread keeps its own site,
# and that request keeps its own.
slow = engine.get("/whoami/stream/", HTTP_HOST="gamma.example.org", HTTP_X_SITEPLEX_SITE="3")
print("between", site(engine.get("/whoami/", HTTP_HOST="alpha.example.com", HTTP_X_SITEPLEX_SITE="1")))
print("between-plain", site(plain.get("/whoami/", HTTP_HOST="alpha.localhost")))
print("late", site(slow))
print("last", site(plain.get("/whoami/", HTTP_HOST="alpha.localhost")))
`
	got := runPython(t, dir, env, script)
	want := "stream 3\nafter 2\nafter-stream 2\nbetween 1\nbetween-plain 2\nlate 3\nlast 2"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
