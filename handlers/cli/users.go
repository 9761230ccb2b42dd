package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"jwtgate/models"
	"jwtgate/models/notify"
)

// usersOpts are the users command's flags.
type usersOpts struct {
	json      bool
	olderThan string
}

func usersFlags(fs *flag.FlagSet, e *env) {
	fs.BoolVar(&e.users.json, "json", false, "list: print JSON instead of a table")
	fs.StringVar(&e.users.olderThan, "older-than", "", "purge: remove users not fetched for this long (e.g. 720h or 30d)")
}

// userView is a mirrored user as the CLI prints it.
type userView struct {
	ID          string         `json:"id"`
	Username    string         `json:"username"`
	Email       string         `json:"email"`
	IsActive    bool           `json:"is_active"`
	IsStaff     bool           `json:"is_staff"`
	IsSuperuser bool           `json:"is_superuser"`
	FetchedAt   time.Time      `json:"fetched_at"`
	Record      map[string]any `json:"record,omitempty"`
}

func viewOf(u models.User, record bool) userView {
	v := userView{ID: u.ID, Username: u.Username, Email: u.Email, IsActive: u.IsActive, IsStaff: u.IsStaff,
		IsSuperuser: u.IsSuperuser, FetchedAt: u.FetchedAt.UTC()}
	if record {
		v.Record = u.Fields
	}
	return v
}

func runUsers(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	o := &e.users
	if len(args) == 0 {
		fs.Usage()
		return errors.New("users: say list, show ID, delete ID or purge --older-than D")
	}
	sub, args := args[0], args[1:]
	want := map[string]int{"list": 0, "show": 1, "delete": 1, "purge": 0, "revoke": 1, "deactivate": 1, "activate": 1}
	n, ok := want[sub]
	if !ok {
		return fmt.Errorf("users: unknown subcommand %q (list, show, delete, purge, revoke, deactivate, activate)", sub)
	}
	if len(args) != n {
		return fmt.Errorf("users %s: want %d argument(s), got %d", sub, n, len(args))
	}
	if sub == "purge" && o.olderThan == "" {
		return errors.New("users purge: --older-than is required (e.g. --older-than 30d)")
	}
	var age time.Duration
	if sub == "purge" {
		var err error
		if age, err = parseAge(o.olderThan); err != nil {
			return fmt.Errorf("users purge: --older-than %q: %w", o.olderThan, err)
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

	switch sub {
	case "list":
		us, err := st.Users(ctx)
		if err != nil {
			return err
		}
		if o.json {
			vs := make([]userView, 0, len(us))
			for _, u := range us {
				vs = append(vs, viewOf(u, false))
			}
			return writeJSON(e, vs)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSERNAME\tEMAIL\tACTIVE\tSTAFF\tFETCHED")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\t%s\n", termField(u.ID), termField(u.Username), termField(u.Email),
				u.IsActive, u.IsStaff, u.FetchedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	case "show":
		u, err := st.User(ctx, args[0])
		if errors.Is(err, models.ErrNotFound) {
			return fmt.Errorf("no user %q in the mirror (jwtgate users list shows who is there)", args[0])
		} else if err != nil {
			return err
		}
		return writeJSON(e, viewOf(u, true))
	case "delete":
		err := st.DeleteUser(ctx, args[0])
		if errors.Is(err, models.ErrNotFound) {
			return fmt.Errorf("no user %q in the mirror (jwtgate users list shows who is there)", args[0])
		} else if err != nil {
			return err
		}
		// Every replica drops its cached copy and asks the auth service again.
		if err := userChanged(ctx, e, st, models.UserKey{ID: args[0]}, "delete"); err != nil {
			return fmt.Errorf("deleted user %q, but could not tell the running replicas: %w", args[0], err)
		}
		fmt.Fprintf(e.stdout, "deleted user %s from the mirror; it is fetched from the auth service on next use\n", args[0])
	case "purge":
		n, err := st.PurgeUsers(ctx, time.Now().Add(-age))
		if err != nil {
			return err
		}
		if err := st.RecordAllUsersChanged(ctx); err != nil {
			return fmt.Errorf("purged %d users, but could not tell the running replicas: %w", n, err)
		}
		publishHint(ctx, e, st, models.UserKey{})
		audit(ctx, e, st, "purge", "")
		fmt.Fprintf(e.stdout, "purged %d users not fetched in the last %s\n", n, o.olderThan)
	case "revoke", "deactivate", "activate":
		return userAction(ctx, e, st, sub, models.UserKey{ID: args[0]})
	}
	return nil
}

// userAction revokes, deactivates or activates a user in the mirror; the
// store records the change, which running gateways read within a second
// (and at once on PostgreSQL, through the NOTIFY hint).
func userAction(ctx context.Context, e *env, st *models.Store, action string, k models.UserKey) error {
	now := time.Now()
	var err error
	switch action {
	case "revoke":
		err = st.SetTokensValidAfter(ctx, k, now)
	case "deactivate":
		if err = st.SetActiveByKey(ctx, k, false); err == nil {
			err = st.SetTokensValidAfter(ctx, k, now)
		}
	case "activate":
		err = st.SetActiveByKey(ctx, k, true)
	}
	if errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("no user %q in the mirror (jwtgate users list shows who is there)", k.ID)
	} else if err != nil {
		return err
	}
	publishHint(ctx, e, st, k)
	audit(ctx, e, st, action, k.String())
	switch action {
	case "revoke":
		fmt.Fprintf(e.stdout, "revoked the tokens of user %s issued before %s\n", k.ID, now.UTC().Truncate(time.Second).Format(time.RFC3339))
	case "deactivate":
		fmt.Fprintf(e.stdout, "deactivated user %s in the mirror and revoked their tokens; the auth service's is_active wins at the next re-fetch\n", k.ID)
	default:
		fmt.Fprintf(e.stdout, "activated user %s in the mirror; tokens revoked before stay refused\n", k.ID)
	}
	return nil
}

// userChanged records that a user changed and hints the replicas, and
// audits the action.
func userChanged(ctx context.Context, e *env, st *models.Store, k models.UserKey, action string) error {
	if err := st.RecordUserChange(ctx, k); err != nil {
		return err
	}
	publishHint(ctx, e, st, k)
	audit(ctx, e, st, action, k.String())
	return nil
}

// publishHint sends the NOTIFY hint on PostgreSQL (a no-op on SQLite, where
// gateways poll): the change is already in the table, so a failure only
// delays it to the next poll.
func publishHint(ctx context.Context, e *env, st *models.Store, k models.UserKey) {
	pub := notify.NewPublisher(st, slog.New(slog.NewTextHandler(e.stderr, nil)), nil)
	if k.ID == "" {
		k.ID = "*" // purge: any user message makes the replicas read the changes
	}
	if err := pub.Publish(ctx, notify.Message{Kind: notify.KindUser, User: k.ID, Issuer: k.Issuer}); err != nil {
		fmt.Fprintf(e.stderr, "warning: could not notify the running replicas at once (they read the change within a second): %v\n", err)
	}
}

// audit writes the operator's action to audit_events; a failure is a warning.
func audit(ctx context.Context, e *env, st *models.Store, action, target string) {
	if err := st.RecordAudit(ctx, models.AuditEvent{Actor: "cli", Action: action, Target: target}); err != nil {
		fmt.Fprintf(e.stderr, "warning: could not write the audit event: %v\n", err)
	}
}

// writeJSON prints v as indented JSON with every non-printable character
// escaped (termJSON), so a mirrored value cannot drive the terminal.
func writeJSON(e *env, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := e.stdout.Write(termJSON(b.Bytes()))
	return err
}

// parseAge is a Go duration, or a whole number of days ("30d").
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, errors.New(`want a positive number of days such as "30d", or a duration such as "720h"`)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New(`want a positive duration such as "720h", or days such as "30d"`)
	}
	return d, nil
}
