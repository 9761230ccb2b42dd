package authn

import (
	"encoding/binary"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"

	"jwtgate/models"
)

// BenchmarkVerdictCacheGC: one forced collection with a full verify cache
// (100 000 verdicts of 10 000 users) live. It reports the collector's
// scannable heap (/gc/scan/heap:bytes) and its CPU time per collection
// (/cpu/classes/gc/total:cpu-seconds, less noisy than wall time on a busy
// machine): the cache's slots are pointer-free, so the collector does not
// scan them.
func BenchmarkVerdictCacheGC(b *testing.B) {
	const n, users = 100000, 10000
	c, err := newVerdictCache(n)
	if err != nil {
		b.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	for i := range n {
		var k [32]byte
		binary.LittleEndian.PutUint64(k[:], uint64(i)*0x9e3779b97f4a7c15)
		tok := models.Token{Alg: "RS256", Kid: "k" + strconv.Itoa(i%4), Issuer: "https://auth", UserID: strconv.Itoa(i % users), Expires: exp}
		c.Add(k, newVerdict(tok, exp))
	}
	runtime.GC()
	before := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(before)
	gcs := 0
	for b.Loop() {
		runtime.GC()
		gcs++
	}
	b.StopTimer()
	after := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(after)
	if before[0].Value.Kind() == metrics.KindUint64 {
		b.ReportMetric(float64(before[0].Value.Uint64()), "scan-heap-B")
	}
	if after[0].Value.Kind() == metrics.KindFloat64 && gcs > 0 {
		b.ReportMetric((after[0].Value.Float64()-before[1].Value.Float64())*1e9/float64(gcs), "gc-cpu-ns/op")
	}
	runtime.KeepAlive(c)
}
