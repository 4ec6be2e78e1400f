// Package trampoline is the second half of parent.Exec (and so of privsep
// exec): a fresh start of the same binary that puts descriptors at the
// numbers a command expects and execs the command.
//
// The descriptors cannot be put in place by the process that opened them:
// their numbers may be the Go runtime's own (its epoll, its eventfd),
// which other threads keep using until execve. So that process moves them
// above every target ([Args]), without close-on-exec, and execs itself
// with the argv Args returns; [Main], entered from child.Init before
// anything in the fresh process opens a descriptor the moves could
// clobber, dup3s each into place, marks every other descriptor above 2
// close-on-exec, and execs the command. The pid stays the same throughout.
//
// With a broker argument (parent.ExecConfig.Broker, privsep exec
// --broker) it does one thing more right before execve: it starts the
// watcher (double-forked, so not the command's child), installs the
// broker's seccomp filter, hands the listener to the watcher and to the
// opener over the opener's socket (a broker message) and waits for the
// opener's ack. The watcher, this same binary again, kills the command
// when the opener dies.
//
// # Guarantees
//
// The command gets descriptors 0, 1 and 2, the ones placed, the kept
// ones ([Args]'s keep), and nothing else. Every failure ends the process
// with the status env(1) uses: 125 when the trampoline itself fails, 126
// when the command cannot be run, 127 when it is not found.
//
// # Not for
//
// Anything else: it applies no sandbox (the first half has, and Landlock,
// no_new_privs and the ids survive execve) and builds no environment. It
// is internal: programs use parent.Exec.
package trampoline
