package db

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/drillworks/drill/agents/disk"
)

// Entry is one write in the log.
type Entry struct {
	// LSN is the log sequence number, 1-based and contiguous.
	LSN uint64 `json:"lsn"`
	// Epoch is the epoch of the primary that wrote the entry.
	Epoch uint64 `json:"epoch"`
	// Key is the key written.
	Key string `json:"key"`
	// Value is the value written (UTF-8 text, so it survives JSON unchanged).
	Value string `json:"value"`
	// TsUnixNano is when the primary accepted the write (its wall clock).
	TsUnixNano int64 `json:"ts_unix_nano"`
}

// WAL record layout (little endian):
//
//	u32 payload length | u32 CRC-32C of payload | payload
//	payload = u64 lsn | u64 epoch | i64 ts | u32 key length | key | value
const (
	walHeaderSize     = 8
	walFixedPayload   = 8 + 8 + 8 + 4
	walMaxPayloadSize = 64 << 20 // larger lengths can only come from a corrupt header
	walFileName       = "wal.log"
)

// walCRCTable is the CRC-32C (Castagnoli) table; it is read-only after package init.
var walCRCTable = crc32.MakeTable(crc32.Castagnoli)

// wal is the append-only log file. It is not safe for concurrent use: the node serialises all
// writes to it with its walMu.
type wal struct {
	path    string
	file    *os.File
	onFsync func()       // counts fsyncs (metrics); never nil
	disk    *disk.Faults // drill's disk faults; nil is a healthy disk
	busy    atomic.Int64 // when the append under way started (unix nanos), 0 when none is
}

// stuck is how long the append under way has been running (0 when none is): a hung disk shows
// here, to a node that otherwise looks healthy.
func (w *wal) stuck() time.Duration {
	if started := w.busy.Load(); started != 0 {
		return time.Since(time.Unix(0, started))
	}
	return 0
}

// ErrWALCorrupt means a record in the middle of the log is damaged: valid records follow it, so
// they were written (and acknowledged) after it, and cutting the log there would silently drop
// them.
var ErrWALCorrupt = errors.New("wal corrupt before its end")

// openWAL opens (or creates) the log in dir, replays it and truncates a torn tail: the log is
// valid up to the first record that is incomplete, fails its CRC or breaks LSN continuity. A
// crash mid-append can only damage the records of that last append, so when a valid record of a
// later LSN follows the damage, it is not a torn tail but corruption in the middle (a flipped
// bit, a lost sector): openWAL then refuses with ErrWALCorrupt and changes nothing (finding 5).
func openWAL(dir string, logger *slog.Logger, onFsync func(), faults *disk.Faults) (*wal, []Entry, error) {
	path := filepath.Join(dir, walFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open wal: %w", err)
	}
	entries, validLen, replayErr := replayWAL(f)
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat wal: %w", err)
	}
	if info.Size() > validLen {
		if at, lsn, ok := validRecordAfter(f, validLen, uint64(len(entries))); ok {
			f.Close()
			return nil, nil, fmt.Errorf("%w: %s: record at offset %d is damaged (%v) but a valid record of lsn %d follows at offset %d; "+
				"refusing to drop acknowledged writes (move the data directory away to rebuild this node from a replica)",
				ErrWALCorrupt, path, validLen, replayErr, lsn, at)
		}
		logger.Warn("wal: truncating torn or corrupt tail",
			"path", path, "valid_bytes", validLen, "dropped_bytes", info.Size()-validLen,
			"entries", len(entries), "reason", replayErr)
		if err := f.Truncate(validLen); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("truncate wal tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("fsync wal after truncation: %w", err)
		}
	}
	if _, err := f.Seek(validLen, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("seek wal end: %w", err)
	}
	return &wal{path: path, file: f, onFsync: onFsync, disk: faults}, entries, nil
}

// validRecordAfter looks for a record past the damage at offset from that decodes with a valid CRC
// and an LSN above last: proof that the damage is not a torn tail.
func validRecordAfter(f *os.File, from int64, last uint64) (at int64, lsn uint64, ok bool) {
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return 0, 0, false
	}
	rest, err := io.ReadAll(f)
	if err != nil {
		return 0, 0, false
	}
	for i := 1; i+walHeaderSize+walFixedPayload <= len(rest); i++ {
		length := int(binary.LittleEndian.Uint32(rest[i : i+4]))
		if length < walFixedPayload || length > len(rest)-i-walHeaderSize {
			continue
		}
		payload := rest[i+walHeaderSize : i+walHeaderSize+length]
		if crc32.Checksum(payload, walCRCTable) != binary.LittleEndian.Uint32(rest[i+4:i+8]) {
			continue
		}
		if e, err := decodeWALPayload(payload); err == nil && e.LSN > last {
			return from + int64(i), e.LSN, true
		}
	}
	return 0, 0, false
}

// replayWAL reads records from the start of f. It returns the valid entries, the byte length they
// occupy and why it stopped early (nil at a clean end of file).
func replayWAL(f *os.File) ([]Entry, int64, error) {
	r := bufio.NewReaderSize(f, 1<<20)
	var (
		entries []Entry
		offset  int64
		header  [walHeaderSize]byte
	)
	for {
		if _, err := io.ReadFull(r, header[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return entries, offset, nil
			}
			return entries, offset, fmt.Errorf("torn record header at offset %d: %w", offset, err)
		}
		length := binary.LittleEndian.Uint32(header[0:4])
		sum := binary.LittleEndian.Uint32(header[4:8])
		if length < walFixedPayload || length > walMaxPayloadSize {
			return entries, offset, fmt.Errorf("implausible record length %d at offset %d", length, offset)
		}
		payload := make([]byte, length)
		if _, err := io.ReadFull(r, payload); err != nil {
			return entries, offset, fmt.Errorf("torn record payload at offset %d: %w", offset, err)
		}
		if crc32.Checksum(payload, walCRCTable) != sum {
			return entries, offset, fmt.Errorf("crc mismatch at offset %d", offset)
		}
		e, err := decodeWALPayload(payload)
		if err != nil {
			return entries, offset, fmt.Errorf("record at offset %d: %w", offset, err)
		}
		if want := uint64(len(entries)) + 1; e.LSN != want {
			return entries, offset, fmt.Errorf("lsn %d at offset %d, want %d", e.LSN, offset, want)
		}
		if n := len(entries); n > 0 && e.Epoch < entries[n-1].Epoch {
			return entries, offset, fmt.Errorf("epoch %d at lsn %d goes backwards", e.Epoch, e.LSN)
		}
		entries = append(entries, e)
		offset += walHeaderSize + int64(length)
	}
}

// appendWALRecord encodes e as one record at the end of buf.
func appendWALRecord(buf []byte, e Entry) []byte {
	payloadLen := walFixedPayload + len(e.Key) + len(e.Value)
	start := len(buf)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(payloadLen))
	buf = binary.LittleEndian.AppendUint32(buf, 0) // CRC, filled in below
	buf = binary.LittleEndian.AppendUint64(buf, e.LSN)
	buf = binary.LittleEndian.AppendUint64(buf, e.Epoch)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(e.TsUnixNano))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(e.Key)))
	buf = append(buf, e.Key...)
	buf = append(buf, e.Value...)
	sum := crc32.Checksum(buf[start+walHeaderSize:], walCRCTable)
	binary.LittleEndian.PutUint32(buf[start+4:start+8], sum)
	return buf
}

func decodeWALPayload(p []byte) (Entry, error) {
	keyLen := binary.LittleEndian.Uint32(p[24:28])
	if int(keyLen) > len(p)-walFixedPayload {
		return Entry{}, fmt.Errorf("key length %d exceeds payload", keyLen)
	}
	rest := p[walFixedPayload:]
	return Entry{
		LSN:        binary.LittleEndian.Uint64(p[0:8]),
		Epoch:      binary.LittleEndian.Uint64(p[8:16]),
		TsUnixNano: int64(binary.LittleEndian.Uint64(p[16:24])),
		Key:        string(rest[:keyLen]),
		Value:      string(rest[keyLen:]),
	}, nil
}

// append writes the entries and fsyncs once: the whole batch becomes durable together.
func (w *wal) append(entries []Entry) error {
	w.busy.Store(time.Now().UnixNano())
	defer w.busy.Store(0)
	var buf []byte
	for _, e := range entries {
		buf = appendWALRecord(buf, e)
	}
	if _, err := w.disk.Write(w.file, buf); err != nil {
		return fmt.Errorf("write wal %s: %w", w.path, err)
	}
	if err := w.disk.Sync(w.file); err != nil {
		return fmt.Errorf("fsync wal %s: %w", w.path, err)
	}
	w.onFsync()
	return nil
}

// rewrite atomically replaces the log with exactly entries (used to truncate a divergent suffix):
// write a temporary file, fsync it, rename it over the log and fsync the directory, so a crash
// leaves either the old or the new log, never a mix.
func (w *wal) rewrite(entries []Entry) error {
	tmp := w.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create wal rewrite: %w", err)
	}
	if w.disk.State().Full {
		f.Close()
		return fmt.Errorf("write wal rewrite %s: %w", tmp, syscall.ENOSPC)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	var rec []byte
	for _, e := range entries {
		rec = appendWALRecord(rec[:0], e)
		if _, err := bw.Write(rec); err != nil {
			f.Close()
			return fmt.Errorf("write wal rewrite: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("flush wal rewrite: %w", err)
	}
	if err := w.disk.Sync(f); err != nil {
		f.Close()
		return fmt.Errorf("fsync wal rewrite: %w", err)
	}
	if err := os.Rename(tmp, w.path); err != nil {
		f.Close()
		return fmt.Errorf("replace wal: %w", err)
	}
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		f.Close()
		return err
	}
	w.onFsync()
	old := w.file
	w.file = f // f's offset is already at the end of what it wrote
	if err := old.Close(); err != nil {
		return fmt.Errorf("close replaced wal: %w", err)
	}
	return nil
}

func (w *wal) close() error {
	if err := w.file.Close(); err != nil {
		return fmt.Errorf("close wal: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory so a rename or create in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// quarantineWAL moves a damaged log aside (wal.log.damaged-<unix nanos>), durably, and returns
// its new name; the node then starts an empty log.
func quarantineWAL(dir string) (string, error) {
	path := filepath.Join(dir, walFileName)
	aside := fmt.Sprintf("%s.damaged-%d", path, time.Now().UnixNano())
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("move the damaged wal aside: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	return aside, nil
}

// CorruptWALRecord flips one bit in the payload of the record in the middle of the log in dataDir
// (drill's disk-corrupt fault: a bad sector under a running database) and fsyncs it. The running
// node does not notice; its next start finds a damaged record with valid ones after it. It returns
// the damaged record's LSN; a log of fewer than two records has no middle and is an error.
func CorruptWALRecord(dataDir string) (uint64, error) {
	path := filepath.Join(dataDir, walFileName)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open wal: %w", err)
	}
	defer f.Close()
	entries, _, err := replayWAL(f)
	if err != nil {
		return 0, fmt.Errorf("read wal: %w", err)
	}
	if len(entries) < 2 {
		return 0, fmt.Errorf("the log holds %d records: no record in the middle to damage", len(entries))
	}
	target := len(entries) / 2 // 0-based: records follow it
	var offset int64
	for _, e := range entries[:target] {
		offset += int64(len(appendWALRecord(nil, e)))
	}
	at := offset + walHeaderSize + walFixedPayload // the first byte of the key
	var b [1]byte
	if _, err := f.ReadAt(b[:], at); err != nil {
		return 0, fmt.Errorf("read wal at %d: %w", at, err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b[:], at); err != nil {
		return 0, fmt.Errorf("write wal at %d: %w", at, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync wal: %w", err)
	}
	return entries[target].LSN, nil
}
