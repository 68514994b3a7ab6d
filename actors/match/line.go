package match

import (
	"github.com/tsunagu/tsunagu/actors/routing"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Waiting is one contact waiting in a queue.
type Waiting struct {
	ContactID      string
	Seq            uint64
	ArrivedAt      int64
	Priority       int32
	Channel        pb.Channel
	PreferredAgent string
	PreferredUntil int64
	// Site the contact arrived at; empty when unknown.
	Site string
	// Extra requirements beyond the queue's, as a class of the queue.
	class int
	// extras are kept only when the contact's class, its site aside, is the
	// slow class.
	extras routing.Requirements
	// siteUntil is when the contact's site window closes, or 0 if it has
	// none (any more). Until then class requires the site too, and
	// baseClass is the contact's class without it.
	siteUntil int64
	// Avoid lists agents who rejected or missed this contact, each until a
	// time: they are not offered it again before then.
	Avoid []Avoid

	removed   bool
	baseClass uint8 // beside removed: no room taken (classes are < 64)
	where     *line
}

// Avoid keeps an agent from a contact until a time (unix ns).
type Avoid struct {
	Agent string
	Until int64
}

// avoids reports whether w must not go to agent at now.
func (w *Waiting) avoids(agent string, now int64) bool {
	for _, a := range w.Avoid {
		if a.Agent == agent && now < a.Until {
			return true
		}
	}
	return false
}

// avoiding reports whether w avoids anyone at now.
func (w *Waiting) avoiding(now int64) bool {
	for _, a := range w.Avoid {
		if now < a.Until {
			return true
		}
	}
	return false
}

// before reports whether w is ahead of x in arrival order.
func (w *Waiting) before(x *Waiting) bool {
	if w.ArrivedAt != x.ArrivedAt {
		return w.ArrivedAt < x.ArrivedAt
	}
	return w.Seq < x.Seq
}

// line holds contacts of one (channel, priority, class) in arrival order.
// New arrivals almost always come last, so they go to a ring buffer in O(1);
// the rare earlier one (a contact returned to its place after a rejected
// offer, wait credit from an IVR) goes to a small heap beside it. Removal
// is lazy: entries are marked and dropped when they reach the front, and
// the ring is compacted when marked entries dominate.
type line struct {
	key   lineKey
	ring  []*Waiting
	head  int
	n     int // entries in the ring, marked ones included
	side  []*Waiting
	live  int
	index int // position in Queue.lines
}

type lineKey struct {
	channel  pb.Channel
	priority int32
	class    int
}

func (l *line) ringAt(i int) *Waiting { return l.ring[(l.head+i)%len(l.ring)] }

// ringInsertReach is how far back from the tail an out-of-order arrival is
// inserted into the ring. Contacts reach their queue a few microseconds out
// of order because they commit concurrently; only contacts returned to an
// older place go to the side heap.
const ringInsertReach = 64

func (l *line) push(w *Waiting) {
	w.where = l
	w.removed = false
	l.live++
	if l.n == 0 || !w.before(l.ringAt(l.n-1)) {
		if l.n == len(l.ring) {
			l.grow()
		}
		l.ring[(l.head+l.n)%len(l.ring)] = w
		l.n++
		return
	}
	// Find w's place among the last few entries: w goes before entry pos.
	pos := l.n - 1
	for pos > 0 && l.n-pos < ringInsertReach && w.before(l.ringAt(pos-1)) {
		pos--
	}
	if (pos > 0 && !w.before(l.ringAt(pos-1))) || (pos == 0 && l.n < ringInsertReach) {
		if l.n == len(l.ring) {
			l.grow()
		}
		for i := l.n; i > pos; i-- {
			l.ring[(l.head+i)%len(l.ring)] = l.ring[(l.head+i-1)%len(l.ring)]
		}
		l.ring[(l.head+pos)%len(l.ring)] = w
		l.n++
		return
	}
	l.side = append(l.side, w)
	siftUp(l.side, len(l.side)-1)
}

func (l *line) grow() {
	size := max(8, 2*len(l.ring))
	ring := make([]*Waiting, size)
	for i := 0; i < l.n; i++ {
		ring[i] = l.ringAt(i)
	}
	l.ring, l.head = ring, 0
}

// remove marks w removed; it leaves the line when it reaches the front.
func (l *line) remove(w *Waiting) {
	if w.removed || w.where != l {
		return
	}
	w.removed = true
	l.live--
	if tomb := l.n + len(l.side) - l.live; tomb > 1024 && tomb > 2*l.live {
		l.compact()
	}
}

func (l *line) compact() {
	keep := 0
	for i := 0; i < l.n; i++ {
		if w := l.ringAt(i); !w.removed {
			l.ring[(l.head+keep)%len(l.ring)] = w
			keep++
		}
	}
	for i := keep; i < l.n; i++ {
		l.ring[(l.head+i)%len(l.ring)] = nil
	}
	l.n = keep
	side := l.side[:0]
	for _, w := range l.side {
		if !w.removed {
			side = append(side, w)
		}
	}
	clear(l.side[len(side):])
	l.side = side
	for i := len(side)/2 - 1; i >= 0; i-- {
		siftDown(side, i)
	}
	if len(l.ring) > 64 && l.n < len(l.ring)/4 {
		ring := make([]*Waiting, max(8, 2*l.n))
		for i := 0; i < l.n; i++ {
			ring[i] = l.ringAt(i)
		}
		l.ring, l.head = ring, 0
	}
}

// peek returns the first live contact, dropping marked entries in front.
func (l *line) peek() *Waiting {
	for l.n > 0 && l.ring[l.head].removed {
		l.ring[l.head] = nil
		l.head = (l.head + 1) % len(l.ring)
		l.n--
	}
	for len(l.side) > 0 && l.side[0].removed {
		popHeap(&l.side)
	}
	var r, s *Waiting
	if l.n > 0 {
		r = l.ring[l.head]
	}
	if len(l.side) > 0 {
		s = l.side[0]
	}
	switch {
	case r == nil:
		return s
	case s == nil:
		return r
	case s.before(r):
		return s
	}
	return r
}

// walk calls fn for live entries in arrival order until fn is false. The
// side heap is visited best-first without sorting it: the frontier holds
// only the children of entries already visited.
func (l *line) walk(fn func(*Waiting) bool) {
	var frontier []int
	if len(l.side) > 0 {
		frontier = append(frontier, 0)
	}
	nextSide := func() *Waiting {
		for len(frontier) > 0 {
			bi := 0
			for i := 1; i < len(frontier); i++ {
				if l.side[frontier[i]].before(l.side[frontier[bi]]) {
					bi = i
				}
			}
			n := frontier[bi]
			frontier[bi] = frontier[len(frontier)-1]
			frontier = frontier[:len(frontier)-1]
			for _, c := range [2]int{2*n + 1, 2*n + 2} {
				if c < len(l.side) {
					frontier = append(frontier, c)
				}
			}
			if w := l.side[n]; !w.removed {
				return w
			}
		}
		return nil
	}
	side := nextSide()
	i := 0
	for {
		for i < l.n && l.ringAt(i).removed {
			i++
		}
		var r *Waiting
		if i < l.n {
			r = l.ringAt(i)
		}
		var w *Waiting
		switch {
		case r == nil && side == nil:
			return
		case side == nil || (r != nil && !side.before(r)):
			w = r
			i++
		default:
			w = side
			side = nextSide()
		}
		if !fn(w) {
			return
		}
	}
}

// each calls fn for live entries in no particular order until fn is false.
func (l *line) each(fn func(*Waiting) bool) {
	for i := 0; i < l.n; i++ {
		if w := l.ringAt(i); !w.removed && !fn(w) {
			return
		}
	}
	for _, w := range l.side {
		if !w.removed && !fn(w) {
			return
		}
	}
}

func siftUp(h []*Waiting, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func siftDown(h []*Waiting, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].before(h[l]) {
			m = r
		}
		if !h[m].before(h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func popHeap(h *[]*Waiting) {
	s := *h
	last := len(s) - 1
	s[0] = s[last]
	s[last] = nil
	s = s[:last]
	if len(s) > 0 {
		siftDown(s, 0)
	}
	*h = s
}
