package step

import (
	"errors"
	"time"

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/pktfmt"
	"github.com/drlb/drlb/link"
)

// ErrNoForwarder is returned by New without a Forwarder.
var ErrNoForwarder = errors.New("step: a Forwarder is required")

// Config wires a Step. Only Forwarder is required.
type Config struct {
	Forwarder *forwarder.Forwarder
	// Responder answers ARP requests and neighbor solicitations for the
	// VIPs; nil answers nothing.
	Responder *arp.Responder
	// Resolver learns real servers' MACs from their answers; nil learns
	// nothing (a replay takes them from the config). Its events must not
	// do slow work on the data path: the director queues them.
	Resolver *arp.Resolver
	// Observer, if set, sees every frame (trace, replay listing).
	Observer Observer
	// CompleteChecksums completes partial checksums (Offload.CsumPartial)
	// in forwarded frames and clears their offload state: for output that
	// has no offload header to carry them, a pcap. The live director
	// leaves it off: the kernel completes them from the virtio-net header.
	CompleteChecksums bool
	// Prefetch has Handle prepare the batch's connection-table lookups
	// before processing it (forwarder.Prefetch: every frame's slot starts
	// loading at once), so that with a large table the memory misses
	// overlap each other and the work; and HandleAhead prepare the next
	// batch's during this one's (forwarder.Ahead). Results are the same
	// with or without it.
	Prefetch bool
	// Batch is the most frames one Handle call takes (default
	// link.DefaultBatchSize); it sizes the reply buffers.
	Batch int
}

// Step is one director's per-batch work. It is not safe for concurrent
// use: one goroutine (the director's loop, or a replay) drives it.
type Step struct {
	cfg     Config
	replies []link.Frame // the director's own frames, reused every call
	data    [][]byte     // the batch's frames, then the next's, for ahead; reused every call
	ahead   *forwarder.Ahead
	meta    forwarder.Meta
	ev      Event
}

// replyLen fits every frame the director builds itself.
const replyLen = max(arp.MaxFrameLen, forwarder.TooBigMaxLen, forwarder.ResetMaxLen)

// New builds a Step.
func New(cfg Config) (*Step, error) {
	if cfg.Forwarder == nil {
		return nil, ErrNoForwarder
	}
	if cfg.Batch <= 0 {
		cfg.Batch = link.DefaultBatchSize
	}
	s := &Step{cfg: cfg, replies: make([]link.Frame, cfg.Batch)}
	if cfg.Prefetch {
		s.data = make([][]byte, 0, 2*cfg.Batch)
		s.ahead = cfg.Forwarder.NewAhead()
	}
	for i := range s.replies {
		s.replies[i].Data = make([]byte, 0, replyLen)
	}
	return s, nil
}

// Forwarder is the step's forwarder.
func (s *Step) Forwarder() *forwarder.Forwarder { return s.cfg.Forwarder }

// Handle is HandleAhead without a next batch.
func (s *Step) Handle(now int64, in []link.Frame, out []link.Frame) []link.Frame {
	return s.HandleAhead(now, in, nil, out)
}

// HandleAhead processes the frames of in, received at now (unix nanoseconds),
// in order, and appends to out every frame the director sends for them,
// in order: forwarded frames (in's own buffers, rewritten in place, with
// their offload header) and the director's answers (buffers of the Step,
// valid until the next Handle). It returns out. Frames beyond Batch are
// still processed, but only Batch answers are made per call. Handle does
// not allocate unless the Observer asks for descriptions.
//
// next, if the caller already holds them, are the frames it will pass as
// in to the following call: with Config.Prefetch their connection-table
// slots start loading while in's frames are processed (forwarder.Ahead),
// which at a million connections saves a sixth of a packet's time. They
// are only read, and only for that; any next, or none, gives the same
// results.
func (s *Step) HandleAhead(now int64, in, next []link.Frame, out []link.Frame) []link.Frame {
	s.meta.Time = now
	nr := 0
	// The batch's counts are published once, at the end (one atomic add
	// per counter instead of several per frame: forwarder/heldcounts.go).
	s.cfg.Forwarder.HoldCounts()
	defer s.cfg.Forwarder.PublishCounts()
	if s.ahead != nil {
		s.beginAhead(in, next)
		defer s.endAhead()
	}
	for i := range in {
		if s.ahead != nil {
			s.ahead.Before(i)
		}
		f := &in[i]
		ev := &s.ev
		*ev = Event{Time: now, Result: passNotIP}
		watch := s.cfg.Observer != nil && s.cfg.Observer.Wants(now)
		if watch {
			ev.Desc = pktfmt.Describe(f.Data)
		}
		class := classify(f.Data)
		if class != other {
			if s.cfg.Resolver != nil {
				s.cfg.Resolver.HandleAt(f.Data, time.Unix(0, now))
			}
			if s.cfg.Responder != nil && nr < len(s.replies) {
				if k, ok := s.cfg.Responder.Handle(f.Data, s.replyBuf(nr)); ok {
					kind := ARPReply
					if class == icmp6 {
						kind = NeighborAdvert
					}
					out = s.answer(out, &nr, k, ev, kind)
				}
			}
		}
		if class != arpFrame {
			s.meta.Super = f.Offload.IsSuperFrame()
			if s.cfg.CompleteChecksums {
				s.meta.CsumPartial = f.Offload.CsumPartial
				s.meta.CsumStart, s.meta.CsumOffset = f.Offload.CsumStart, f.Offload.CsumOffset
			}
			res := s.cfg.Forwarder.Process(f.Data, &s.meta)
			ev.Result = res
			if ev.Action != Answer {
				switch {
				case res.Verdict == forwarder.Forward:
					if s.meta.CsumPartial {
						f.Offload = link.Offload{}
						ev.CsumCompleted = true
					}
					out = append(out, *f)
					ev.Action, ev.Kind, ev.Sent = Forward, Forwarded, f.Data
				case res.Reason == forwarder.ReasonTooBig && nr < len(s.replies):
					ev.Action = Drop
					out = s.answer(out, &nr, s.cfg.Forwarder.TooBig(f.Data, s.replyBuf(nr)), ev, TooBig)
				case res.Reason == forwarder.ReasonServerGone && nr < len(s.replies):
					ev.Action = Drop
					out = s.answer(out, &nr, s.cfg.Forwarder.Reset(f.Data, s.replyBuf(nr)), ev, Reset)
				case res.Verdict == forwarder.Drop:
					ev.Action = Drop
				}
			}
		}
		if watch {
			s.cfg.Observer.Observe(ev)
		}
	}
	return out
}

// beginAhead starts the batch's prefetches: in's frames, then next's
// (none when in is longer than a batch: the stream's positions would no
// longer match the frames processed).
func (s *Step) beginAhead(in, next []link.Frame) {
	half := cap(s.data) / 2
	if len(in) > half {
		next = nil
	}
	data := s.data[:0]
	for i := range in[:min(len(in), half)] {
		data = append(data, in[i].Data)
	}
	for i := range next[:min(len(next), half)] {
		data = append(data, next[i].Data)
	}
	s.data = data
	s.ahead.Begin(data, min(len(in), half))
}

// endAhead ends the batch's prefetches and keeps no reference to the
// caller's buffers.
func (s *Step) endAhead() {
	s.ahead.End()
	clear(s.data)
	s.data = s.data[:0]
}

var passNotIP = forwarder.Result{Verdict: forwarder.Pass, Reason: forwarder.ReasonNotIP, Service: -1, Real: -1}

// replyBuf is reply buffer nr, whole, for a builder to write into.
func (s *Step) replyBuf(nr int) []byte {
	r := &s.replies[nr]
	return r.Data[:cap(r.Data)]
}

// answer sends the k bytes a builder wrote into reply buffer *nr (none
// when k is 0: the builder declined) and records it in ev as an answer
// of that kind.
func (s *Step) answer(out []link.Frame, nr *int, k int, ev *Event, kind Kind) []link.Frame {
	if k <= 0 {
		return out
	}
	r := &s.replies[*nr]
	r.Data, r.Offload = r.Data[:k], link.Offload{}
	*nr++
	ev.Action, ev.Kind, ev.Sent = Answer, kind, r.Data
	return append(out, *r)
}
