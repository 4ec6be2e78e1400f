package policy_test

import (
	"fmt"
	"os"

	"github.com/privsep-go/privsep/policy"
)

func ExampleParseRule() {
	for _, s := range []string{"/etc/hostname", "r:/srv/www/", "/srv/../etc/", "etc/hostname"} {
		r, err := policy.ParseRule(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s exact=%v\n", r, !r.Tree)
	}
	// Output:
	// r:/etc/hostname exact=true
	// r:/srv/www/ exact=false
	// rule "/srv/../etc/": path is not clean (want "/etc/")
	// rule "etc/hostname": path must be absolute
}

func ExamplePolicy_Check() {
	p, err := policy.Parse([]string{"/etc/hostname", "/srv/www/"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, path := range []string{"/srv/www/css/site.css", "/srv/www", "/srv/wwwx/a", "/srv/www/../../etc/shadow"} {
		d, err := p.Check(path, os.O_RDONLY)
		if err != nil {
			fmt.Printf("%s: %v\n", path, err)
			continue
		}
		fmt.Printf("%s: open %q beneath %s\n", path, d.Rel, p.Dirs()[d.Dir])
	}
	// Output:
	// /srv/www/css/site.css: open "css/site.css" beneath /srv/www
	// /srv/www: open "." beneath /srv/www
	// /srv/wwwx/a: denied by policy: no rule matches the path
	// /srv/www/../../etc/shadow: bad request: path is not clean ("..", ".", "//" or a trailing slash)
}
