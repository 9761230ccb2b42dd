package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

func cmdKeygen(_ context.Context, fs *flag.FlagSet, args []string, _ io.Writer) error {
	dir := fs.String("dir", ".", "directory for the key pair")
	alg := fs.String("alg", "RS256", "RS256 (RSA 2048: private.pem, public.pem) or ES256 (P-256: es256-private.pem, es256-public.pem)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var key crypto.Signer
	var err error
	prefix := ""
	switch *alg {
	case "RS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		prefix = "es256-"
	default:
		return fmt.Errorf("-alg %q: want RS256 or ES256", *alg)
	}
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dir, prefix+"private.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*dir, prefix+"public.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// minter signs access tokens shaped like SimpleJWT's (and the fake auth
// service's): token_type, exp, iat, jti and the user id claim.
type minter struct {
	method jwt.SigningMethod
	key    any
	ttl    time.Duration
	now    time.Time
}

func newMinter(secret, keyFile string, ttl time.Duration) (*minter, error) {
	m := &minter{ttl: ttl, now: time.Now()}
	switch {
	case secret != "" && keyFile != "":
		return nil, errors.New("give either a secret (HS256) or -key (RS256, ES256), not both")
	case secret != "":
		m.method, m.key = jwt.SigningMethodHS256, []byte(secret)
	case keyFile != "":
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, err
		}
		if k, err := jwt.ParseRSAPrivateKeyFromPEM(b); err == nil {
			m.method, m.key = jwt.SigningMethodRS256, k
			break
		}
		k, err := jwt.ParseECPrivateKeyFromPEM(b)
		if err != nil || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%s: neither an RSA nor a P-256 private key (%v)", keyFile, err)
		}
		m.method, m.key = jwt.SigningMethodES256, k
	default:
		return nil, errors.New("need $LOADKIT_SECRET (HS256) or -key (RS256, ES256)")
	}
	return m, nil
}

// token mints one never-seen access token for a user.
func (m *minter) token(userID int) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	claims := jwt.MapClaims{
		"token_type": "access",
		"exp":        m.now.Add(m.ttl).Unix(),
		"iat":        m.now.Unix(),
		"jti":        hex.EncodeToString(jti[:]),
		"user_id":    userID,
	}
	return jwt.NewWithClaims(m.method, claims).SignedString(m.key)
}

func cmdMint(_ context.Context, fs *flag.FlagSet, args []string, _ io.Writer) error {
	users := fs.Int("users", 1, "tokens cycle through user ids first..first+users-1")
	first := fs.Int("first-user", 1, "first user id")
	count := fs.Int("count", 1, "number of tokens")
	out := fs.String("out", "", "output file (with -split K: FILE.0 .. FILE.K-1)")
	split := fs.Int("split", 1, "deal the tokens round-robin into this many files")
	key := fs.String("key", "", "sign with this PEM private key (RSA: RS256, P-256: ES256) instead of HS256 with $LOADKIT_SECRET")
	fs.StringVar(key, "rsa-key", "", "the same as -key (older name)")
	ttl := fs.Duration("ttl", 3*time.Hour, "token lifetime")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *users < 1 || *count < 1 || *split < 1 || *out == "" {
		return errors.New("need -users >= 1, -count >= 1, -split >= 1 and -out")
	}
	secret := os.Getenv("LOADKIT_SECRET")
	if *key != "" {
		secret = "" // -key wins over the environment
	}
	m, err := newMinter(secret, *key, *ttl)
	if err != nil {
		return err
	}
	toks := make([]string, *count)
	var wg sync.WaitGroup
	errs := make(chan error, runtime.NumCPU())
	workers := runtime.NumCPU()
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(toks); i += workers {
				t, err := m.token(*first + i%*users)
				if err != nil {
					errs <- err
					return
				}
				toks[i] = t
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	files := make([]*bufio.Writer, *split)
	closers := make([]*os.File, *split)
	for i := range files {
		name := *out
		if *split > 1 {
			name += "." + strconv.Itoa(i)
		}
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		closers[i], files[i] = f, bufio.NewWriterSize(f, 1<<20)
	}
	for i, t := range toks {
		w := files[i%*split]
		_, _ = w.WriteString(t)
		_ = w.WriteByte('\n')
	}
	for i := range files {
		if err := errors.Join(files[i].Flush(), closers[i].Close()); err != nil {
			return err
		}
	}
	return nil
}

// seedRecord is a user record as the fake auth service's command serves it
// for userN@example.com.
func seedRecord(id int) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "email": fmt.Sprintf("user%d@example.com", id), "username": fmt.Sprintf("user%d", id),
		"first_name": "", "last_name": "", "is_active": true, "is_staff": false, "is_superuser": false,
		"services": []string{"billing"},
	})
	return b
}

func cmdSeed(ctx context.Context, fs *flag.FlagSet, args []string, _ io.Writer) error {
	db := fs.String("db", "", "SQLite file of the user mirror")
	users := fs.Int("users", 1, "insert user ids first..first+users-1")
	first := fs.Int("first-user", 1, "first user id")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *db == "" {
		return errors.New("need -db")
	}
	store, err := models.OpenStore(ctx, models.Database{Driver: "sqlite", DSN: *db}, time.Now)
	if err != nil {
		return err
	}
	defer store.Close()
	now := time.Now()
	for id := *first; id < *first+*users; id++ {
		u, err := models.UserFromRecord(seedRecord(id), now)
		if err != nil {
			return err
		}
		if err := store.UpsertUser(ctx, u); err != nil {
			return err
		}
	}
	return nil
}
