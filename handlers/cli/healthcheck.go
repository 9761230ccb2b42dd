package cli

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"
)

// healthcheckTimeout bounds `jwtgate healthcheck`: a container runtime
// gives a health command a few seconds.
const healthcheckTimeout = 3 * time.Second

// runHealthcheck asks the gateway running with these settings for /healthz
// on its listen address and succeeds on 200: a container HEALTHCHECK for
// images without curl.
func runHealthcheck(ctx context.Context, e *env, _ *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("healthcheck takes no arguments, got %q", args)
	}
	s, _, err := e.loadSettings()
	if err != nil {
		return err
	}
	url, err := healthURL(s.Listen)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// No proxy from the environment: the gateway is on this machine.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
	}
	fmt.Fprintf(e.stdout, "ok: %s\n", url)
	return nil
}

// healthURL is /healthz on the listen address, reached on this machine: a
// wildcard host (":8001", "0.0.0.0", "::") is asked on loopback.
func healthURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
