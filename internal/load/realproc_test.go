package load

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// The test binary doubles as a helper process that burns CPU for the
// duration in $LOAD_TEST_BURN, then exits.
func TestMain(m *testing.M) {
	if d, err := time.ParseDuration(os.Getenv("LOAD_TEST_BURN")); err == nil {
		for end := time.Now().Add(d); time.Now().Before(end); {
			calibrateSink += calibrateLoop(10000)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// burner returns a command for a child of the test process that burns CPU
// for d.
func burner(d time.Duration) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOAD_TEST_BURN="+d.String())
	return cmd
}

// startBurner starts a burner for d and kills it at the end of the test.
func startBurner(t *testing.T, d time.Duration) *exec.Cmd {
	t.Helper()
	cmd := burner(d)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func checkSane(t *testing.T, v Vector) {
	t.Helper()
	if v.Cores < 1 || v.MemTotal == 0 || v.MemFree > v.MemTotal || v.CPUUse < 0 || v.CPUUse > 1 || v.Speed != 1000 {
		t.Errorf("insane vector %+v", v)
	}
	if _, err := v.MarshalBinary(); err != nil {
		t.Errorf("MarshalBinary: %v", err)
	}
}

func TestSampleRealProc(t *testing.T) {
	s := NewSampler("/proc", ScopeAll, os.Getpid(), 1000)
	now := time.Now()
	v, err := s.Sample(now)
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, v)
	if v.Procs == 0 {
		t.Errorf("no processes in /proc: %+v", v)
	}
	v, err = s.Sample(now.Add(100 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, v)
	t.Logf("%+v", v)
}

// TestSampleRealDescendants runs a CPU-bound child, then one that exits
// between two samples; both must show up in ScopeDescendants.
func TestSampleRealDescendants(t *testing.T) {
	if testing.Short() {
		t.Skip("burns CPU for about a second")
	}
	s := NewSampler("/proc", ScopeDescendants, os.Getpid(), 1000)
	v, err := s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, v)
	if v.Procs != 0 || v.RunQueue != 0 {
		t.Errorf("before starting children: %+v", v)
	}

	// A running child: counted, and running.
	busy := startBurner(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	v, err = s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, v)
	// How much CPU the child gets depends on the machine's load; only ask
	// that it was seen running and using some.
	if v.Procs != 1 || v.RunQueue < 1 || v.CPUUse <= 0 {
		t.Errorf("with a busy child: %+v, want Procs 1, RunQueue >= 1, CPUUse > 0", v)
	}
	busy.Process.Kill()
	busy.Wait()
	s.Sample(time.Now()) // start a fresh interval

	// A child that runs and is reaped between two samples: its CPU time
	// reaches the test process's cutime.
	start := time.Now()
	child := burner(300 * time.Millisecond)
	if out, err := child.CombinedOutput(); err != nil {
		t.Fatalf("burner: %v\n%s", err, out)
	}
	used := child.ProcessState.UserTime() + child.ProcessState.SystemTime()
	v, err = s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, v)
	// Ask for half the CPU time the child really used (the kernel's tick
	// accounting is coarse), whatever the machine's load gave it.
	want := used.Seconds() / 2 / time.Since(start).Seconds() / float64(v.Cores)
	if v.Procs != 0 || v.CPUUse < want {
		t.Errorf("after a child came and went: %+v, want Procs 0, CPUUse >= %.3f", v, want)
	}
	t.Logf("after a child came and went: CPUUse %.3f", v.CPUUse)
}

func BenchmarkSample(b *testing.B) {
	for _, scope := range []Scope{ScopeAll, ScopeDescendants} {
		b.Run(scope.String(), func(b *testing.B) {
			s := NewSampler("/proc", scope, os.Getpid(), 1000)
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(time.Second)
				if _, err := s.Sample(now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
