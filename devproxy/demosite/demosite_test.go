package demosite

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler(Options{SiteID: "7", Site: "gh"}))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/whoami", nil)
	req.Host = "gh.localhost"
	req.Header.Set("X-Forwarded-For", "10.1.2.3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var w WhoAmI
	err = json.NewDecoder(resp.Body).Decode(&w)
	resp.Body.Close()
	if err != nil || w.SiteID != "7" || w.Site != "gh" || w.Host != "gh.localhost" || w.XForwardedFor != "10.1.2.3" {
		t.Errorf("whoami = %+v, %v", w, err)
	}

	resp, err = http.Post(srv.URL+"/upload", "application/octet-stream", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	var up Upload
	err = json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	if err != nil || up.Bytes != 5 || up.SHA256 != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" {
		t.Errorf("upload = %+v, %v", up, err)
	}

	resp, err = http.Get(srv.URL + "/stream?chunks=3&interval=1ms&size=4")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "aaa\nbbb\nccc\n" {
		t.Errorf("stream = %q", b)
	}

	resp, err = http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "<h1>gh</h1>") {
		t.Errorf("page = %s", b)
	}

	ws, err := websocket.Dial(strings.Replace(srv.URL, "http", "ws", 1)+"/ws", "", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := websocket.Message.Send(ws, "ping"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := websocket.Message.Receive(ws, &got); err != nil || got != "ping" {
		t.Errorf("ws echo = %q, %v", got, err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, "127.0.0.1:0", Options{Site: "x"}, func(a string) { addrc <- a }) }()
	addr := <-addrc
	resp, err := http.Get("http://" + addr + "/plain")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
