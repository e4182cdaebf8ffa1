package cachecore

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Purges reach other proxies' L1 through a log in Redis: the proxy that
// takes a purge appends a record of it (RPUSH <prefix>purges), and every
// VM reads the records it has not seen every l2.sync_interval (LRANGE from
// its cursor) and applies those of other proxies to its own L1. A purged
// entry is thus gone from every proxy's L1 within about sync_interval +
// tick_period; from L2 it is gone at once (the generations, l2.go).
//
// A record is base64 of lines: "2", origin (16 hex digits: this process),
// a random nonce (so that no two records are equal), the scope ("all",
// "model" or "entry"), the route and the model (Go-quoted), and for an
// entry the base64 of its stable identity (namespace with the tenant's
// hash, and canonical request — what every L2 value holds already). Never
// the purge body: it carries the tenant's credential.
//
// The cursor is an index into the list, which an operator may trim or
// delete: every read starts one record before the cursor, and that record
// must be the last one this VM read. If it is not (the log was trimmed,
// deleted or rewritten), records may have been missed: the VM drops its
// whole L1 (it cannot know what else to drop) once it has taken where the
// log ends now (LLEN, at once) and read the record before that (at once
// too), and reads on from there: the records
// before it are older than the drop, so applying them again would only
// drop what was cached since (l2LogLost).
//
// The process keeps its position in each log in shared data (l2CursorKey),
// written after every read: a VM that starts — another worker, a VM
// reloaded after a crash, a new plugin configuration — reads on from
// there, so what was logged while no VM of the process read the log still
// reaches its L1 (shared data, and so L1, outlive the VMs). Only when the
// process has no position in the log does a VM start where the log ends
// (LLEN: history is not replayed); the process has been caching since its
// first request, so a record already there may be newer than an entry it
// cached, and L1 is dropped if the log is not empty (l2SyncFirst).

// DefaultL2SyncInterval is how often a VM reads the purge log.
const DefaultL2SyncInterval = time.Second

type l2Sync struct {
	started    bool   // the cursor is set (the process's, or LLEN: l2SyncFirst)
	lost       bool   // the log was found lost: the next LLEN sets the cursor, then L1 is dropped (l2DropLost)
	baseline   bool   // the next read's first record is the last one before the cursor, taken as is
	cursor     int64  // the next log index to read
	last       uint64 // the digest of the record at cursor-1 (l2RecordSum; 0 at index 0)
	busy       bool   // a read is under way
	startFails int    // start records that failed in a row (l2MarkStart)
	applyFails int    // tries of the record at cursor that shared data refused
	next       int64  // unix ms of the next read
	chained    int    // full reads followed at once since the last tick's read (l2SyncChain)
	// dropped: L1 went whole (all its entries, every model's generation)
	// while this read's records were applied; the read's later records
	// that would drop it whole again (unreadable, "all") are covered by
	// that drop (review Z261: 32 garbage records walked the table 32
	// times, 8 reads a tick).
	dropped bool
}

const l2SyncBatch = 32

// l2SyncChain bounds the full reads that follow one another at once
// between two ticks (256 records a tick): a webdis whose LLEN and LRANGE
// disagree answered every read full, and the chain never ended, dropping
// L1 at each lap (review Z170). Past it, the rest waits for the next tick.
const l2SyncChain = 8

func (c *Cache) l2Origin() string {
	if _, err := c.keys(); err != nil {
		return ""
	}
	return strconv.FormatUint(c.fingerprint([]byte("modelcache l2 origin")), 16)
}

// l2MaxRecord bounds a purge log record, whatever any proxy's
// configuration: every reader takes that much per record (l2SyncCap), so
// a record over it would stop a reader's log for good.
const l2MaxRecord = 128 << 10

// l2Records are the purge log records of a purge (none without L2):
// scope, route and model, then the stable identities of what an entry
// purge removes — an embeddings batch's items in as many records as keep
// each within l2MaxRecord. An identity too large for any record (a
// request over 128 KiB) is written as a purge of its model, which
// removes more on other proxies but never less.
func (c *Cache) l2Records(scope, route, model string, stables ...[]byte) string {
	if c.cfg.L2 == nil {
		return ""
	}
	head := scope + "\n" + strconv.Quote(route) + "\n" + strconv.Quote(model)
	if len(head) > l2MaxRecord/2 {
		// A model name no record holds (only an entry purge's replayed
		// request can bring one): purged everywhere, which removes more
		// but never less.
		return c.l2Records("all", "", "")
	}
	const room = l2MaxRecord - 1024 // for the entry's own head (l2Log)
	var out strings.Builder
	r := head
	for i, stable := range stables {
		f := "\n" + base64.StdEncoding.EncodeToString(stable)
		if len(head)+len(f) > room {
			return c.l2Records("model", route, model)
		}
		if i > 0 && len(r)+len(f) > room {
			out.WriteString(r)
			out.WriteByte(0)
			r = head
		}
		r += f
	}
	out.WriteString(r)
	return out.String()
}

// l2LogAll is the call that appends records (l2Records' NUL-separated
// list) to the log, one after the other (nil without L2 or records).
func (c *Cache) l2LogAll(records string) *Call {
	if records == "" {
		return nil
	}
	var first, last *Call
	for _, rec := range strings.Split(records, "\x00") {
		call := c.l2Log(rec)
		if call == nil {
			continue
		}
		if last == nil {
			first = call
		} else {
			done := last.Done
			last.Done = func(r CallResult) []Action {
				return append(done(r), Action{Kind: ActDispatch, Call: call})
			}
		}
		last = call
	}
	return first
}

// l2Log is the call that appends a purge's record to the log (nil without
// L2 or without a record).
func (c *Cache) l2Log(record string) *Call {
	l := c.cfg.L2
	if l == nil || record == "" {
		return nil
	}
	return c.l2LogTry(record, 1)
}

// l2Entry is a record as the log holds it: the format, this process's
// origin, a nonce of its own, then the record; base64.
func (c *Cache) l2Entry(record string) []byte {
	entry := "2\n" + c.l2Origin() + "\n" + strconv.FormatUint(c.rand(), 36) + "\n" + record
	return base64.StdEncoding.AppendEncode(nil, []byte(entry))
}

// l2LogTry appends a record to the purge log, tried l2WriteTries times,
// each try with a nonce of its own: a try whose answer was lost may have
// landed, and a second copy of the same bytes could pass for the record a
// reader read last across a trim (review Z54). A purge applied twice only
// drops entries again.
func (c *Cache) l2LogTry(record string, try int) *Call {
	l := c.cfg.L2
	call := c.webdis("PUT", "/RPUSH/"+l.Prefix+"purges.raw", c.l2Entry(record), l.WriteTimeout)
	call.Done = func(res CallResult) []Action {
		if !res.Failed && !res.NotStarted && res.Status == 200 && parseRESP(res.Body) == respInt {
			return nil
		}
		if try < l2WriteTries {
			return []Action{{Kind: ActDispatch, Call: c.l2LogTry(record, try+1)}}
		}
		return []Action{{Kind: ActLog, Level: LogWarn, Message: []byte("l2: a purge did not reach the purge log: other proxies keep their L1 copies until they expire")}}
	}
	return call
}

// l2SyncCap bounds a log read's answer: l2SyncBatch+1 records, each at
// most l2MaxRecord, base64 twice and JSON-quoted.
func (c *Cache) l2SyncCap() int { return (l2SyncBatch + 1) * (2*l2MaxRecord + 4096) }

// L2Tick is the VM's periodic L2 step (the host calls it on every tick):
// read the purge log and apply other proxies' purges to this L1.
func (c *Cache) L2Tick() []Action {
	l := c.cfg.L2
	now := c.nowMs()
	// A wall clock stepped back more than an interval leaves next far
	// ahead: it is due then, not once the clock has caught up again.
	if l == nil || c.l2s.busy || now < c.l2s.next && c.l2s.next-now <= l.SyncInterval.Milliseconds() {
		return nil
	}
	c.l2s.next = now + l.SyncInterval.Milliseconds()
	c.l2s.chained = 0
	return c.l2Read()
}

// l2Read sends this VM's next read of the purge log: LLEN when it has no
// position, else LRANGE from one record before it.
func (c *Cache) l2Read() []Action {
	l := c.cfg.L2
	c.l2s.busy = true
	if !c.l2s.started && !c.l2s.lost {
		c.l2Resume()
	}
	key := l.Prefix + "purges"
	path := "/LLEN/" + key
	asked := 0 // records the range asks for
	if c.l2s.started {
		from := max(c.l2s.cursor-1, 0)
		path = "/LRANGE/" + key + "/" + strconv.FormatInt(from, 10) + "/" + strconv.FormatInt(c.l2s.cursor+l2SyncBatch-1, 10)
		asked = int(c.l2s.cursor + l2SyncBatch - from)
	}
	call := c.webdis("GET", path, nil, l.WriteTimeout)
	if c.l2s.started {
		call.MaxBody = max(call.MaxBody, c.l2SyncCap()) // a batch of records
	}
	call.Done = func(res CallResult) []Action {
		c.l2s.busy = false
		if res.Failed || res.NotStarted {
			return nil // read again next time
		}
		if res.Status != 200 {
			// Refused (webdis's ACL answers 403 for a command it does not
			// allow): read again next time, and counted as a Redis error
			// reply is; silent, purges never reached this L1 and no stat
			// said so (review Z261).
			return c.l2SyncError()
		}
		if !l2JSON(res.Body, c.l2SyncCap()) {
			return c.l2SyncError()
		}
		if !c.l2s.started {
			n := gjson.GetBytes(res.Body, "LLEN")
			if n.Type != gjson.Number {
				return c.l2SyncError()
			}
			c.l2s.started, c.l2s.cursor, c.l2s.last, c.l2s.baseline = true, n.Int(), 0, n.Int() > 0
			if c.l2s.baseline {
				// The record before the position is read at once, and
				// L1 dropped only then (below): a log deleted or trimmed
				// between the two reads is then either found lost, or
				// holds before the position only records older than the
				// drop. Taken on trust at the next interval's read, a
				// purge logged after a delete in between was taken for
				// the old record and never applied (review Z44).
				return c.l2Read()
			}
			return c.l2MarkStart()
		}
		arr := gjson.GetBytes(res.Body, "LRANGE")
		if !arr.IsArray() {
			return c.l2SyncError()
		}
		if arrayLen(arr) > asked {
			// More records than the range holds: not an answer to this
			// read. Applying them would do unbounded work in one tick
			// and move the cursor past records never asked for. Counted
			// before Array() builds every element (review Z144).
			return c.l2SyncError()
		}
		items := arr.Array()
		for _, it := range items {
			// Records are strings; webdis relays a Redis error reply
			// (LOADING, NOAUTH, BUSY) as [false, "<message>"]: an error,
			// not a trimmed log, so the cursor and L1 stay.
			if it.Type != gjson.String {
				return c.l2SyncError()
			}
		}
		var acts []Action
		if c.l2s.cursor > 0 {
			if c.l2s.baseline && len(items) == 0 {
				// The log moved between LLEN and the read sent at once
				// after it: its length is taken again at the next
				// interval, not at once, so that a webdis whose answers
				// disagree (a lagging replica) costs one chain of reads
				// a tick (review Z46). Purges may have been missed, as
				// when the log is found lost (review Z52: a new
				// process's position was then saved with no drop): L1
				// goes now, and again once the position is named,
				// however long webdis goes on disagreeing (review Z49).
				c.l2s.started, c.l2s.cursor, c.l2s.last, c.l2s.baseline, c.l2s.lost = false, 0, 0, false, true
				return c.l2DropNow()
			}
			if len(items) == 0 || !c.l2s.baseline && c.l2RecordSum(items[0].Str) != c.l2s.last {
				return c.l2LogLost()
			}
			c.l2s.last = c.l2RecordSum(items[0].Str)
			items = items[1:]
			if c.l2s.baseline {
				// The position named: now L1 is dropped (above), and
				// start records that failed before no longer count.
				c.l2s.baseline, c.l2s.startFails = false, 0
				if c.l2s.lost {
					acts = c.l2DropLost()
				} else {
					acts = c.l2SyncFirst(c.l2s.cursor)
				}
				if !c.l2s.started {
					return acts // not dropped: the VM starts over at its next read
				}
			}
		}
		// A full batch: more to read, at once (below). Read at the next
		// tick, a burst of purges reached this L1 a tick late per 32
		// records, past README's bound (review Z167). Each read applies
		// one batch, in a callback of its own.
		more := len(items) == l2SyncBatch
		if len(items) > 0 {
			// Redis had these purges before they were logged: a lookup
			// sent before now may still bring a value they purged
			// (l2Unpurged).
			c.movePurgeMark()
		}
		me := c.l2Origin()
		freed := 0
		c.l2s.dropped = false // (the read's movePurgeMark above is dropL1's first half)
		for _, it := range items {
			msg, n, failed := c.l2Apply(it.Str, me)
			if msg != "" {
				acts = append(acts, Action{Kind: ActLog, Level: LogInfo, Message: []byte(msg)})
			}
			freed += n
			if failed {
				// Shared data refused the purge (review Z56): the
				// position stays before it, and it is applied again at
				// the next tick (twice only drops entries again). After
				// l2WriteTries tries L1 goes whole instead, so that a
				// purge that cannot be applied does not stop the log.
				c.l2s.applyFails++
				c.l2s.next, more = c.nowMs(), false
				if c.l2s.applyFails < l2WriteTries {
					break
				}
				n, err := c.dropL1()
				freed += n
				if err != nil {
					break
				}
				c.l2s.dropped = true
			}
			c.l2s.applyFails = 0
			c.l2s.cursor++
			c.l2s.last = c.l2RecordSum(it.Str)
		}
		if freed > 0 {
			acts = append(acts, Action{Kind: ActFreed, N: freed})
		}
		c.l2SaveCursor()
		if more && c.l2s.chained < l2SyncChain {
			c.l2s.chained++
			acts = append(acts, c.l2Read()...)
		} else if more {
			c.l2s.next = c.nowMs() // the rest at the next tick
		}
		return acts
	}
	return []Action{{Kind: ActDispatch, Call: call}}
}

// l2MarkStart runs when this VM found the log empty: a position there
// names no record, so a purge logged after it and deleted or trimmed away
// before the next read would go unseen (review Z46). The VM appends a
// start record of its own (which every reader skips), whose index and
// digest it then holds as its position, as if it had read it. Records
// another proxy logged in between lie before it, so L1 is dropped then,
// as on a first read of a log that is not empty. If the append fails, the
// VM takes the log's length again at its next interval; after l2WriteTries
// failures in a row, the position is the empty log's, unnamed.
func (c *Cache) l2MarkStart() []Action {
	l := c.cfg.L2
	rec := c.l2Entry(l2StartScope)
	c.l2s.busy = true
	call := c.webdis("PUT", "/RPUSH/"+l.Prefix+"purges.raw", rec, l.WriteTimeout)
	call.Done = func(res CallResult) []Action {
		c.l2s.busy = false
		n, ok := int64(0), false
		if !res.Failed && !res.NotStarted && res.Status == 200 && parseRESP(res.Body) == respInt {
			body := bytes.TrimSuffix(res.Body, []byte("\r\n"))
			v, err := strconv.ParseInt(string(body[1:]), 10, 64)
			n, ok = v, err == nil && v > 0
		}
		if !ok && c.l2s.startFails+1 < l2WriteTries {
			// Tried again at the next interval, from LLEN (review Z49):
			// a position there would name nothing. If this append did
			// land, the log is no longer empty then. A lost VM drops L1
			// meanwhile (review Z52).
			c.l2s.startFails++
			c.l2s.started, c.l2s.baseline = false, false
			if c.l2s.lost {
				return c.l2DropNow()
			}
			return nil
		}
		c.l2s.startFails = 0
		c.l2s.started, c.l2s.baseline = true, false
		if !ok {
			// l2WriteTries appends failed in a row: the empty log's
			// position, unnamed, so that purges are applied at all.
			c.l2s.cursor, c.l2s.last = 0, 0
			if c.l2s.lost {
				return c.l2DropLost()
			}
			return c.l2SyncFirst(0)
		}
		c.l2s.cursor, c.l2s.last = n, c.l2RecordSum(string(rec))
		if c.l2s.lost {
			return c.l2DropLost()
		}
		if n > 1 {
			// Others' records before it. A VM of this process that
			// started at once may have named and kept a position since
			// this one's LLEN: this VM reads on from there, as one
			// started later would, and drops nothing again (review
			// Z56). Else L1 is dropped, and the position, named, kept
			// for the process's other VMs (review Z54).
			c.l2s.cursor = 0
			if c.l2Resume(); c.l2s.cursor > 0 {
				return nil
			}
			c.l2s.cursor, c.l2s.last = n, c.l2RecordSum(string(rec))
			acts := c.l2SyncFirst(n)
			if c.l2s.started {
				c.l2SaveCursor()
			}
			return acts
		}
		c.l2SaveCursor()
		return nil
	}
	return []Action{{Kind: ActDispatch, Call: call}}
}

// l2StartScope is a start record's scope (l2MarkStart): no purge.
const l2StartScope = "start"

// l2SyncFirst runs when this VM has set its cursor at the log's length n
// and, if n > 0, read the record before it, the process having no
// position in the log: VMs serve, and cache, from
// their first request, but read the log only from their first tick, so a
// purge logged in between is before the cursor, yet may be newer than an
// answer cached (or copied from L2) meanwhile. The records cannot be told
// apart, so if there are any L1 is dropped (a new process's: little in
// it). If that fails, the VM starts over at its next read.
func (c *Cache) l2SyncFirst(n int64) []Action {
	if n == 0 {
		c.l2SaveCursor()
		return nil
	}
	// The entries only: renewing every generation here, as a drop for a
	// lost log does (dropL1), refused every answer in flight in a new
	// proxy whose log held any record — at every start once anything was
	// ever purged — and its followers asked the model again (the e2e
	// cross-proxy stampede, 1 call in 3 runs). The race it closed, a
	// purge logged while this process's first request was upstream, is
	// left (review Z167's second finding).
	c.movePurgeMark()
	freed, err := c.table.Clear()
	acts := []Action{{Kind: ActFreed, N: freed}}
	if err != nil {
		c.l2s.started = false
		return append(acts, Action{Kind: ActLog, Level: LogWarn, Message: []byte("l2: the purge log held records before this process first read it, and L1 could not be dropped: " + err.Error())})
	}
	if freed > 0 {
		acts = append(acts, Action{Kind: ActLog, Level: LogInfo, Message: []byte("l2: the purge log held records before this process first read it: " +
			strconv.Itoa(freed) + " entries cached before then are dropped (a purge among them may be newer)")})
	}
	return acts
}

// l2CursorKey names, in shared data, the process's position in this
// configuration's purge log (its cluster, authority and key prefix: the
// log another plugin of the process reads may be another one) for this
// set of routes (a reader skips the records of routes it does not have,
// so its position is no other route set's).
func (c *Cache) l2CursorKey() string {
	l := c.cfg.L2
	b := []byte(l.Cluster + "\x00" + l.Authority + "\x00" + l.Prefix)
	for _, r := range c.cfg.Routes {
		b = append(append(b, 0), r.Name...)
	}
	return "mc:l2:cursor:" + strconv.FormatUint(Hash64(b, 0), 16)
}

// l2SaveCursor records this VM's position as the process's: cursor and
// the digest of the record before it (16 bytes). VMs reading the log at
// once overwrite one another: a VM that resumes from a position a little
// behind applies a few records again, which only drops entries a purge
// already dropped or newer copies of them.
func (c *Cache) l2SaveCursor() {
	if c.l2s.baseline {
		// Taken by LLEN: no record before it is known, so another VM
		// resuming it could not tell the log rewritten meanwhile. Until
		// this VM's next read, a starting VM reads the log's length
		// itself (and drops L1 if it is not empty).
		return
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], uint64(c.l2s.cursor))
	binary.LittleEndian.PutUint64(b[8:], c.l2s.last)
	_ = c.store.Set(c.l2CursorKey(), b[:], 0) // lost: the next VM starts at LLEN and drops L1
}

// l2Resume takes the process's position in the log, if it has one.
func (c *Cache) l2Resume() {
	raw, _, err := c.store.Get(c.l2CursorKey())
	if err != nil || len(raw) != 16 {
		return
	}
	if cursor := int64(binary.LittleEndian.Uint64(raw)); cursor >= 0 {
		c.l2s.started, c.l2s.cursor, c.l2s.last, c.l2s.baseline = true, cursor, binary.LittleEndian.Uint64(raw[8:]), false
	}
}

// l2RecordSum is the digest a VM keeps of the last record it read, to
// know it again (the process's secret keys it: a record cannot be crafted
// to pass for another).
func (c *Cache) l2RecordSum(rec string) uint64 {
	if _, err := c.keys(); err != nil {
		return Hash64([]byte(rec), 0)
	}
	return c.fingerprint([]byte(rec))
}

// l2SyncError counts a log read webdis answered with garbage or refused (on the
// first route: the log belongs to none).
func (c *Cache) l2SyncError() []Action {
	if len(c.cfg.Routes) == 0 {
		return nil
	}
	return []Action{{Kind: ActCount, Event: EvL2Error, Route: c.cfg.Routes[0]}}
}

// l2LogLost: the log is not what this VM read last (trimmed, deleted,
// rewritten): purges may have been missed, so the whole L1 goes, at once
// (whatever webdis answers next: it may fail, or its start record may;
// review Z52). The VM takes the log's end at once (LLEN) and drops L1
// again once its position there is named (l2DropLost): every record
// before the end is then older than the drop, and every one after it is
// read. From the log's start it applied again every purge the trim kept,
// all older than the drop.
func (c *Cache) l2LogLost() []Action {
	c.l2s.started, c.l2s.lost, c.l2s.cursor, c.l2s.last, c.l2s.baseline = false, true, 0, 0, false
	if c.l2s.chained > 0 {
		// Found by a read that followed a full one at once: the next
		// read waits for the tick, or a webdis whose LLEN and LRANGE
		// disagree (every range full) chained reads and drops for good
		// (review Z170).
		c.l2s.next = c.nowMs()
		return c.l2DropNow()
	}
	return append(c.l2DropNow(), c.l2Read()...)
}

// l2DropNow drops L1 for purges this VM may have missed, its position not
// named yet (lost stays set: l2DropLost drops again once it is).
func (c *Cache) l2DropNow() []Action {
	freed, _ := c.dropL1()
	return []Action{{Kind: ActFreed, N: freed}}
}

// dropL1 drops this process's L1 for purges it may have missed, the
// purge mark moved first: a lookup sent before may still bring a value
// they purged (l2Unpurged). It renews every model's generation too, as
// those purges would have (purgeAll): an answer upstream across one of
// them was stored right after the drop and served for its ttl (review
// Z167).
func (c *Cache) dropL1() (int, error) {
	c.movePurgeMark()
	return c.purgeAll()
}

// l2DropLost drops L1 for a lost log, the new position just taken; if
// that fails, the VM takes the position and drops again at its next read.
func (c *Cache) l2DropLost() []Action {
	freed, err := c.dropL1()
	msg := "l2: the purge log was trimmed or deleted since this VM last read it: purges may have been missed, so this VM's L1 is dropped"
	if err != nil {
		c.l2s.started = false
		msg = "l2: the purge log was trimmed or deleted since this VM last read it, and L1 could not be dropped: " + err.Error()
	} else {
		c.l2s.lost = false
		c.l2SaveCursor()
	}
	return []Action{{Kind: ActFreed, N: freed}, {Kind: ActLog, Level: LogWarn, Message: []byte(msg)}}
}

// l2Apply applies one log record to this L1 unless it is this process's
// own; it returns what to log ("" for nothing) and how many entries left
// L1.
func (c *Cache) l2Apply(item, me string) (msg string, freed int, failed bool) {
	// A record this VM cannot read stands for a purge it missed: L1 goes
	// whole, as for a trimmed log (review Z209): skipped, its purged
	// answers were served here until their ttl.
	unreadable := func(why string) (string, int, bool) {
		if c.l2s.dropped {
			return why + ": a purge may have been missed; this VM's L1 was dropped for this read already", 0, false
		}
		n, err := c.dropL1()
		if err != nil {
			return why + ", and L1 could not be dropped: " + err.Error(), n, true
		}
		c.l2s.dropped = true
		return why + ": a purge may have been missed, so this VM's L1 is dropped", n, false
	}
	if len(item) > base64.StdEncoding.EncodedLen(l2MaxRecord) {
		// No proxy writes it (l2Records): read, its identities of a few
		// bytes each would cost a table remove per 5 bytes of the log, in
		// one tick (review Z63).
		return unreadable("l2: a purge log record over the bound every writer keeps could not be read")
	}
	raw, err := base64.StdEncoding.DecodeString(item)
	if err != nil {
		return unreadable("l2: a purge log record could not be read")
	}
	f := strings.Split(string(raw), "\n")
	if len(f) < 4 || f[0] != "2" {
		return unreadable("l2: a purge log record could not be read")
	}
	if f[1] == me || f[3] == l2StartScope {
		return "", 0, false
	}
	scope := f[3]
	var route, model string
	if scope != "all" {
		var e1, e2 error
		if len(f) < 6 {
			return unreadable("l2: a purge log record could not be read")
		}
		route, e1 = strconv.Unquote(f[4])
		model, e2 = strconv.Unquote(f[5])
		if e1 != nil || e2 != nil {
			return unreadable("l2: a purge log record could not be read")
		}
	}
	switch scope {
	case "all":
		if c.l2s.dropped {
			return "l2: another proxy's purge (all) is covered by this read's drop of L1", 0, false
		}
		if freed, err = c.purgeAll(); err == nil {
			c.l2s.dropped = true
		}
	case "model":
		if c.routeByName(route) == nil {
			return "l2: another proxy's purge names an unknown route " + strconv.Quote(route), freed, false
		}
		err = c.PurgeModel(route, model)
	case "entry": // one stable identity, or an embeddings batch's, one per item
		if len(f) < 7 {
			return unreadable("l2: a purge log record could not be read")
		}
		stables := make([][]byte, len(f)-6)
		for i := range stables {
			if stables[i], err = base64.StdEncoding.DecodeString(f[6+i]); err != nil {
				return unreadable("l2: a purge log record could not be read")
			}
		}
		freed, err = c.l2RemoveEntries(route, model, stables, false)
	default:
		return unreadable("l2: a purge log record of unknown scope " + strconv.Quote(scope))
	}
	if err != nil {
		return "l2: another proxy's purge could not be applied here: " + err.Error(), freed, true
	}
	return "l2: applied another proxy's purge (" + scope + ")", freed, false
}

// l2RemoveEntries removes from L1 the entries whose stable identities are
// given, keyed with this proxy's own state of its model (version and
// generation). everyLayout also visits the layouts of the process's other
// configurations (purgeOtherLayouts), as the purge it does again did: for
// this process's own purge. Another proxy's record is applied by every
// configuration's VMs to their own layout (review Z59).
func (c *Cache) l2RemoveEntries(route, model string, stables [][]byte, everyLayout bool) (freed int, err error) {
	if c.routeByName(route) == nil {
		return 0, nil
	}
	if _, err := c.keys(); err != nil {
		return 0, err
	}
	st, err := c.loadModel(route, model)
	if err != nil || !st.Found {
		return 0, err
	}
	for _, stable := range stables {
		k := append(stable[:len(stable):len(stable)], st.Version[:]...)
		k = binary.LittleEndian.AppendUint64(k, st.Gen)
		fp := c.fingerprint(k)
		removed, err := c.table.PurgeKey(fp, k, c.nowMs())
		freed += removed
		if err == nil && everyLayout {
			removed, err = c.purgeOtherLayouts(fp, k, c.nowMs())
			freed += removed
		}
		if err != nil {
			return freed, err
		}
	}
	return freed, nil
}
