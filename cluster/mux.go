package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The Raft groups of a node (the meta group and one per shard replica) share
// one TCP listener. A connection opens with a header naming the group it is
// for and the dialling node's Raft address:
//
//	"TSR1" | len(group) u8 | group | len(from) u8 | from
//
// The sender's address lets the listener refuse peers it has been told to
// cut off (Isolate), so a partition can be staged inside one process or
// between processes.
const muxMagic = "TSR1"

// ErrIsolated is returned when dialling a peer this node is cut off from.
var ErrIsolated = errors.New("cluster: peer is cut off")

// Mux shares one listener among Raft groups.
type Mux struct {
	ln   net.Listener
	addr string

	mu      sync.Mutex
	layers  map[string]*muxLayer
	cut     map[string]bool // peer Raft addresses cut off
	cutAll  bool
	conns   map[*muxConn]struct{}
	closed  bool
	stopped chan struct{}
	// dials records, per peer, when a dial last failed and last worked.
	dials map[string]dialRecord
}

type dialRecord struct{ failed, worked time.Time }

// Listen opens the shared listener on addr ("127.0.0.1:7001"). The address
// peers dial is the listener's own: a port of 0 picks a free one.
func Listen(addr string) (*Mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft listen %s: %w", addr, err)
	}
	m := &Mux{
		ln:      ln,
		addr:    ln.Addr().String(),
		layers:  make(map[string]*muxLayer),
		cut:     make(map[string]bool),
		conns:   make(map[*muxConn]struct{}),
		stopped: make(chan struct{}),
		dials:   make(map[string]dialRecord),
	}
	go m.serve()
	return m, nil
}

// Addr is the address peers dial.
func (m *Mux) Addr() string { return m.addr }

// Close stops the listener and every layer.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	layers := make([]*muxLayer, 0, len(m.layers))
	for _, l := range m.layers {
		layers = append(layers, l)
	}
	conns := m.takeConnsLocked(func(string) bool { return true })
	m.mu.Unlock()
	err := m.ln.Close()
	<-m.stopped
	for _, l := range layers {
		l.shut()
	}
	for _, c := range conns {
		_ = c.Conn.Close()
	}
	return err
}

// Isolate cuts this node off from peers (their Raft addresses); with no
// peers, from everyone. Open connections to them are closed, new ones in
// either direction refused, until Heal.
func (m *Mux) Isolate(peers ...string) {
	m.mu.Lock()
	if len(peers) == 0 {
		m.cutAll = true
	}
	for _, p := range peers {
		m.cut[p] = true
	}
	conns := m.takeConnsLocked(m.isCutLocked)
	m.mu.Unlock()
	for _, c := range conns {
		_ = c.Conn.Close()
	}
}

// Heal ends every Isolate.
func (m *Mux) Heal() {
	m.mu.Lock()
	m.cutAll = false
	clear(m.cut)
	m.mu.Unlock()
}

func (m *Mux) isCutLocked(peer string) bool { return m.cutAll || m.cut[peer] }

func (m *Mux) takeConnsLocked(match func(peer string) bool) []*muxConn {
	var out []*muxConn
	for c := range m.conns {
		if match(c.peer) {
			out = append(out, c)
			delete(m.conns, c)
		}
	}
	return out
}

// Layer returns the stream layer of group, for a raft.NetworkTransport.
func (m *Mux) Layer(group string) (raft.StreamLayer, error) {
	if len(group) == 0 || len(group) > 255 {
		return nil, fmt.Errorf("cluster: group name %q; allowed 1..255 bytes", group)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, net.ErrClosed
	}
	if _, ok := m.layers[group]; ok {
		return nil, fmt.Errorf("cluster: group %q already has a layer", group)
	}
	l := &muxLayer{m: m, group: group, accept: make(chan net.Conn, 16), done: make(chan struct{})}
	m.layers[group] = l
	return l, nil
}

func (m *Mux) drop(l *muxLayer) {
	m.mu.Lock()
	if m.layers[l.group] == l {
		delete(m.layers, l.group)
	}
	m.mu.Unlock()
}

func (m *Mux) serve() {
	defer close(m.stopped)
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go m.handshake(c)
	}
}

// handshake reads the header and hands the connection to its group.
func (m *Mux) handshake(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReaderSize(c, 512)
	group, from, err := readHeader(r)
	if err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	mc := &muxConn{Conn: c, r: r, peer: from, m: m}
	m.mu.Lock()
	l := m.layers[group]
	if l == nil || m.closed || m.isCutLocked(from) {
		m.mu.Unlock()
		_ = c.Close()
		return
	}
	m.conns[mc] = struct{}{}
	m.mu.Unlock()
	select {
	case l.accept <- mc:
	case <-l.done:
		mc.Close()
	case <-time.After(5 * time.Second):
		mc.Close()
	}
}

func readHeader(r *bufio.Reader) (group, from string, err error) {
	magic := make([]byte, len(muxMagic))
	if _, err = io.ReadFull(r, magic); err != nil {
		return "", "", err
	}
	if string(magic) != muxMagic {
		return "", "", fmt.Errorf("cluster: bad connection header %q", magic)
	}
	read := func() (string, error) {
		n, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		b := make([]byte, n)
		_, err = io.ReadFull(r, b)
		return string(b), err
	}
	if group, err = read(); err != nil {
		return "", "", err
	}
	from, err = read()
	return group, from, err
}

// Unreachable reports whether the last dial of peer failed, within the
// last d: the groups' heartbeats dial an unreachable peer again and again,
// so a peer that died or was cut off shows here within one backoff.
func (m *Mux) Unreachable(peer string, d time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.dials[peer]
	return r.failed.After(r.worked) && time.Since(r.failed) < d
}

func (m *Mux) dialed(peer string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.dials[peer]
	if err != nil {
		r.failed = time.Now()
	} else {
		r.worked = time.Now()
	}
	m.dials[peer] = r
}

func (m *Mux) dial(group string, to raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	peer := string(to)
	m.mu.Lock()
	cut := m.isCutLocked(peer)
	m.mu.Unlock()
	if cut {
		m.dialed(peer, ErrIsolated)
		return nil, fmt.Errorf("%w: %s", ErrIsolated, peer)
	}
	c, err := net.DialTimeout("tcp", peer, timeout)
	m.dialed(peer, err)
	if err != nil {
		return nil, err
	}
	hdr := make([]byte, 0, len(muxMagic)+2+len(group)+len(m.addr))
	hdr = append(hdr, muxMagic...)
	hdr = append(hdr, byte(len(group)))
	hdr = append(hdr, group...)
	hdr = append(hdr, byte(len(m.addr)))
	hdr = append(hdr, m.addr...)
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(hdr); err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	mc := &muxConn{Conn: c, peer: peer, m: m}
	m.mu.Lock()
	if m.closed || m.isCutLocked(peer) {
		m.mu.Unlock()
		_ = c.Close()
		return nil, fmt.Errorf("%w: %s", ErrIsolated, peer)
	}
	m.conns[mc] = struct{}{}
	m.mu.Unlock()
	return mc, nil
}

// muxConn is a connection the mux can cut; reads go through the buffered
// reader that consumed the header.
type muxConn struct {
	net.Conn
	r    *bufio.Reader
	peer string
	m    *Mux
	once sync.Once
}

func (c *muxConn) Read(p []byte) (int, error) {
	if c.r != nil {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}

func (c *muxConn) Close() error {
	c.once.Do(func() {
		c.m.mu.Lock()
		delete(c.m.conns, c)
		c.m.mu.Unlock()
	})
	return c.Conn.Close()
}

// muxLayer is one group's raft.StreamLayer.
type muxLayer struct {
	m      *Mux
	group  string
	accept chan net.Conn
	once   sync.Once
	done   chan struct{}
}

func (l *muxLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *muxLayer) Close() error {
	l.shut()
	l.m.drop(l)
	return nil
}

func (l *muxLayer) shut() { l.once.Do(func() { close(l.done) }) }

func (l *muxLayer) Addr() net.Addr { return l.m.ln.Addr() }

func (l *muxLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.m.dial(l.group, address, timeout)
}
