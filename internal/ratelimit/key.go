package ratelimit

import (
	"net/netip"
	"strings"
)

// KeyOf returns the key for a source address: addr is an IP address or
// "host:port" (a net.Addr's String()). An IPv4 address (or IPv4 mapped in
// IPv6) is its own key; an IPv6 address is keyed by its /64 prefix
// ("2001:db8:1:2::/64"), since one host commonly holds a whole /64 and
// could otherwise try from a fresh address each time. Anything else is
// returned as it is, without a port if it had one.
func KeyOf(addr string) string {
	host := addr
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		host = ap.Addr().String()
	} else if i := strings.LastIndexByte(addr, ':'); i > 0 && strings.Count(addr, ":") == 1 {
		host = addr[:i]
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}
