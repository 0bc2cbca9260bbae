package load

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestKeptSpeed(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	m := machineID("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n")
	rec := func(speed uint32, machine string, version int, at time.Time) []byte {
		b, _ := json.Marshal(speedRecord{Speed: speed, Machine: machine, Version: version, Measured: at})
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want uint32
		ok   bool
	}{
		{"kept", rec(1040, m, calibrateVersion, now.Add(-time.Hour)), 1040, true},
		{"another machine", rec(1040, "amd64/Intel/2", calibrateVersion, now.Add(-time.Hour)), 0, false},
		{"another workload", rec(1040, m, calibrateVersion+1, now.Add(-time.Hour)), 0, false},
		{"too old", rec(1040, m, calibrateVersion, now.Add(-SpeedMaxAge-time.Minute)), 0, false},
		{"from the future", rec(1040, m, calibrateVersion, now.Add(time.Hour)), 0, false},
		{"zero", rec(0, m, calibrateVersion, now), 0, false},
		{"corrupt", []byte(`{"speed":10`), 0, false},
		{"empty", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := keptSpeed(tc.b, m, now)
			if got != tc.want || ok != tc.ok {
				t.Errorf("keptSpeed = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestSpeedIn: the first start measures and keeps the speed, the next
// uses it; a corrupt file is measured over.
func TestSpeedIn(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	s1, kept, err := SpeedIn(dir, now)
	if err != nil || kept || s1 == 0 {
		t.Fatalf("first: %d, kept %v, %v", s1, kept, err)
	}
	s2, kept, err := SpeedIn(dir, now.Add(time.Minute))
	if err != nil || !kept || s2 != s1 {
		t.Fatalf("second: %d, kept %v, %v; want %d kept", s2, kept, err, s1)
	}
	if err := os.WriteFile(filepath.Join(dir, SpeedFile), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s3, kept, err := SpeedIn(dir, now); err != nil || kept || s3 == 0 {
		t.Fatalf("after corruption: %d, kept %v, %v", s3, kept, err)
	}
	if _, kept, _ := SpeedIn(dir, now); !kept {
		t.Error("the measurement after the corrupt file was not kept")
	}
}
