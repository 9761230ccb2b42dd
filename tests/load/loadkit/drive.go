package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// newClient is a keep-alive client for conns concurrent requests.
func newClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conns
	t.MaxIdleConnsPerHost = conns
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// readTokens reads FILE, or FILE.0, FILE.1, ... when FILE does not exist.
func readTokens(name string) ([]string, error) {
	names := []string{name}
	if _, err := os.Stat(name); errors.Is(err, os.ErrNotExist) {
		names = nil
		for i := 0; ; i++ {
			n := name + "." + strconv.Itoa(i)
			if _, err := os.Stat(n); err != nil {
				break
			}
			names = append(names, n)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%s: no such file (nor %s.0)", name, name)
		}
	}
	var toks []string
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			if t := strings.TrimSpace(sc.Text()); t != "" {
				toks = append(toks, t)
			}
		}
		err = errors.Join(sc.Err(), f.Close())
		if err != nil {
			return nil, err
		}
	}
	return toks, nil
}

// get sends GET url with a bearer token ("" for none) and returns the
// status, reading the body so the connection is reused.
func get(ctx context.Context, c *http.Client, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Body.Close()
}

func cmdWarm(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	url := fs.String("url", "", "URL to GET with each token")
	file := fs.String("tokens", "", "token file (or FILE.0, FILE.1, ...)")
	conns := fs.Int("c", 16, "concurrent requests")
	if err := parse(fs, args); err != nil {
		return err
	}
	toks, err := readTokens(*file)
	if err != nil {
		return err
	}
	c := newClient(*conns)
	start := time.Now()
	var next atomic.Int64
	var mu sync.Mutex
	statuses := map[string]int{}
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(toks)) || ctx.Err() != nil {
					return
				}
				status, err := get(ctx, c, *url, toks[i])
				key := strconv.Itoa(status)
				if err != nil {
					key = "error"
				}
				mu.Lock()
				statuses[key]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(stdout, "warm: %d tokens in %s: %v\n", len(toks), time.Since(start).Round(time.Millisecond), statuses)
	if statuses["200"] != len(toks) {
		return fmt.Errorf("warm: not every token was accepted: %v", statuses)
	}
	return ctx.Err()
}

// cmdRoundRobin sends every token to every replica, as a round-robin load
// balancer in front of them would over a token's life: in round r, token i
// goes to replica (i+r) mod K, so a token's requests land on a different
// replica each round and are a whole round (all the tokens) apart.
func cmdRoundRobin(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	urls := fs.String("urls", "", "comma-separated URLs to GET, one per replica")
	file := fs.String("tokens", "", "token file (or FILE.0, FILE.1, ...)")
	rounds := fs.Int("rounds", 3, "times each token is sent (each time to the next replica)")
	conns := fs.Int("c", 16, "concurrent requests")
	if err := parse(fs, args); err != nil {
		return err
	}
	targets := strings.Split(*urls, ",")
	if *urls == "" || *rounds < 1 || *conns < 1 {
		return errors.New("need -urls, -rounds >= 1 and -c >= 1")
	}
	toks, err := readTokens(*file)
	if err != nil {
		return err
	}
	c := newClient(*conns)
	start := time.Now()
	statuses := map[string]int{}
	var mu sync.Mutex
	for r := range *rounds {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range *conns {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(len(toks)) || ctx.Err() != nil {
						return
					}
					status, err := get(ctx, c, targets[(int(i)+r)%len(targets)], toks[i])
					key := strconv.Itoa(status)
					if err != nil {
						key = "error"
					}
					mu.Lock()
					statuses[key]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	fmt.Fprintf(stdout, "rr: %d tokens x %d rounds over %d replicas in %s: %v\n", len(toks), *rounds, len(targets), time.Since(start).Round(time.Millisecond), statuses)
	if statuses["200"] != len(toks)**rounds {
		return fmt.Errorf("rr: not every request was accepted: %v", statuses)
	}
	return ctx.Err()
}

// sample is one soak measurement of the gateway process.
type sample struct {
	At         time.Duration
	RSSKB      int64
	Threads    int64
	FDs        int
	Goroutines int64 // -1: no /metrics
	Requests   int64
	Unexpected int64
}

func (s sample) String() string {
	g := "n/a"
	if s.Goroutines >= 0 {
		g = strconv.FormatInt(s.Goroutines, 10)
	}
	return fmt.Sprintf("t=%-6s rss=%6.1fMB goroutines=%-5s threads=%-3d fds=%-4d requests=%-8d unexpected=%d",
		s.At.Round(time.Second), float64(s.RSSKB)/1024, g, s.Threads, s.FDs, s.Requests, s.Unexpected)
}

// procStatus reads VmRSS (kB) and Threads from /proc/PID/status.
func procStatus(pid int) (rssKB, threads int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			rssKB, _ = strconv.ParseInt(f[0], 10, 64)
		case "Threads":
			threads, _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	return rssKB, threads, nil
}

// goroutines reads go_goroutines from a Prometheus endpoint; -1 if absent.
func goroutines(ctx context.Context, c *http.Client, url string) int64 {
	if url == "" {
		return -1
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return -1
	}
	resp, err := c.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return -1
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int64(n)
			}
		}
	}
	return -1
}

// soakKind is one kind of request in the soak mix.
type soakKind struct {
	name   string
	weight int
	want   int // expected status
}

var soakMix = []soakKind{
	{"warm", 50, http.StatusOK},             // a cached token
	{"cold", 10, http.StatusOK},             // a never-seen token: one call home
	{"garbage", 8, http.StatusUnauthorized}, // refused by the pre-checks, no call home
	{"forged", 7, http.StatusUnauthorized},  // well-formed, wrong key: the auth service says 401
	{"anonymous", 10, http.StatusUnauthorized},
	{"open", 10, http.StatusOK}, // auth: none route
	{"login", 5, http.StatusOK},
}

func cmdSoak(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	gateway := fs.String("gateway", "", "gateway base URL")
	pid := fs.Int("pid", 0, "gateway process id (for /proc samples)")
	metrics := fs.String("metrics", "", "Prometheus URL with go_goroutines (empty: none)")
	duration := fs.Duration("duration", 10*time.Minute, "how long to run")
	rate := fs.Int("rate", 200, "requests per second, all kinds together")
	users := fs.Int("users", 1000, "users user1..userN@example.com (password \"password\") exist")
	warmN := fs.Int("warm-tokens", 200, "distinct cached tokens")
	every := fs.Duration("sample", 10*time.Second, "sampling interval")
	conns := fs.Int("c", 64, "concurrent requests at most (excess ticks are counted as skipped)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *gateway == "" || *pid == 0 || *rate < 1 || *users < 1 || *warmN < 1 {
		return errors.New("need -gateway, -pid, -rate >= 1, -users >= 1, -warm-tokens >= 1")
	}
	m, err := newMinter(os.Getenv("LOADKIT_SECRET"), "", 3*time.Hour)
	if err != nil {
		return err
	}
	forger, err := newMinter("not-the-auth-service-secret-0123456789", "", 3*time.Hour)
	if err != nil {
		return err
	}
	warm := make([]string, *warmN)
	for i := range warm {
		if warm[i], err = m.token(1 + i%*users); err != nil {
			return err
		}
	}
	c := newClient(*conns)
	api, open, loginURL := *gateway+"/api/soak", *gateway+"/open/soak", *gateway+"/auth/token/"

	var requests, unexpected, skipped atomic.Int64
	var mu sync.Mutex
	byKind := map[string]map[int]int{}
	do := func(k soakKind) {
		var status int
		var err error
		switch k.name {
		case "warm":
			status, err = get(ctx, c, api, warm[rand.IntN(len(warm))])
		case "cold":
			var t string
			if t, err = m.token(1 + rand.IntN(*users)); err == nil {
				status, err = get(ctx, c, api, t)
			}
		case "garbage":
			status, err = get(ctx, c, api, "not.a-token."+strconv.Itoa(rand.Int()))
		case "forged":
			var t string
			if t, err = forger.token(1 + rand.IntN(*users)); err == nil {
				status, err = get(ctx, c, api, t)
			}
		case "anonymous":
			status, err = get(ctx, c, api, "")
		case "open":
			status, err = get(ctx, c, open, "")
		case "login":
			body, _ := json.Marshal(map[string]string{"email": fmt.Sprintf("user%d@example.com", 1+rand.IntN(*users)), "password": "password"})
			var req *http.Request
			if req, err = http.NewRequestWithContext(ctx, http.MethodPost, loginURL, strings.NewReader(string(body))); err == nil {
				req.Header.Set("Content-Type", "application/json")
				var resp *http.Response
				if resp, err = c.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					status = resp.StatusCode
				}
			}
		}
		if ctx.Err() != nil {
			return // stopping: not the gateway's fault
		}
		requests.Add(1)
		if err != nil || status != k.want {
			unexpected.Add(1)
		}
		mu.Lock()
		if byKind[k.name] == nil {
			byKind[k.name] = map[int]int{}
		}
		byKind[k.name][status]++
		mu.Unlock()
	}

	total := 0
	for _, k := range soakMix {
		total += k.weight
	}
	pick := func() soakKind {
		n := rand.IntN(total)
		for _, k := range soakMix {
			if n < k.weight {
				return k
			}
			n -= k.weight
		}
		return soakMix[0]
	}

	start := time.Now()
	var samples []sample
	takeSample := func() {
		s := sample{At: time.Since(start), Requests: requests.Load(), Unexpected: unexpected.Load()}
		s.RSSKB, s.Threads, _ = procStatus(*pid)
		if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", *pid)); err == nil {
			s.FDs = len(fds)
		}
		s.Goroutines = goroutines(ctx, c, *metrics)
		samples = append(samples, s)
		fmt.Fprintln(stdout, s)
	}
	takeSample()

	runCtx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	sem := make(chan struct{}, *conns)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	sampler := time.NewTicker(*every)
	defer sampler.Stop()
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-sampler.C:
			takeSample()
		case <-tick.C:
			select {
			case sem <- struct{}{}:
				k := pick()
				wg.Go(func() {
					defer func() { <-sem }()
					do(k)
				})
			default:
				skipped.Add(1)
			}
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	takeSample()

	first, last := samples[0], samples[len(samples)-1]
	fmt.Fprintf(stdout, "\nsoak: %s at %d requests/s: %d requests, %d unexpected answers, %d ticks skipped (all %d connections busy)\n",
		duration.Round(time.Second), *rate, requests.Load(), unexpected.Load(), skipped.Load(), *conns)
	mu.Lock()
	for _, k := range soakMix {
		fmt.Fprintf(stdout, "  %-9s want %d: %v\n", k.name, k.want, byKind[k.name])
	}
	mu.Unlock()
	fmt.Fprintf(stdout, "first: %s\nlast:  %s\n", first, last)
	if len(samples) > 7 {
		fmt.Fprintf(stdout, "after the first minute: %s\n", samples[6])
	}
	if unexpected.Load() > 0 {
		return fmt.Errorf("%d unexpected answers", unexpected.Load())
	}
	return nil
}
