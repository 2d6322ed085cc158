package gameday

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/drillworks/drill/drills/verdict"
	"github.com/robfig/cron/v3"
)

// Timetable says when the next run is due; a parsed cron expression is one.
type Timetable interface {
	// Next is the first time strictly after t that a run is due (zero: never again).
	Next(t time.Time) time.Time
}

// ParseCron parses a cron expression: 5 fields (minute hour day-of-month month day-of-week), 6
// fields (seconds first), or a descriptor (@yearly, @monthly, @weekly, @daily, @hourly,
// @every 1h30m). Times are local unless the expression starts with TZ=Zone or CRON_TZ=Zone.
func ParseCron(expr string) (Timetable, error) {
	p := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	s, err := p.Parse(strings.TrimSpace(expr))
	if err != nil {
		return nil, fmt.Errorf(`bad cron expression %q: %v (want "MIN HOUR DOM MON DOW", 6 fields with seconds first, or @daily, @every 1h)`, expr, err)
	}
	return s, nil
}

// ScheduleConfig is what RunScheduled needs.
type ScheduleConfig struct {
	// Run is the configuration of every run (its Trigger becomes TriggerSchedule).
	Run Config
	// Timetable says when runs are due (ParseCron).
	Timetable Timetable
	// Cron is the expression Timetable came from, for messages.
	Cron string
	// Jitter delays each run by a random time in [0, Jitter), the lock held meanwhile.
	Jitter time.Duration
	// MaxRuns stops the scheduler after this many runs (0: until ctx ends). Skipped ticks do
	// not count.
	MaxRuns int
	// RandDuration picks a jitter in [0, n) (nil: math/rand/v2).
	RandDuration func(n time.Duration) time.Duration
}

// ScheduleResult is what a scheduler did.
type ScheduleResult struct {
	// Runs are the runs' summaries, in order (a run that could not start has none).
	Runs []*Summary
	// Skipped is how many due runs were skipped because a run was still going.
	Skipped int
	// Errors are errors of runs (writing their files, starting them).
	Errors []error
}

// Verdict is the worst verdict of the runs ("" when none ran).
func (r *ScheduleResult) Verdict() verdict.Verdict {
	var worst verdict.Verdict
	for _, s := range r.Runs {
		if verdictRank(s.Verdict) > verdictRank(worst) {
			worst = s.Verdict
		}
	}
	return worst
}

type runOutcome struct {
	summary *Summary
	err     error
}

// RunScheduled runs the plan whenever the timetable says, until ctx ends or MaxRuns runs are
// done. Runs never overlap: each takes the history's run lock, and a run due while another
// holds it (in this process or any other) is skipped and recorded as skipped. When ctx ends
// during a run, that run is aborted (its drill undoes its faults) and recorded; the scheduler
// returns once it has finished.
func RunScheduled(ctx context.Context, sc ScheduleConfig) (*ScheduleResult, error) {
	if sc.Timetable == nil {
		return nil, errors.New("schedule: no timetable")
	}
	cfg := withDefaults(sc.Run)
	cfg.Trigger = TriggerSchedule
	pick := sc.RandDuration
	if pick == nil {
		pick = func(n time.Duration) time.Duration { return time.Duration(rand.Int64N(int64(n))) }
	}
	res := &ScheduleResult{}
	outcomes := make(chan runOutcome, 1)
	running, started := 0, 0
	collect := func(o runOutcome) {
		running--
		if o.summary != nil {
			res.Runs = append(res.Runs, o.summary)
		}
		if o.err != nil {
			res.Errors = append(res.Errors, o.err)
		}
	}
	next := sc.Timetable.Next(time.Now())
	fmt.Fprintf(cfg.Stdout, "gameday %s: scheduled %q; next run %s\n", cfg.Plan.Name, sc.Cron, fmtNext(next))
	for (sc.MaxRuns == 0 || started < sc.MaxRuns) && !next.IsZero() {
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			goto drain
		case o := <-outcomes:
			timer.Stop()
			collect(o)
			continue
		case <-timer.C:
		}
		due := next
		next = sc.Timetable.Next(maxTime(due, time.Now()))
		lock, err := cfg.History.TryLock(fmt.Sprintf("plan %s, pid %d, run due %s", cfg.Plan.Name, os.Getpid(), due.Format(time.RFC3339)))
		var busy *BusyError
		switch {
		case errors.As(err, &busy):
			res.Skipped++
			recordSkipped(cfg, due, busy)
			continue
		case err != nil:
			res.Errors = append(res.Errors, err)
			cfg.Logger.Error("scheduled run could not start", "err", err)
			continue
		}
		started++
		running++
		jitter := time.Duration(0)
		if sc.Jitter > 0 {
			jitter = pick(sc.Jitter)
		}
		go func() {
			if jitter > 0 {
				fmt.Fprintf(cfg.Stdout, "gameday %s: run due %s starts after a jitter of %s\n", cfg.Plan.Name, due.Format(time.TimeOnly), jitter.Round(time.Millisecond))
				t := time.NewTimer(jitter)
				select {
				case <-ctx.Done():
					t.Stop()
					lock.Release()
					outcomes <- runOutcome{err: fmt.Errorf("run due %s: cancelled during its jitter", due.Format(time.RFC3339))}
					return
				case <-t.C:
				}
			}
			s, waitWebhook, err := runLocked(ctx, cfg)
			lock.Release()
			// The next run may start while this one's webhook is still being delivered; the
			// scheduler still waits for it (bounded) before it returns.
			waitWebhook()
			outcomes <- runOutcome{summary: s, err: err}
		}()
		if sc.MaxRuns == 0 || started < sc.MaxRuns {
			fmt.Fprintf(cfg.Stdout, "gameday %s: next run %s\n", cfg.Plan.Name, fmtNext(next))
		}
	}
drain:
	for running > 0 {
		collect(<-outcomes)
	}
	return res, nil
}

func fmtNext(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// cronFields splits an expression into its time zone prefix and its six fields (seconds first),
// or its descriptor.
func cronFields(expr string) (tz string, fields []string, descriptor string, err error) {
	expr = strings.TrimSpace(expr)
	if _, err := ParseCron(expr); err != nil {
		return "", nil, "", err
	}
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		i := strings.IndexAny(expr, " \t")
		_, tz, _ = strings.Cut(expr[:i], "=")
		expr = strings.TrimSpace(expr[i:])
	}
	if strings.HasPrefix(expr, "@") {
		return tz, nil, expr, nil
	}
	fields = strings.Fields(expr)
	if len(fields) == 5 {
		fields = append([]string{"0"}, fields...)
	}
	return tz, fields, "", nil
}

// SystemdTimer converts a cron expression into a systemd timer's trigger: an OnCalendar=
// expression, or (for @every) the interval for OnUnitActiveSec=. Expressions systemd cannot say
// the same way (both day-of-month and day-of-week restricted: cron ORs them, systemd ANDs) are
// errors.
func SystemdTimer(expr string) (onCalendar string, every time.Duration, err error) {
	tz, f, desc, err := cronFields(expr)
	if err != nil {
		return "", 0, err
	}
	suffix := ""
	if tz != "" {
		suffix = " " + tz
	}
	if desc != "" {
		switch {
		case desc == "@yearly" || desc == "@annually":
			return "*-01-01 00:00:00" + suffix, 0, nil
		case desc == "@monthly":
			return "*-*-01 00:00:00" + suffix, 0, nil
		case desc == "@weekly":
			return "Sun *-*-* 00:00:00" + suffix, 0, nil
		case desc == "@daily" || desc == "@midnight":
			return "*-*-* 00:00:00" + suffix, 0, nil
		case desc == "@hourly":
			return "*-*-* *:00:00" + suffix, 0, nil
		case strings.HasPrefix(desc, "@every "):
			d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(desc, "@every ")))
			if err != nil {
				return "", 0, fmt.Errorf("cron %q: %w", expr, err)
			}
			return "", d, nil
		}
		return "", 0, fmt.Errorf("cron %q: descriptor not supported for systemd", expr)
	}
	dom, dow := f[3], f[5]
	if !isAny(dom) && !isAny(dow) {
		return "", 0, fmt.Errorf("cron %q restricts both day of month and day of week (cron runs on either, systemd only on both): give one of them as *", expr)
	}
	var parts [6]string
	for i, spec := range []struct {
		lo, hi int
		names  map[string]int
	}{{0, 59, nil}, {0, 59, nil}, {0, 23, nil}, {1, 31, nil}, {1, 12, monthNames()}, {0, 7, dayNames()}} {
		if i == 5 {
			break
		}
		p, err := systemdField(f[i], spec.lo, spec.hi, spec.names, i <= 2)
		if err != nil {
			return "", 0, fmt.Errorf("cron %q: %w", expr, err)
		}
		parts[i] = p
	}
	days := ""
	if !isAny(dow) {
		days, err = systemdDays(dow)
		if err != nil {
			return "", 0, fmt.Errorf("cron %q: %w", expr, err)
		}
		days += " "
	}
	return fmt.Sprintf("%s*-%s-%s %s:%s:%s%s", days, parts[4], parts[3], parts[2], parts[1], parts[0], suffix), 0, nil
}

func isAny(field string) bool { return field == "*" || field == "?" }

func monthNames() map[string]int {
	return map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
}

func dayNames() map[string]int {
	return map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
}

func cronNumber(s string, names map[string]int) (int, error) {
	if v, ok := names[strings.ToLower(s)]; ok {
		return v, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n, nil
}

// systemdField converts one numeric cron field: lists stay lists, a-b becomes a..b, */n and
// a/n and a-b/n keep their step with a start.
func systemdField(field string, lo, hi int, names map[string]int, pad bool) (string, error) {
	if isAny(field) {
		return "*", nil
	}
	num := func(s string) (string, error) {
		n, err := cronNumber(s, names)
		if err != nil {
			return "", err
		}
		if pad {
			return fmt.Sprintf("%02d", n), nil
		}
		return strconv.Itoa(n), nil
	}
	var out []string
	for _, part := range strings.Split(field, ",") {
		rng, step, hasStep := strings.Cut(part, "/")
		var conv string
		switch {
		case rng == "*":
			v, _ := num(strconv.Itoa(lo))
			conv = v
			if !hasStep {
				conv = "*"
			}
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			va, err := num(a)
			if err != nil {
				return "", err
			}
			vb, err := num(b)
			if err != nil {
				return "", err
			}
			conv = va + ".." + vb
		default:
			v, err := num(rng)
			if err != nil {
				return "", err
			}
			conv = v
			if hasStep {
				// cron's a/n runs from a to the field's end.
				end, _ := num(strconv.Itoa(hi))
				conv = v + ".." + end
			}
		}
		if hasStep {
			conv += "/" + step
		}
		out = append(out, conv)
	}
	return strings.Join(out, ","), nil
}

// systemdDays converts a day-of-week field (0 is Sunday) into systemd's weekday list.
func systemdDays(field string) (string, error) {
	names := []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	var out []string
	for _, part := range strings.Split(field, ",") {
		if strings.Contains(part, "/") {
			return "", fmt.Errorf("day of week %q: steps are not supported for systemd", field)
		}
		a, b, isRange := strings.Cut(part, "-")
		va, err := cronNumber(a, dayNames())
		if err != nil || va < 0 || va > 6 {
			return "", fmt.Errorf("day of week %q: bad day %q", field, a)
		}
		if !isRange {
			out = append(out, names[va])
			continue
		}
		vb, err := cronNumber(b, dayNames())
		if err != nil || vb < va || vb > 6 {
			return "", fmt.Errorf("day of week %q: bad day %q", field, b)
		}
		out = append(out, names[va]+".."+names[vb])
	}
	return strings.Join(out, ","), nil
}

// SystemdOptions are what the printed units run.
type SystemdOptions struct {
	// Name is the units' base name (drill-gameday-<plan>).
	Name string
	// Description is the units' description.
	Description string
	// Command is the full command line of one run (absolute paths).
	Command []string
	// WorkDir is the service's working directory.
	WorkDir string
	// Cron is the schedule; Jitter becomes RandomizedDelaySec.
	Cron   string
	Jitter time.Duration
}

// SystemdUnits renders a ready-made .service (one run, oneshot) and .timer pair. systemd never
// starts a oneshot service that is still running, and the run lock covers everything else.
func SystemdUnits(o SystemdOptions) (service, timer string, err error) {
	onCal, every, err := SystemdTimer(o.Cron)
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s.service: one game-day run (started by %s.timer)\n", o.Name, o.Name)
	fmt.Fprintf(&b, "[Unit]\nDescription=%s\nWants=network-online.target\nAfter=network-online.target\n\n", o.Description)
	fmt.Fprintf(&b, "[Service]\nType=oneshot\nWorkingDirectory=%s\nExecStart=%s\n", o.WorkDir, shellJoin(o.Command))
	b.WriteString("# SIGTERM aborts the running drill; drill undoes its faults and tears the cluster down first.\n")
	b.WriteString("KillSignal=SIGTERM\nKillMode=mixed\nTimeoutStopSec=120\n# Exit 1 (a check failed) is a result, not a broken service.\nSuccessExitStatus=1\n")
	service = b.String()

	b.Reset()
	fmt.Fprintf(&b, "# %s.timer: enable with systemctl --user enable --now %s.timer (or as root without --user)\n", o.Name, o.Name)
	fmt.Fprintf(&b, "[Unit]\nDescription=Schedule of %s\n\n[Timer]\n", o.Description)
	if every > 0 {
		fmt.Fprintf(&b, "OnActiveSec=%s\nOnUnitActiveSec=%s\n", systemdSpan(every), systemdSpan(every))
	} else {
		fmt.Fprintf(&b, "# cron %q\nOnCalendar=%s\nPersistent=true\n", o.Cron, onCal)
	}
	if o.Jitter > 0 {
		fmt.Fprintf(&b, "RandomizedDelaySec=%s\n", systemdSpan(o.Jitter))
	}
	fmt.Fprintf(&b, "Unit=%s.service\n\n[Install]\nWantedBy=timers.target\n", o.Name)
	return service, b.String(), nil
}

func systemdSpan(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}

// CrontabLine renders a crontab line running command on the cron schedule. crontab has minute
// resolution and no @every: such expressions are errors. Jitter is the run's own --jitter.
func CrontabLine(expr string, command []string) (string, error) {
	tz, f, desc, err := cronFields(expr)
	if err != nil {
		return "", err
	}
	cmd := strings.ReplaceAll(shellJoin(command), "%", `\%`) // % ends a crontab command
	prefix := ""
	if tz != "" {
		prefix = "CRON_TZ=" + tz + "\n"
	}
	switch {
	case strings.HasPrefix(desc, "@every"):
		return "", fmt.Errorf("cron %q: crontab has no @every; use --print-systemd, or a 5-field expression", expr)
	case desc != "":
		return prefix + desc + " " + cmd, nil
	case f[0] != "0":
		return "", fmt.Errorf("cron %q: crontab has minute resolution; the seconds field must be 0", expr)
	}
	return prefix + strings.Join(f[1:], " ") + " " + cmd, nil
}

// shellJoin quotes words for sh (and systemd's ExecStart, which understands the same quoting).
func shellJoin(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if w != "" && strings.IndexFunc(w, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@,+", r))
		}) < 0 {
			out[i] = w
			continue
		}
		out[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
