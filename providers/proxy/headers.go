package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// hopByHop are the headers that concern one connection, not the message (RFC 9110 7.6.1),
// which a proxy must not pass on; so are the headers the Connection header names.
var hopByHop = [][]byte{
	[]byte("Connection"), []byte("Proxy-Connection"), []byte("Keep-Alive"),
	[]byte("Proxy-Authenticate"), []byte("Proxy-Authorization"), []byte("Te"),
	[]byte("Trailer"), []byte("Transfer-Encoding"), []byte("Upgrade"),
}

// replaced are request headers the proxy sets itself, so a client cannot forge them, and the
// override token, which is for the proxy alone.
var replaced = [][]byte{
	[]byte("X-Forwarded-For"), []byte("X-Forwarded-Host"), []byte("X-Forwarded-Proto"),
	[]byte("Forwarded"), []byte(TokenHeader),
}

func isOneOf(name []byte, names [][]byte) bool {
	for _, n := range names {
		if bytes.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// listed says whether a comma-separated header value names token (any case).
func listed(value, token []byte) bool {
	for len(value) > 0 {
		var item []byte
		item, value, _ = bytes.Cut(value, []byte{','})
		if bytes.EqualFold(bytes.TrimSpace(item), token) {
			return true
		}
	}
	return false
}

// buildHead is the request head sent to the backend: the client's method and target (under
// the backend URL's path), its headers but the hop-by-hop ones, the client's Host, and
// X-Forwarded-For, -Host and -Proto set by the proxy.
func (p *Proxy) buildHead(dst []byte, up *upstream, in *inbound) []byte {
	h := in.head
	dst = append(dst, h.Method()...)
	dst = append(dst, ' ')
	dst = append(dst, up.path(requestTarget(h))...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	connection := h.Peek(fasthttp.HeaderConnection)
	host := h.Host()
	for k, v := range h.All() {
		if isOneOf(k, hopByHop) || isOneOf(k, replaced) || len(connection) > 0 && listed(connection, k) {
			continue
		}
		dst = appendHeader(dst, k, v)
	}
	if len(host) == 0 {
		dst = appendHeader(dst, []byte("Host"), []byte(up.addr))
	}
	switch {
	case in.upgrade != nil:
		dst = append(dst, "Connection: Upgrade\r\n"...)
		dst = appendHeader(dst, []byte("Upgrade"), in.upgrade)
	case in.body != nil && h.ContentLength() < 0:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	if in.clientIP != "" {
		dst = appendHeader(dst, []byte("X-Forwarded-For"), []byte(in.clientIP))
	}
	if len(host) > 0 {
		dst = appendHeader(dst, []byte("X-Forwarded-Host"), host)
	}
	dst = append(dst, "X-Forwarded-Proto: http\r\n\r\n"...)
	return dst
}

func appendHeader(dst, k, v []byte) []byte {
	dst = append(dst, k...)
	dst = append(dst, ':', ' ')
	dst = append(dst, v...)
	return append(dst, '\r', '\n')
}

// requestTarget is the path and query the client asked for, as it sent them; a request in
// absolute form (GET http://host/path) becomes its path and query.
func requestTarget(h *fasthttp.RequestHeader) []byte {
	uri := h.RequestURI()
	if len(uri) > 0 && uri[0] != '/' && uri[0] != '*' {
		if i := bytes.Index(uri, []byte("://")); i >= 0 {
			rest := uri[i+3:]
			if j := bytes.IndexByte(rest, '/'); j >= 0 {
				return rest[j:]
			}
			if j := bytes.IndexByte(rest, '?'); j >= 0 {
				return append([]byte{'/'}, rest[j:]...)
			}
			return []byte{'/'}
		}
	}
	return uri
}

// stripHopByHop removes from a backend's response head what concerns its connection to the
// proxy; a protocol switch keeps its Connection and Upgrade headers.
func stripHopByHop(resp *fasthttp.ResponseHeader, switching bool) {
	connection := resp.Peek(fasthttp.HeaderConnection)
	var drop [][]byte
	for k := range resp.All() {
		if switching && (bytes.EqualFold(k, []byte("Connection")) || bytes.EqualFold(k, []byte("Upgrade"))) {
			continue
		}
		if isOneOf(k, hopByHop) || len(connection) > 0 && listed(connection, k) {
			drop = append(drop, bytes.Clone(k))
		}
	}
	for _, k := range drop {
		resp.DelBytes(k)
	}
}

// fastHeaders reads a fasthttp request's headers for choose.
type fastHeaders struct{ h *fasthttp.RequestHeader }

func (f fastHeaders) get(name string) string { return string(f.h.Peek(name)) }

func (f fastHeaders) cookie(name string) string { return string(f.h.Cookie(name)) }
