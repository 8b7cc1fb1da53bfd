package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultRedisPrefix starts every key the relay writes to Redis.
const DefaultRedisPrefix = "finesse-relay:"

// RedisOptions tune a Redis store. The zero value is ready to use.
type RedisOptions struct {
	// Prefix starts every key (default DefaultRedisPrefix; the URL's
	// key_prefix query parameter overrides it). Relays sharing a prefix
	// share sessions: give each deployment its own.
	Prefix string
	// TLS, when set, is the TLS configuration for rediss:// (say, with the
	// relay's own trust store); its ServerName defaults to the URL's host.
	// Without it rediss:// verifies against the system's roots.
	TLS *tls.Config
}

// Redis is a Store in Redis (or a Sentinel-managed primary), shared by
// several relay instances. Keys:
//
//	<prefix>k:<key>    Put/PutNew/Incr values (strings, PX ttl)
//	<prefix>s:<name>   streams (Redis Streams; entry id <seq+1>-0, field d)
//	<prefix>l:<name>   a lease's owner (PX ttl)
//	<prefix>f:<name>   a lease's fence counter (ttl + FenceRetention)
//
// Network and server failures are returned wrapping ErrUnavailable; the
// client reconnects by itself, so the store recovers when Redis does.
type Redis struct {
	c      redis.UniversalClient
	prefix string
	where  string // the URL without its password, for errors
}

// OpenRedis connects to the Redis at rawURL and checks that it answers.
// Accepted forms (go-redis's own URL syntax):
//
//	redis://[user:password@]host:6379[/db][?option=value…]
//	rediss://…                       (TLS)
//	redis://[user:password@]sentinel1:26379[/db]?master_name=NAME&addr=sentinel2:26379&addr=sentinel3:26379[&password=PRIMARY_PASSWORD]
//
// With master_name the host and addr entries are Sentinels and the user
// and password in the URL are the Sentinels'; password= and username=
// are the primary's. Options are go-redis's, snake_case (dial_timeout,
// read_timeout, pool_size, …), plus key_prefix.
func OpenRedis(ctx context.Context, rawURL string, opts RedisOptions) (*Redis, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	where := u.Redacted()
	q := u.Query()
	prefix := opts.Prefix
	if p := q.Get("key_prefix"); p != "" {
		prefix = p
	}
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	q.Del("key_prefix")
	u.RawQuery = q.Encode()

	var c redis.UniversalClient
	if q.Has("master_name") {
		fo, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis URL %s: %w", where, err)
		}
		fo.DisableIdentity = true
		fo.TLSConfig = withTLS(fo.TLSConfig, opts.TLS)
		if !q.Has("pool_size") {
			fo.PoolSize = max(fo.PoolSize, minPoolSize)
		}
		c = redis.NewFailoverClient(fo)
	} else {
		o, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis URL %s: %w", where, err)
		}
		o.DisableIdentity = true
		o.TLSConfig = withTLS(o.TLSConfig, opts.TLS)
		if !q.Has("pool_size") {
			o.PoolSize = max(o.PoolSize, minPoolSize)
		}
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		c = redis.NewClient(o)
	}
	r := &Redis{c: c, prefix: prefix, where: where}
	if err := r.Ping(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return r, nil
}

// minPoolSize is the connection pool's size unless the URL sets
// pool_size: go-redis's default (10 per CPU) is 20 on a 2-core host, and
// with several active instances up to 16 of them may be busy at once (8
// follow readers waiting in XREAD BLOCK, 8 appenders), besides sign-ins.
const minPoolSize = 64

// withTLS applies the caller's TLS configuration to the one parsed from a
// rediss:// URL (nil for redis://, which stays plain).
func withTLS(parsed, custom *tls.Config) *tls.Config {
	if parsed == nil || custom == nil {
		return parsed
	}
	c := custom.Clone()
	if c.ServerName == "" {
		c.ServerName = parsed.ServerName
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// String names the store for logs (no password).
func (r *Redis) String() string { return r.where }

func (r *Redis) kv(key string) string      { return r.prefix + "k:" + key }
func (r *Redis) stream(name string) string { return r.prefix + "s:" + name }
func (r *Redis) owner(name string) string  { return r.prefix + "l:" + name }
func (r *Redis) fence(name string) string  { return r.prefix + "f:" + name }

// fail turns a client error into the Store's: redis.Nil is ErrNotFound,
// anything else (network, timeout, a failing-over or loading server) is
// ErrUnavailable.
func (r *Redis) fail(op, name string, err error) error {
	if name != "" {
		op += " " + strconv.Quote(name)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.Nil):
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case errors.Is(err, redis.ErrClosed):
		return fmt.Errorf("redis store %s: %s: %w", r.where, op, errClosed)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("redis store %s: %s: %w", r.where, op, err)
	}
	return fmt.Errorf("redis store %s: %s: %w (%w)", r.where, op, ErrUnavailable, err)
}

func px(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0 // KeepTTL would be -1; 0 means no expiry for SET
	}
	return ttl
}

// ms is ttl in whole milliseconds, at least 1.
func ms(ttl time.Duration) int64 {
	return max(ttl.Milliseconds(), 1)
}

// Put implements Store.
func (r *Redis) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkKey("key", key); err != nil {
		return err
	}
	if err := checkValue(key, len(value)); err != nil {
		return err
	}
	return r.fail("put", key, r.c.Set(ctx, r.kv(key), value, px(ttl)).Err())
}

// PutNew implements Store: SET NX.
func (r *Redis) PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkKey("key", key); err != nil {
		return false, err
	}
	if err := checkValue(key, len(value)); err != nil {
		return false, err
	}
	ok, err := r.c.SetNX(ctx, r.kv(key), value, px(ttl)).Result()
	return ok, r.fail("put-new", key, err)
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := r.c.Get(ctx, r.kv(key)).Bytes()
	if err != nil {
		return nil, r.fail("get", key, err)
	}
	return v, nil
}

// Take implements Store: GETDEL, atomic in Redis.
func (r *Redis) Take(ctx context.Context, key string) ([]byte, error) {
	v, err := r.c.GetDel(ctx, r.kv(key)).Bytes()
	if err != nil {
		return nil, r.fail("take", key, err)
	}
	return v, nil
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) error {
	return r.fail("delete", key, r.c.Del(ctx, r.kv(key)).Err())
}

// incrScript: INCRBY, and a new counter (one without an expiry) gets the
// ttl. Redis 6.2 has no PEXPIRE NX, hence the script.
var incrScript = redis.NewScript(`
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return n`)

// Incr implements Store.
func (r *Redis) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkKey("key", key); err != nil {
		return 0, err
	}
	var ttlMS int64
	if ttl > 0 {
		ttlMS = ms(ttl)
	}
	n, err := incrScript.Run(ctx, r.c, []string{r.kv(key)}, delta, ttlMS).Int64()
	if err != nil && strings.Contains(err.Error(), "not an integer") {
		return 0, fmt.Errorf("store: Incr %q: the key holds a value that is not a counter", key)
	}
	return n, r.fail("incr", key, err)
}

// globEscape makes s match itself in a SCAN MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Scan implements Store: SCAN MATCH <prefix>k:<prefix>* and MGET per
// batch. Keys deleted or expired between the two are skipped.
func (r *Redis) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) bool) error {
	pattern := globEscape(r.kv(prefix)) + "*"
	strip := len(r.kv(""))
	var cursor uint64
	for {
		keys, next, err := r.c.Scan(ctx, cursor, pattern, 500).Result()
		if err != nil {
			return r.fail("scan", prefix, err)
		}
		if len(keys) > 0 {
			vals, err := r.c.MGet(ctx, keys...).Result()
			if err != nil {
				return r.fail("scan", prefix, err)
			}
			for i, v := range vals {
				s, ok := v.(string)
				if !ok {
					continue
				}
				if !fn(keys[i][strip:], []byte(s)) {
					return nil
				}
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// appendScript: KEYS stream[, lease owner, lease fence]; ARGV seq+1,
// data, maxLen, ttl ms (0: none)[, fence]. Returns 0 done, 1 stale seq,
// 2 lease lost. The stream's newest id is checked first (an explicit XADD
// id at or below it would fail anyway, with a less useful error).
var appendScript = redis.NewScript(`
if #KEYS == 3 then
  if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('GET', KEYS[3]) ~= ARGV[5] then
    return 2
  end
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 and tonumber(string.match(last[1][1], '^(%d+)-')) >= tonumber(ARGV[1]) then
  return 1
end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], ARGV[1] .. '-0', 'd', ARGV[2])
if tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('PERSIST', KEYS[1])
end
return 0`)

// Append implements Store: XADD with the id <seq+1>-0 and an exact
// MAXLEN, then PEXPIRE, in one script.
func (r *Redis) Append(ctx context.Context, stream string, e Entry, maxLen int, ttl time.Duration) error {
	if err := checkAppend(stream, e, maxLen); err != nil {
		return err
	}
	return r.append(ctx, []string{r.stream(stream)}, stream, e, maxLen, ttl)
}

// AppendFenced implements Store: the lease check runs in the same script.
func (r *Redis) AppendFenced(ctx context.Context, lease string, fence int64, stream string, e Entry, maxLen int, ttl time.Duration) error {
	if err := checkAppend(stream, e, maxLen); err != nil {
		return err
	}
	err := r.append(ctx, []string{r.stream(stream), r.owner(lease), r.fence(lease)}, stream, e, maxLen, ttl, fence)
	if errors.Is(err, ErrLeaseLost) {
		return fmt.Errorf("append to %q under lease %q with fence %d: %w", stream, lease, fence, ErrLeaseLost)
	}
	return err
}

func (r *Redis) append(ctx context.Context, keys []string, stream string, e Entry, maxLen int, ttl time.Duration, fence ...int64) error {
	var ttlMS int64
	if ttl > 0 {
		ttlMS = ms(ttl)
	}
	args := []any{e.Seq + 1, e.Data, maxLen, ttlMS}
	if len(fence) > 0 {
		args = append(args, fence[0])
	}
	res, err := appendScript.Run(ctx, r.c, keys, args...).Int64()
	switch {
	case err != nil:
		return r.fail("append", stream, err)
	case res == 1:
		return fmt.Errorf("append seq %d to %q: %w", e.Seq, stream, ErrStaleSeq)
	case res == 2:
		return ErrLeaseLost
	}
	return nil
}

// entries converts stream messages (ids <seq+1>-0) to Entries.
func entries(msgs []redis.XMessage) ([]Entry, error) {
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		ms, _, _ := strings.Cut(m.ID, "-")
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("store: stream entry id %q is not one the relay wrote", m.ID)
		}
		d, _ := m.Values["d"].(string)
		out = append(out, Entry{Seq: n - 1, Data: []byte(d)})
	}
	return out, nil
}

// readChunk bounds one XREAD BLOCK, so that a cancelled ctx (which does
// not interrupt a blocked connection) ends a Read within it.
const readChunk = time.Second

// Read implements Store: XRANGE, then XREAD BLOCK when there is nothing
// yet. A waiting Read holds one pooled connection while it waits.
func (r *Redis) Read(ctx context.Context, stream string, after int64, limit int, wait time.Duration) ([]Entry, error) {
	key := r.stream(stream)
	count := int64(limit)
	if limit <= 0 {
		count = 0
	}
	from := max(after+2, 0) // ids are <seq+1>-0: seq > after ⇔ id ≥ after+2
	var msgs []redis.XMessage
	var err error
	if count > 0 {
		msgs, err = r.c.XRangeN(ctx, key, strconv.FormatInt(from, 10), "+", count).Result()
	} else {
		msgs, err = r.c.XRange(ctx, key, strconv.FormatInt(from, 10), "+").Result()
	}
	if err != nil {
		return nil, r.fail("read", stream, err)
	}
	if len(msgs) > 0 || wait <= 0 {
		return entries(msgs)
	}
	deadline := time.Now().Add(wait)
	lastID := strconv.FormatInt(max(after+1, 0), 10) + "-0" // XREAD: ids above this
	for ctx.Err() == nil {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		block := min(left, readChunk)
		res, err := r.c.XRead(ctx, &redis.XReadArgs{Streams: []string{key, lastID}, Count: count, Block: max(block, time.Millisecond)}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case err != nil:
			if ctx.Err() != nil {
				return nil, nil
			}
			return nil, r.fail("read", stream, err)
		}
		for _, s := range res {
			if len(s.Messages) > 0 {
				return entries(s.Messages)
			}
		}
	}
	return nil, nil
}

// ReadStreams implements Store: one XREAD over every stream (BLOCK while
// none has anything new), so a waiting call holds one connection.
func (r *Redis) ReadStreams(ctx context.Context, from map[string]int64, limit int, wait time.Duration) (map[string][]Entry, error) {
	if err := checkStreams(from); err != nil {
		return nil, err
	}
	out := make(map[string][]Entry)
	if len(from) == 0 {
		return out, nil
	}
	names := make(map[string]string, len(from)) // Redis key → stream
	args := make([]string, 0, 2*len(from))
	for stream := range from {
		key := r.stream(stream)
		names[key] = stream
		args = append(args, key)
	}
	for _, key := range args[:len(from)] {
		args = append(args, strconv.FormatInt(max(from[names[key]]+1, 0), 10)+"-0") // XREAD: ids above <after+1>-0
	}
	count := int64(max(limit, 0))
	deadline := time.Now().Add(wait)
	for {
		block := time.Duration(-1) // no BLOCK: answer at once
		if left := time.Until(deadline); wait > 0 && left > 0 {
			block = max(min(left, readChunk), time.Millisecond)
		}
		res, err := r.c.XRead(ctx, &redis.XReadArgs{Streams: args, Count: count, Block: block}).Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			if ctx.Err() != nil {
				return out, nil
			}
			return nil, r.fail("read", fmt.Sprintf("%d streams", len(from)), err)
		}
		for _, st := range res {
			if len(st.Messages) == 0 {
				continue
			}
			es, err := entries(st.Messages)
			if err != nil {
				return nil, err
			}
			out[names[st.Stream]] = es
		}
		if len(out) > 0 || block < 0 || ctx.Err() != nil || !time.Now().Before(deadline) {
			return out, nil
		}
	}
}

// LastSeq implements Store.
func (r *Redis) LastSeq(ctx context.Context, stream string) (int64, error) {
	msgs, err := r.c.XRevRangeN(ctx, r.stream(stream), "+", "-", 1).Result()
	if err != nil {
		return 0, r.fail("last-seq", stream, err)
	}
	if len(msgs) == 0 {
		return 0, fmt.Errorf("last seq of %q: %w", stream, ErrNotFound)
	}
	es, err := entries(msgs)
	if err != nil {
		return 0, err
	}
	return es[0].Seq, nil
}

// acquireScript: KEYS owner, fence; ARGV owner, ttl ms, fence ttl ms.
// Returns {fence, 1} when owner holds the lease after the call, {fence, 0}
// when another owner does.
var acquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {tonumber(redis.call('GET', KEYS[2]) or '0'), 1}
elseif cur then
  return {tonumber(redis.call('GET', KEYS[2]) or '0'), 0}
end
local f = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {f, 1}`)

// Acquire implements Store.
func (r *Redis) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (int64, bool, error) {
	if err := checkKey("lease", name); err != nil {
		return 0, false, err
	}
	if owner == "" {
		return 0, false, fmt.Errorf("store: acquire %q: empty owner", name)
	}
	if ttl <= 0 {
		return 0, false, fmt.Errorf("store: acquire %q: ttl %v must be positive", name, ttl)
	}
	res, err := acquireScript.Run(ctx, r.c, []string{r.owner(name), r.fence(name)}, owner, ms(ttl), ms(ttl+FenceRetention)).Int64Slice()
	if err != nil {
		return 0, false, r.fail("acquire", name, err)
	}
	if len(res) != 2 {
		return 0, false, fmt.Errorf("redis store %s: acquire %q: unexpected reply %v", r.where, name, res)
	}
	return res[0], res[1] == 1, nil
}

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`)

// Release implements Store.
func (r *Redis) Release(ctx context.Context, name, owner string) error {
	n, err := releaseScript.Run(ctx, r.c, []string{r.owner(name)}, owner).Int64()
	if err != nil {
		return r.fail("release", name, err)
	}
	if n == 0 {
		return fmt.Errorf("release %q as %q: %w", name, owner, ErrLeaseLost)
	}
	return nil
}

// Holder implements Store.
func (r *Redis) Holder(ctx context.Context, name string) (string, int64, error) {
	vals, err := r.c.MGet(ctx, r.owner(name), r.fence(name)).Result()
	if err != nil {
		return "", 0, r.fail("holder", name, err)
	}
	owner, ok := vals[0].(string)
	if !ok {
		return "", 0, fmt.Errorf("holder of %q: %w", name, ErrNotFound)
	}
	fs, _ := vals[1].(string)
	fence, _ := strconv.ParseInt(fs, 10, 64)
	return owner, fence, nil
}

// Ping implements Store.
func (r *Redis) Ping(ctx context.Context) error {
	return r.fail("ping", "", r.c.Ping(ctx).Err())
}

// Close implements Store: it closes the client's connections (a waiting
// Read returns).
func (r *Redis) Close() error {
	if err := r.c.Close(); err != nil {
		return fmt.Errorf("redis store %s: close: %w", r.where, err)
	}
	return nil
}
