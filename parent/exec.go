package parent

import "os"

// ExecFile is a descriptor for [Exec] to place in the command.
type ExecFile struct {
	// File is the descriptor. Exec duplicates it; the caller keeps File,
	// which goes away with the process when Exec succeeds.
	File *os.File
	// FD is its number in the command: 3 and up for passed descriptors
	// (0, 1 and 2 replace standard input, output and error).
	FD int
	// Name is its LISTEN_FDNAMES name (sd_listen_fds_with_names(3)):
	// a ':' or control character is replaced by '_', and it is cut to
	// 255 bytes.
	Name string
}

// ExecConfig says what [Exec] runs and with which descriptors.
type ExecConfig struct {
	// Path is the command's absolute path (see exec.LookPath).
	Path string
	// Args is its argv, with Args[0] its name.
	Args []string
	// Env is its environment; nil means os.Environ(). Exec removes
	// LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, PRIVSEP_OPENER_FD and
	// PRIVSEP_OPENER_PID from it and sets those it passes itself.
	Env []string
	// Files are placed at their FD numbers, each number once. When they
	// are 3, 4, … with no gap, LISTEN_FDS, LISTEN_PID (this process's pid,
	// which the command keeps) and LISTEN_FDNAMES are set as
	// sd_listen_fds(3) expects.
	Files []ExecFile
	// KeepFDs are descriptors this process inherited without
	// close-on-exec that the command gets at the same numbers; every
	// other descriptor above 2 is closed at execve.
	KeepFDs []int
	// Opener, if not nil, is passed on: its socket goes at the number
	// after every Files and KeepFDs number, named by PRIVSEP_OPENER_FD and
	// PRIVSEP_OPENER_PID, for [Inherited] in the command. The goroutine
	// that started it must stay locked to its thread until Exec
	// (runtime.LockOSThread before Start): the opener's parent-death
	// signal follows that thread.
	Opener *Opener
	// Broker, if not nil, serves the command's opens: an opener started
	// with Config.Broker, whose socket the command does not get. Right
	// before execve a seccomp filter makes each open, openat, openat2 and
	// creat of the command (its threads and children too) wait for the
	// opener, which opens a path its policy allows exactly as for Open and
	// makes the descriptor the call's result; any other call goes ahead
	// with the command's own credentials. The filter needs no_new_privs,
	// so Sandbox must give a Credential. Linux on amd64 and arm64 only.
	// As for Opener, the goroutine that started it must stay locked to
	// its thread until Exec.
	Broker *Opener
	// Sandbox, if not nil, is applied with [Sandbox], and verified, before
	// the command runs. Its Landlock rules are given the running binary and
	// Path to read and execute, so that both execs are allowed.
	Sandbox *SandboxConfig
}
