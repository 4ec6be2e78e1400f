package policy_test

import (
	"fmt"
	"os"

	"github.com/privsep-go/privsep/policy"
)

func ExampleParseRule() {
	for _, s := range []string{"/etc/hostname", "r:/srv/www/", "rwc:/srv/up/", "wa:/var/log/app.log", "/srv/../etc/", "etc/hostname"} {
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
	// rwc:/srv/up/ exact=false
	// rule "wa:/var/log/app.log": modes w and a contradict each other: a means append only
	// rule "/srv/../etc/": path is not clean (want "/etc/")
	// rule "etc/hostname": path must be absolute
}

func ExampleParseLine() {
	r, err := policy.ParseLine(`rwc:"/srv/my uploads/" owner=1000:1000 mode=0640`, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r)
	fmt.Println(r.Path, r.Tree, r.CreateMode == 0o640, r.UID, r.GID)
	// Output:
	// rwc:"/srv/my uploads/" mode=0640 owner=1000:1000
	// /srv/my uploads true true 1000 1000
}

func ExampleParseFile() {
	data := []byte(`# what the app may open
r:/etc/hostname
ra:/var/log/app.log        # append only
rwc:/var/lib/app/ mode=0600
`)
	rules, err := policy.ParseFile("app.policy", data, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rules {
		fmt.Printf("%s: %s\n", r.Source, r)
	}
	_, err = policy.ParseFile("bad.policy", []byte("r:/ok\n\nwa:/x\n"), nil)
	fmt.Println(err)
	// Output:
	// app.policy:2: r:/etc/hostname
	// app.policy:3: ra:/var/log/app.log
	// app.policy:4: rwc:/var/lib/app/ mode=0600
	// bad.policy:3: rule "wa:/x": modes w and a contradict each other: a means append only
}

func ExamplePolicy_Check() {
	p, err := policy.ParseLines([]string{"r:/etc/hostname", "r:/srv/www/", "ra:/var/log/app.log", "rwc:/srv/up/ mode=0640"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, q := range []struct {
		path  string
		flags int
	}{
		{"/srv/www/css/site.css", os.O_RDONLY},
		{"/srv/www", os.O_RDONLY},
		{"/srv/wwwx/a", os.O_RDONLY},
		{"/srv/www/../../etc/shadow", os.O_RDONLY},
		{"/var/log/app.log", os.O_WRONLY},
		{"/var/log/app.log", os.O_WRONLY | os.O_APPEND},
		{"/srv/up/new", os.O_WRONLY | os.O_CREATE | os.O_EXCL},
	} {
		d, err := p.Check(q.path, q.flags, 0o4755)
		if err != nil {
			fmt.Printf("%s: %v\n", q.path, err)
			continue
		}
		fmt.Printf("%s: open %q beneath %s", q.path, d.Rel, p.Dirs()[d.Dir])
		if d.Mode != 0 {
			fmt.Printf(" with mode %#o", d.Mode)
		}
		fmt.Println()
	}
	// Output:
	// /srv/www/css/site.css: open "css/site.css" beneath /srv/www
	// /srv/www: open "." beneath /srv/www
	// /srv/wwwx/a: denied by policy: no rule matches the path
	// /srv/www/../../etc/shadow: bad request: path is not clean ("..", ".", "//" or a trailing slash)
	// /var/log/app.log: denied by policy: the rule grants append only (a): writes need O_APPEND
	// /var/log/app.log: open "app.log" beneath /var/log
	// /srv/up/new: open "new" beneath /srv/up with mode 0640
}
