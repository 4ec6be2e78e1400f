//go:build linux

// Command fakechild is an opener that misbehaves, for tests of package
// parent (parent/fault_fake_test.go). The parent starts it with the opener's fixed
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

// fake is the opener's state: the scenario it plays, its receive buffers and
// the /dev/null descriptor every reply carries.
type fake struct {
	scenario string
	buf, oob []byte
	null     int
}

func main() {
	if len(os.Args) != 3 || os.Args[1] != protocol.OpenerArg || os.Args[2] != "3" {
		fmt.Fprintln(os.Stderr, "fakechild: not started as an opener")
		os.Exit(protocol.ExitUsage)
	}
	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	f := &fake{
		scenario: strings.TrimPrefix(filepath.Base(exe), "fake-"),
		buf:      make([]byte, protocol.MaxMessage),
		oob:      make([]byte, protocol.OOBSize),
	}
	f.handshake()
	f.null, err = unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fatal(err)
	}
	f.afterReady()
	for {
		m := f.recv()
		batch := 0
		if m.Type == protocol.TypeOpenBatch {
			items, err := protocol.DecodeOpenBatch(m.Payload, nil)
			if err != nil {
				fatal(err)
			}
			batch = len(items)
		}
		f.answer(m, batch)
	}
}

// recv returns the next request, its descriptors closed. At end of stream
// the opener exits as a real one does (0), except for the scenarios about
// that exit.
func (f *fake) recv() protocol.Msg {
	m, err := protocol.Recv(sock, f.buf, f.oob, nil, 0)
	if err == io.EOF {
		switch f.scenario {
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

// fds returns n copies of the /dev/null descriptor, to attach to a reply.
func (f *fake) fds(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = f.null
	}
	return s
}

// handshake reads the hello and answers with a ready, a wrong one for the
// scenarios about the ready.
func (f *fake) handshake() {
	m := f.recv()
	if m.Type != protocol.TypeHello {
		fatal(fmt.Errorf("first message is %s", m.Type))
	}
	ready := protocol.Ready{PID: uint32(os.Getpid()), Version: protocol.Version}
	switch f.scenario {
	case "wrongpid":
		ready.PID++
	case "badready":
		ready.Version = 2
	}
	send(protocol.AppendReady(nil, ready), nil)
}

// afterReady does what a scenario does before any request arrives.
func (f *fake) afterReady() {
	switch f.scenario {
	case "exit-0-idle":
		os.Exit(0)
	case "unsolicited":
		send(protocol.AppendOpened(nil, 77), f.fds(1))
	case "logs":
		go writeGarbageLogs()
	case "stderrhold", "sockhold":
		// A grandchild in our process group (the parent made us a group
		// leader) that keeps our stderr, and with sockhold our end of the
		// socket, open after we die.
		if f.scenario == "stderrhold" {
			unix.CloseOnExec(sock)
		}
		cmd := exec.Command("/bin/sleep", "10")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			fatal(err)
		}
	}
}

// answer answers request m (of batch items, 0 for a single open) as the
// scenario says.
func (f *fake) answer(m protocol.Msg, batch int) {
	switch f.scenario {
	case "exit-0", "exit-1", "stderrhold", "sockhold", "sigkill", "sigsegv":
		f.die()
	case "wrongid", "morefds", "fewerfds", "nofd", "errorfd", "ctrunc", "badversion", "openeddir":
		f.badOpened(m)
	case "batchextra", "batchshort", "typemix":
		f.badBatch(m, batch)
	case "garbage", "zerolen", "huge":
		f.badFrame(m)
	case "dirlistopen", "dirlistfd", "dirlistbad":
		f.badDirList(m)
	case "duplicate":
		send(protocol.AppendOpened(nil, m.ID), f.fds(1))
		send(protocol.AppendOpened(nil, m.ID), f.fds(1))
	case "lastwords":
		send(protocol.AppendError(nil, 0, protocol.ErrorReply{Errno: uint32(unix.EPROTO), Reason: protocol.ReasonProtocol}), nil)
	default: // good, logs, unsolicited, ignoreeof
		f.good(m, batch)
	}
}

// good answers as a correct opener would: opened with a descriptor, or a
// batch-reply with every item OK.
func (f *fake) good(m protocol.Msg, batch int) {
	if batch > 0 {
		msg, err := protocol.AppendBatchReply(nil, m.ID, make([]protocol.Status, batch))
		if err != nil {
			fatal(err)
		}
		send(msg, f.fds(batch))
		return
	}
	send(protocol.AppendOpened(nil, m.ID), f.fds(1))
}

// die ends the opener on its first request, without answering it.
func (f *fake) die() {
	switch f.scenario {
	case "exit-0":
		os.Exit(0)
	case "sigkill":
		unix.Kill(os.Getpid(), unix.SIGKILL)
		time.Sleep(time.Hour)
	case "sigsegv":
		// The Go runtime ignores a SIGSEGV sent with kill(2); a shell
		// does not. execve keeps the pid, so it is still us that dies.
		err := syscall.Exec("/bin/sh", []string{"sh", "-c", "kill -SEGV $$; sleep 10"}, nil)
		fatal(err)
	}
	os.Exit(1) // exit-1, stderrhold, sockhold
}

// setNFD overwrites the descriptor count in msg's header.
func setNFD(msg []byte, n int) {
	binary.LittleEndian.PutUint16(msg[12:], uint16(n))
}

// badOpened answers with an opened (or error) reply whose id, descriptors
// or version do not match what it says or what was asked, or with opened
// whatever was asked (openeddir: a readdir).
func (f *fake) badOpened(m protocol.Msg) {
	msg := protocol.AppendOpened(nil, m.ID)
	switch f.scenario {
	case "wrongid":
		send(protocol.AppendOpened(nil, m.ID+1000), f.fds(1))
	case "morefds":
		send(msg, f.fds(2))
	case "fewerfds":
		setNFD(msg, 2)
		send(msg, f.fds(1))
	case "nofd":
		setNFD(msg, 0)
		send(msg, nil)
	case "errorfd":
		msg = protocol.AppendError(nil, m.ID, protocol.ErrorReply{Errno: uint32(unix.ENOENT), Reason: protocol.ReasonSystem})
		setNFD(msg, 1)
		send(msg, f.fds(1))
	case "ctrunc":
		send(msg, f.fds(protocol.MaxFDs))
	case "badversion":
		msg[2] = 2
		send(msg, f.fds(1))
	case "openeddir":
		send(msg, f.fds(1))
	}
}

// badBatch answers with a batch-reply that does not fit the request: one
// descriptor too many, one item too few, or a batch-reply to a single open.
func (f *fake) badBatch(m protocol.Msg, batch int) {
	n := max(batch, 1)
	if f.scenario == "typemix" {
		n = 1
	}
	if f.scenario == "batchshort" && n > 1 {
		n--
	}
	msg, err := protocol.AppendBatchReply(nil, m.ID, make([]protocol.Status, n))
	if err != nil {
		fatal(err)
	}
	if f.scenario == "batchextra" {
		setNFD(msg, n+1)
		send(msg, f.fds(n+1))
		return
	}
	send(msg, f.fds(n))
}

// badFrame answers with bytes that are not a message, none at all, or a
// message longer than the parent's buffer.
func (f *fake) badFrame(m protocol.Msg) {
	var msg []byte
	switch f.scenario {
	case "garbage":
		send(bytes.Repeat([]byte{0xa5}, 100), nil)
		return
	case "huge":
		msg = make([]byte, 100000)
		copy(msg, protocol.AppendOpened(nil, m.ID))
	}
	// zerolen sends nil; send (protocol.Send) would refuse both.
	if err := unix.Sendmsg(sock, msg, nil, nil, unix.MSG_NOSIGNAL); err != nil {
		fatal(err)
	}
}

// badDirList answers with a dir-list: to an open, with a descriptor, or one
// that says more entries follow but carries none.
func (f *fake) badDirList(m protocol.Msg) {
	if f.scenario == "dirlistbad" {
		msg, err := protocol.AppendDirList(nil, m.ID, 0, false, nil)
		if err != nil {
			fatal(err)
		}
		binary.LittleEndian.PutUint64(msg[protocol.HeaderSize:], 7)
		binary.LittleEndian.PutUint16(msg[protocol.HeaderSize+10:], protocol.DirListMore)
		send(msg, nil)
		return
	}
	msg, err := protocol.AppendDirList(nil, m.ID, 0, false, []protocol.DirEntry{{Type: protocol.DirReg, Name: []byte("f")}})
	if err != nil {
		fatal(err)
	}
	if f.scenario == "dirlistfd" {
		setNFD(msg, 1)
		send(msg, f.fds(1))
		return
	}
	send(msg, nil)
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
