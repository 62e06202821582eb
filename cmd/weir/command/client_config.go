package command

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/auth"
)

// clientConn is how a client verb reaches and authenticates to the REST
// API. Each setting comes from its flag, else its environment variable,
// else the client config file (clientConfig), else its default.
type clientConn struct {
	token, caFile, certFile, keyFile string
	opts                             []api.Option
}

// clientConfig is the client config file: $WEIR_CONFIG, else
// $XDG_CONFIG_HOME/weir/config, else ~/.config/weir/config (YAML).
type clientConfig struct {
	Coordinator string `yaml:"coordinator"`
	Token       string `yaml:"token"`
	TokenFile   string `yaml:"token_file"`
	CAFile      string `yaml:"ca_file"`
	CertFile    string `yaml:"cert_file"`
	KeyFile     string `yaml:"key_file"`
}

// maxConfigBytes bounds the config file: it holds a handful of lines.
const maxConfigBytes = 64 << 10

// parseClientConfig reads a client config file's contents; unknown keys
// are refused so a typo does not silently drop a setting.
func parseClientConfig(data []byte) (clientConfig, error) {
	var c clientConfig
	if len(data) > maxConfigBytes {
		return c, fmt.Errorf("larger than %d bytes", maxConfigBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return clientConfig{}, err
	}
	if c.Token != "" && c.TokenFile != "" {
		return clientConfig{}, errors.New("token and token_file exclude each other")
	}
	return c, nil
}

// configPath is where the client config file is looked for, and whether
// the user named it (then it must exist).
func configPath() (string, bool) {
	if p := os.Getenv("WEIR_CONFIG"); p != "" {
		return p, true
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", false
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "weir", "config"), false
}

func loadClientConfig() (clientConfig, string, error) {
	p, named := configPath()
	if p == "" {
		return clientConfig{}, "", nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !named {
			return clientConfig{}, "", nil
		}
		return clientConfig{}, p, fmt.Errorf("client config %s: %w", p, err)
	}
	c, err := parseClientConfig(data)
	if err != nil {
		return clientConfig{}, p, fmt.Errorf("client config %s: %w", p, err)
	}
	// Relative files in it are relative to the file, not to where weir runs.
	for _, f := range []*string{&c.TokenFile, &c.CAFile, &c.CertFile, &c.KeyFile} {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(filepath.Dir(p), *f)
		}
	}
	return c, p, nil
}

// addConnFlags adds the connection flags to a client verb and resolves
// them before it runs. The token's default is not a flag default, so
// --help never prints it.
func addConnFlags(c *cobra.Command, g *globals) {
	c.Flags().StringVar(&g.conn.token, "token", "", "REST API bearer token (default from WEIR_TOKEN, else the client config file; docs/cli.md)")
	c.Flags().StringVar(&g.conn.caFile, "ca-file", "", "PEM CA file to trust for an https:// coordinator (default from WEIR_CA_FILE, else the client config file, else the system's CAs)")
	c.Flags().StringVar(&g.conn.certFile, "cert-file", "", "PEM client certificate for a coordinator that asks for one (--http-client-ca); needs --key-file")
	c.Flags().StringVar(&g.conn.keyFile, "key-file", "", "PEM private key of --cert-file")
	c.PreRunE = func(cmd *cobra.Command, _ []string) error { return g.resolveConn(cmd) }
}

// pick is the flag's value when it was given, else the environment
// variable's, else the config file's.
func pick(cmd *cobra.Command, flag, val, env, conf string) string {
	if cmd.Flags().Changed(flag) {
		return val
	}
	if env != "" {
		if v := os.Getenv(env); v != "" {
			return v
		}
	}
	return conf
}

func (g *globals) resolveConn(cmd *cobra.Command) error {
	conf, path, err := loadClientConfig()
	if err != nil {
		return usageError{err}
	}
	cc := &g.conn
	if !cmd.Flags().Changed("coordinator") && os.Getenv("WEIR_COORDINATOR") == "" && conf.Coordinator != "" {
		g.coordinator = conf.Coordinator
	}
	tok := pick(cmd, "token", cc.token, "WEIR_TOKEN", conf.Token)
	if tok == "" && conf.TokenFile != "" && !cmd.Flags().Changed("token") {
		b, err := os.ReadFile(conf.TokenFile)
		if err != nil {
			return usageError{fmt.Errorf("client config %s: token_file: %w", path, err)}
		}
		tok = strings.TrimSpace(string(b))
	}
	ca := pick(cmd, "ca-file", cc.caFile, "WEIR_CA_FILE", conf.CAFile)
	cert := pick(cmd, "cert-file", cc.certFile, "", conf.CertFile)
	key := pick(cmd, "key-file", cc.keyFile, "", conf.KeyFile)
	cc.opts = nil
	if tok != "" {
		cc.opts = append(cc.opts, api.WithToken(tok))
	}
	if ca != "" || cert != "" || key != "" {
		tc, err := auth.ClientTLS(ca, cert, key)
		if err != nil {
			return usageError{err}
		}
		cc.opts = append(cc.opts, api.WithTLS(tc))
	}
	return nil
}
