package flow

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"source-stripe/protocol"
)

// Log levels, in Flow's names and order (ops.Log.Level).
const (
	levelError = "error"
	levelWarn  = "warn"
	levelInfo  = "info"
	levelDebug = "debug"
	levelTrace = "trace"
)

var levelRank = map[string]int{levelError: 1, levelWarn: 2, levelInfo: 3, levelDebug: 4, levelTrace: 5}

// logger writes Flow's log lines on stderr, where the runtime reads a
// connector's logs: one JSON object per line in the shape of Flow's ops.Log,
// {"ts":..., "level":"info", "message":...}. Messages pass through mask, so
// that a key never reaches the logs.
type logger struct {
	mu   sync.Mutex
	w    io.Writer
	max  int // the most verbose level written
	mask func(string) string
	now  func() time.Time
}

func newLogger(w io.Writer, level string) *logger {
	// Before a config names the key, anything shaped like a key is masked.
	return &logger{w: w, max: levelRank[level], mask: protocol.NewWriter(io.Discard).Mask, now: time.Now}
}

// logLine is the shape of a log line.
type logLine struct {
	TS      string `json:"ts"`
	Level   string `json:"level"`
	Message string `json:"message"`
}

func (l *logger) log(level, msg string) {
	if levelRank[level] > l.max {
		return
	}
	line, err := json.Marshal(logLine{TS: l.now().UTC().Format(time.RFC3339Nano), Level: level, Message: l.mask(msg)})
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Write(append(line, '\n'))
}

func (l *logger) infof(format string, args ...any) { l.log(levelInfo, fmt.Sprintf(format, args...)) }
func (l *logger) warn(msg string)                  { l.log(levelWarn, msg) }

// airbyteLevel maps an Airbyte LOG level to Flow's.
func airbyteLevel(level string) string {
	switch level {
	case protocol.LevelError, "FATAL":
		return levelError
	case protocol.LevelWarn:
		return levelWarn
	case protocol.LevelDebug:
		return levelDebug
	case "TRACE":
		return levelTrace
	}
	return levelInfo
}

// parseLogLevel reads the value of --log.level.
func parseLogLevel(s string) (string, error) {
	level := strings.ToLower(s)
	if level == "warning" {
		level = levelWarn
	}
	if _, ok := levelRank[level]; !ok {
		return "", fmt.Errorf("--log.level must be one of error, warn, info, debug, trace; got %q", s)
	}
	return level, nil
}
