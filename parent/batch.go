//go:build linux

package parent

import (
	"context"
	"os"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// OpenBatch opens many files with as few round trips as possible: up to 253
// (protocol.MaxBatch) per message, more messages when there are more items
// or the paths are long. It returns one Result per request, in order; each
// item succeeds or fails on its own, as with Open.
//
// The error is for the batch as a whole: ctx ended or the opener died. Then
// no files are returned; any that had already arrived are closed.
func (o *Opener) OpenBatch(ctx context.Context, reqs []Request) ([]Result, error) {
	res := make([]Result, len(reqs))
	// idx lists the requests worth sending; the others failed the parent's
	// own checks and already have their error.
	idx := make([]int, 0, len(reqs))
	for i, r := range reqs {
		if err := policy.CheckPath(r.Path); err != nil {
			res[i].Err = pathRefusal("open", r.Path, err)
			continue
		}
		idx = append(idx, i)
	}
	for len(idx) > 0 {
		n, size := 0, protocol.BatchSize(0, 0)
		for n < len(idx) {
			var fits bool
			if size, fits = batchAdd(n, size, len(reqs[idx[n]].Path)); !fits {
				break
			}
			n++
		}
		if err := o.batch(ctx, reqs, idx[:n], res); err != nil {
			for i := range res {
				if res[i].File != nil {
					res[i].File.Close()
				}
			}
			return nil, err
		}
		idx = idx[n:]
	}
	return res, nil
}

// batchAdd is how a batch is split into messages (OpenBatch) and how many
// queued opens go out in one group (coalesce.go): it reports whether an
// open-batch message of n items and size bytes (protocol.BatchSize) has room
// for one more with a path of pathLen bytes, and returns the size with it.
func batchAdd(n, size, pathLen int) (int, bool) {
	s := size + protocol.BatchSize(1, pathLen) - protocol.BatchSize(0, 0)
	if n >= protocol.MaxBatch || s > protocol.MaxMessage {
		return size, false
	}
	return s, true
}

// batch sends one open-batch message for reqs[idx...] and fills res.
func (o *Opener) batch(ctx context.Context, reqs []Request, idx []int, res []Result) error {
	c := o.getCall()
	var err error
	c.buf, err = protocol.AppendOpenBatchFunc(c.buf[:0], 0, len(idx), func(i int) (uint32, uint32, string) {
		r := reqs[idx[i]]
		return uint32(r.Flag), unixMode(r.Flag, r.Perm), r.Path
	})
	if err != nil {
		o.putCall(c)
		return err
	}
	c.batch = len(idx)
	if err := o.roundTrip(ctx, c); err != nil {
		return err // c may be abandoned in pending: the reader owns it now
	}
	defer o.putCall(c)
	if c.err != nil {
		return c.err
	}
	fds := c.fds
	for i, st := range c.status {
		r := &res[idx[i]]
		if st.Reason != protocol.ReasonOK {
			r.Err = replyError(reqs[idx[i]].Path, st)
			continue
		}
		r.File = os.NewFile(uintptr(fds[0]), reqs[idx[i]].Path) // takes ownership of the descriptor
		fds = fds[1:]
	}
	return nil
}
