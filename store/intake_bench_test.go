package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/comments"
	"consult/internal/redistest"
	rec "consult/record"
)

// redisCPU reads the server's own CPU time: what a comment costs Redis, which a
// loaded machine inflates far less than wall time.
func redisCPU(t testing.TB, rdb redis.UniversalClient, kinds ...string) time.Duration {
	info := rdb.Info(context.Background(), "cpu").Val()
	var total float64
	if len(kinds) == 0 {
		kinds = []string{"used_cpu_sys:", "used_cpu_user:"}
	}
	for _, l := range strings.Split(info, "\r\n") {
		for _, k := range kinds {
			if v, ok := strings.CutPrefix(l, k); ok {
				f, _ := strconv.ParseFloat(v, 64)
				total += f
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}

// BenchmarkIntakeRedisCPU reports Redis's CPU per comment for the intake script
// at several batch sizes, beside a pipeline of bare XADDs of the same payload.
func BenchmarkIntakeRedisCPU(b *testing.B) {
	for _, batch := range []int{1, 4, 16, 64} {
		for _, kind := range []string{"script", "xadd", "luaxadd", "luaxaddhset"} {
			b.Run(fmt.Sprintf("%s/batch=%d", kind, batch), func(b *testing.B) {
				srv := redistest.Start(b)
				rdb := srv.Client(b)
				now := time.Now()
				ds := NewDrafts(rdb, nil)
				d, err := ds.Import(context.Background(), rec.AdminToken, valid("bench", now.Add(-time.Hour), now.Add(time.Hour)))
				if err != nil {
					b.Fatal(err)
				}
				s := NewComments(rdb, ds, IntakeConfig{CapsOff: true})
				sub := comments.Submission{DraftID: d.ID, Body: strings.Repeat("建议明确适用范围并增加听证程序", 10), Name: "张三", Contact: "13800000000"}
				cpu0, user0 := redisCPU(b, rdb), redisCPU(b, rdb, "used_cpu_user:")
				b.ResetTimer()
				for i := 0; i < b.N; i += batch {
					calls := make([]*call, 0, batch)
					for j := 0; j < batch; j++ {
						p := prepared(b, d, sub, time.Now().Add(time.Minute))
						calls = append(calls, &call{draftID: d.ID, p: p, done: make(chan struct{}), keys: [6]string{draftHash(d.ID), intakeStream(d.ID),
							receiptsHash(d.ID), piiHash(d.ID), countsHash(d.ID), dupSet(d.ID)}})
					}
					if kind == "script" {
						s.batch.send(calls)
						if calls[0].err != nil {
							b.Fatal(calls[0].err)
						}
						continue
					}
					if kind == "luaxadd" || kind == "luaxaddhset" {
						keys, args := s.batch.script(calls, 1, -1, 0, 0)
						sc := bareXadd
						if kind == "luaxaddhset" {
							sc = xaddHset
						}
						if err := sc.Run(context.Background(), rdb, keys, args...).Err(); err != nil {
							b.Fatal(err)
						}
						continue
					}
					_, err := rdb.Pipelined(context.Background(), func(p redis.Pipeliner) error {
						for _, c := range calls {
							p.XAdd(context.Background(), &redis.XAddArgs{Stream: "base", Values: []any{"c", c.p.entry}})
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64((redisCPU(b, rdb)-cpu0).Nanoseconds())/1000/float64(b.N), "redis-µs/comment")
				b.ReportMetric(float64((redisCPU(b, rdb, "used_cpu_user:")-user0).Nanoseconds())/1000/float64(b.N), "redis-user-µs/comment")
			})
		}
	}
}

var bareXadd = redis.NewScript(`
for i = 4, #ARGV, 10 do
  redis.call('XADD', KEYS[2], '*', 'v', '2', 'code', ARGV[i], 'recv', 1, 'c', ARGV[i+1])
end
return 1
`)

var xaddHset = redis.NewScript(`
local recs = {}
for i = 4, #ARGV, 10 do
  local id = redis.call('XADD', KEYS[2], '*', 'v', '2', 'code', ARGV[i], 'recv', 1, 'c', ARGV[i+1])
  recs[#recs+1] = ARGV[i]
  recs[#recs+1] = 'q|' .. id .. '|1|' .. ARGV[i+3]
end
redis.call('HSET', KEYS[3], unpack(recs))
return 1
`)
