package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// goodFile sets every key to a value other than its default.
const goodFile = `
name = "node-1.example"
state_dir = "/srv/ssi"
socket = "/tmp/ssi.sock"
bind = "10.0.0.5"
advertise = "192.168.1.5"
gossip_port = 8001
rpc_port = 8002
raft_port = 8003
http = "0.0.0.0:8080"
join = ["10.0.0.1", "10.0.0.2:8001"]
token_file = "/etc/ssi/token"
nodes_file = "/etc/ssi/nodes"
speed = 1500
log_level = "debug"
log_format = "json"
probe_interval = "250ms"
probe_timeout = "100ms"
suspicion_mult = 4
gossip_interval = "50ms"
raft_heartbeat = "1s"
run_grace = "45s"
voter_replace_after = "2m"
max_voters = 3
cert_ttl = "24h"
max_user_conns = 64
max_http_conns = 32
max_image_size = "2GiB"
hide_other_procs = true
balance = true
balance_aggressiveness = 70
`

func goodConfig() Config {
	return Config{
		Name:                  "node-1.example",
		StateDir:              "/srv/ssi",
		Socket:                "/tmp/ssi.sock",
		Bind:                  "10.0.0.5",
		Advertise:             "192.168.1.5",
		GossipPort:            8001,
		RPCPort:               8002,
		RaftPort:              8003,
		HTTP:                  "0.0.0.0:8080",
		Join:                  []string{"10.0.0.1", "10.0.0.2:8001"},
		TokenFile:             "/etc/ssi/token",
		NodesFile:             "/etc/ssi/nodes",
		Speed:                 1500,
		LogLevel:              "debug",
		LogFormat:             "json",
		ProbeInterval:         Duration(250 * time.Millisecond),
		ProbeTimeout:          Duration(100 * time.Millisecond),
		SuspicionMult:         4,
		GossipInterval:        Duration(50 * time.Millisecond),
		RaftHeartbeat:         Duration(time.Second),
		VoterReplaceAfter:     Duration(2 * time.Minute),
		MaxVoters:             3,
		RunGrace:              Duration(45 * time.Second),
		CertTTL:               Duration(24 * time.Hour),
		MaxUserConns:          64,
		MaxHTTPConns:          32,
		MaxImageSize:          2 << 30,
		HideOtherProcs:        true,
		Balance:               true,
		BalanceAggressiveness: 70,
	}
}

func TestDefaultsValidate(t *testing.T) {
	t.Parallel()
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
}

func TestParseGoodFile(t *testing.T) {
	t.Parallel()
	c := Defaults()
	if err := c.Parse([]byte(goodFile)); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if want := goodConfig(); !reflect.DeepEqual(c, want) {
		t.Fatalf("Parse gave\n%+v\nwant\n%+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	// Round trip: encode the parsed config and parse it over an empty one.
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		t.Fatalf("encode: %v", err)
	}
	var again Config
	if err := again.Parse(buf.Bytes()); err != nil {
		t.Fatalf("Parse(encoded): %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(again, c) {
		t.Fatalf("round trip gave\n%+v\nwant\n%+v", again, c)
	}
}

func TestParseKeepsUnsetDefaults(t *testing.T) {
	t.Parallel()
	c := Defaults()
	if err := c.Parse([]byte("name = \"a\"\n")); err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Name = "a"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v, want %+v", c, want)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file string
		want       []string // substrings of the error
	}{
		{"unknown key", "nmae = \"x\"\n", []string{"unknown key", "nmae"}},
		{"two unknown keys sorted", "zzz = 1\naaa = 2\n", []string{"unknown key aaa, zzz"}},
		{"unknown table", "[foo]\nbar = 1\n", []string{"unknown key", "foo.bar"}},
		{"unknown key next to good ones", "name = \"a\"\nrpc_prot = 1\n", []string{"rpc_prot"}},
		{"string for int", "gossip_port = \"x\"\n", []string{"gossip_port"}},
		{"float for int", "gossip_port = 1.5\n", []string{"gossip_port"}},
		{"int for string", "name = 3\n", []string{"name"}},
		{"string for list", "join = \"10.0.0.1\"\n", []string{"join"}},
		{"negative speed", "speed = -1\n", []string{"speed"}},
		{"bad duration", "probe_interval = \"fast\"\n", []string{"probe_interval"}},
		{"duration without unit", "probe_interval = 5\n", []string{"probe_interval"}},
		{"int overflow", "rpc_port = 99999999999999999999\n", []string{"rpc_port"}},
		{"syntax", "name = \n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Defaults()
			err := c.Parse([]byte(tc.file))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tc.file)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q) = %q, want it to mention %q", tc.file, err, w)
				}
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(good, []byte(goodFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("colour = \"red\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.toml")

	t.Run("good", func(t *testing.T) {
		c := Defaults()
		if err := c.LoadFile(good, false); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c, goodConfig()) {
			t.Fatalf("got %+v", c)
		}
	})
	t.Run("missing optional", func(t *testing.T) {
		c := Defaults()
		if err := c.LoadFile(missing, true); err != nil {
			t.Fatalf("optional missing file: %v", err)
		}
		if !reflect.DeepEqual(c, Defaults()) {
			t.Fatal("a missing optional file changed the config")
		}
	})
	t.Run("missing required", func(t *testing.T) {
		c := Defaults()
		err := c.LoadFile(missing, false)
		if err == nil || !os.IsNotExist(unwrapAll(err)) || !strings.Contains(err.Error(), "missing.toml") {
			t.Fatalf("LoadFile(missing, false) = %v, want a not-exist error naming the file", err)
		}
	})
	t.Run("bad names file and key", func(t *testing.T) {
		c := Defaults()
		err := c.LoadFile(bad, true)
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "colour") {
			t.Fatalf("LoadFile(bad) = %v, want an error naming %s and colour", err, bad)
		}
	})
	t.Run("directory", func(t *testing.T) {
		c := Defaults()
		if err := c.LoadFile(dir, true); err == nil {
			t.Fatal("LoadFile(a directory) succeeded")
		}
	})
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mod  func(c *Config)
		want string // "" means valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"gossip port 0", func(c *Config) { c.GossipPort = 0 }, "gossip_port: 0 is not a port"},
		{"gossip port negative", func(c *Config) { c.GossipPort = -1 }, "gossip_port: -1 is not a port"},
		{"rpc port too big", func(c *Config) { c.RPCPort = 65536 }, "rpc_port: 65536 is not a port"},
		{"raft port too big", func(c *Config) { c.RaftPort = 70000 }, "raft_port: 70000 is not a port"},
		{"port 1 and 65535 fine", func(c *Config) { c.GossipPort, c.RPCPort = 1, 65535 }, ""},
		{"gossip = rpc", func(c *Config) { c.RPCPort = c.GossipPort }, "must differ"},
		{"gossip = raft", func(c *Config) { c.RaftPort = c.GossipPort }, "must differ"},
		{"rpc = raft", func(c *Config) { c.RaftPort = c.RPCPort }, "must differ"},
		{"empty state dir", func(c *Config) { c.StateDir = "" }, "state_dir: must not be empty"},
		{"empty socket", func(c *Config) { c.Socket = "" }, "socket: must not be empty"},
		{"bind hostname", func(c *Config) { c.Bind = "localhost" }, `bind: "localhost" is not an IP address`},
		{"bind empty", func(c *Config) { c.Bind = "" }, "bind:"},
		{"bind with port", func(c *Config) { c.Bind = "10.0.0.1:7946" }, "bind:"},
		{"bind v6", func(c *Config) { c.Bind = "::" }, ""},
		{"advertise bad", func(c *Config) { c.Advertise = "10.0.0.300" }, `advertise: "10.0.0.300" is not an IP address`},
		{"advertise v6", func(c *Config) { c.Advertise = "fe80::1" }, ""},
		{"http no port", func(c *Config) { c.HTTP = "127.0.0.1" }, `http: "127.0.0.1" is not host:port`},
		{"http off", func(c *Config) { c.HTTP = "" }, ""},
		{"log level", func(c *Config) { c.LogLevel = "verbose" }, `log_level: "verbose"`},
		{"log level case", func(c *Config) { c.LogLevel = "INFO" }, "log_level:"},
		{"log level empty", func(c *Config) { c.LogLevel = "" }, "log_level:"},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, `log_format: "xml"`},
		{"name bad char", func(c *Config) { c.Name = "a b" }, `name: "a b"`},
		{"name too long", func(c *Config) { c.Name = strings.Repeat("a", 64) }, "name:"},
		{"name 63", func(c *Config) { c.Name = strings.Repeat("a", 63) }, ""},
		{"probe interval small", func(c *Config) {
			c.ProbeInterval, c.ProbeTimeout = Duration(9*time.Millisecond), Duration(5*time.Millisecond)
		}, "probe_interval: 9ms is below the minimum 10ms"},
		{"probe timeout small", func(c *Config) { c.ProbeTimeout = Duration(4 * time.Millisecond) }, "probe_timeout: 4ms is below the minimum 5ms"},
		{"gossip interval small", func(c *Config) { c.GossipInterval = Duration(time.Millisecond) }, "gossip_interval: 1ms is below the minimum 5ms"},
		{"gossip interval zero", func(c *Config) { c.GossipInterval = 0 }, "gossip_interval: 0s is below"},
		{"raft heartbeat small", func(c *Config) { c.RaftHeartbeat = Duration(49 * time.Millisecond) }, "raft_heartbeat: 49ms is below the minimum 50ms"},
		{"voter replace small", func(c *Config) { c.VoterReplaceAfter = Duration(999 * time.Millisecond) }, "voter_replace_after: 999ms is below the minimum 1s"},
		{"minimum durations fine", func(c *Config) {
			c.ProbeInterval, c.ProbeTimeout = Duration(10*time.Millisecond), Duration(5*time.Millisecond)
			c.GossipInterval, c.RaftHeartbeat = Duration(5*time.Millisecond), Duration(50*time.Millisecond)
			c.VoterReplaceAfter = Duration(time.Second)
		}, ""},
		{"probe timeout = interval", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, "probe_timeout (200ms) must be shorter than probe_interval (200ms)"},
		{"probe timeout > interval", func(c *Config) { c.ProbeTimeout = Duration(time.Second) }, "must be shorter than probe_interval"},
		{"suspicion 0", func(c *Config) { c.SuspicionMult = 0 }, "suspicion_mult: 0 is not in 1-20"},
		{"suspicion 21", func(c *Config) { c.SuspicionMult = 21 }, "suspicion_mult: 21"},
		{"suspicion 20", func(c *Config) { c.SuspicionMult = 20 }, ""},
		{"max voters 0", func(c *Config) { c.MaxVoters = 0 }, "max_voters: 0 must be 1, 3, 5 or 7"},
		{"max voters 2", func(c *Config) { c.MaxVoters = 2 }, "max_voters: 2"},
		{"max voters 4", func(c *Config) { c.MaxVoters = 4 }, "max_voters: 4"},
		{"max voters 9", func(c *Config) { c.MaxVoters = 9 }, "max_voters: 9"},
		{"max voters -1", func(c *Config) { c.MaxVoters = -1 }, "max_voters: -1"},
		{"max voters 1", func(c *Config) { c.MaxVoters = 1 }, ""},
		{"max voters 7", func(c *Config) { c.MaxVoters = 7 }, ""},
		{"max user conns 3", func(c *Config) { c.MaxUserConns = 3 }, "max_user_conns: 3 is not in 4-1048576"},
		{"max user conns 4", func(c *Config) { c.MaxUserConns = 4 }, ""},
		{"max user conns huge", func(c *Config) { c.MaxUserConns = 1<<20 + 1 }, "max_user_conns:"},
		{"max http conns 0", func(c *Config) { c.MaxHTTPConns = 0 }, "max_http_conns: 0 is not in 4-1048576"},
		{"max image size small", func(c *Config) { c.MaxImageSize = 1<<20 - 1 }, "max_image_size: 1048575 is below the minimum 1MiB"},
		{"max image size 1MiB", func(c *Config) { c.MaxImageSize = 1 << 20 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Defaults()
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("Validate() = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"a", true},
		{"node-1", true},
		{"Node_2.example", true},
		{strings.Repeat("x", 63), true},
		{strings.Repeat("x", 64), false},
		{"", false},
		{"a b", false},
		{"a/b", false},
		{"a:b", false},
		{"nöde", false},
		{"a\n", false},
	} {
		if got := ValidName(tc.s); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.s, got, tc.ok)
		}
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	keys := Keys()
	typ := reflect.TypeOf(Config{})
	if len(keys) != typ.NumField() {
		t.Fatalf("Keys() has %d keys, Config has %d fields", len(keys), typ.NumField())
	}
	seen := map[string]bool{}
	for i, k := range keys {
		if want := typ.Field(i).Tag.Get("toml"); k.Name != want {
			t.Errorf("key %d is %q, want %q (declaration order)", i, k.Name, want)
		}
		if seen[k.Name] {
			t.Errorf("key %q twice", k.Name)
		}
		seen[k.Name] = true
		if k.Help == "" {
			t.Errorf("key %q has no help", k.Name)
		}
		if k.List != (k.Name == "join") {
			t.Errorf("key %q: List = %v", k.Name, k.List)
		}
		if strings.Contains(k.Flag(), "_") || strings.ReplaceAll(k.Flag(), "-", "_") != k.Name {
			t.Errorf("key %q: flag %q", k.Name, k.Flag())
		}
		if k.Env() != "SSI_"+strings.ToUpper(k.Name) {
			t.Errorf("key %q: env %q", k.Name, k.Env())
		}
	}
	byName := map[string]Key{}
	for _, k := range keys {
		byName[k.Name] = k
	}
	for name, want := range map[string]string{
		"gossip_port": "7946", "probe_interval": "200ms", "voter_replace_after": "30s",
		"join": "", "name": "", "log_level": "info", "speed": "0",
		"max_image_size": "16GiB", "max_user_conns": "1024", "hide_other_procs": "false",
	} {
		if got := byName[name].Default; got != want {
			t.Errorf("default of %s = %q, want %q", name, got, want)
		}
	}
	if k := byName["probe_timeout"]; k.Flag() != "probe-timeout" || k.Env() != "SSI_PROBE_TIMEOUT" {
		t.Errorf("probe_timeout: flag %q env %q", k.Flag(), k.Env())
	}

	// Setting every key to its printed default gives back Defaults().
	c := Defaults()
	for _, k := range keys {
		if err := c.Set(k.Name, k.Default, true); err != nil {
			t.Errorf("Set(%s, %q): %v", k.Name, k.Default, err)
		}
	}
	if !reflect.DeepEqual(c, Defaults()) {
		t.Errorf("setting every default gave %+v", c)
	}
}

func TestSet(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key, value string
		check      func(c Config) bool
		wantErr    string
	}{
		{"name", "n1", func(c Config) bool { return c.Name == "n1" }, ""},
		{"rpc_port", "9000", func(c Config) bool { return c.RPCPort == 9000 }, ""},
		{"rpc_port", "90x", nil, `rpc_port: "90x" is not a whole number`},
		{"rpc_port", "", nil, "rpc_port:"},
		{"speed", "1234", func(c Config) bool { return c.Speed == 1234 }, ""},
		{"speed", "-1", nil, "speed:"},
		{"speed", "4294967296", nil, "speed:"},
		{"probe_interval", "250ms", func(c Config) bool { return c.ProbeInterval == Duration(250*time.Millisecond) }, ""},
		{"probe_interval", "250", nil, `probe_interval: "250" is not a duration`},
		{"join", " a , ,b,", func(c Config) bool { return reflect.DeepEqual(c.Join, []string{"a", "b"}) }, ""},
		{"max_image_size", "1GiB", func(c Config) bool { return c.MaxImageSize == 1<<30 }, ""},
		{"max_image_size", "1536M", func(c Config) bool { return c.MaxImageSize == 1536<<20 }, ""},
		{"max_image_size", "4096", func(c Config) bool { return c.MaxImageSize == 4096 }, ""},
		{"max_image_size", "1.5GiB", nil, `max_image_size: "1.5GiB" is not a size`},
		{"max_image_size", "-1", nil, "max_image_size:"},
		{"max_image_size", "99999999999TiB", nil, "max_image_size:"},
		{"hide_other_procs", "true", func(c Config) bool { return c.HideOtherProcs }, ""},
		{"max_user_conns", "256", func(c Config) bool { return c.MaxUserConns == 256 }, ""},
		{"no_such_key", "1", nil, `unknown setting "no_such_key"`},
		{"probe-interval", "1s", nil, "unknown setting"}, // flag form is not a key
		{"", "1", nil, "unknown setting"},
	} {
		c := Defaults()
		err := c.Set(tc.key, tc.value, true)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Set(%q, %q) = %v, want error with %q", tc.key, tc.value, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Set(%q, %q) = %v", tc.key, tc.value, err)
			continue
		}
		if !tc.check(c) {
			t.Errorf("Set(%q, %q) gave %+v", tc.key, tc.value, c)
		}
	}
}

func TestSetListResetAndAppend(t *testing.T) {
	t.Parallel()
	c := Defaults()
	if err := c.Parse([]byte(`join = ["f1", "f2"]`)); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		value string
		reset bool
		want  []string
	}{
		{"a", false, []string{"f1", "f2", "a"}},
		{"b,c", false, []string{"f1", "f2", "a", "b", "c"}},
		{"x", true, []string{"x"}},
		{"y", false, []string{"x", "y"}},
		{"", true, nil},
		{"z", false, []string{"z"}},
	}
	for i, s := range steps {
		if err := c.Set("join", s.value, s.reset); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.Join, s.want) {
			t.Fatalf("step %d: Set(join, %q, %v): join = %q, want %q", i, s.value, s.reset, c.Join, s.want)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	t.Parallel()
	c := Defaults()
	if err := c.Parse([]byte(goodFile)); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=/bin",
		"SSI_NAME=from-env",
		"SSI_RPC_PORT=9100",
		"SSI_PROBE_INTERVAL=300ms",
		"SSI_JOIN=10.1.1.1,10.1.1.2",
		"SSI_TOKEN_FILE=a=b=c", // value with '='
		"SSI_UNKNOWN_THING=1",
		"ssi_log_level=error", // not upper-case: ignored
		"SSI_HTTP",            // no '=': ignored
	}
	if err := c.ApplyEnv(env); err != nil {
		t.Fatalf("ApplyEnv: %v", err)
	}
	want := goodConfig()
	want.Name = "from-env"
	want.RPCPort = 9100
	want.ProbeInterval = Duration(300 * time.Millisecond)
	want.Join = []string{"10.1.1.1", "10.1.1.2"} // reset, not appended to the file's list
	want.TokenFile = "a=b=c"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("after ApplyEnv\n%+v\nwant\n%+v", c, want)
	}

	// An empty variable is a value: it clears a string.
	if err := c.ApplyEnv([]string{"SSI_ADVERTISE="}); err != nil || c.Advertise != "" {
		t.Fatalf("SSI_ADVERTISE= : err %v, advertise %q", err, c.Advertise)
	}
}

func TestApplyEnvError(t *testing.T) {
	t.Parallel()
	for _, kv := range []string{"SSI_RPC_PORT=abc", "SSI_PROBE_TIMEOUT=soon", "SSI_SPEED=-3"} {
		c := Defaults()
		err := c.ApplyEnv([]string{kv})
		name, _, _ := strings.Cut(kv, "=")
		if err == nil || !strings.Contains(err.Error(), "environment "+name) {
			t.Errorf("ApplyEnv(%q) = %v, want an error naming %s", kv, err, name)
		}
	}
}

// FuzzParse checks that Parse never panics on any input over the defaults,
// and that Validate does not panic on whatever Parse accepted.
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodFile))
	f.Add([]byte(""))
	f.Add([]byte("name = \"a\"\nrpc_port = 0\n"))
	f.Add([]byte("[foo]\nbar = 1\n"))
	f.Add([]byte("join = [\"a\", 1]\n"))
	f.Add([]byte("probe_interval = \"-5s\"\nprobe_timeout = \"1h\"\n"))
	f.Add([]byte("max_voters = 4\nspeed = 4294967295\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Defaults()
		if err := c.Parse(data); err != nil {
			return
		}
		_ = c.Validate()
		// What parsed must survive encoding back to TOML.
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(c); err != nil {
			t.Fatalf("encode of parsed config: %v", err)
		}
		var again Config
		if err := again.Parse(buf.Bytes()); err != nil {
			t.Fatalf("re-parse: %v\n%s", err, buf.String())
		}
	})
}

func TestSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Size
		ok   bool
		out  string
	}{
		{"0", 0, true, "0"},
		{"1048576", 1 << 20, true, "1MiB"},
		{"1000", 1000, true, "1000"},
		{"16GiB", 16 << 30, true, "16GiB"},
		{"16G", 16 << 30, true, "16GiB"},
		{" 512 MiB ", 512 << 20, true, "512MiB"},
		{"3KiB", 3 << 10, true, "3KiB"},
		{"2TiB", 2 << 40, true, "2TiB"},
		{"1536MiB", 1536 << 20, true, "1536MiB"},
		{"7B", 7, true, "7"},
		{"", 0, false, ""},
		{"GiB", 0, false, ""},
		{"1.5GiB", 0, false, ""},
		{"-1", 0, false, ""},
		{"1PiB", 0, false, ""},
		{"4194305TiB", 0, false, ""},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
			continue
		}
		if tc.ok && got.String() != tc.out {
			t.Errorf("Size(%d).String() = %q, want %q", got, got.String(), tc.out)
		}
	}
	// In the file: an integer or a string.
	for _, doc := range []string{"max_image_size = 1073741824", `max_image_size = "1GiB"`, `max_image_size = "1G"`} {
		c := Defaults()
		if err := c.Parse([]byte(doc)); err != nil || c.MaxImageSize != 1<<30 {
			t.Errorf("Parse(%q): %d, %v", doc, c.MaxImageSize, err)
		}
	}
	for _, doc := range []string{"max_image_size = -1", "max_image_size = 1.5", `max_image_size = "lots"`} {
		c := Defaults()
		if err := c.Parse([]byte(doc)); err == nil {
			t.Errorf("Parse(%q) accepted %d", doc, c.MaxImageSize)
		}
	}
}
