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
