package preload

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
)

// router is the test's stand-in for the supervisor: requests go to the
// current address; retiring an address waits for its requests in flight.
type router struct {
	mu       sync.Mutex // guards cur, inflight
	cur      string
	inflight map[string]int
	idle     *sync.Cond
}

func newRouter(addr string) *router {
	r := &router{cur: addr, inflight: map[string]int{}}
	r.idle = sync.NewCond(&r.mu)
	return r
}

func (r *router) acquire() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight[r.cur]++
	return r.cur
}

func (r *router) release(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight[addr]--
	r.idle.Broadcast()
}

// switchTo routes new requests to addr and returns once none is in flight
// to the old one.
func (r *router) switchTo(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur
	r.cur = addr
	for r.inflight[old] > 0 {
		r.idle.Wait()
	}
}

// A reload: a new parent boots with the new code while the old child
// serves, the site is re-forked from it, requests move once the new child
// accepts, and the old child and parent stop. No request fails.
func TestReloadPrimitive(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	writeFile(t, dir, "fixtureproj/version.py", "VERSION = 'old'\n")
	appendFile(t, dir, "fixtureproj/urls.py", `
from django.http import HttpResponse
from . import version

urlpatterns.append(path("version/", lambda request: HttpResponse(version.VERSION)))
`)
	oldParent, _ := startParent(t, dir)
	oldChild := fork(t, oldParent, 2)
	r := newRouter(oldChild.Addr())

	var (
		mu       sync.Mutex // guards failures, seen, requests
		failures []string
		seen     = map[int][]string{} // per request loop: the versions in the order served
		requests int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for loop := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				addr := r.acquire()
				code, b, err := get(addr, "", "/version/")
				r.release(addr)
				mu.Lock()
				requests++
				if err != nil || code != 200 {
					failures = append(failures, addr+": "+string(b)+" "+errString(err))
				} else if v := seen[loop]; len(v) == 0 || v[len(v)-1] != string(b) {
					seen[loop] = append(v, string(b))
				}
				mu.Unlock()
			}
		}()
	}

	time.Sleep(200 * time.Millisecond)
	writeFile(t, dir, "fixtureproj/version.py", "VERSION = 'new'\n")
	newParent, _ := startParent(t, dir)
	newChild := fork(t, newParent, 2) // accepting
	r.switchTo(newChild.Addr())
	if err := oldChild.Stop(t.Context(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := oldParent.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during the reload; first: %s", len(failures), requests, failures[0])
	}
	for loop, v := range seen {
		if strings.Join(v, ",") != "old,new" {
			t.Errorf("request loop %d was served versions %v, want old then new", loop, v)
		}
	}
	if left := waitGone([]int{oldParent.PID(), oldChild.PID()}, 0); len(left) > 0 {
		t.Errorf("old processes alive after the reload: %v", left)
	}
	t.Logf("%d requests, 0 failed, across the reload", requests)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
