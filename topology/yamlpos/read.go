package yamlpos

import (
	"fmt"
	"io"
	"os"
)

// MaxInputBytes bounds a topology, drill or game-day plan file. The largest real one is a few
// kilobytes; the bound keeps a wrong path (a log, a device, a huge generated file) from being
// read whole into memory and parsed.
const MaxInputBytes = 1 << 20

// ReadFile reads a whole input file (what it is: "topology", "drill file"...) of at most limit
// bytes. A larger file is an *Error naming the file, so the CLI refuses it with exit 2 before
// anything starts. (The result is *Error, not error, so callers put it in an ErrorList as is;
// compare it with nil before returning it as an error.)
func ReadFile(path, what string, limit int64) ([]byte, *Error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("read %s: %v", what, err), Err: err}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("read %s: %v", what, err), Err: err}
	}
	if int64(len(b)) > limit {
		return nil, &Error{File: path, Msg: fmt.Sprintf("%s is over the %d-byte limit for input files (is this the right file?)", what, limit)}
	}
	return b, nil
}
