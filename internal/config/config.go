// Package config is the agent's configuration: one TOML file (default
// /etc/ssi/agent.toml), overridden by environment variables SSI_<KEY> and then
// by command-line flags --<key>, where KEY is the TOML key upper-cased and key
// the TOML key with '-' for '_'. Parsing and validation are pure: Parse takes
// bytes, Apply takes strings, Validate names the first bad field.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where the agent looks for its configuration file.
const DefaultPath = "/etc/ssi/agent.toml"

// Duration is a time.Duration written as "250ms", "2s" in the file.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Size is a number of bytes, written 1073741824, "1073741824", "1GiB",
// "512MiB", "64KiB" or "16G" (G, M, K are binary too) in the file.
type Size int64

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}, {"B", 0}}

// ParseSize parses a Size written as a whole number of bytes or of KiB,
// MiB, GiB or TiB.
func ParseSize(s string) (Size, error) {
	num, shift := strings.TrimSpace(s), uint(0)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, shift = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is not a size (like 1048576, 512MiB or 16GiB)", s)
	}
	return Size(n << shift), nil
}

// String writes the size in the largest binary unit that divides it.
func (z Size) String() string {
	for _, u := range sizeUnits[:4] {
		if z != 0 && z%(1<<u.shift) == 0 {
			return strconv.FormatInt(int64(z)>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(z), 10)
}

// UnmarshalText parses a size written as a string.
func (z *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*z = v
	return nil
}

// UnmarshalTOML takes a size written as a TOML integer or string.
func (z *Size) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("%d is not a size", x)
		}
		*z = Size(x)
		return nil
	case string:
		return z.UnmarshalText([]byte(x))
	}
	return fmt.Errorf("%v is not a size (like 1048576, 512MiB or 16GiB)", v)
}

// MarshalText writes the size as String does.
func (z Size) MarshalText() ([]byte, error) { return []byte(z.String()), nil }

// Config is everything an agent can be told. The toml tag is the key in the
// file, the flag name and (upper-cased, SSI_ prefixed) the environment
// variable.
type Config struct {
	Name       string   `toml:"name" help:"this node's name (default: the hostname)"`
	StateDir   string   `toml:"state_dir" help:"directory for keys, certificates and the raft log"`
	Socket     string   `toml:"socket" help:"Unix socket the CLI talks to"`
	Bind       string   `toml:"bind" help:"IP address to listen on for gossip, RPC and raft"`
	Advertise  string   `toml:"advertise" help:"IP address other nodes use to reach this one (default: bind, or the first non-loopback address)"`
	GossipPort int      `toml:"gossip_port" help:"gossip port (TCP and UDP)"`
	RPCPort    int      `toml:"rpc_port" help:"gRPC port (mutual TLS)"`
	RaftPort   int      `toml:"raft_port" help:"raft port (mutual TLS)"`
	HTTP       string   `toml:"http" help:"address of the HTTP JSON API and /metrics (empty: off)"`
	Join       []string `toml:"join" help:"a member to join: ADDR (this node's rpc_port assumed) or ADDR:PORT (repeatable)"`
	TokenFile  string   `toml:"token_file" help:"file holding the join token (mode 0600; - reads standard input; or set SSI_TOKEN)"`
	NodesFile  string   `toml:"nodes_file" help:"static node list: one address a line, like openMosix's mosix.map"`
	Speed      uint32   `toml:"speed" help:"relative speed to gossip instead of the measured one (1000 = reference)"`
	LoadScope  string   `toml:"load_scope" help:"processes counted in the load vector: all (every process of the node) or agent (only the agent's descendants: several agents on one machine); default all as root, agent otherwise"`
	LogLevel   string   `toml:"log_level" help:"debug, info, warn or error"`
	LogFormat  string   `toml:"log_format" help:"text or json"`

	// AllowRemoteRoot lets root on another node act here (run processes
	// as root, signal, freeze, checkpoint or move processes), and anyone
	// on another node act on root's processes here (package authz). Off:
	// such a request is refused.
	AllowRemoteRoot bool `toml:"allow_remote_root" help:"accept from other nodes what root asks, and anything asked of root's processes: ssi run as root, kill, freeze, checkpoint, migrate (true or false)"`

	// The local API's limits (see docs/install.md, "Local users").
	MaxUserConns   int  `toml:"max_user_conns" help:"connections each user other than root may hold open on the agent's socket at once (each ssi run holds one while it runs)"`
	MaxHTTPConns   int  `toml:"max_http_conns" help:"connections the HTTP listener (--http) holds open at once, all callers together"`
	MaxImageSize   Size `toml:"max_image_size" help:"largest image ssi restore may send (bytes, or like 512MiB, 16GiB); the agent spools it on disk, never in memory"`
	HideOtherProcs bool `toml:"hide_other_procs" help:"show users other than root only their own processes (like /proc's hidepid=2); the HTTP listener then shows none (true or false)"`

	// Failure detection and agreement timings.
	ProbeInterval     Duration `toml:"probe_interval" help:"gossip failure-detector probe interval"`
	ProbeTimeout      Duration `toml:"probe_timeout" help:"time to wait for a probe's ack"`
	SuspicionMult     int      `toml:"suspicion_mult" help:"suspicion timeout in probe intervals before a node is declared down"`
	GossipInterval    Duration `toml:"gossip_interval" help:"gossip dissemination interval"`
	RaftHeartbeat     Duration `toml:"raft_heartbeat" help:"raft heartbeat and election timeout"`
	VoterReplaceAfter Duration `toml:"voter_replace_after" help:"a voter down this long is replaced by another node"`
	MaxVoters         int      `toml:"max_voters" help:"number of raft voters (odd, at most 7)"`

	// RunGrace is how long a run whose node is unreachable or committed
	// down waits for it to come back (the deputy re-attaches) before its
	// process is called lost; and how long a node keeps a process, with
	// its output, for a home whose stream broke (docs/install.md).
	RunGrace Duration `toml:"run_grace" help:"how long a run whose node is unreachable or committed down waits for the node to come back before its process is called lost"`

	// Balance turns on automatic load balancing on this node: once a
	// second it moves its runs to nodes where they get more done, and
	// takes other nodes' (package balance). BalanceAggressiveness scales
	// how readily (0-100: 0 moves nothing for load).
	Balance               bool `toml:"balance" help:"automatic load balancing: this node moves its runs where they get more CPU and takes others' (true or false)"`
	BalanceAggressiveness int  `toml:"balance_aggressiveness" help:"how readily the balancer moves a process for load, 0-100 (0: never; memory ushering and drain still move)"`

	// CertTTL is the lifetime of the node certificates this node signs
	// when it is the master; agents renew theirs at half their life.
	CertTTL Duration `toml:"cert_ttl" help:"lifetime of the node certificates the master signs (renewed at half life; at least 1m)"`
}

// Defaults returns the configuration used when nothing is said.
func Defaults() Config {
	return Config{
		StateDir:              "/var/lib/ssi",
		Socket:                "/run/ssi/agent.sock",
		Bind:                  "0.0.0.0",
		GossipPort:            7946,
		RPCPort:               7947,
		RaftPort:              7948,
		HTTP:                  "127.0.0.1:7949",
		LogLevel:              "info",
		LogFormat:             "text",
		ProbeInterval:         Duration(200 * time.Millisecond),
		ProbeTimeout:          Duration(100 * time.Millisecond),
		SuspicionMult:         2,
		GossipInterval:        Duration(200 * time.Millisecond),
		RaftHeartbeat:         Duration(time.Second),
		VoterReplaceAfter:     Duration(30 * time.Second),
		MaxVoters:             5,
		RunGrace:              Duration(30 * time.Second),
		CertTTL:               Duration(72 * time.Hour),
		BalanceAggressiveness: 50,
		MaxUserConns:          1024,
		MaxHTTPConns:          256,
		MaxImageSize:          16 << 30,
	}
}

// Parse decodes a TOML document over c. Unknown keys are an error, so a
// misspelt key is never silently ignored.
func (c *Config) Parse(data []byte) error {
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(c)
	if err != nil {
		return err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	return nil
}

// LoadFile parses the file at path over c. A missing file is not an error
// when optional is true (the default path need not exist).
func (c *Config) LoadFile(path string, optional bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if optional && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("config file: %w", err)
	}
	if err := c.Parse(data); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// Keys lists every settable key with its help text, in declaration order.
func Keys() []Key {
	t := reflect.TypeOf(Config{})
	keys := make([]Key, 0, t.NumField())
	def := reflect.ValueOf(Defaults())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		keys = append(keys, Key{
			Name:    f.Tag.Get("toml"),
			Help:    f.Tag.Get("help"),
			Default: formatValue(def.Field(i)),
			List:    f.Type.Kind() == reflect.Slice,
			Type:    typeName(f.Type),
		})
	}
	return keys
}

// Key describes one setting.
type Key struct {
	Name, Help, Default string
	List                bool
	Type                string // what the value is, for --help: int, duration, true|false, string
}

// typeName names what a setting's value is, as --help shows it.
func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(Duration(0)):
		return "duration"
	case t.Kind() == reflect.Bool:
		return "true|false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "int"
	case t.Kind() == reflect.Slice:
		return "strings"
	}
	return "string"
}

// Flag is the command-line flag name of the key.
func (k Key) Flag() string { return strings.ReplaceAll(k.Name, "_", "-") }

// Env is the environment variable of the key.
func (k Key) Env() string { return "SSI_" + strings.ToUpper(k.Name) }

// Set sets one key from its string form, as given in a flag or the
// environment. A list key appends (flags repeat) unless reset is true.
func (c *Config) Set(key, value string, reset bool) error {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("toml") != key {
			continue
		}
		if err := setValue(v.Field(i), value, reset); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	}
	return fmt.Errorf("unknown setting %q", key)
}

func setValue(f reflect.Value, s string, reset bool) error {
	switch f.Interface().(type) {
	case Size:
		z, err := ParseSize(s)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(z))
		return nil
	case Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (like 250ms or 2s)", s)
		}
		f.Set(reflect.ValueOf(Duration(d)))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		f.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		f.SetInt(int64(n))
	case reflect.Uint32:
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		f.SetUint(n)
	case reflect.Slice:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		if reset {
			f.Set(reflect.ValueOf(parts))
		} else {
			f.Set(reflect.AppendSlice(f, reflect.ValueOf(parts)))
		}
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

func formatValue(f reflect.Value) string {
	switch x := f.Interface().(type) {
	case Duration:
		return time.Duration(x).String()
	case Size:
		return x.String()
	case []string:
		return strings.Join(x, ",")
	}
	return fmt.Sprint(f.Interface())
}

// ApplyEnv sets every key whose SSI_ variable is set in env (os.Environ form).
func (c *Config) ApplyEnv(env []string) error {
	m := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	for _, k := range Keys() {
		if v, ok := m[k.Env()]; ok {
			if err := c.Set(k.Name, v, true); err != nil {
				return fmt.Errorf("environment %s: %w", k.Env(), err)
			}
		}
	}
	return nil
}

// Validate checks every field and names the first bad one.
func (c *Config) Validate() error {
	ports := map[string]int{"gossip_port": c.GossipPort, "rpc_port": c.RPCPort, "raft_port": c.RaftPort}
	for _, k := range []string{"gossip_port", "rpc_port", "raft_port"} {
		if p := ports[k]; p < 1 || p > 65535 {
			return fmt.Errorf("%s: %d is not a port (1-65535)", k, p)
		}
	}
	if c.GossipPort == c.RPCPort || c.GossipPort == c.RaftPort || c.RPCPort == c.RaftPort {
		return fmt.Errorf("gossip_port, rpc_port and raft_port must differ (%d, %d, %d)", c.GossipPort, c.RPCPort, c.RaftPort)
	}
	if c.StateDir == "" {
		return errors.New("state_dir: must not be empty")
	}
	if time.Duration(c.CertTTL) < time.Minute {
		return fmt.Errorf("cert_ttl: %v is shorter than 1m (renewal needs time)", time.Duration(c.CertTTL))
	}
	if c.Socket == "" {
		return errors.New("socket: must not be empty")
	}
	if net.ParseIP(c.Bind) == nil {
		return fmt.Errorf("bind: %q is not an IP address", c.Bind)
	}
	if c.Advertise != "" && net.ParseIP(c.Advertise) == nil {
		return fmt.Errorf("advertise: %q is not an IP address", c.Advertise)
	}
	if c.HTTP != "" {
		if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
			return fmt.Errorf("http: %q is not host:port", c.HTTP)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LoadScope {
	case "", "all", "agent":
	default:
		return fmt.Errorf("load_scope: %q is not all or agent", c.LoadScope)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log_format: %q is not text or json", c.LogFormat)
	}
	if c.Name != "" && !ValidName(c.Name) {
		return fmt.Errorf("name: %q must be 1-63 letters, digits, '-', '_' or '.'", c.Name)
	}
	durs := []struct {
		key string
		d   Duration
		min time.Duration
	}{
		{"probe_interval", c.ProbeInterval, 10 * time.Millisecond},
		{"probe_timeout", c.ProbeTimeout, 5 * time.Millisecond},
		{"gossip_interval", c.GossipInterval, 5 * time.Millisecond},
		{"raft_heartbeat", c.RaftHeartbeat, 50 * time.Millisecond},
		{"voter_replace_after", c.VoterReplaceAfter, time.Second},
		{"run_grace", c.RunGrace, time.Second},
	}
	for _, d := range durs {
		if time.Duration(d.d) < d.min {
			return fmt.Errorf("%s: %s is below the minimum %s", d.key, time.Duration(d.d), d.min)
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("probe_timeout (%s) must be shorter than probe_interval (%s)", time.Duration(c.ProbeTimeout), time.Duration(c.ProbeInterval))
	}
	if c.SuspicionMult < 1 || c.SuspicionMult > 20 {
		return fmt.Errorf("suspicion_mult: %d is not in 1-20", c.SuspicionMult)
	}
	if c.MaxVoters < 1 || c.MaxVoters > 7 || c.MaxVoters%2 == 0 {
		return fmt.Errorf("max_voters: %d must be 1, 3, 5 or 7", c.MaxVoters)
	}
	if c.MaxUserConns < 4 || c.MaxUserConns > 1<<20 {
		return fmt.Errorf("max_user_conns: %d is not in 4-1048576", c.MaxUserConns)
	}
	if c.MaxHTTPConns < 4 || c.MaxHTTPConns > 1<<20 {
		return fmt.Errorf("max_http_conns: %d is not in 4-1048576", c.MaxHTTPConns)
	}
	if c.BalanceAggressiveness < 0 || c.BalanceAggressiveness > 100 {
		return fmt.Errorf("balance_aggressiveness: %d is not in 0-100", c.BalanceAggressiveness)
	}
	if c.MaxImageSize < 1<<20 {
		return fmt.Errorf("max_image_size: %s is below the minimum 1MiB", c.MaxImageSize)
	}
	return nil
}

// ValidName reports whether s can be a node name.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !ok {
			return false
		}
	}
	return true
}
