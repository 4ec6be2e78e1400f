package server

import (
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/privsep-go/privsep/policy"
)

// Defaults for Config.
const (
	DefaultMaxClients        = 256
	DefaultMaxSessionsPerUID = 16
	DefaultIdleTimeout       = 5 * time.Minute
	DefaultWorkersPerConn    = 2
	DefaultShutdownTimeout   = 5 * time.Second
	DefaultSendTimeout       = 10 * time.Second
	DefaultHelloTimeout      = 10 * time.Second
)

// Config says how Serve serves.
type Config struct {
	// Policies gives each client its policy by its uid and primary gid
	// (policy.Unscoped gives everyone the same one). Required. Every policy
	// in it has its rule directories opened once, at start, shared by all
	// the sessions that use it.
	Policies *policy.ScopedPolicy

	// Reload, if not nil, swaps the policy: each Reload received replaces
	// Policies for the sessions that start after it (their rule
	// directories resolved afresh from the root, as at start); sessions in
	// progress keep the policy they started with. A policy that cannot be
	// prepared is logged at error level and the old one kept. Either way
	// the outcome is sent on the Reload's Done, if not nil.
	Reload <-chan Reload

	// AllowUIDs and AllowGIDs are who may connect: a client whose uid is in
	// AllowUIDs or whose primary gid is in AllowGIDs (as the kernel reports
	// them for the connection: SO_PEERCRED, the effective ids at connect
	// time). When both are empty only the server's own effective uid may.
	// Anyone else is refused: an error with id 0, reason 1 (denied) and
	// EACCES, sent before anything is read, then the connection is closed.
	AllowUIDs, AllowGIDs []uint32

	// MaxClients bounds the sessions served at once; a connection beyond it
	// is refused with an error with id 0, reason 3 (system) and EUSERS.
	// Zero means DefaultMaxClients.
	MaxClients int

	// MaxSessionsPerUID bounds the sessions one uid (as SO_PEERCRED says)
	// has at once, so that one client cannot take every slot of MaxClients
	// and starve the others, root included. A connection beyond it is
	// refused with an error with id 0, reason 9 (limit) and EUSERS. Zero
	// means DefaultMaxSessionsPerUID.
	MaxSessionsPerUID int

	// IdleTimeout closes a session that has had no request in progress and
	// received none for this long (the check runs four times per timeout,
	// so the close comes between one and one and a quarter timeouts after
	// the last request): its read side is shut down, so it finishes like a
	// client that left. A client that never sends its hello is closed
	// after HelloTimeout instead. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration

	// WorkersPerConn is how many requests of one client are served at once;
	// zero means DefaultWorkersPerConn. The first serves every request until
	// one stalls; the others are started as requests stall. A worker
	// borrows about 80 KiB of buffers from a pool the server's sessions
	// share for each request, so an idle session holds none.
	WorkersPerConn int

	// Logger receives the server's log: one line per connection, accepted or
	// refused, with the peer's uid, gid and pid as fields, and the audit
	// events of every session (denials at warn, grants at debug). Nil
	// discards it.
	Logger hclog.Logger

	// HelloTimeout bounds the wait for a new client's hello; zero means
	// DefaultHelloTimeout.
	HelloTimeout time.Duration

	// SendTimeout bounds how long a reply may wait for room in a client's
	// queue. A client that stops reading its replies for that long has its
	// session ended (the connection is shut down). Zero means
	// DefaultSendTimeout.
	SendTimeout time.Duration

	// ShutdownTimeout bounds how long Serve waits, once ctx is done, for
	// sessions to answer the requests they already received. Then their
	// connections are shut down outright. Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// Reload is a new policy for Config.Reload.
type Reload struct {
	Policies *policy.ScopedPolicy
	// Done, if not nil, receives nil once new sessions get Policies, or
	// why they cannot (the old policy is kept). It needs room for one
	// value: the server does not wait on it.
	Done chan<- error
}

// Socket is a server's listening socket file, made by ListenSocket.
type Socket struct {
	*net.UnixListener
	Path     string
	dev, ino uint64 // the file's identity, so that Remove removes only ours
	dirDev   uint64 // its directory's identity, likewise
	dirIno   uint64
}
