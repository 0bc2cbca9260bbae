package load

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// seedCorpora are the committed seeds of the fuzz targets, by target and
// file name. TestFuzzCorpus checks that testdata holds exactly these;
// run it with LOAD_WRITE_CORPUS=1 to (re)write them.
func seedCorpora(t *testing.T) map[string]map[string][]byte {
	good, err := goodVector.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	patched := func(off int, x float64) []byte {
		b := append([]byte(nil), good...)
		binary.LittleEndian.PutUint64(b[off:], math.Float64bits(x))
		return b
	}
	minimal, err := Vector{Cores: 1, Speed: 1}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]map[string][]byte{
		"FuzzParseStat": {
			"kthreadd":       []byte("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 3 0 0 20 0 1 0 2 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"),
			"cat":            []byte("2702 (cat) R 2700 2700 2217 0 -1 4194304 102 0 0 0 7 2 11 4 20 0 1 0 15254 3133440 412 18446744073709551615 94794475544576 94794475564457 140720891932128 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94794475580464 94794475582080 94795034005504 140720891939514 140720891939534 140720891939534 140720891940843 0\n"),
			"comm_parens":    []byte("4242 (my (odd) ) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 123 45 6 7 20 0 12 0 98765 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"),
			"comm_newline":   []byte("7 (a\nb) Z 3 0 0 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 99"),
			"short":          []byte("12 (a) S 1 0 0"),
			"no_comm":        []byte("12 S 1 2 3"),
			"negative_field": []byte("12 (a) S 1 0 0 0 -1 0 0 0 0 0 1 1 0 -4 20 0 1 0 99"),
		},
		"FuzzParseMeminfo": {
			"modern":       []byte(sampleMeminfo),
			"no_available": []byte("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n"),
			"overflow":     []byte("MemTotal: 18446744073709551615 kB\n"),
			"bad_unit":     []byte("MemTotal: 1 MB\n"),
			"empty":        {},
		},
		"FuzzVectorUnmarshal": {
			"good":          good,
			"minimal":       minimal,
			"short":         good[:72],
			"bad_version":   append([]byte{2}, good[1:]...),
			"cpu_use_big":   patched(29, 3.5),
			"load1_nan":     patched(5, math.NaN()),
			"load15_neginf": patched(21, math.Inf(-1)),
		},
	}
}

func TestFuzzCorpus(t *testing.T) {
	write := os.Getenv("LOAD_WRITE_CORPUS") != ""
	for target, seeds := range seedCorpora(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		if write {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for name, b := range seeds {
			path := filepath.Join(dir, name)
			want := corpusEntry(b)
			if write {
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("seed corpus file missing (run with LOAD_WRITE_CORPUS=1): %v", err)
			} else if string(got) != want {
				t.Errorf("%s is out of date (run with LOAD_WRITE_CORPUS=1)", path)
			}
		}
	}
}
