package main

import (
	"os"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/internal/cli"
)

func main() {
	// An opener or a privsep exec trampoline never returns from Init.
	child.Init()
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
