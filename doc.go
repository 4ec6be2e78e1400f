// Command privsep opens files through a privilege-separated opener process.
//
// The opener is this same binary, re-executed as a child; it checks every
// request against a policy fixed at start and hands back open descriptors.
// Run "privsep help" for the commands.
//
// main only dispatches: child.Init, the one re-exec hook, turns a
// re-executed process into the opener or into the trampoline of privsep
// exec; everything else is the command line, in internal/cli. The tests
// beside this file run the built binary end to end.
package main
