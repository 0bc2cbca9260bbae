package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/agent"
	"github.com/ssi-cluster/ssi/internal/config"
)

func newAgentCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the ssi daemon of this node (as root, one per node)",
		Long: `Run the ssi daemon of this node in the foreground.

Settings come from the configuration file (default ` + config.DefaultPath + `, TOML),
then the environment (SSI_<KEY>, e.g. SSI_STATE_DIR), then these flags.
A node that has never joined needs either 'ssi init' first (a new cluster)
or --join ADDR and a join token (an existing one): --token-file FILE (mode
0600), --token-file - (standard input) or the SSI_TOKEN environment
variable; never on the command line, which every user can read.
SIGTERM stops it cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("token") {
				return errors.New("--token is not accepted: a command line is visible to every user (ps, /proc); put the token in a file (mode 0600) and give --token-file FILE, or --token-file - to read it from standard input, or set SSI_TOKEN")
			}
			cfg, err := loadAgentConfig(cmd.Flags(), cfgPath, cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			return runAgent(cfg)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", config.DefaultPath, "configuration file (TOML)")
	// Caught to say why, not to be used.
	cmd.Flags().String("token", "", "")
	cmd.Flags().MarkHidden("token")
	addConfigFlags(cmd.Flags())
	return cmd
}

// addConfigFlags defines one flag per configuration key.
func addConfigFlags(fs *pflag.FlagSet) {
	for _, k := range config.Keys() {
		help := fmt.Sprintf("%s (env %s)", k.Help, k.Env())
		if k.List {
			fs.StringArray(k.Flag(), nil, help)
		} else {
			v := &typedString{s: k.Default, typ: k.Type}
			fs.Var(v, k.Flag(), help)
			fs.Lookup(k.Flag()).DefValue = k.Default
		}
	}
}

// typedString is a flag kept as text (config.Set parses it) that tells
// --help what it holds: int, duration, true|false.
type typedString struct{ s, typ string }

func (v *typedString) String() string     { return v.s }
func (v *typedString) Set(s string) error { v.s = s; return nil }
func (v *typedString) Type() string       { return v.typ }

// loadAgentConfig layers defaults, file, environment and changed flags.
func loadAgentConfig(fs *pflag.FlagSet, path string, explicit bool) (config.Config, error) {
	cfg := config.Defaults()
	if err := cfg.LoadFile(path, !explicit); err != nil {
		return cfg, err
	}
	if err := cfg.ApplyEnv(os.Environ()); err != nil {
		return cfg, err
	}
	for _, k := range config.Keys() {
		f := fs.Lookup(k.Flag())
		if f == nil || !f.Changed {
			continue
		}
		val := f.Value.String()
		if k.List {
			vals, _ := fs.GetStringArray(k.Flag())
			val = strings.Join(vals, ",")
		}
		if err := cfg.Set(k.Name, val, true); err != nil {
			return cfg, fmt.Errorf("--%s: %w", k.Flag(), err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

func newLogger(cfg config.Config) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func runAgent(cfg config.Config) error {
	log := newLogger(cfg)
	if os.Geteuid() == 0 {
		// Like corosync, keep the failure detector answering on a saturated
		// machine: a higher priority than ordinary work.
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, -10); err != nil {
			log.Warn("could not raise the agent's priority", "err", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	a, err := agent.New(ctx, cfg, os.Stderr, log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
