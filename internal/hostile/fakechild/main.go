//go:build linux

// Command fakechild is an opener that misbehaves, for tests of package
// parent (parent/fault_test.go). The parent starts it with the opener's fixed
// argv and environment, so the misbehaviour is chosen by the name of the
// executable: hostile.BuildFakeChild builds this program once and
// FakeChildren.Path hard-links it as fake-SCENARIO. It answers the hello
// with a correct ready (its own pid) unless the scenario is about the ready,
// then does what SCENARIO says:
//
//	wrongid      answers open N with opened id N+1000 (and a descriptor)
//	morefds      opened whose header says 1 descriptor, with 2 attached
//	fewerfds     opened whose header says 2 descriptors, with 1 attached
//	nofd         opened with no descriptor (header nfd 0)
//	errorfd      error reply with a descriptor attached
//	batchextra   batch-reply with one descriptor more than OK statuses
//	batchshort   batch-reply with one item fewer than the batch
//	typemix      answers an open with a batch-reply
//	garbage      answers with 100 bytes that are not a message
//	unsolicited  sends opened id 77 (with a descriptor) right after ready
//	duplicate    answers every open twice
//	lastwords    answers an open with the error id 0 that precedes exit 3, and stays
//	ctrunc       opened whose header says 1 descriptor, with 253 attached
//	zerolen      answers with a zero-length message
//	huge         answers with a 100000-byte message (more than the parent's buffer)
//	badversion   answers with a reply whose header says version 2
//	dirlistopen  answers an open with a (well-formed) dir-list
//	dirlistfd    answers with a dir-list that carries a descriptor
//	dirlistbad   answers with a dir-list that says more but carries no entry
//	openeddir    answers a readdir with opened and a descriptor
//	ignoreeof    serves correctly, but does not exit at end of stream
//	logs         writes garbage log lines to stderr, serves, exits 1 at end of stream
//	stderrhold   leaves a grandchild holding stderr, exits 1 on the first request
//	sockhold     the same, the grandchild holding its end of the socket too
//	exit-0-idle  exits 0 right after ready
//	exit-0, exit-1, sigkill, sigsegv
//	             die so on the first request, without answering it
//	wrongpid     ready with a pid that is not its own
//	badready     ready with version 2
//	good         a correct opener
//
// Every descriptor it sends is /dev/null; the good scenarios answer a batch
// with every item OK.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

const sock = 3

func main() {
	if len(os.Args) != 3 || os.Args[1] != protocol.OpenerArg || os.Args[2] != "3" {
		fmt.Fprintln(os.Stderr, "fakechild: not started as an opener")
		os.Exit(protocol.ExitUsage)
	}
	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	scenario := strings.TrimPrefix(filepath.Base(exe), "fake-")
	buf := make([]byte, protocol.MaxMessage)
	oob := make([]byte, protocol.OOBSize)
	recv := func() protocol.Msg {
		m, err := protocol.Recv(sock, buf, oob, nil, 0)
		if err == io.EOF {
			switch scenario {
			case "logs":
				os.Exit(1)
			case "ignoreeof":
				time.Sleep(time.Hour)
			}
			os.Exit(0)
		}
		if err != nil {
			fatal(err)
		}
		protocol.CloseFDs(m.FDs)
		return m
	}
	m := recv()
	if m.Type != protocol.TypeHello {
		fatal(fmt.Errorf("first message is %s", m.Type))
	}
	ready := protocol.Ready{PID: uint32(os.Getpid()), Version: protocol.Version}
	switch scenario {
	case "wrongpid":
		ready.PID++
	case "badready":
		ready.Version = 2
	}
	send(protocol.AppendReady(nil, ready), nil)

	null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fatal(err)
	}
	fds := func(n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = null
		}
		return s
	}
	switch scenario {
	case "exit-0-idle":
		os.Exit(0)
	case "unsolicited":
		send(protocol.AppendOpened(nil, 77), fds(1))
	case "logs":
		go writeGarbageLogs()
	case "stderrhold", "sockhold":
		// A grandchild in our process group (the parent made us a group
		// leader) that keeps our stderr, and with sockhold our end of the
		// socket, open after we die.
		if scenario == "stderrhold" {
			unix.CloseOnExec(sock)
		}
		cmd := exec.Command("/bin/sleep", "10")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			fatal(err)
		}
	}
	for {
		m := recv()
		batch := 0
		if m.Type == protocol.TypeOpenBatch {
			items, err := protocol.DecodeOpenBatch(m.Payload, nil)
			if err != nil {
				fatal(err)
			}
			batch = len(items)
		}
		switch scenario {
		case "exit-0":
			os.Exit(0)
		case "exit-1", "stderrhold", "sockhold":
			os.Exit(1)
		case "sigkill":
			unix.Kill(os.Getpid(), unix.SIGKILL)
			time.Sleep(time.Hour)
		case "sigsegv":
			// The Go runtime ignores a SIGSEGV sent with kill(2); a shell
			// does not. execve keeps the pid, so it is still us that dies.
			err := syscall.Exec("/bin/sh", []string{"sh", "-c", "kill -SEGV $$; sleep 10"}, nil)
			fatal(err)
		case "wrongid":
			send(protocol.AppendOpened(nil, m.ID+1000), fds(1))
		case "morefds":
			send(protocol.AppendOpened(nil, m.ID), fds(2))
		case "fewerfds":
			msg := protocol.AppendOpened(nil, m.ID)
			binary.LittleEndian.PutUint16(msg[12:], 2)
			send(msg, fds(1))
		case "nofd":
			msg := protocol.AppendOpened(nil, m.ID)
			binary.LittleEndian.PutUint16(msg[12:], 0)
			send(msg, nil)
		case "errorfd":
			msg := protocol.AppendError(nil, m.ID, protocol.ErrorReply{Errno: uint32(unix.ENOENT), Reason: protocol.ReasonSystem})
			binary.LittleEndian.PutUint16(msg[12:], 1)
			send(msg, fds(1))
		case "batchextra", "batchshort":
			n := max(batch, 1)
			if scenario == "batchshort" && n > 1 {
				n--
			}
			msg, err := protocol.AppendBatchReply(nil, m.ID, make([]protocol.Status, n))
			if err != nil {
				fatal(err)
			}
			extra := 0
			if scenario == "batchextra" {
				extra = 1
				binary.LittleEndian.PutUint16(msg[12:], uint16(n+1))
			}
			send(msg, fds(n+extra))
		case "typemix":
			msg, err := protocol.AppendBatchReply(nil, m.ID, make([]protocol.Status, 1))
			if err != nil {
				fatal(err)
			}
			send(msg, fds(1))
		case "garbage":
			send(bytes.Repeat([]byte{0xa5}, 100), nil)
		case "duplicate":
			send(protocol.AppendOpened(nil, m.ID), fds(1))
			send(protocol.AppendOpened(nil, m.ID), fds(1))
		case "lastwords":
			send(protocol.AppendError(nil, 0, protocol.ErrorReply{Errno: uint32(unix.EPROTO), Reason: protocol.ReasonProtocol}), nil)
		case "ctrunc":
			send(protocol.AppendOpened(nil, m.ID), fds(protocol.MaxFDs))
		case "zerolen":
			if err := unix.Sendmsg(sock, nil, nil, nil, unix.MSG_NOSIGNAL); err != nil {
				fatal(err)
			}
		case "huge":
			msg := make([]byte, 100000)
			copy(msg, protocol.AppendOpened(nil, m.ID))
			if err := unix.Sendmsg(sock, msg, nil, nil, unix.MSG_NOSIGNAL); err != nil {
				fatal(err)
			}
		case "badversion":
			msg := protocol.AppendOpened(nil, m.ID)
			msg[2] = 2
			send(msg, fds(1))
		case "dirlistopen", "dirlistfd":
			msg, err := protocol.AppendDirList(nil, m.ID, 0, false, []protocol.DirEntry{{Type: protocol.DirReg, Name: []byte("f")}})
			if err != nil {
				fatal(err)
			}
			if scenario == "dirlistfd" {
				binary.LittleEndian.PutUint16(msg[12:], 1)
				send(msg, fds(1))
				continue
			}
			send(msg, nil)
		case "dirlistbad":
			msg, err := protocol.AppendDirList(nil, m.ID, 0, false, nil)
			if err != nil {
				fatal(err)
			}
			binary.LittleEndian.PutUint64(msg[protocol.HeaderSize:], 7)
			binary.LittleEndian.PutUint16(msg[protocol.HeaderSize+10:], protocol.DirListMore)
			send(msg, nil)
		case "openeddir":
			send(protocol.AppendOpened(nil, m.ID), fds(1))
		default: // good, logs, unsolicited, ignoreeof
			if batch > 0 {
				msg, err := protocol.AppendBatchReply(nil, m.ID, make([]protocol.Status, batch))
				if err != nil {
					fatal(err)
				}
				send(msg, fds(batch))
				continue
			}
			send(protocol.AppendOpened(nil, m.ID), fds(1))
		}
	}
}

// GarbageLastWords is the last line writeGarbageLogs writes.
const GarbageLastWords = "fake opener last words"

// writeGarbageLogs writes log lines no hclog opener would: not JSON, JSON
// with the wrong types, a 10 MB line, bytes that are not UTF-8, and a last
// warning the parent should keep.
func writeGarbageLogs() {
	lines := []string{
		"this is not JSON at all",
		`{"@level":5,"@message":{},"@timestamp":[]}`,
		`{"@level":"error","@message":null,"k":{"nested":[1,2,3]}}`,
		`{"@level":"bogus","@message":12.5,"@module":7}`,
		`[1,2,3]`,
		`null`,
		`"a JSON string"`,
		`{"@level":"warn","@message":"` + strings.Repeat("x", 10<<20) + `"}`,
		"\xff\xfe not UTF-8 \xc3\x28",
		strings.Repeat("[", 100000),
		`{"@level":"warn","@message":"` + "\xff\xfe" + `","bad":"` + "\xc3\x28" + `"}`,
		`{"@level":"error","@message":"` + GarbageLastWords + `"}`,
	}
	for _, l := range lines {
		io.WriteString(os.Stderr, l+"\n")
	}
}

func send(msg []byte, fds []int) {
	if err := protocol.Send(sock, msg, fds, 0); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, `{"@level":"error","@message":"fakechild: %s"}`+"\n", strings.ReplaceAll(err.Error(), `"`, `'`))
	os.Exit(protocol.ExitInternal)
}
