package tests

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// browserWSUpstream is a WebSocket echo upstream: it selects the first
// offered subprotocol (none when none is offered), remembers the upgrade
// request's headers, sends them as its first text message, then echoes
// every text message it gets.
type browserWSUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

// last returns the headers of the latest upgrade request.
func (u *browserWSUpstream) last() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		return nil
	}
	return u.seen[len(u.seen)-1]
}

func browserStartWSUpstream(t testing.TB) *browserWSUpstream {
	t.Helper()
	u := &browserWSUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Header.Clone())
		u.mu.Unlock()
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(echo{Method: r.Method, Path: r.URL.Path, Headers: r.Header})
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
		if p := r.Header.Get("Sec-WebSocket-Protocol"); p != "" {
			resp += "Sec-WebSocket-Protocol: " + strings.TrimSpace(strings.Split(p, ",")[0]) + "\r\n"
		}
		_, _ = brw.WriteString(resp + "\r\n")
		hdr, _ := json.Marshal(r.Header)
		browserWSWrite(brw.Writer, hdr)
		_ = brw.Flush()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		for {
			op, msg, err := browserWSRead(brw.Reader)
			if err != nil || op == 8 {
				return
			}
			browserWSWrite(brw.Writer, msg)
			if brw.Flush() != nil {
				return
			}
		}
	}))
	t.Cleanup(u.Close)
	return u
}

// browserWSWrite writes one unmasked text frame (server to client).
func browserWSWrite(w io.Writer, msg []byte) {
	h := []byte{0x81}
	switch n := len(msg); {
	case n < 126:
		h = append(h, byte(n))
	case n < 1<<16:
		h = append(h, 126, byte(n>>8), byte(n))
	default:
		h = append(h, 127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	_, _ = w.Write(append(h, msg...))
}

// browserWSRead reads one frame (masked or not) and returns its opcode and payload.
func browserWSRead(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return 0, nil, io.ErrUnexpectedEOF
	}
	var mask [4]byte
	if h[1]&0x80 != 0 {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	return h[0] & 0x0f, p, nil
}

// browserWSHandshake sends a WebSocket upgrade to gatewayURL+path with the
// extra header lines and returns the answer's status and headers (the
// connection is closed).
func browserWSHandshake(t testing.TB, gatewayURL, path string, lines ...string) (int, http.Header) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(gatewayURL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(gatewayURL, "http://") +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	for _, l := range lines {
		req += l + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("handshake answer: %v", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header
}
