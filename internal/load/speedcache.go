package load

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ssi-cluster/ssi/internal/statedir"
)

// A measured speed is kept in the agent's state directory and used again
// at the next start while the machine is the same (same CPU model, same
// number of CPUs, same workload) and the measurement is less than
// SpeedMaxAge old: an agent then starts without its 50-80 ms of
// calibration (on one machine running 128 agents, 128 of those).

// SpeedFile is the name of the kept measurement in a state directory.
const SpeedFile = "speed.json"

// SpeedMaxAge is how long a kept measurement is used.
const SpeedMaxAge = 7 * 24 * time.Hour

// calibrateVersion names the workload and its reference (calibrateLoop,
// calibrateRef): a change to either must change it.
const calibrateVersion = 1

// speedRecord is what is kept.
type speedRecord struct {
	Speed    uint32    `json:"speed"`
	Machine  string    `json:"machine"`
	Version  int       `json:"version"`
	Measured time.Time `json:"measured"`
}

// machineID names what a measurement holds for: the CPU model, the CPUs
// this process may use, the architecture.
func machineID(cpuinfo string) string {
	model := "unknown"
	for _, l := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && (strings.TrimSpace(k) == "model name" || strings.TrimSpace(k) == "Model") {
			model = strings.TrimSpace(v)
			break
		}
	}
	return fmt.Sprintf("%s/%s/%d", runtime.GOARCH, model, runtime.NumCPU())
}

// keptSpeed is the speed kept in b for machine, if it still holds at now.
func keptSpeed(b []byte, machine string, now time.Time) (uint32, bool) {
	var r speedRecord
	if json.Unmarshal(b, &r) != nil || r.Speed == 0 || r.Machine != machine || r.Version != calibrateVersion {
		return 0, false
	}
	if age := now.Sub(r.Measured); age < 0 || age > SpeedMaxAge {
		return 0, false
	}
	return r.Speed, true
}

// SpeedIn returns this machine's speed: the one kept in dir if it still
// holds (kept true), else a new measurement (Calibrate), which it keeps
// there (written atomically; a failure to write is returned with the
// speed, which is good all the same).
func SpeedIn(dir string, now time.Time) (speed uint32, kept bool, err error) {
	info, _ := os.ReadFile("/proc/cpuinfo")
	machine := machineID(string(info))
	path := filepath.Join(dir, SpeedFile)
	if b, err := os.ReadFile(path); err == nil {
		if s, ok := keptSpeed(b, machine, now); ok {
			return s, true, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return Calibrate(), false, err
	}
	speed = Calibrate()
	b, _ := json.Marshal(speedRecord{Speed: speed, Machine: machine, Version: calibrateVersion, Measured: now.UTC()})
	return speed, false, statedir.WriteFile(dir, SpeedFile, append(b, '\n'), 0o600)
}
