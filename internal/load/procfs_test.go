package load

import (
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		line string
		want procStat
	}{
		{
			name: "kernel thread",
			line: "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 3 0 0 20 0 1 0 2 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			want: procStat{pid: 2, comm: "kthreadd", state: 'S', ppid: 0, stime: 3, numThreads: 1, startTime: 2},
		},
		{
			name: "shell",
			line: "2702 (cat) R 2700 2700 2217 0 -1 4194304 102 0 0 0 7 2 11 4 20 0 1 0 15254 3133440 412 18446744073709551615 94794475544576 94794475564457 140720891932128 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94794475580464 94794475582080 94795034005504 140720891939514 140720891939534 140720891939534 140720891940843 0\n",
			want: procStat{pid: 2702, comm: "cat", state: 'R', ppid: 2700, utime: 7, stime: 2, cutime: 11, cstime: 4, numThreads: 1, startTime: 15254},
		},
		{
			name: "comm with spaces and parentheses",
			line: "4242 (my (odd) ) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 123 45 6 7 20 0 12 0 98765 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
			want: procStat{pid: 4242, comm: "my (odd) ) name", state: 'S', ppid: 1, utime: 123, stime: 45, cutime: 6, cstime: 7, numThreads: 12, startTime: 98765},
		},
		{
			name: "comm with newline, no trailing newline",
			line: "7 (a\nb) Z 3 0 0 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 99",
			want: procStat{pid: 7, comm: "a\nb", state: 'Z', ppid: 3, utime: 1, stime: 1, numThreads: 1, startTime: 99},
		},
		{
			name: "empty comm",
			line: "9 () D 1 0 0 0 -1 0 0 0 0 0 5 6 0 0 20 0 3 0 100 0",
			want: procStat{pid: 9, comm: "", state: 'D', ppid: 1, utime: 5, stime: 6, numThreads: 3, startTime: 100},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.line))
			if err != nil {
				t.Fatalf("parseStat: %v", err)
			}
			if got != tt.want {
				t.Errorf("parseStat =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatErrors(t *testing.T) {
	tests := []struct {
		name, line, wantErr string
	}{
		{"empty", "", "no parenthesised comm"},
		{"no comm", "12 S 1 2 3", "no parenthesised comm"},
		{"close before open", "12 )x( S", "no parenthesised comm"},
		{"bad pid", "x (a) S 1 0 0 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 99", "bad pid"},
		{"zero pid", "0 (a) S 1 0 0 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 99", "bad pid"},
		{"short", "12 (a) S 1 0 0", "fields after comm"},
		{"long state", "12 (a) SS 1 0 0 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 99", "bad state"},
		{"bad ppid", "12 (a) S -1 0 0 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 99", "bad ppid"},
		{"bad utime", "12 (a) S 1 0 0 0 -1 0 0 0 0 0 x 1 0 0 20 0 1 0 99", "bad utime"},
		{"bad cstime", "12 (a) S 1 0 0 0 -1 0 0 0 0 0 1 1 0 -4 20 0 1 0 99", "bad cstime"},
		{"bad threads", "12 (a) S 1 0 0 0 -1 0 0 0 0 0 1 1 0 0 20 0 y 0 99", "bad num_threads"},
		{"bad start", "12 (a) S 1 0 0 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 99999999999999999999", "bad starttime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseStat([]byte(tt.line))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseStat(%q) error = %v, want containing %q", tt.line, err, tt.wantErr)
			}
		})
	}
}

const sampleMeminfo = `MemTotal:       24684084 kB
MemFree:        24493576 kB
MemAvailable:   24427624 kB
Buffers:            3824 kB
Cached:            59856 kB
SwapCached:            0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
`

func TestParseMeminfo(t *testing.T) {
	tests := []struct {
		name, in string
		want     meminfo
		wantErr  string
	}{
		{name: "modern", in: sampleMeminfo, want: meminfo{total: 24684084 << 10, available: 24427624 << 10}},
		{
			name: "no MemAvailable",
			in:   "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n",
			want: meminfo{total: 1000 << 10, available: 420 << 10},
		},
		{
			name: "available clamped to total",
			in:   "MemAvailable: 2000 kB\nMemTotal: 1000 kB\n",
			want: meminfo{total: 1000 << 10, available: 1000 << 10},
		},
		{name: "no trailing newline", in: "MemTotal: 8 kB\nMemAvailable: 4 kB", want: meminfo{total: 8 << 10, available: 4 << 10}},
		{name: "no MemTotal", in: "MemFree: 100 kB\n", wantErr: "no MemTotal"},
		{name: "empty", in: "", wantErr: "no MemTotal"},
		{name: "bad number", in: "MemTotal: 1x kB\n", wantErr: "MemTotal: bad value"},
		{name: "bad unit", in: "MemTotal: 1 MB\n", wantErr: "unknown unit"},
		{name: "overflow", in: "MemTotal: 18446744073709551615 kB\n", wantErr: "overflows"},
		{name: "missing value", in: "MemTotal:\n", wantErr: "bad value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMeminfo([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseMeminfo error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseMeminfo: %v", err)
			}
			if got != tt.want {
				t.Errorf("parseMeminfo = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestClockTicks(t *testing.T) {
	if hz := clockTicks(); hz < 1 || hz > 10000 {
		t.Errorf("clockTicks() = %d", hz)
	}
}
