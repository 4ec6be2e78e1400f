package parent_test

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/privsep-go/privsep/parent"
)

func TestSmoke(t *testing.T) {
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: os.Stderr})
	o, err := parent.Start(context.Background(), parent.Config{Rules: []string{"/etc/hostname", "/etc/ssl/"}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	f, err := o.Open(context.Background(), "/etc/hostname", os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	t.Logf("%q", b)
	_, err = o.Open(context.Background(), "/etc/shadow", os.O_RDONLY, 0)
	t.Log(err)
	_, err = o.Open(context.Background(), "/etc/ssl/nonexist", os.O_RDONLY, 0)
	t.Log(err)
	_, err = o.Open(context.Background(), "/etc/../etc/shadow", os.O_RDONLY, 0)
	t.Log(err)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	t.Log(o.Close(), o.Err())
}

func TestSmokeBatch(t *testing.T) {
	o, err := parent.Start(context.Background(), parent.Config{Rules: []string{"/etc/hostname", "/etc/"}})
	if err != nil {
		t.Fatal(err)
	}
	var reqs []parent.Request
	for i := 0; i < 600; i++ {
		p := "/etc/hostname"
		if i%7 == 3 {
			p = "/etc/nonexistent"
		}
		if i%11 == 5 {
			p = "/etc/../x"
		}
		reqs = append(reqs, parent.Request{Path: p})
	}
	res, err := o.OpenBatch(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for _, r := range res {
		if r.File != nil {
			ok++
			r.File.Close()
		}
	}
	t.Log(ok, res[3].Err, res[5].Err)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
}
