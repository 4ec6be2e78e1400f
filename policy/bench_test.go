//go:build linux

package policy_test

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
)

func benchCheck(b *testing.B, p *policy.Policy, paths []string, wantOK bool) {
	b.Helper()
	for _, q := range paths {
		if _, err := p.Check(q, 0, 0); (err == nil) != wantOK {
			b.Fatalf("Check(%q): got error %v, want allowed=%v", q, err, wantOK)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sinkDecision, sinkErr = p.Check(paths[i%len(paths)], 0, 0)
	}
}

func BenchmarkCheck1000Rules(b *testing.B) {
	p := bigPolicy(b, 1000)
	var deep, exact, miss []string
	for i := 1; i < 1000; i += 2 {
		deep = append(deep, fmt.Sprintf("/data/d%04d/a/b/c/d/e/f/g/h/file%d.txt", i, i))
		exact = append(exact, fmt.Sprintf("/etc/app%04d/conf%04d.ini", i-1, i-1))
		miss = append(miss, fmt.Sprintf("/data/d%04d/a/x/c/d/e/f/g/h/file%d.txt", i, i))
	}
	var mixed []string
	for i := range deep {
		mixed = append(mixed, deep[i], exact[i], miss[i])
	}
	b.Run("deep-tree", func(b *testing.B) { benchCheck(b, p, deep, true) })
	b.Run("exact", func(b *testing.B) { benchCheck(b, p, exact, true) })
	b.Run("miss", func(b *testing.B) { benchCheck(b, p, miss, false) })
	b.Run("mixed", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sinkDecision, sinkErr = p.Check(mixed[i%len(mixed)], 0, 0)
		}
	})
}

func BenchmarkCheck1Rule(b *testing.B) {
	p := mustParse(b, "/srv/www/")
	b.Run("hit", func(b *testing.B) { benchCheck(b, p, []string{"/srv/www/static/css/site.css"}, true) })
	b.Run("miss", func(b *testing.B) { benchCheck(b, p, []string{"/etc/shadow"}, false) })
}

func BenchmarkParse1000Rules(b *testing.B) {
	rules := make([]string, 0, 1000)
	for i := range 1000 {
		if i%2 == 0 {
			rules = append(rules, fmt.Sprintf("/etc/app%04d/conf%04d.ini", i, i))
		} else {
			rules = append(rules, fmt.Sprintf("r:/data/d%04d/a/b/", i))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.Parse(rules); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckCreate1000Rules(b *testing.B) {
	p := bigModesPolicy(b, 1000)
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL
	if _, err := p.Check("/data/d0501/a/b/new", flags, 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkDecision, sinkErr = p.Check("/data/d0501/a/b/new", flags, 0o644)
	}
}

func BenchmarkParseFile1000Lines(b *testing.B) {
	var data []byte
	for i := range 1000 {
		data = fmt.Appendf(data, "# rule %d\nrwc:\"/data/d %04d/\" mode=0640 owner=%d:%d  # comment\n", i, i, 1000+i, 2000+i)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.ParseFile("bench.policy", data, nil); err != nil {
			b.Fatal(err)
		}
	}
}
