package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"jwtgate/models"
)

// auditOpts are the audit command's flags.
type auditOpts struct {
	since string
	json  bool
}

func auditFlags(fs *flag.FlagSet, e *env) {
	fs.StringVar(&e.audit.since, "since", "", "only events since this long ago (24h, 7d) or this RFC 3339 time")
	fs.BoolVar(&e.audit.json, "json", false, "print JSON instead of a table")
}

// auditLimit bounds the events one run prints.
const auditLimit = 100000

func runAudit(ctx context.Context, e *env, _ *flag.FlagSet, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("audit: unexpected argument %q", args[0])
	}
	var since time.Time
	if s := e.audit.since; s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			since = t
		} else if age, err := parseAge(s); err == nil {
			since = time.Now().Add(-age)
		} else {
			return fmt.Errorf("audit: --since %q: want a duration (24h, 7d) or an RFC 3339 time", s)
		}
	}
	s, _, err := e.loadSettings()
	if err != nil {
		return err
	}
	st, err := models.OpenStore(ctx, s.Database, time.Now)
	if err != nil {
		return err
	}
	defer st.Close()
	es, err := st.AuditEvents(ctx, since, auditLimit)
	if err != nil {
		return err
	}
	if e.audit.json {
		if es == nil {
			es = []models.AuditEvent{}
		}
		return writeJSON(e, es)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTOR\tACTION\tTARGET\tREQUEST_ID")
	for _, ev := range es {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ev.At.UTC().Format(time.RFC3339), termField(ev.Actor), termField(ev.Action),
			termField(ev.Target), termField(ev.RequestID))
	}
	return tw.Flush()
}
