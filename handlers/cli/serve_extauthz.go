package cli

import (
	"fmt"
	"net"
	"time"

	"jwtgate/handlers"
)

// serveExtAuthz starts the gRPC ext_authz server on addr when the gateway
// has one (ext_authz.grpc_listen), sending its end to errc. It returns the
// address it listens on ("off" without one) and a stop that finishes
// in-flight checks within the timeout, then cuts the rest.
func serveExtAuthz(gw *handlers.Gateway, addr string, errc chan<- error) (string, func(time.Duration), error) {
	if gw.ExtAuthz == nil {
		return "off", func(time.Duration) {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("ext_authz.grpc_listen: listen on %s: %w", addr, err)
	}
	go func() { errc <- gw.ExtAuthz.Serve(ln) }()
	stop := func(timeout time.Duration) {
		done := make(chan struct{})
		go func() {
			gw.ExtAuthz.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(timeout):
			gw.ExtAuthz.Stop()
		}
	}
	return ln.Addr().String(), stop, nil
}
