package agent

import "testing"

func TestSomeAvg10(t *testing.T) {
	for text, want := range map[string]float64{
		"some avg10=12.50 avg60=3.00 avg300=1.00 total=123\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=4\n": 12.5,
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n":                                                    0,
		"some avg10=":  0,
		"":             0,
		"full avg10=9": 0,
	} {
		if got := someAvg10(text); got != want {
			t.Errorf("someAvg10(%q) = %v, want %v", text, got, want)
		}
	}
}
