package cachecore

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Purges reach other proxies' L1 through a log in Redis: the proxy that
// takes a purge appends it (RPUSH <prefix>purges), and every VM reads the
// entries it has not seen every l2.sync_interval (LRANGE from its cursor)
// and applies those of other proxies to its own L1. A purged entry is thus
// gone from every proxy's L1 within about sync_interval + tick_period;
// from L2 it is gone at once (the generations, l2.go).
//
// A log entry is base64 of: origin (16 hex digits: this process) '\n'
// authority '\n' purge body.

// DefaultL2SyncInterval is how often a VM reads the purge log.
const DefaultL2SyncInterval = time.Second

type l2Sync struct {
	started bool  // the cursor is set (LLEN at start: history is not replayed)
	cursor  int64 // the next log index to read
	busy    bool  // a read is under way
	next    int64 // unix ms of the next read
}

const l2SyncBatch = 32

func (c *Cache) l2Origin() string {
	if _, err := c.keys(); err != nil {
		return ""
	}
	return strconv.FormatUint(c.fingerprint([]byte("modelcache l2 origin")), 16)
}

// l2Log is the call that appends a purge to the log (nil without L2).
func (c *Cache) l2Log(body []byte, authority string) *Call {
	l := c.cfg.L2
	if l == nil {
		return nil
	}
	entry := c.l2Origin() + "\n" + authority + "\n" + string(body)
	call := c.webdis("PUT", "/RPUSH/"+l.Prefix+"purges.raw", base64.StdEncoding.AppendEncode(nil, []byte(entry)), l.WriteTimeout)
	call.Done = func(res CallResult) []Action {
		if !res.Failed && !res.NotStarted && res.Status == 200 && parseRESP(res.Body) == respInt {
			return nil
		}
		return []Action{{Kind: ActLog, Level: LogWarn, Message: []byte("l2: a purge did not reach the purge log: other proxies keep their L1 copies until they expire")}}
	}
	return call
}

// L2Tick is the VM's periodic L2 step (the host calls it on every tick):
// read the purge log and apply other proxies' purges to this L1.
func (c *Cache) L2Tick() []Action {
	l := c.cfg.L2
	now := c.nowMs()
	if l == nil || c.l2s.busy || now < c.l2s.next {
		return nil
	}
	c.l2s.busy, c.l2s.next = true, now+l.SyncInterval.Milliseconds()
	key := l.Prefix + "purges"
	path := "/LLEN/" + key
	if c.l2s.started {
		path = "/LRANGE/" + key + "/" + strconv.FormatInt(c.l2s.cursor, 10) + "/" + strconv.FormatInt(c.l2s.cursor+l2SyncBatch-1, 10)
	}
	call := c.webdis("GET", path, nil, l.WriteTimeout)
	call.Done = func(res CallResult) []Action {
		c.l2s.busy = false
		if res.Failed || res.NotStarted || res.Status != 200 || !gjson.ValidBytes(res.Body) {
			return nil // read again next time
		}
		if !c.l2s.started {
			n := gjson.GetBytes(res.Body, "LLEN")
			if n.Type == gjson.Number {
				c.l2s.started, c.l2s.cursor = true, n.Int()
			}
			return nil
		}
		items := gjson.GetBytes(res.Body, "LRANGE")
		if !items.IsArray() {
			return nil
		}
		var acts []Action
		me := c.l2Origin()
		for _, it := range items.Array() {
			c.l2s.cursor++
			if len(items.Array()) == l2SyncBatch {
				c.l2s.next = now // more to read: at the next tick
			}
			raw, err := base64.StdEncoding.DecodeString(it.Str)
			origin, rest, ok1 := strings.Cut(string(raw), "\n")
			authority, body, ok2 := strings.Cut(rest, "\n")
			if err != nil || !ok1 || !ok2 || origin == me {
				continue
			}
			pr, err := c.purge([]byte(body), authority) // its L2 part is done already
			msg := "l2: applied another proxy's purge (" + pr.Scope + ")"
			if err != nil {
				msg = "l2: another proxy's purge could not be applied here: " + err.Error()
			}
			acts = append(acts, Action{Kind: ActLog, Level: LogInfo, Message: []byte(msg)})
		}
		return acts
	}
	return []Action{{Kind: ActDispatch, Call: call}}
}
