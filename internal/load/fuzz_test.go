package load

import (
	"bytes"
	"fmt"
	"testing"
)

// The seed corpora are in testdata/fuzz/<FuzzName>/.

func FuzzParseStat(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStat(b)
		if err != nil {
			return
		}
		if st.pid <= 0 || st.ppid < 0 || st.numThreads < 0 {
			t.Fatalf("parseStat(%q) = %+v", b, st)
		}
		// What was parsed must survive being formatted the way the kernel
		// does and parsed again.
		line := statLine(st.pid, st.ppid, st.comm, st.state, st.utime, st.stime, st.cutime, st.cstime, st.numThreads, st.startTime)
		again, err := parseStat([]byte(line))
		if err != nil || again != st {
			t.Fatalf("reparse of %q = %+v, %v; want %+v", line, again, err, st)
		}
	})
}

func FuzzParseMeminfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMeminfo(b)
		if err == nil && m.available > m.total {
			t.Fatalf("parseMeminfo(%q) = %+v: available above total", b, m)
		}
	})
}

func FuzzVectorUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Vector
		if err := v.UnmarshalBinary(b); err != nil {
			if v != (Vector{}) {
				t.Fatalf("UnmarshalBinary(%x) failed (%v) but changed the vector: %+v", b, err, v)
			}
			return
		}
		out, err := v.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v from %x does not encode: %v", v, b, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding %+v: %x, want %x", v, out, b)
		}
	})
}

// Corpus files must start with this line; see writeCorpusSeeds.
const fuzzHeader = "go test fuzz v1\n"

// corpusEntry formats b as a corpus file.
func corpusEntry(b []byte) string { return fmt.Sprintf("%s[]byte(%q)\n", fuzzHeader, b) }
